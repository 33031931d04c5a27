"""Shape inference against numpy/PyTorch on random cases, and mistakes caught while building.

For every op family, random *valid* operands must give the shape numpy (or PyTorch, where
the op follows PyTorch) gives; random *invalid* operands, which numpy/PyTorch refuse too,
must raise a RustyASG error while the graph is built, whose message names the op, each
operand's shape as the user wrote it, and the ``file:line`` of the call in this file.

Seeds are fixed; ``RUSTYASG_RANDOM_SEED=<n>`` explores other cases.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
from rustyasg.core.shapes import format_shape

BASE_SEED = int(os.environ.get("RUSTYASG_RANDOM_SEED", "0"))


def _shape(rng, rank=None, low=1, high=5):
    rank = int(rng.integers(0, 4)) if rank is None else rank
    return tuple(int(rng.integers(low, high)) for _ in range(rank))


def _mismatch(rng, shape):
    """``shape`` with one dimension changed to a different size > 1 (never broadcastable)."""
    if not shape:
        return (int(rng.integers(2, 5)),)
    i = int(rng.integers(len(shape)))
    return shape[:i] + (shape[i] + int(rng.integers(1, 3)) if shape[i] > 1 else int(rng.integers(2, 5)),) + shape[i + 1:]


@dataclass
class Family:
    """One op family: how to draw cases, the ground truth, and the user's call (one line each)."""

    op: str
    valid: Callable    # rng -> (shapes, params)
    invalid: Callable  # rng -> (shapes, params)
    truth: Callable    # (numpy arrays, params) -> result shape; raises on invalid operands
    build: Callable    # (rg tensors, params) -> rg tensor: the line a mistake must point to
    dtype: str = "float32"


# --- binary broadcasting -------------------------------------------------------------------
def _bin_valid(rng):
    a = _shape(rng)
    b = tuple(1 if rng.random() < 0.3 else d for d in a)[int(rng.integers(0, len(a) + 1)):]
    return ([a, b] if rng.random() < 0.5 else [b, a]), {}


def _bin_invalid(rng):
    a = _shape(rng, int(rng.integers(1, 4)), low=2)
    b = a[:-1] + (a[-1] + int(rng.integers(1, 3)),)  # the last axes differ, both > 1
    return ([a, b[int(rng.integers(0, len(b))):]] if rng.random() < 0.5 else [b, a]), {}


# --- reductions ---------------------------------------------------------------------------
def _red_valid(rng):
    s = _shape(rng)
    nd = len(s)
    if nd == 0:
        return [s], {"axis": int(rng.choice([0, -1])), "keepdims": bool(rng.random() < 0.5)}
    k = int(rng.integers(1, nd + 1))
    axes = tuple(int(a) - (nd if rng.random() < 0.5 else 0) for a in rng.choice(nd, k, replace=False))
    return [s], {"axis": axes, "keepdims": bool(rng.random() < 0.5)}


def _red_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    nd = len(s)
    if rng.random() < 0.5:
        a = int(rng.integers(nd))
        return [s], {"axis": (a, a - nd), "keepdims": False}  # the same axis twice
    return [s], {"axis": (int(rng.choice([nd, -nd - 1, nd + 2])),), "keepdims": False}


def _torch_sum_shape(xs, p):
    return tuple(torch.sum(torch.zeros(xs[0].shape), dim=p["axis"], keepdim=p["keepdims"]).shape)


# --- reshape / transpose ------------------------------------------------------------------
def _reshape_valid(rng):
    s = _shape(rng)
    n = int(np.prod(s))
    dims = [1, 1, 1][: int(rng.integers(1, 4))]
    for f in (2, 3):
        while n % f == 0:
            dims[int(rng.integers(len(dims)))] *= f
            n //= f
    dims[0] *= n
    if rng.random() < 0.4:
        dims[int(rng.integers(len(dims)))] = -1
    return [s], {"shape": tuple(dims)}


def _reshape_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)), low=2)
    target = (int(np.prod(s)) + int(rng.integers(1, 4)),)
    return [s], {"shape": target if rng.random() < 0.7 else (-1, -1)}


def _perm_valid(rng):
    s = _shape(rng)
    return [s], {"axes": tuple(int(a) for a in rng.permutation(len(s)))}


def _perm_invalid(rng):
    s = _shape(rng, int(rng.integers(2, 4)))
    axes = list(rng.permutation(len(s)))
    axes[0] = axes[1]
    return [s], {"axes": tuple(int(a) for a in (axes if rng.random() < 0.5 else axes[:-1]))}


# --- indexing ----------------------------------------------------------------------------------
def _index_valid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    key = []
    for d in s[: int(rng.integers(1, len(s) + 1))]:
        r = rng.random()
        if r < 0.3:
            key.append(int(rng.integers(-d, d)))
        elif r < 0.8:
            a, b = sorted(int(v) for v in rng.integers(-d - 1, d + 2, 2))
            key.append(slice(a, b, int(rng.choice([1, 2, -1, -2]))))
        else:
            key.append(slice(None))
        if rng.random() < 0.15:
            key.append(None)
    if rng.random() < 0.2:
        key.append(Ellipsis)  # (anywhere else it would move the integer indices to other axes)
    return [s], {"key": tuple(key)}


def _index_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    r = rng.random()
    if r < 0.4:  # an integer out of range
        i = int(rng.integers(len(s)))
        key = [slice(None)] * i + [int(rng.choice([s[i], s[i] + 2, -s[i] - 1]))]
    elif r < 0.7:  # more indices than axes
        key = [0] * (len(s) + 1)
    else:  # a constant integer-array index out of range
        key = [np.array([0, s[0] + int(rng.integers(0, 3))])]
    return [s], {"key": tuple(key)}


# --- joining and splitting ----------------------------------------------------------------------
def _concat_valid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    ax = int(rng.integers(len(s)))
    shapes = [s[:ax] + (int(rng.integers(1, 4)),) + s[ax + 1:] for _ in range(int(rng.integers(1, 4)))]
    return shapes, {"axis": ax - (len(s) if rng.random() < 0.3 else 0)}


def _concat_invalid(rng):
    r = rng.random()
    if r < 0.2:
        return [(), ()], {"axis": 0}
    s = _shape(rng, int(rng.integers(1, 4)))
    if r < 0.4:
        return [s, s], {"axis": len(s)}
    ax = int(rng.integers(len(s)))
    others = [i for i in range(len(s)) if i != ax]
    if not others:
        return [s, s + (2,)], {"axis": ax}
    i = int(rng.choice(others))
    t = s[:i] + (s[i] + 1,) + s[i + 1:]
    return [s, t], {"axis": ax}


def _stack_valid(rng):
    s = _shape(rng)
    return [s] * int(rng.integers(1, 4)), {"axis": int(rng.integers(-len(s) - 1, len(s) + 1))}


def _stack_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    if rng.random() < 0.3:
        return [s, s], {"axis": len(s) + 2}
    return [s, _mismatch(rng, s)], {"axis": 0}


def _split_valid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    ax = int(rng.integers(len(s)))
    n = s[ax]
    cut = sorted(int(v) for v in rng.integers(0, n + 1, int(rng.integers(0, 3))))
    sizes = [b - a for a, b in zip([0] + cut, cut + [n])]
    return [s], {"sections": sizes, "axis": ax}


def _split_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)), low=2)
    ax = int(rng.integers(len(s)))
    return [s], {"sections": [s[ax], 1], "axis": ax}


def _torch_split(xs, p):
    parts = torch.split(torch.zeros(xs[0].shape), p["sections"], dim=p["axis"])
    return [tuple(t.shape) for t in parts]


def _squeeze_valid(rng):
    s = tuple(1 if rng.random() < 0.4 else d for d in _shape(rng))
    ones = [i for i, d in enumerate(s) if d == 1]
    if not s:
        return [s], {"axis": int(rng.choice([0, -1]))}
    return [s], {"axis": int(rng.choice(ones)) if ones else None}


def _squeeze_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)), low=2)
    return [s], {"axis": int(rng.integers(len(s))) if rng.random() < 0.6 else len(s) + 1}


def _unsqueeze_valid(rng):
    s = _shape(rng)
    return [s], {"axis": int(rng.integers(-len(s) - 1, len(s) + 1))}


def _unsqueeze_invalid(rng):
    s = _shape(rng)
    return [s], {"axis": int(rng.choice([len(s) + 1, -len(s) - 2, len(s) + 4]))}


# --- matmul / pad / take / gather / broadcast_to / softmax / one_hot ------------------------------------
def _matmul_valid(rng):
    k = int(rng.integers(1, 5))
    a = _shape(rng, int(rng.integers(0, 3))) + ((int(rng.integers(1, 5)), k) if rng.random() < 0.7 else (k,))
    b = (k,) if rng.random() < 0.3 else _shape(rng, int(rng.integers(0, 2))) + (k, int(rng.integers(1, 5)))
    if len(a) > 2 and len(b) > 2:
        b = b[-2:]
    return [a, b], {}


def _matmul_invalid(rng):
    k = int(rng.integers(1, 5))
    r = rng.random()
    if r < 0.2:
        return [(), (k,)], {}
    a = ((int(rng.integers(1, 4)), k) if rng.random() < 0.5 else (k,))
    b = ((k + int(rng.integers(1, 3)),) if rng.random() < 0.5 else (k + 1, int(rng.integers(1, 4))))
    return [a, b], {}


def _pad_valid(rng):
    s = _shape(rng, int(rng.integers(1, 4)), low=2)
    widths = []
    for d in s:
        widths += [int(rng.integers(-1, 3)), int(rng.integers(-1, 3))]
    return [s], {"pad_width": tuple(widths)}


def _pad_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    widths = [0] * (2 * len(s))
    widths[0] = -s[0] - int(rng.integers(1, 3))
    return [s], {"pad_width": tuple(widths)}


def _torch_pad(xs, p):
    flat = []
    w = p["pad_width"]
    for i in reversed(range(xs[0].ndim)):
        flat += [w[2 * i], w[2 * i + 1]]
    return tuple(TF.pad(torch.zeros(xs[0].shape), flat).shape)


def _take_valid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    ax = int(rng.integers(len(s)))
    return [s], {"axis": ax, "index": rng.integers(-s[ax], s[ax], _shape(rng, int(rng.integers(0, 3))))}


def _take_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    ax = int(rng.integers(len(s)))
    if rng.random() < 0.5:
        return [s], {"axis": len(s) + 1, "index": np.zeros(2, np.int64)}
    return [s], {"axis": ax, "index": np.array([0, s[ax] + int(rng.integers(0, 3))])}


def _gather_valid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    ax = int(rng.integers(len(s)))
    shape = tuple(int(rng.integers(1, d + 1)) if i != ax else int(rng.integers(1, 4)) for i, d in enumerate(s))
    return [s], {"axis": ax, "index": rng.integers(0, s[ax], shape)}


def _gather_invalid(rng):
    s = _shape(rng, int(rng.integers(2, 4)))
    ax = int(rng.integers(len(s)))
    other = (ax + 1) % len(s)
    shape = list(s)
    shape[other] += int(rng.integers(1, 3))  # larger than the input off the gather axis
    return [s], {"axis": ax, "index": np.zeros(shape, np.int64)}


def _bcast_valid(rng):
    s = _shape(rng)
    target = tuple(int(rng.integers(1, 4)) if d == 1 else d for d in s)
    return [s], {"shape": _shape(rng, int(rng.integers(0, 2))) + target}


def _bcast_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)), low=2)
    return [s], {"shape": _mismatch(rng, s) if rng.random() < 0.7 else s[1:]}


def _softmax_valid(rng):
    s = _shape(rng)
    return [s], {"axis": int(rng.integers(-max(len(s), 1), max(len(s), 1)))}


def _softmax_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    return [s], {"axis": int(rng.choice([len(s), -len(s) - 1]))}


def _onehot_valid(rng):
    return [_shape(rng)], {"num_classes": int(rng.integers(1, 6))}


def _onehot_invalid(rng):
    return [_shape(rng)], {"num_classes": int(rng.choice([-1, 0]))}


def _torch_one_hot(xs, p):
    if p["num_classes"] < 1:  # torch infers -1 from the values; a graph's shapes come first
        raise ValueError("num_classes must be >= 1")
    return tuple(TF.one_hot(torch.zeros(xs[0].shape, dtype=torch.int64), p["num_classes"]).shape)


def _overflow_valid(rng):
    return [_shape(rng)], {"scalar": int(rng.integers(-2 ** 31, 2 ** 31 - 1))}


def _overflow_invalid(rng):
    return [_shape(rng)], {"scalar": int(rng.choice([2 ** 40, -2 ** 33, 2 ** 31]))}


def _numpy_overflow(xs, p):
    return (xs[0].astype(np.int32) + p["scalar"]).shape


def _where_valid(rng):
    (a, b), _ = _bin_valid(rng)
    c = tuple(1 if rng.random() < 0.5 else d for d in np.broadcast_shapes(a, b))
    return [c, a, b], {}


def _where_invalid(rng):
    (a, b), _ = _bin_invalid(rng)
    return [a[-1:], a, b] if rng.random() < 0.5 else [b, a, a], {}


def _torch_where(xs, p):
    return tuple(torch.where(torch.zeros(xs[0].shape, dtype=torch.bool), torch.zeros(xs[1].shape),
                             torch.zeros(xs[2].shape)).shape)


def _argmax_valid(rng):
    s = _shape(rng)
    return [s], {"axis": int(rng.integers(-max(len(s), 1), max(len(s), 1))), "keepdims": bool(rng.random() < 0.5)}


def _argmax_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    return [s], {"axis": int(rng.choice([len(s), -len(s) - 1])), "keepdims": False}


def _flatten_valid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    a, b = sorted(int(v) for v in rng.integers(0, len(s), 2))
    return [s], {"start": a, "end": b - (len(s) if rng.random() < 0.3 else 0)}


def _flatten_invalid(rng):
    s = _shape(rng, int(rng.integers(2, 4)))
    return [s], ({"start": 1, "end": 0} if rng.random() < 0.5 else {"start": 0, "end": len(s)})


def _swap_valid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    return [s], {"a": int(rng.integers(-len(s), len(s))), "b": int(rng.integers(-len(s), len(s)))}


def _swap_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)))
    return [s], {"a": 0, "b": int(rng.choice([len(s), -len(s) - 1]))}


def _expand_valid(rng):
    s = _shape(rng)
    return [s], {"shape": _shape(rng, int(rng.integers(0, 2))) + tuple(
        int(rng.integers(1, 4)) if d == 1 else (-1 if rng.random() < 0.5 else d) for d in s)}


def _expand_invalid(rng):
    s = _shape(rng, int(rng.integers(1, 4)), low=2)
    return [s], {"shape": _mismatch(rng, s)}


def _zeros(xs):
    return torch.zeros(xs[0].shape)


FAMILIES = [
    Family("add", _bin_valid, _bin_invalid, lambda xs, p: np.broadcast_shapes(*(x.shape for x in xs)),
           lambda ts, p: ts[0] + ts[1]),
    Family("maximum", _bin_valid, _bin_invalid, lambda xs, p: np.maximum(*xs).shape,
           lambda ts, p: rg.maximum(ts[0], ts[1])),
    Family("sum", _red_valid, _red_invalid, _torch_sum_shape,
           lambda ts, p: rg.sum(ts[0], axis=p["axis"], keepdims=p["keepdims"])),
    Family("mean", _red_valid, _red_invalid, _torch_sum_shape,
           lambda ts, p: ts[0].mean(axis=p["axis"], keepdims=p["keepdims"])),
    Family("max", _red_valid, _red_invalid, _torch_sum_shape,
           lambda ts, p: rg.max(ts[0], axis=p["axis"], keepdims=p["keepdims"])),
    Family("reshape", _reshape_valid, _reshape_invalid, lambda xs, p: xs[0].reshape(p["shape"]).shape,
           lambda ts, p: ts[0].reshape(p["shape"])),
    Family("transpose", _perm_valid, _perm_invalid, lambda xs, p: np.transpose(xs[0], p["axes"]).shape,
           lambda ts, p: rg.transpose(ts[0], p["axes"])),
    Family("getitem", _index_valid, _index_invalid, lambda xs, p: xs[0][p["key"]].shape,
           lambda ts, p: ts[0][p["key"]]),
    Family("concat", _concat_valid, _concat_invalid, lambda xs, p: np.concatenate(xs, p["axis"]).shape,
           lambda ts, p: rg.concat(*ts, axis=p["axis"])),
    Family("stack", _stack_valid, _stack_invalid, lambda xs, p: np.stack(xs, p["axis"]).shape,
           lambda ts, p: rg.stack(ts, axis=p["axis"])),
    Family("split", _split_valid, _split_invalid, _torch_split,
           lambda ts, p: rg.split(ts[0], p["sections"], axis=p["axis"])),
    Family("squeeze", _squeeze_valid, _squeeze_invalid, lambda xs, p: np.squeeze(xs[0], p["axis"]).shape,
           lambda ts, p: rg.squeeze(ts[0], p["axis"])),
    Family("unsqueeze", _unsqueeze_valid, _unsqueeze_invalid, lambda xs, p: np.expand_dims(xs[0], p["axis"]).shape,
           lambda ts, p: rg.unsqueeze(ts[0], p["axis"])),
    Family("matmul", _matmul_valid, _matmul_invalid, lambda xs, p: np.matmul(*xs).shape,
           lambda ts, p: ts[0] @ ts[1]),
    Family("pad", _pad_valid, _pad_invalid, _torch_pad, lambda ts, p: rg.pad(ts[0], pad_width=p["pad_width"])),
    Family("take", _take_valid, _take_invalid, lambda xs, p: np.take(xs[0], p["index"], axis=p["axis"]).shape,
           lambda ts, p: rg.take(ts[0], rg.constant(p["index"]), axis=p["axis"])),
    Family("gather", _gather_valid, _gather_invalid,
           lambda xs, p: tuple(torch.gather(_zeros(xs), p["axis"], torch.as_tensor(p["index"])).shape),
           lambda ts, p: rg.gather(ts[0], rg.constant(p["index"]), axis=p["axis"])),
    Family("broadcast_to", _bcast_valid, _bcast_invalid, lambda xs, p: np.broadcast_to(xs[0], p["shape"]).shape,
           lambda ts, p: rg.broadcast_to(ts[0], shape=p["shape"])),
    Family("softmax", _softmax_valid, _softmax_invalid,
           lambda xs, p: tuple(torch.softmax(_zeros(xs), p["axis"]).shape),
           lambda ts, p: rg.softmax(ts[0], axis=p["axis"])),
    Family("one_hot", _onehot_valid, _onehot_invalid, _torch_one_hot,
           lambda ts, p: rg.one_hot(ts[0], num_classes=p["num_classes"]), dtype="int64"),
    Family("where", _where_valid, _where_invalid, _torch_where,
           lambda ts, p: rg.where(ts[0], ts[1], ts[2]), dtype="bool"),
    Family("argmax", _argmax_valid, _argmax_invalid,
           lambda xs, p: tuple(torch.argmax(_zeros(xs), p["axis"], keepdim=p["keepdims"]).shape),
           lambda ts, p: rg.argmax(ts[0], axis=p["axis"], keepdims=p["keepdims"])),
    Family("flatten", _flatten_valid, _flatten_invalid,
           lambda xs, p: tuple(torch.flatten(_zeros(xs), p["start"], p["end"]).shape),
           lambda ts, p: rg.flatten(ts[0], p["start"], p["end"])),
    Family("swapaxes", _swap_valid, _swap_invalid, lambda xs, p: np.swapaxes(xs[0], p["a"], p["b"]).shape,
           lambda ts, p: ts[0].swapaxes(p["a"], p["b"])),
    Family("expand", _expand_valid, _expand_invalid, lambda xs, p: tuple(_zeros(xs).expand(p["shape"]).shape),
           lambda ts, p: rg.expand(ts[0], *p["shape"])),
    Family("add", _overflow_valid, _overflow_invalid, _numpy_overflow, lambda ts, p: ts[0] + p["scalar"],
           dtype="int32"),
]


def _draw(family: Family, kind: str, seed: int):
    rng = np.random.default_rng(seed)
    shapes, params = (family.valid if kind == "valid" else family.invalid)(rng)
    arrays = [np.zeros(s, family.dtype) for s in shapes]
    tensors = [rg.input(s, family.dtype, name=f"t{i}") for i, s in enumerate(shapes)]
    return shapes, params, arrays, tensors


CASES = [(i, seed) for i in range(len(FAMILIES)) for seed in range(BASE_SEED, BASE_SEED + 10)]


def _id(case):
    i, seed = case
    return f"{FAMILIES[i].op}{i}-{seed}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_valid_shapes_match_numpy_and_torch(case):
    family = FAMILIES[case[0]]
    shapes, params, arrays, tensors = _draw(family, "valid", case[1])
    want = family.truth(arrays, params)
    got = family.build(tensors, params)
    got = [t.shape for t in got] if isinstance(got, list) else got.shape
    want = [tuple(w) for w in want] if isinstance(want, list) else tuple(want)
    assert got == want, f"{family.op} {shapes} {params}: {got} != {want}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_invalid_cases_fail_at_build_time_naming_op_shapes_and_line(case):
    family = FAMILIES[case[0]]
    shapes, params, arrays, tensors = _draw(family, "invalid", case[1])
    with pytest.raises((ValueError, IndexError, TypeError, RuntimeError, OverflowError)):
        family.truth(arrays, params)  # numpy / PyTorch refuse it too: the case really is a mistake
    with pytest.raises(rg.RustyASGError) as info:
        family.build(tensors, params)
    message = str(info.value)
    assert message.startswith(f"{family.op}:"), message
    for s in shapes:
        assert format_shape(s) in message, f"shape {format_shape(s)} missing from:\n{message}"
    line = family.build.__code__.co_firstlineno
    assert info.value.source == f"{__file__}:{line}", message


def test_plugin_op_reports_the_users_line(tmp_path, monkeypatch):
    """An op from a plugin package points "created at" to the caller, not the plugin's wrapper."""
    pkg = tmp_path / "shape_errors_demo_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import rustyasg.core as rg\n"
        "def twice_rows(x):\n"
        "    return rg.apply('reshape', x, shape=(2, -1))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import shape_errors_demo_plugin as plugin
    from rustyasg.core.source import _BUILDER_PACKAGES, mark_builder_package

    monkeypatch.setattr("rustyasg.core.source._BUILDER_PACKAGES", set(_BUILDER_PACKAGES))
    mark_builder_package(plugin.__name__)  # what loading it from the rustyasg.plugins entry points does
    x = rg.input((3,), name="odd")
    with pytest.raises(rg.ShapeError) as info:
        plugin.twice_rows(x)
    assert info.value.source == f"{__file__}:{info.tb.tb_lineno}"
    assert "shape_errors_demo_plugin" not in info.value.source


def test_builder_decorator_marks_a_wrapper_wherever_it_lives():
    @rg.builder("twice_cols")
    def twice_cols(x):
        return rg.reshape(x, (-1, 2))

    x = rg.input((3,), name="odd")
    with pytest.raises(rg.ShapeError) as info:
        twice_cols(x)
    assert str(info.value).startswith("twice_cols: reshape: cannot reshape (3,)")
    assert info.value.source == f"{__file__}:{info.tb.tb_lineno}"
