"""Random compositions of core ops, built twice: as a RustyASG graph and as eager PyTorch.

A case is drawn step by step: each step picks an op from :data:`OPS` and operands from
the values made so far, runs it in PyTorch (float64) at once and keeps it only if the
result is finite, moderate, and not within a margin of a kink (relu at 0, ties of max...)
where float32 rounding could pick the other side. The recorded steps are then replayed
with ``rustyasg.core`` so both sides compute the same function.

The scalar loss is ``sum(out * W)`` for a fixed random ``W``; what is compared is the
output, the gradient of the loss with respect to every input, and the Hessian-vector
product ``d/dx <grad, v>`` for a fixed random ``v``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Sequence

import numpy as np
import torch
import torch.nn.functional as TF

import rustyasg.core as rg

KINK_MARGIN = 2e-2  # float32 inputs within this of a kink may fall on the other side
MAX_ABS = 50.0      # larger intermediate values make float32 tolerances meaningless


class Reject(Exception):
    """The drawn step does not fit the operands (or lands too near a kink): draw another."""


@dataclass
class Op:
    name: str
    arity: int
    draw: Callable  # (rng, torch operands) -> params (raises Reject when it does not apply)
    torch_fn: Callable  # (operands, params) -> torch tensor
    rg_fn: Callable  # (operands, params) -> rg tensor
    kink: Callable = None  # (torch operands, params) -> distance of the operands to the nearest kink


@dataclass
class Step:
    op: Op  # None: the step brings in input number ``args[0]``
    args: tuple
    params: dict


@dataclass
class Case:
    seed: int
    input_shapes: List[tuple]
    inputs: List[np.ndarray]
    steps: List[Step] = field(default_factory=list)
    weight: np.ndarray = None
    tangents: List[np.ndarray] = None

    def describe(self) -> str:
        ops = " -> ".join(f"{s.op.name}{list(s.args)}{s.params or ''}" for s in self.steps if s.op is not None)
        return f"seed {self.seed}: inputs {self.input_shapes}; {ops}"


def _no_params(rng, xs):
    return {}


def _float_params(**choices):
    def draw(rng, xs):
        return {k: v[rng.integers(len(v))] for k, v in choices.items()}
    return draw


def _min_dist(t, points):
    return min(float((t - p).abs().min()) if t.numel() else np.inf for p in points)


# --- unary elementwise -----------------------------------------------------------------
def _u(name, tfn, rfn, kinks=()):
    kink = (lambda xs, p: _min_dist(xs[0], kinks)) if kinks else None
    return Op(name, 1, _no_params, lambda xs, p: tfn(xs[0]), lambda xs, p: rfn(xs[0]), kink)


UNARY = [
    _u("neg", lambda x: -x, lambda x: -x),
    _u("exp", torch.exp, rg.exp),
    _u("tanh", torch.tanh, rg.tanh),
    _u("sigmoid", torch.sigmoid, rg.sigmoid),
    _u("sin", torch.sin, rg.sin),
    _u("cos", torch.cos, rg.cos),
    _u("erf", torch.erf, rg.erf),
    _u("square", torch.square, rg.square),
    _u("pow2", lambda x: x ** 2, lambda x: x ** 2),
    _u("pow3", lambda x: x ** 3, lambda x: x ** 3),
    _u("log_sq1", lambda x: torch.log(x * x + 1.0), lambda x: rg.log(x * x + 1.0)),
    _u("sqrt_sq1", lambda x: torch.sqrt(x * x + 1.0), lambda x: rg.sqrt(x * x + 1.0)),
    _u("recip_sq1", lambda x: 1.0 / (x * x + 1.0), lambda x: 1.0 / (x * x + 1.0)),
    _u("relu", torch.relu, rg.relu, kinks=(0.0,)),
    _u("abs", torch.abs, rg.abs, kinks=(0.0,)),
    _u("gelu", TF.gelu, rg.gelu),
    _u("gelu_tanh", lambda x: TF.gelu(x, approximate="tanh"), rg.gelu_tanh),
    _u("silu", TF.silu, rg.silu),
    _u("softplus", TF.softplus, rg.softplus),
    _u("elu", TF.elu, rg.elu, kinks=(0.0,)),
    _u("leaky_relu", lambda x: TF.leaky_relu(x, 0.1), lambda x: rg.leaky_relu(x, negative_slope=0.1), kinks=(0.0,)),
    _u("clamp", lambda x: torch.clamp(x, -0.5, 0.7), lambda x: rg.clamp(x, min=-0.5, max=0.7), kinks=(-0.5, 0.7)),
]


# --- binary with broadcasting ------------------------------------------------------------
def _broadcast_partner(rng, shape):
    """A shape that broadcasts against ``shape``: some dims set to 1, some leading dims dropped."""
    dims = [1 if rng.random() < 0.3 else d for d in shape]
    drop = rng.integers(0, len(dims) + 1) if rng.random() < 0.4 else 0
    return tuple(dims[drop:])


def _binary_draw(rng, xs):
    a, b = xs
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        raise Reject() from None
    return {}


def _b(name, tfn, rfn, kink=None):
    return Op(name, 2, _binary_draw, lambda xs, p: tfn(*xs), lambda xs, p: rfn(*xs), kink)


def _tie(xs, p):
    a, b = torch.broadcast_tensors(*xs)
    return float((a - b).abs().min()) if a.numel() else np.inf


BINARY = [
    _b("add", torch.add, lambda a, b: a + b),
    _b("sub", torch.sub, lambda a, b: a - b),
    _b("mul", torch.mul, lambda a, b: a * b),
    _b("div", lambda a, b: a / (b * b + 1.0), lambda a, b: a / (b * b + 1.0)),
    _b("pow", lambda a, b: (a * a + 0.5) ** b, lambda a, b: (a * a + 0.5) ** b),
    _b("maximum", torch.maximum, rg.maximum, _tie),
    _b("minimum", torch.minimum, rg.minimum, _tie),
    _b("where", lambda a, b: torch.where(a > b, a, b * 2.0), lambda a, b: rg.where(a > b, a, b * 2.0), _tie),
]


# --- reductions ----------------------------------------------------------------------------
def _axes_draw(rng, xs):
    nd = xs[0].dim()
    if nd == 0 or rng.random() < 0.25:
        axis = None if rng.random() < 0.5 or nd == 0 else tuple(range(nd))
    else:
        k = int(rng.integers(1, nd + 1))
        axis = tuple(int(a) - (nd if rng.random() < 0.3 else 0) for a in sorted(rng.choice(nd, k, replace=False)))
    if nd == 0 and rng.random() < 0.5:
        axis = (0,) if rng.random() < 0.5 else (-1,)  # PyTorch allows dim 0 / -1 on a 0-d tensor
    return {"axis": axis, "keepdims": bool(rng.random() < 0.4)}


def _tdims(x, axis):
    return list(range(x.dim())) if axis is None else list(axis)


def _reduced(tfn):
    def run(xs, p):
        x = xs[0]
        if x.dim() == 0:
            return tfn(x, [], p["keepdims"]) if p["axis"] is None else tfn(x, list(p["axis"]), p["keepdims"])
        return tfn(x, _tdims(x, p["axis"]), p["keepdims"])
    return run


def _tmax(x, dims, keep):
    return torch.amax(x, dim=dims, keepdim=keep) if dims else x.clone()


def _tmin(x, dims, keep):
    return torch.amin(x, dim=dims, keepdim=keep) if dims else x.clone()


def _tprod(x, dims, keep):
    for d in sorted(dims, reverse=True):
        x = torch.prod(x, dim=d, keepdim=True)
    if not keep and dims:
        x = x.squeeze(tuple(dims)) if x.dim() else x
    return x


def _extreme_gap(xs, p):
    x = xs[0]
    dims = _tdims(x, p["axis"]) if x.dim() else []
    if not dims or x.numel() <= 1:
        return np.inf
    moved = x.permute([d for d in range(x.dim()) if d not in [d % x.dim() for d in dims]]
                      + [d % x.dim() for d in dims])
    flat = moved.reshape(-1, int(np.prod([x.shape[d] for d in dims])))
    if flat.shape[1] < 2:
        return np.inf
    top = torch.sort(flat, dim=1).values
    return float(min((top[:, -1] - top[:, -2]).min(), (top[:, 1] - top[:, 0]).min()))


def _r(name, tfn, rfn, kink=None, draw=_axes_draw):
    return Op(name, 1, draw, _reduced(tfn), lambda xs, p: rfn(xs[0], axis=p["axis"], keepdims=p["keepdims"]), kink)


def _var_draw(rng, xs):
    p = _axes_draw(rng, xs)
    p["correction"] = int(rng.integers(0, 2))
    x = xs[0]
    n = int(np.prod([x.shape[d] for d in _tdims(x, p["axis"])])) if x.dim() else 1
    if n <= p["correction"]:
        raise Reject()
    return p


REDUCE = [
    _r("sum", lambda x, d, k: torch.sum(x, dim=d, keepdim=k) if d else x.clone(), rg.sum),
    _r("mean", lambda x, d, k: torch.mean(x, dim=d, keepdim=k) if d else x.clone(), rg.mean),
    _r("max", _tmax, rg.max, _extreme_gap),
    _r("min", _tmin, rg.min, _extreme_gap),
    _r("prod", _tprod, rg.prod),
    _r("logsumexp", lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k) if d else x.clone(), rg.logsumexp),
    Op("var", 1, _var_draw,
       lambda xs, p: (torch.var(xs[0], dim=_tdims(xs[0], p["axis"]) if xs[0].dim() else None,
                                correction=p["correction"], keepdim=p["keepdims"])),
       lambda xs, p: rg.var(xs[0], axis=p["axis"], keepdims=p["keepdims"], correction=p["correction"])),
]


def _axis_draw(rng, xs):
    nd = xs[0].dim()
    return {"axis": int(rng.integers(-max(nd, 1), max(nd, 1)))}


SOFTMAX = [
    Op("softmax", 1, _axis_draw, lambda xs, p: torch.softmax(xs[0], p["axis"]),
       lambda xs, p: rg.softmax(xs[0], axis=p["axis"])),
    Op("log_softmax", 1, _axis_draw, lambda xs, p: torch.log_softmax(xs[0], p["axis"]),
       lambda xs, p: rg.log_softmax(xs[0], axis=p["axis"])),
]


# --- movement ---------------------------------------------------------------------------------
def _factor_shape(rng, n):
    """A random shape with ``n`` elements, rank 0 to 3."""
    if n == 1 and rng.random() < 0.5:
        return ()
    primes, m, f = [], n, 2
    while m > 1:
        while m % f == 0:
            primes.append(f)
            m //= f
        f += 1
    rank = int(rng.integers(1, 4))
    dims = [1] * rank
    for pr in primes:
        dims[rng.integers(rank)] *= pr
    return tuple(dims)


def _reshape_draw(rng, xs):
    shape = _factor_shape(rng, xs[0].numel())
    if shape and rng.random() < 0.3:
        i = int(rng.integers(len(shape)))
        shape = shape[:i] + (-1,) + shape[i + 1:]
    return {"shape": shape}


def _perm_draw(rng, xs):
    return {"axes": tuple(int(a) for a in rng.permutation(xs[0].dim()))}


def _slice_draw(rng, xs):
    x = xs[0]
    if x.dim() == 0:
        raise Reject()
    key = []
    for d in x.shape:
        start = int(rng.integers(0, d))
        stop = int(rng.integers(start + 1, d + 1))
        key.append(slice(start, stop, int(rng.integers(1, 3))))
    if rng.random() < 0.3:
        i = int(rng.integers(x.dim()))
        key[i] = int(rng.integers(-x.shape[i], x.shape[i]))  # an integer index drops the axis
    if rng.random() < 0.1:  # an empty slice along one axis (x[1:1]): zero-size results flow on
        i = int(rng.integers(len(key)))
        start = int(rng.integers(0, x.shape[i] + 1))
        key[i] = slice(start, start)
    if rng.random() < 0.2:
        key.insert(int(rng.integers(len(key) + 1)), None)
    return {"key": tuple(key)}


def _flip_draw(rng, xs):
    nd = xs[0].dim()
    return {"axes": tuple(int(a) for a in rng.choice(nd, int(rng.integers(0, nd + 1)), replace=False))} if nd else {
        "axes": ()}


def _pad_draw(rng, xs):
    x = xs[0]
    if x.dim() == 0:
        raise Reject()
    widths = []
    for d in x.shape:
        before, after = int(rng.integers(-1, 3)), int(rng.integers(-1, 3))
        if d + before + after < 1:
            before, after = max(before, 0), max(after, 0)
        widths += [before, after]
    return {"pad_width": tuple(widths), "value": float(rng.choice([0.0, 0.5]))}


def _torch_pad(x, widths, value):
    flat = []
    for i in reversed(range(x.dim())):  # torch lists the last axis first
        flat += [widths[2 * i], widths[2 * i + 1]]
    return TF.pad(x, flat, value=value)


def _concat_draw(rng, xs):
    a, b = xs
    if a.dim() == 0 or a.dim() != b.dim():
        raise Reject()
    axes = [i for i in range(a.dim()) if all(a.shape[j] == b.shape[j] for j in range(a.dim()) if j != i)]
    if not axes:
        raise Reject()
    return {"axis": int(rng.choice(axes)) - (a.dim() if rng.random() < 0.3 else 0)}


def _broadcast_draw(rng, xs):
    x = xs[0]
    shape = [int(rng.integers(2, 4)) if d == 1 and rng.random() < 0.7 else d for d in x.shape]
    lead = [int(rng.integers(1, 4)) for _ in range(int(rng.integers(0, 2)))]
    return {"shape": tuple(lead + shape)}


def _unsqueeze_draw(rng, xs):
    nd = xs[0].dim()
    return {"axis": int(rng.integers(-(nd + 1), nd + 1))}


def _squeeze_draw(rng, xs):
    x = xs[0]
    ones = [i for i, d in enumerate(x.shape) if d == 1]
    if x.dim() == 0:
        return {"axis": int(rng.choice([0, -1]))}
    if not ones:
        raise Reject()
    return {"axis": int(rng.choice(ones))}


def _take_draw(rng, xs):
    x = xs[0]
    if x.dim() == 0:
        raise Reject()
    axis = int(rng.integers(x.dim()))
    idx_shape = tuple(int(rng.integers(1, 4)) for _ in range(int(rng.integers(1, 3))))
    return {"axis": axis, "index": rng.integers(0, x.shape[axis], idx_shape)}


def _torch_take(x, index, axis):
    moved = x.movedim(axis, 0)[torch.as_tensor(index)]
    return moved.movedim(tuple(range(index.ndim)), tuple(range(axis, axis + index.ndim)))


def _gather_draw(rng, xs):
    x = xs[0]
    if x.dim() == 0:
        raise Reject()
    axis = int(rng.integers(x.dim()))
    shape = [int(rng.integers(1, d + 1)) if i != axis else int(rng.integers(1, 4)) for i, d in enumerate(x.shape)]
    return {"axis": axis, "index": rng.integers(0, x.shape[axis], shape)}


def _scatter_draw(rng, xs):
    x, src = xs
    if x.dim() == 0 or src.dim() != x.dim():
        raise Reject()
    axis = int(rng.integers(x.dim()))
    if any(s > d for i, (s, d) in enumerate(zip(src.shape, x.shape)) if i != axis):
        raise Reject()
    return {"axis": axis, "index": rng.integers(0, x.shape[axis], tuple(src.shape))}


def _stack_draw(rng, xs):
    if xs[0].shape != xs[1].shape:
        raise Reject()
    return {"axis": int(rng.integers(-(xs[0].dim() + 1), xs[0].dim() + 1))}


def _matmul_draw(rng, xs):
    a, b = xs
    if a.dim() == 0 or b.dim() == 0:
        raise Reject()
    inner_b = b.shape[-2] if b.dim() > 1 else b.shape[0]
    if a.shape[-1] != inner_b:
        raise Reject()
    try:
        torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except RuntimeError:
        raise Reject() from None
    return {}


MOVE = [
    Op("reshape", 1, _reshape_draw, lambda xs, p: xs[0].reshape(p["shape"]),
       lambda xs, p: rg.reshape(xs[0], p["shape"])),
    Op("transpose", 1, _perm_draw, lambda xs, p: xs[0].permute(p["axes"]),
       lambda xs, p: rg.transpose(xs[0], p["axes"])),
    Op("getitem", 1, _slice_draw, lambda xs, p: xs[0][p["key"]], lambda xs, p: xs[0][p["key"]]),
    Op("flip", 1, _flip_draw, lambda xs, p: torch.flip(xs[0], p["axes"]),
       lambda xs, p: rg.flip(xs[0], axes=p["axes"])),
    Op("pad", 1, _pad_draw, lambda xs, p: _torch_pad(xs[0], p["pad_width"], p["value"]),
       lambda xs, p: rg.pad(xs[0], pad_width=p["pad_width"], value=p["value"])),
    Op("concat", 2, _concat_draw, lambda xs, p: torch.cat(xs, p["axis"]),
       lambda xs, p: rg.concat(*xs, axis=p["axis"])),
    Op("stack", 2, _stack_draw,
       lambda xs, p: torch.stack(xs, p["axis"]), lambda xs, p: rg.stack(list(xs), axis=p["axis"])),
    Op("broadcast_to", 1, _broadcast_draw, lambda xs, p: xs[0].expand(p["shape"]),
       lambda xs, p: rg.broadcast_to(xs[0], shape=p["shape"])),
    Op("unsqueeze", 1, _unsqueeze_draw, lambda xs, p: xs[0].unsqueeze(p["axis"]),
       lambda xs, p: rg.unsqueeze(xs[0], p["axis"])),
    Op("squeeze", 1, _squeeze_draw, lambda xs, p: xs[0].squeeze(p["axis"]),
       lambda xs, p: rg.squeeze(xs[0], p["axis"])),
    Op("take", 1, _take_draw, lambda xs, p: _torch_take(xs[0], p["index"], p["axis"]),
       lambda xs, p: rg.take(xs[0], rg.constant(p["index"]), axis=p["axis"])),
    Op("gather", 1, _gather_draw, lambda xs, p: torch.gather(xs[0], p["axis"], torch.as_tensor(p["index"])),
       lambda xs, p: rg.gather(xs[0], rg.constant(p["index"]), axis=p["axis"])),
    Op("scatter_add", 2, _scatter_draw,
       lambda xs, p: torch.scatter_add(xs[0], p["axis"], torch.as_tensor(p["index"]), xs[1]),
       lambda xs, p: rg.scatter_add(xs[0], rg.constant(p["index"]), xs[1], axis=p["axis"])),
    Op("matmul", 2, _matmul_draw, lambda xs, p: torch.matmul(*xs), lambda xs, p: rg.matmul(*xs)),
]

# --- pooling (over the last two axes; the leading ones become the batch) ----------------------
def _planes(rng, xs):
    if xs[0].dim() < 2:
        raise Reject()
    return tuple(xs[0].shape[-2:])


def _avg_pool_draw(rng, xs):
    h, w = _planes(rng, xs)
    kernel = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
    return {"kernel_size": kernel, "stride": (int(rng.integers(1, 3)), int(rng.integers(1, 3))),
            "padding": tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel),
            "ceil_mode": bool(rng.random() < 0.3), "count_include_pad": bool(rng.random() < 0.5)}


def _max_pool_draw(rng, xs):
    h, w = _planes(rng, xs)
    kernel = (int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1)))
    dilation = tuple(int(rng.integers(1, 3)) if (k - 1) * 2 < n else 1 for k, n in zip(kernel, (h, w)))
    return {"kernel_size": kernel, "stride": (int(rng.integers(1, 3)), int(rng.integers(1, 3))),
            "padding": tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel), "dilation": dilation,
            "ceil_mode": bool(rng.random() < 0.3)}


def _plane_gap(xs, p):
    """Smallest gap between two unequal values of one (H, W) plane: a max-pooling window whose top two
    values are that close could pick another element in float32 (an exact tie picks the first on
    every side)."""
    x = xs[0]
    planes = torch.sort(x.reshape(-1, x.shape[-2] * x.shape[-1]), dim=1).values
    gaps = planes[:, 1:] - planes[:, :-1]
    gaps = gaps[gaps > 0]
    return float(gaps.min()) if gaps.numel() else np.inf


def _adaptive_draw(rng, xs):
    h, w = _planes(rng, xs)
    return {"output_size": (int(rng.integers(1, h + 2)), int(rng.integers(1, w + 2)))}


def _over_planes(pool):
    """``pool`` applied to ``x`` viewed as (batch, 1, H, W), the result given back x's leading axes."""
    def run(xs, p, reshape):
        x = xs[0]
        lead, (h, w) = tuple(x.shape[:-2]), tuple(x.shape[-2:])
        y = pool(reshape(x, (-1, 1, h, w)), p)
        return reshape(y, lead + tuple(y.shape[-2:]))
    return run


_torch_avg = _over_planes(lambda x, p: TF.avg_pool2d(x, **p))
_rg_avg = _over_planes(lambda x, p: rg.avg_pool2d(x, **p))
_torch_adaptive = _over_planes(lambda x, p: TF.adaptive_avg_pool2d(x, p["output_size"]))
_rg_adaptive = _over_planes(lambda x, p: rg.adaptive_avg_pool2d(x, p["output_size"]))
_torch_max = _over_planes(lambda x, p: TF.max_pool2d(x, **p))
_rg_max = _over_planes(lambda x, p: rg.max_pool2d(x, **p))
_torch_adaptive_max = _over_planes(lambda x, p: TF.adaptive_max_pool2d(x, p["output_size"]))
_rg_adaptive_max = _over_planes(lambda x, p: rg.adaptive_max_pool2d(x, p["output_size"]))

POOL = [
    Op("avg_pool2d", 1, _avg_pool_draw, lambda xs, p: _torch_avg(xs, p, torch.reshape),
       lambda xs, p: _rg_avg(xs, p, rg.reshape)),
    Op("adaptive_avg_pool2d", 1, _adaptive_draw, lambda xs, p: _torch_adaptive(xs, p, torch.reshape),
       lambda xs, p: _rg_adaptive(xs, p, rg.reshape)),
    Op("max_pool2d", 1, _max_pool_draw, lambda xs, p: _torch_max(xs, p, torch.reshape),
       lambda xs, p: _rg_max(xs, p, rg.reshape), _plane_gap),
    Op("adaptive_max_pool2d", 1, _adaptive_draw, lambda xs, p: _torch_adaptive_max(xs, p, torch.reshape),
       lambda xs, p: _rg_adaptive_max(xs, p, rg.reshape), _plane_gap),
]

ALL_OPS = UNARY + BINARY + REDUCE + SOFTMAX + MOVE + POOL


def _random_shape(rng, rank=None):
    rank = int(rng.integers(0, 4)) if rank is None else rank
    return tuple(int(rng.integers(1, 5)) for _ in range(rank))


def _ok(t: torch.Tensor) -> bool:
    return t.numel() == 0 or (bool(torch.isfinite(t).all()) and float(t.abs().max()) < MAX_ABS)


def draw_case(seed: int, n_steps: int = 5, ops: Sequence[Op] = ALL_OPS) -> Case:
    """A random composition of ``n_steps`` ops over one to three inputs, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    shapes = [_random_shape(rng)]
    for _ in range(int(rng.integers(0, 3))):
        shapes.append(_broadcast_partner(rng, shapes[0]) if rng.random() < 0.6 else _random_shape(rng))
    inputs = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    case = Case(seed, shapes, inputs, [Step(None, (i,), {}) for i in range(len(inputs))])
    values = [torch.tensor(v) for v in inputs]
    tries, made = 0, 0
    while made < n_steps and tries < 400:
        tries += 1
        op = ops[int(rng.integers(len(ops)))]
        # Prefer the newest values so the steps compose instead of forming a forest.
        picks = tuple(int(len(values) - 1 - min(rng.geometric(0.5) - 1, len(values) - 1)) for _ in range(op.arity))
        if op.name == "matmul" and rng.random() < 0.5:  # a fresh operand that fits
            a = values[picks[0]]
            if a.dim() == 0:
                continue
            shape = (a.shape[-1],) if rng.random() < 0.3 else (a.shape[-1], int(rng.integers(1, 4)))
            case.input_shapes.append(shape)
            case.inputs.append(rng.uniform(-1.5, 1.5, shape))
            values.append(torch.tensor(case.inputs[-1]))
            case.steps.append(Step(None, (len(case.inputs) - 1,), {}))
            picks = (picks[0], len(values) - 1)
        operands = [values[i] for i in picks]
        try:
            params = op.draw(rng, operands)
            out = op.torch_fn(operands, params)
        except (Reject, RuntimeError, IndexError, ValueError):
            continue
        if not _ok(out) or (op.kink is not None and op.kink(operands, params) < KINK_MARGIN):
            continue
        values.append(out.contiguous())
        case.steps.append(Step(op, picks, params))
        made += 1
    case.weight = rng.uniform(-1, 1, tuple(values[-1].shape))
    case.tangents = [rng.uniform(-1, 1, s) for s in case.input_shapes]
    return case


def _replay(case: Case, leaves: list, run: str):
    values = []
    for step in case.steps:
        if step.op is None:
            values.append(leaves[step.args[0]])
            continue
        fn = step.op.torch_fn if run == "torch" else step.op.rg_fn
        values.append(fn([values[i] for i in step.args], step.params))
    return values[-1]


def torch_results(case: Case):
    """Output, gradients and Hessian-vector products of ``case`` in PyTorch float64."""
    xs = [torch.tensor(v, requires_grad=True) for v in case.inputs]
    out = _replay(case, xs, "torch")
    loss = (out * torch.tensor(case.weight)).sum()
    grads = torch.autograd.grad(loss, xs, create_graph=True, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads)]
    inner = sum((g * torch.tensor(v)).sum() for g, v in zip(grads, case.tangents))
    if inner.requires_grad:
        hvps = torch.autograd.grad(inner, xs, allow_unused=True)
        hvps = [torch.zeros_like(x) if h is None else h for x, h in zip(xs, hvps)]
    else:
        hvps = [torch.zeros_like(x) for x in xs]
    return [np.zeros(t.shape) if t._is_zerotensor() else t.detach().numpy() for t in [out, *grads, *hvps]]


def symbolic_shape(shape: tuple) -> tuple:
    """``shape`` with every dimension above 1 made symbolic, named by its size (``n3``): equal
    sizes stay equal to the graph builder, so broadcasting and matmul still line up."""
    return tuple(f"n{d}" if d > 1 else d for d in shape)


def rg_function(case: Case, backend: str, dtype: str, symbolic: bool = False):
    """The same computation as a compiled RustyASG function of the case's inputs.

    With ``symbolic``, the graph is built on inputs of symbolic shape (:func:`symbolic_shape`)
    and specialised when it is called, as a model built once for any batch size is; the loss
    weight and the tangents are then inputs too (a constant's shape is fixed).
    """
    xs = [rg.input(symbolic_shape(s) if symbolic else s, dtype, name=f"x{i}")
          for i, s in enumerate(case.input_shapes)]
    out = _replay(case, xs, "rg")
    fixed = [case.weight, *case.tangents]
    if symbolic:  # the weight has the output's shape as built, each tangent its input's
        shapes = [out.shape] + [x.shape for x in xs]
        extra = [rg.input(tuple(s), dtype, name=f"w{i}") for i, s in enumerate(shapes)]
    else:
        extra = [rg.constant(v, dtype) for v in fixed]
    loss = rg.sum(out * extra[0])
    grads = rg.grad(loss, xs)
    inner = None
    for g, v in zip(grads, extra[1:]):
        term = rg.sum(g * v)
        inner = term if inner is None else inner + term
    hvps = rg.grad(inner, xs)
    if not symbolic:
        return rg.function(xs, [out, *grads, *hvps], backend=backend)
    fn = rg.function(xs + extra, [out, *grads, *hvps], backend=backend)
    return lambda *arrays: fn(*arrays, *[v.astype(arrays[0].dtype) for v in fixed])


def with_nan(case: Case) -> list:
    """The case's inputs with one seeded element of the first non-empty input set to NaN."""
    rng = np.random.default_rng(case.seed + 7919)
    inputs = [np.array(v, dtype=np.float64, copy=True) for v in case.inputs]
    target = next((v for v in inputs if v.size), None)
    if target is not None:
        target.reshape(-1)[int(rng.integers(target.size))] = np.nan
    return inputs


def with_inf(case: Case) -> list:
    """The case's inputs with one seeded element set to +inf and another to -inf."""
    rng = np.random.default_rng(case.seed + 104729)
    inputs = [np.array(v, dtype=np.float64, copy=True) for v in case.inputs]
    cells = [(i, j) for i, v in enumerate(inputs) for j in range(v.size)]
    for k, value in zip(rng.permutation(len(cells))[:2], (np.inf, -np.inf)):
        i, j = cells[k]
        inputs[i].reshape(-1)[j] = value
    return inputs


def torch_value(case: Case, inputs: list) -> np.ndarray:
    """The case's output in PyTorch float64 for other ``inputs`` (no gradients)."""
    with torch.no_grad():
        out = _replay(case, [torch.tensor(v) for v in inputs], "torch")
    return out.detach().numpy()
