"""Max/average pooling, plain and adaptive, forward and backward, from one WGSL generator.

A :class:`PoolSpec` says what to generate: the reduction (``max`` or ``avg``),
the window geometry (PyTorch's strided/padded/dilated windows, or adaptive
windows ``floor(i*H/OH) .. ceil((i+1)*H/OH)``), the average's divisor rule, the
direction, and for max what to write (values, int64 indices, or u32 indices).

- **forward**: one thread per output element reduces its window. Max keeps the
  first maximum in row-major window order, or the last NaN when the window holds
  NaNs (PyTorch's rule), and its flat ``h*W + w`` index.
- **backward** is gather-style: one thread per *input* pixel visits the windows
  that contain it (a short range of outputs per axis, derived from the geometry)
  and sums their gradients, divided by the window's divisor (avg) or only where
  the window's argmax is this pixel (max). No atomics, deterministic sums.
  ``max_pool2d_backward`` first runs the forward kernel in index mode into a
  scratch buffer.

Window geometry is per axis, generated once from :data:`_AXIS_TEMPLATES` for h
and for w; sizes live in a uniform block so one pipeline serves every shape.

Example::

    >>> src = pool_wgsl(PoolSpec("max", adaptive=False, index="i64", value=False))
    >>> "fn window_h" in src and "idx[id] = i64_from_i32(arg)" in src
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

from ..pipelines import KernelLaunch, UniformLayout
from .api import STORAGES, KernelBuilder
from .nn_common import element_kernel_wgsl, element_launch, float_elem, numel

POOL_UNIFORMS = UniformLayout([(n, "u32") for n in (
    "total", "H", "W", "OH", "OW", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW")] + [("divisor", "f32")])

# Per-axis geometry ({a}: axis letter, {A}: its uniform suffix, {I}: input size field).
# window_{a}(o) = (first position, number of taps, step) of output o's window;
# cover_{a}(x) = (lo, hi) range of outputs whose window may contain position x.
_AXIS_TEMPLATES = {
    "window": """
fn window_{a}(o: u32) -> vec3<i32> {{
    return vec3<i32>(i32(o * p.S{A}) - i32(p.P{A}), i32(p.K{A}), i32(p.D{A}));
}}
fn cover_{a}(x: u32) -> vec2<i32> {{
    let hi = min(i32(x + p.P{A}) / i32(p.S{A}), i32(p.O{A}) - 1);
    let t = i32(x + p.P{A}) - i32((p.K{A} - 1u) * p.D{A});
    var lo = 0;
    if (t > 0) {{ lo = (t + i32(p.S{A}) - 1) / i32(p.S{A}); }}
    return vec2<i32>(lo, hi);
}}
""",
    "adaptive": """
fn window_{a}(o: u32) -> vec3<i32> {{
    let s = (o * p.{I}) / p.O{A};
    let e = ((o + 1u) * p.{I} + p.O{A} - 1u) / p.O{A};
    return vec3<i32>(i32(s), i32(e - s), 1);
}}
fn cover_{a}(x: u32) -> vec2<i32> {{
    let lo = (x * p.O{A}) / p.{I};
    let hi = min(((x + 1u) * p.O{A} + p.{I} - 1u) / p.{I}, p.O{A}) - 1u;
    return vec2<i32>(i32(lo), i32(hi));
}}
""",
}

# Tap index of position x in window w, or -1 when the window does not read x.
_TAP_WGSL = """
fn tap(w: vec3<i32>, x: i32) -> i32 {
    let off = x - w.x;
    if (off < 0 || off % w.z != 0 || off / w.z >= w.y) { return -1; }
    return off / w.z;
}
"""

# Divisor of an average window. Average pooling has no dilation, so a window
# covers [start, start + taps); "pad" counts padding up to H + PH (PyTorch's
# count_include_pad, which ignores what ceil mode adds past it).
_DIVISORS = {
    "valid": "f32((min(wh.x + wh.y, i32(p.H)) - max(wh.x, 0)) * (min(ww.x + ww.y, i32(p.W)) - max(ww.x, 0)))",
    "pad": "f32((min(wh.x + wh.y, i32(p.H + p.PH)) - wh.x) * (min(ww.x + ww.y, i32(p.W + p.PW)) - ww.x))",
    "override": "p.divisor",
}


@dataclass(frozen=True)
class PoolSpec:
    """What one pooling kernel computes (see the module doc).

    ``reduce``: ``max``/``avg``; ``adaptive``: adaptive windows; ``divisor``:
    ``valid``/``pad``/``override`` (avg); ``backward``: gather the gradient into
    the input; ``value``: write pooled values; ``index``: ``None``, ``"u32"``
    (scratch for the backward kernel) or the name of the output's
    :class:`~rustyasg.wgpu.kernels.api.Storage` (``"i64"`` for PyTorch's int64
    indices); ``elem``: the float element type (``f32``/``f16``).

    Example::

        >>> PoolSpec("avg", adaptive=True).inputs
        ('x',)
        >>> PoolSpec("max", backward=True).inputs
        ('g', 'idx')
    """

    reduce: str
    adaptive: bool = False
    divisor: str = "valid"
    backward: bool = False
    value: bool = True
    index: str | None = None
    elem: str = "f32"

    @property
    def inputs(self) -> tuple:
        if not self.backward:
            return ("x",)
        return ("g", "idx") if self.reduce == "max" else ("g",)

    @property
    def outputs(self) -> tuple:
        if self.backward:
            return ("dx",)
        return (("y",) if self.value else ()) + (("idx",) if self.index else ())


def _forward_body(spec: PoolSpec) -> str:
    if spec.reduce == "max":
        init = "var best = 0.0;\n    var arg = -1;"
        # PyTorch's rule: take a tap when v > best or v is NaN, so the first maximum wins ties and
        # the last NaN wins. NaN is tested by its bits: drivers may fold v != v away.
        update = ("if (arg < 0 || v > best || (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {\n"
                  "                best = v;\n                arg = h * i32(p.W) + w;\n            }")
        result = "best"
    else:
        init = "var acc = 0.0;"
        update = "acc += v;"
        result = f"acc / {_DIVISORS[spec.divisor]}"
    writes = []
    if spec.value:
        writes.append(f"y[id] = F({result});")
    if spec.index == "u32":
        writes.append("idx[id] = u32(arg);")
    elif spec.index:
        writes.append(STORAGES[spec.index].store_index("idx", "id", "arg") + ";")
    store = "\n    ".join(writes)
    return f"""
    var r = id;
    let ow = r % p.OW; r = r / p.OW;
    let oh = r % p.OH;
    let plane = r / p.OH;
    let wh = window_h(oh);
    let ww = window_w(ow);
    let base = plane * p.H * p.W;
    {init}
    for (var i = 0; i < wh.y; i = i + 1) {{
        let h = wh.x + i * wh.z;
        if (h < 0 || h >= i32(p.H)) {{ continue; }}
        for (var j = 0; j < ww.y; j = j + 1) {{
            let w = ww.x + j * ww.z;
            if (w < 0 || w >= i32(p.W)) {{ continue; }}
            let v = f32(x[base + u32(h) * p.W + u32(w)]);
            {update}
        }}
    }}
    {store}
}}
"""


def _backward_body(spec: PoolSpec) -> str:
    if spec.reduce == "max":
        add = "if (idx[o] == h * p.W + w) { acc += f32(g[o]); }"
    else:
        add = f"let wh = window_h(u32(oh));\n            let ww = window_w(u32(ow));\n" \
              f"            acc += f32(g[o]) / {_DIVISORS[spec.divisor]};"
    return f"""
    var r = id;
    let w = r % p.W; r = r / p.W;
    let h = r % p.H;
    let plane = r / p.H;
    let ch = cover_h(h);
    let cw = cover_w(w);
    let base = plane * p.OH * p.OW;
    var acc = 0.0;
    for (var oh = ch.x; oh <= ch.y; oh = oh + 1) {{
        if (tap(window_h(u32(oh)), i32(h)) < 0) {{ continue; }}
        for (var ow = cw.x; ow <= cw.y; ow = ow + 1) {{
            if (tap(window_w(u32(ow)), i32(w)) < 0) {{ continue; }}
            let o = base + u32(oh) * p.OW + u32(ow);
            {add}
        }}
    }}
    dx[id] = F(acc);
}}
"""


@lru_cache(maxsize=None)
def pool_wgsl(spec: PoolSpec) -> str:
    """WGSL of the pooling kernel ``spec`` (bindings: inputs, outputs, then the uniform block)."""
    kind = "adaptive" if spec.adaptive else "window"
    axes = "".join(_AXIS_TEMPLATES[kind].format(a=a, A=A, I=I) for a, A, I in (("h", "H", "H"), ("w", "W", "W")))
    names = spec.inputs + spec.outputs
    index = STORAGES.get(spec.index) if spec.index != "u32" else None
    types = {"idx": index.elem if index else "u32"}
    body = _backward_body(spec) if spec.backward else _forward_body(spec)
    header = KernelBuilder.header(index) if index else ""
    if len(spec.outputs) != 1:
        raise ValueError(f"a pooling kernel writes one output, {spec} asks for {spec.outputs}")
    return element_kernel_wgsl(spec.elem, POOL_UNIFORMS, names, body, header + axes + _TAP_WGSL, types)


def _uniforms(total: int, in_hw: Sequence[int], out_hw: Sequence[int], attrs: dict) -> dict:
    kh, kw = attrs.get("kernel_size", (0, 0))
    sh, sw = attrs.get("stride", (1, 1))
    ph, pw = attrs.get("padding", (0, 0))
    dh, dw = attrs.get("dilation", (1, 1))
    div = attrs.get("divisor_override")
    return dict(total=total, H=in_hw[0], W=in_hw[1], OH=out_hw[0], OW=out_hw[1], KH=kh, KW=kw, SH=sh, SW=sw,
                PH=ph, PW=pw, DH=dh, DW=dw, divisor=float(div) if div else 1.0)


def _divisor_rule(attrs: dict) -> str:
    if attrs.get("divisor_override"):
        return "override"
    return "pad" if attrs.get("count_include_pad", False) else "valid"


def _pool_launch(kb: Any, spec: PoolSpec, resources: Sequence[Any], in_shape, out_hw, attrs, label):
    total = numel(in_shape) if spec.backward else numel(in_shape[:2]) * out_hw[0] * out_hw[1]
    values = _uniforms(total, in_shape[2:], out_hw, attrs)
    return element_launch(kb, pool_wgsl(spec), POOL_UNIFORMS, values, resources, label)


def make_pool_kernel(op: str, reduce: str, adaptive: bool, what: str):
    """The kernel (interface of :mod:`.api`) of one pooling op; ``what`` is ``forward``,
    ``indices`` or ``backward``.

    Example::

        >>> make_pool_kernel("max_pool2d", "max", False, "forward").__name__
        'max_pool2d'
    """

    def kernel(kb: Any, instr: Any, inputs: Sequence[Any], out: Any) -> list[KernelLaunch]:
        attrs = instr.attrs
        divisor = _divisor_rule(attrs) if reduce == "avg" else "valid"
        x = inputs[-1] if what == "backward" and reduce == "max" else inputs[0]
        if what == "indices":
            spec = PoolSpec(reduce, adaptive, value=False, index=out.storage.name,
                            elem=float_elem(op, x))
            return [_pool_launch(kb, spec, [x, out], x.shape, out.shape[2:], attrs, op)]
        elem = float_elem(op, *inputs, out)
        if what == "forward":
            spec = PoolSpec(reduce, adaptive, divisor, elem=elem)
            return [_pool_launch(kb, spec, [x, out], x.shape, out.shape[2:], attrs, op)]
        g = inputs[0]
        launches = []
        if reduce == "max":  # route by the window maxima of x, found by the forward kernel in index mode
            idx = kb.scratch(4 * g.size, f"{op} argmax")
            spec = PoolSpec("max", adaptive, value=False, index="u32", elem=elem)
            launches.append(_pool_launch(kb, spec, [x, idx], x.shape, g.shape[2:], attrs, f"{op} argmax"))
            resources = [g, idx, out]
        else:
            resources = [g, out]
        spec = PoolSpec(reduce, adaptive, divisor, backward=True, elem=elem)
        launches.append(_pool_launch(kb, spec, resources, out.shape, g.shape[2:], attrs, op))
        return launches

    kernel.__name__ = kernel.__qualname__ = op
    kernel.__doc__ = f"Kernel of ``{op}`` (see :mod:`rustyasg.wgpu.kernels.nn_pool`)."
    return kernel


# op name -> (reduce, adaptive, what); the backward ops of max pooling take (g, x),
# those of average pooling take (g,) and the input size from their attributes.
POOL_OPS = {
    "max_pool2d": ("max", False, "forward"),
    "max_pool2d_indices": ("max", False, "indices"),
    "max_pool2d_backward": ("max", False, "backward"),
    "avg_pool2d": ("avg", False, "forward"),
    "avg_pool2d_backward": ("avg", False, "backward"),
    "adaptive_max_pool2d": ("max", True, "forward"),
    "adaptive_max_pool2d_indices": ("max", True, "indices"),
    "adaptive_max_pool2d_backward": ("max", True, "backward"),
    "adaptive_avg_pool2d": ("avg", True, "forward"),
    "adaptive_avg_pool2d_backward": ("avg", True, "backward"),
}

KERNELS = {op: make_pool_kernel(op, *how) for op, how in POOL_OPS.items()}
