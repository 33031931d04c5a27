"""One WGSL kernel for a whole DAG of elementwise ops (fusion target).

A fused group of elementwise graph nodes is described by an
:class:`ElementwiseSpec`: named inputs, a list of :class:`EwOp` steps over
inputs, earlier steps, float literals and named f32 scalars (uniforms, so a
learning rate can change every step without recompiling), and the names to
write out. :class:`ElementwisePlanner` binds it to buffers with per-input
broadcasting strides over the output shape.

What the generated code depends on (and so what a pipeline is cached by):
the op DAG, and for each input its *access kind* after dimension collapsing:
``contig`` (same layout as the output), ``splat`` (one value, every stride 0)
or ``strided`` (general broadcast/permutation, decoded from the linear index
with shape and strides read from the uniform block). Sizes, strides and
offsets are uniforms, so one pipeline serves every shape with the same kinds.

When the innermost collapsed dimension is a multiple of 4 and every input
is unit-stride or broadcast along it, each thread handles a ``vec4`` (16-byte
loads and stores); otherwise one element.

Example::

    >>> spec = ElementwiseSpec(inputs=("x", "y"), ops=(EwOp("s", "add", ("x", "y")),
    ...                        EwOp("r", "relu", ("s",))), outputs=("r",))
    >>> "select(" in generate_elementwise_wgsl(spec, ("contig", "contig"), rank=1, vec=True)
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from rustyasg.core.backend_api import ELEMENTWISE_TABLE as ROWS
from rustyasg.core.backend_api import OPS as CORE_OPS
from rustyasg.core.backend_api import subscribe

from ..pipelines import LINEAR_WORKGROUP_WGSL, KernelLaunch, PipelineCache, UniformLayout, uniform_buffer
from .storage import STORAGES, f32_literal, header

WORKGROUP = 256

# op name -> (operands + literal attribute args, WGSL template), rendered from the core's
# elementwise table (rows added later arrive through subscribe). {0},{1},{2} are operands
# then attributes; {T} is the value type (f32 or vec4<f32>), so constants are written
# {T}(c) and splat; {S} names the helper variant (f32 or v4), {U} the matching u32 type.
# Comparisons yield 1.0 / 0.0 so masks flow through arithmetic.
OPS: dict[str, tuple[int, str]] = {}


def _render(row) -> None:
    if row.wgsl is not None:
        OPS[row.name] = (row.arity + len(row.attrs), row.wgsl)


subscribe(_render)

# Helper functions templates call (``name_{S}(...)``), written once for {T}=f32 ({S}=f32,
# {U}=u32, {B}=bool) and {T}=vec4<f32> ({S}=v4 ...); a kernel includes only those it uses.
HELPERS: dict[str, str] = {
    # Bit test, not x != x: drivers may fold self-comparisons away under fast math.
    "isnan": """fn isnan_{S}(x: {T}) -> {B} {
    return (bitcast<{U}>(x) & {U}(0x7fffffffu)) > {U}(0x7f800000u);
}""",
    # WGSL's pow is exp2(b * log2(a)), undefined for a <= 0 (software drivers return 0 for
    # 0 ** -1 and NaN ** 3). numpy's, spelled out: NaN propagates, anything ** 0 is 1, 0 to a
    # negative power is inf, an integer power of a negative base is exact with its sign.
    "pow": """fn pow_{S}(a: {T}, b: {T}) -> {T} {
    let nan = isnan_{S}(a) | isnan_{S}(b);
    let whole = floor(b) == b;
    let odd = whole & ((b - 2.0 * floor(0.5 * b)) == {T}(1.0));
    let m0 = select(pow(abs(a), b), {T}(1.0) / abs(a), (a == {T}(0.0)) & (b < {T}(0.0)));
    let m = select(select(m0, a + b, nan), {T}(1.0), b == {T}(0.0));
    let signed = select(m, -m, odd & (a < {T}(0.0)));
    return select(pow(a, b), signed, whole | (a >= {T}(0.0)) | nan);
}""",
    # exp/log near 0 lose relative precision; Kahan's correction factor restores it.
    "expm1": """fn expm1_{S}(x: {T}) -> {T} {
    let u = exp(x);
    let k = select((u - 1.0) * (x / log(u)), x, u == {T}(1.0));
    let r = select(k, u - 1.0, abs(x) > {T}(0.5));
    // Past log(f32 max) the result is inf, said explicitly: WGSL leaves exp's overflow to the driver.
    return select(r, {T}(f32_from_bits(0x7f800000u)), x > {T}(88.72284));
}""",
    "log1p": """fn log1p_{S}(x: {T}) -> {T} {
    let u = {T}(1.0) + x;
    let k = select(log(u) * (x / (u - 1.0)), x, u == {T}(1.0));
    return select(k, log(u), abs(x) > {T}(0.5));
}""",
    # Taylor series near 0 (relative accuracy), Abramowitz-Stegun 7.1.26 elsewhere (|err| < 1.5e-7).
    "erf": """fn erf_{S}(x: {T}) -> {T} {
    let a = abs(x);
    let x2 = x * x;
    let small = x * (1.1283791670955126 + x2 * (-0.37612638903183754 + x2 * (0.11283791670955126
        + x2 * (-0.026866170645131252 + x2 * 0.005223977625442188))));
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    let big = sign(x) * (1.0 - poly * exp(-x2));
    return select(big, small, a < {T}(0.5));
}""",
    # tanh through exp of a clamped argument: a driver's tanh can give NaN for large |x| (clamping
    # at 15 is exact in f32); clamp need not keep NaN, so NaN is passed through by its bits.
    "tanh": """fn tanh_{S}(x: {T}) -> {T} {
    return select(1.0 - 2.0 / (exp(2.0 * clamp(x, {T}(-15.0), {T}(15.0))) + 1.0), x, isnan_{S}(x));
}""",
    "isinf": """fn isinf_{S}(x: {T}) -> {B} {
    return (bitcast<{U}>(x) & {U}(0x7fffffffu)) == {U}(0x7f800000u);
}""",
    "isfinite": """fn isfinite_{S}(x: {T}) -> {B} {
    return (bitcast<{U}>(x) & {U}(0x7fffffffu)) < {U}(0x7f800000u);
}""",
    # The built-in hyperbolics are exp formulas: (e^x - e^-x) / 2 loses all relative precision
    # near 0 and overflows early, log(x + sqrt(x*x + 1)) cancels for negative x. exp(|x| - ln 2)
    # is e^|x| / 2 without overflowing before the result does.
    "sinh": """fn sinh_{S}(x: {T}) -> {T} {
    let a = abs(x);
    let e = exp(a - 0.6931471805599453);
    let big = select(e - 0.25 / e, -(e - 0.25 / e), x < {T}(0.0));
    let m = expm1_{S}(x);
    return select(select(big, 0.5 * (m + m / (m + 1.0)), a < {T}(1.0)), x, isnan_{S}(x));
}""",
    "cosh": """fn cosh_{S}(x: {T}) -> {T} {
    let e = exp(abs(x) - 0.6931471805599453);
    return select(e + 0.25 / e, x, isnan_{S}(x));
}""",
    "asinh": """fn asinh_{S}(x: {T}) -> {T} {
    let a = abs(x);
    let r = select(log1p_{S}(a + a * a / (1.0 + sqrt(1.0 + a * a))), log(a) + 0.6931471805599453, a > {T}(1e9));
    return select(select(r, -r, x < {T}(0.0)), x, isnan_{S}(x));
}""",
    "acosh": """fn acosh_{S}(x: {T}) -> {T} {
    let t = x - 1.0;
    let r = select(log1p_{S}(t + sqrt(t * (x + 1.0))), log(x) + 0.6931471805599453, x > {T}(1e9));
    return select(r, {T}(f32_from_bits(0x7fc00000u)), x < {T}(1.0));
}""",
    # Through atan, which is accurate on the drivers tried (a software driver's asin is off by 1e-4).
    # Outside the domain the result is NaN by select: drivers may return 0 for sqrt of a negative.
    "asin": """fn asin_{S}(x: {T}) -> {T} {
    let r = atan(x / sqrt((1.0 - x) * (1.0 + x)));
    return select(select(r, {T}(f32_from_bits(0x7fc00000u)), abs(x) > {T}(1.0)), x, isnan_{S}(x));
}""",
    "acos": """fn acos_{S}(x: {T}) -> {T} {
    let r = 2.0 * atan(sqrt((1.0 - x) / (1.0 + x)));
    return select(select(r, {T}(f32_from_bits(0x7fc00000u)), abs(x) > {T}(1.0)), x, isnan_{S}(x));
}""",
    # On |x| with x's sign put back (atanh is odd): for x near -1, log1p(2x / (1 - x)) would read
    # log1p near -1, where one rounding of its argument costs 1e-4 of the result.
    "atanh": """fn atanh_{S}(x: {T}) -> {T} {
    let a = abs(x);
    let r = bitcast<{T}>(bitcast<{U}>(0.5 * log1p_{S}(2.0 * a / (1.0 - a))) | (bitcast<{U}>(x) & {U}(0x80000000u)));
    return select(r, {T}(f32_from_bits(0x7fc00000u)), a > {T}(1.0));
}""",
    # Scaled by the larger magnitude (no overflow of a*a); inf wins over NaN, as in C's hypot.
    "hypot": """fn hypot_{S}(a: {T}, b: {T}) -> {T} {
    let m = max(abs(a), abs(b));
    let n = min(abs(a), abs(b));
    let q = n / select(m, {T}(1.0), m == {T}(0.0));
    let r = select(m * sqrt(1.0 + q * q), a + b, isnan_{S}(a) | isnan_{S}(b));
    return select(r, {T}(f32_from_bits(0x7f800000u)), isinf_{S}(a) | isinf_{S}(b));
}""",
    # The built-in tan is sin / cos at the driver's precision: on an H100 under Dawn it was 500 ulp
    # off near a pole (-891.364 for -891.396). Cephes' tanf instead: reduced by pi/4 in three parts
    # (exact products up to |x| = 8192), a polynomial on [-pi/4, pi/4], -1/tan in odd quadrants;
    # past 8192 the built-in. inf gives NaN (inf - inf), as numpy.
    "tan": """fn tan_{S}(x: {T}) -> {T} {
    let a = abs(x);
    var j = floor(a * 1.2732395447351628);
    j = j + (j - 2.0 * floor(0.5 * j));
    let z = ((a - j * 0.78515625) - j * 2.4187564849853515625e-4) - j * 3.77489497744594108e-8;
    let zz = z * z;
    let p = (((((9.38540185543e-3 * zz + 3.11992232697e-3) * zz + 2.44301354525e-2) * zz
              + 5.34112807005e-2) * zz + 1.33387994085e-1) * zz + 3.33331568548e-1) * zz * z + z;
    let q = 0.5 * j;
    let t = select(p, -1.0 / p, q - 2.0 * floor(0.5 * q) == {T}(1.0));
    let r = bitcast<{T}>(bitcast<{U}>(t) ^ (bitcast<{U}>(x) & {U}(0x80000000u)));
    return select(r, tan(x), (a > {T}(8192.0)) & (a < {T}(f32_from_bits(0x7f800000u))));
}""",
    # The built-in atan gives 0 for NaN on a software driver, and atan2 gets (+-0, +-0) and
    # (+-inf, +-inf) wrong there: those cases are spelled out (C's atan2).
    "atan": """fn atan_{S}(x: {T}) -> {T} {
    return select(atan(x), x, isnan_{S}(x));
}""",
    "atan2": """fn atan2_{S}(a: {T}, b: {T}) -> {T} {
    let neg_b = (bitcast<{U}>(b) & {U}(0x80000000u)) != {U}(0u);
    let sign_a = bitcast<{U}>(a) & {U}(0x80000000u);
    let zeros = bitcast<{T}>(bitcast<{U}>(select({T}(0.0), {T}(3.141592653589793), neg_b)) | sign_a);
    let infs = bitcast<{T}>(bitcast<{U}>(select({T}(0.7853981633974483), {T}(2.356194490192345), neg_b)) | sign_a);
    var r = select(atan2(a, b), zeros, (a == {T}(0.0)) & (b == {T}(0.0)));
    r = select(r, infs, isinf_{S}(a) & isinf_{S}(b));
    return select(r, a + b, isnan_{S}(a) | isnan_{S}(b));
}""",
    # Python's % (numpy's remainder): C's fmod, moved into the divisor's sign.
    "mod": """fn mod_{S}(a: {T}, b: {T}) -> {T} {
    let m = fmod_{S}(a, b);
    let shift = (m != {T}(0.0)) & ((m < {T}(0.0)) != (b < {T}(0.0)));
    return select(select(m, m + b, shift), bitcast<{T}>(bitcast<{U}>(b) & {U}(0x80000000u)), m == {T}(0.0));
}""",
    # PyTorch's floor division of floats (div_floor_floating): through fmod, so inf // 1 is NaN.
    "floordiv": """fn floordiv_{S}(a: {T}, b: {T}) -> {T} {
    let m = fmod_{S}(a, b);
    var d = (a - m) / b;
    d = select(d, d - 1.0, (m != {T}(0.0)) & ((b < {T}(0.0)) != (m < {T}(0.0))));
    let f = floor(d);
    var r = select(f, f + 1.0, d - f > {T}(0.5));
    let q = a / b;
    r = select(r, bitcast<{T}>(bitcast<{U}>(q) & {U}(0x80000000u)), d == {T}(0.0));
    return select(r, q, b == {T}(0.0));
}""",
    # C's fmod, exact: binary long division, |b| * 2**k subtracted from |a| from the top exponent
    # down (each subtraction is exact: the two are within a factor of 2); a finite a keeps its value
    # against an infinite b. ``k - k`` is a zero of k's type (i32 or vec4<i32>).
    "fmod": """fn fmod_{S}(a: {T}, b: {T}) -> {T} {
    let y = abs(b);
    var r = abs(a);
    var k = frexp(r).exp - frexp(y).exp;
    let zero = k - k;
    for (var i = 0; i < 300; i = i + 1) {
        if (all(k < zero)) { break; }
        let yk = ldexp(y, max(k, zero));
        r = select(r, r - yk, (k >= zero) & (r >= yk));
        k = k - (zero + 1);
    }
    r = bitcast<{T}>(bitcast<{U}>(r) | (bitcast<{U}>(a) & {U}(0x80000000u)));
    r = select(r, a, isinf_{S}(b) & isfinite_{S}(a));
    return select(r, {T}(f32_from_bits(0x7fc00000u)), isnan_{S}(a) | isnan_{S}(b) | isinf_{S}(a) | (b == {T}(0.0)));
}""",
   "logaddexp": """fn logaddexp_{S}(a: {T}, b: {T}) -> {T} {
    let r = max(a, b) + log1p_{S}(exp(-abs(a - b)));
    return select(select(r, a + 0.6931471805599453, a == b), a + b, isnan_{S}(a) | isnan_{S}(b));
}""",
    # g * gelu_tanh'(x) = g * (s + x s (1 - s) z2') with s = sigmoid(z2), z2 = 2 sqrt(2/pi) (x + 0.044715 x^3)
    "gelu_tanh_grad": """fn gelu_tanh_grad_{S}(g: {T}, x: {T}) -> {T} {
    let s = {T}(1.0) / ({T}(1.0) + exp(-1.5957691216057308 * (x + 0.044715 * x * x * x)));
    return g * (s + x * s * ({T}(1.0) - s) * 1.5957691216057308 * ({T}(1.0) + 0.134145 * x * x));
}""",
    "softplus": """fn softplus_{S}(x: {T}, beta: {T}, threshold: {T}) -> {T} {
    let bx = beta * x;
    return select((max(bx, {T}(0.0)) + log1p_{S}(exp(-abs(bx)))) / beta, x, bx > threshold);
}""",
}
_CALLS = re.compile(r"(\w+)_\{S\}\(")


class _Float64References(dict):
    """float64 numpy twins of :data:`OPS` (the core's references; bools as 1.0/0.0), the tests' oracle."""

    def __missing__(self, op):
        row = ROWS[op]
        opdef = CORE_OPS[op]

        def ref(*args):
            if op == "cast":  # the kernel computes in f32; storage conversion happens on load/store
                return np.asarray(args[0], np.float64)
            attrs = dict(zip(row.attrs, args[row.arity:]))
            return np.asarray(opdef.reference(*args[:row.arity], **attrs), np.float64)

        return ref


NUMPY_OPS: dict[str, Any] = _Float64References()


def helpers_for(ops, vec: bool) -> str:
    """WGSL helper functions the ops (names) need, in dependency order.

    Which helpers a template or a helper calls is read from its text (``name_{S}(``).

    Example::

        >>> "fn log1p_f32" in helpers_for(["softplus"], vec=False)
        True
    """
    need: list[str] = []

    def add(name):
        if name in need:
            return
        for dep in _CALLS.findall(HELPERS[name]):
            if dep != name:
                add(dep)
        need.append(name)

    for op in ops:
        for name in _CALLS.findall(OPS[op][1]):
            add(name)
    T, S, U, B = ("vec4<f32>", "v4", "vec4<u32>", "vec4<bool>") if vec else ("f32", "f32", "u32", "bool")
    return "\n".join(HELPERS[n].replace("{T}", T).replace("{S}", S).replace("{U}", U).replace("{B}", B)
                     for n in need)


@dataclass(frozen=True)
class EwOp:
    """One step: ``out = op(*args)``; an arg is an input/step name, a float
    literal, or ``$name`` for a scalar uniform.

    Example::

        >>> EwOp("y", "mul", ("x", "$lr"))
        EwOp(out='y', op='mul', args=('x', '$lr'))
    """

    out: str
    op: str
    args: tuple


@dataclass(frozen=True)
class ElementwiseSpec:
    """A fused elementwise DAG: inputs, ordered steps, outputs, scalar names.

    Example::

        >>> ElementwiseSpec(("x",), (EwOp("y", "exp", ("x",)),), ("y",)).outputs
        ('y',)
    """

    inputs: tuple
    ops: tuple
    outputs: tuple
    scalars: tuple = ()

    def validate(self) -> None:
        """Raise ValueError naming the first bad step (unknown op, arity, name)."""
        known = set(self.inputs)
        for step in self.ops:
            if step.op not in OPS:
                raise ValueError(f"elementwise op {step.op!r} unknown; known: {sorted(OPS)}")
            arity = OPS[step.op][0]
            if len(step.args) != arity:
                raise ValueError(f"elementwise {step.op} takes {arity} args, got {step.args}")
            for arg in step.args:
                if isinstance(arg, str) and arg.startswith("$"):
                    if arg[1:] not in self.scalars:
                        raise ValueError(f"step {step.out}: scalar {arg} not in scalars {self.scalars}")
                elif isinstance(arg, str) and arg not in known:
                    raise ValueError(f"step {step.out}: {arg!r} is used before it is defined")
            known.add(step.out)
        for name in self.outputs:
            if name not in known:
                raise ValueError(f"output {name!r} is neither an input nor a step")

    def evaluate_numpy(self, arrays: dict, scalars: dict | None = None) -> list[np.ndarray]:
        """float64 reference: broadcasting numpy evaluation of the DAG."""
        env = {k: np.asarray(v, np.float64) for k, v in arrays.items()}
        scalars = scalars or {}
        for step in self.ops:
            args = [
                np.float64(scalars[a[1:]]) if isinstance(a, str) and a.startswith("$")
                else (env[a] if isinstance(a, str) else np.float64(a))
                for a in step.args
            ]
            env[step.out] = NUMPY_OPS[step.op](*args)
        shape = np.broadcast_shapes(*(np.shape(v) for v in arrays.values()))
        return [np.broadcast_to(env[o], shape) for o in self.outputs]


def collapse_dims(shape: Sequence[int], strides_list: Sequence[Sequence[int]]) -> tuple[tuple, list[tuple]]:
    """Merge adjacent dims that every operand walks contiguously; drop size-1 dims.

    Fewer dims mean cheaper index decoding and more vec4-able kernels.

    Example::

        >>> collapse_dims((2, 3, 4), [(12, 4, 1), (0, 0, 1)])
        ((6, 4), [(4, 1), (0, 1)])
    """
    dims = [(n, [s[i] for s in strides_list]) for i, n in enumerate(shape) if n != 1]
    if not dims:
        return (), [() for _ in strides_list]
    merged = [dims[-1]]
    for n, st in reversed(dims[:-1]):
        inner_n, inner_st = merged[-1]
        if all(s == i * inner_n for s, i in zip(st, inner_st)):
            merged[-1] = (n * inner_n, inner_st)
        else:
            merged.append((n, st))
    merged.reverse()
    new_shape = tuple(n for n, _ in merged)
    new_strides = [tuple(st[k] for _, st in merged) for k in range(len(strides_list))]
    return new_shape, new_strides


def access_kind(shape: Sequence[int], strides: Sequence[int]) -> str:
    """How an input is read over a collapsed output shape.

    ``contig`` (laid out like the output), ``splat`` (one value),
    ``strided`` (decoded from coordinates, unit stride along the last dim),
    ``strided0`` (decoded, but broadcast along the last dim) or ``gather``
    (any other stride along the last dim; scalar kernels only).

    Example::

        >>> access_kind((6, 4), (4, 1)), access_kind((6, 4), (0, 0)), access_kind((6, 4), (0, 1))
        ('contig', 'splat', 'strided')
        >>> access_kind((6, 4), (1, 0)), access_kind((6, 4), (1, 6))
        ('strided0', 'gather')
    """
    if all(s == 0 for s in strides):
        return "splat"
    expect, ok = 1, True
    for n, s in zip(reversed(shape), reversed(strides)):
        ok = ok and s == expect
        expect *= n
    if ok:
        return "contig"
    return {1: "strided", 0: "strided0"}.get(strides[-1], "gather")


_DECODED = ("strided", "strided0", "gather")


def uniform_layout(spec: ElementwiseSpec, kinds: Sequence[str], rank: int) -> UniformLayout:
    """The kernel's uniform block: count, dims, strided inputs' strides, offsets, scalars."""
    fields = [("n", "u32")] + [(f"d{j}", "u32") for j in range(rank)]
    for i, kind in enumerate(kinds):
        if kind in _DECODED:
            fields += [(f"s{i}_{j}", "u32") for j in range(rank)]
        fields.append((f"o{i}", "u32"))
    fields += [(f"c_{name}", "f32") for name in spec.scalars]
    return UniformLayout(fields)


def generate_elementwise_wgsl(spec: ElementwiseSpec, kinds: Sequence[str], rank: int, vec: bool,
                              storages: Sequence[str] | None = None, inplace: dict | None = None) -> str:
    """WGSL for ``spec`` with inputs of ``kinds`` (see :func:`access_kind`).

    ``vec``: each thread computes 4 consecutive elements along the last dim
    (``gather`` inputs are not allowed then). Bindings: inputs ``0..k-1``,
    outputs ``k..k+m-1``, then the uniform block. Dispatch
    ``ceil(n / 256)`` workgroups, ``n`` counted in vec4s when ``vec``.
    ``storages`` names the device storage (``f32``, ``f16``, ``i32``, ``i64``,
    ``bool``; see :mod:`.api`) of each input then each output; values are
    computed in f32 and converted on load and store. Default: all ``f32``.
    ``inplace`` maps an input index to an output index whose buffer it shares
    (read, then overwritten at the same index): that input has no binding of
    its own and is read from the output (a buffer may not be bound read-only
    and read-write in one dispatch). Bindings are then numbered over the
    remaining inputs.
    """
    inplace = dict(inplace or {})

    spec.validate()
    if vec and "gather" in kinds:
        raise ValueError("vec4 elementwise kernels need unit or zero stride along the last dim")
    stores = [STORAGES[n] for n in (storages or ["f32"] * (len(kinds) + len(spec.outputs)))]
    if len(stores) != len(kinds) + len(spec.outputs):
        raise ValueError(f"storages: need {len(kinds) + len(spec.outputs)} names, got {len(stores)}")
    if vec and any(st.name != "f32" for st in stores):
        raise ValueError("vec4 elementwise kernels need f32 storage everywhere")
    T, S, U = ("vec4<f32>", "v4", "vec4<u32>") if vec else ("f32", "f32", "u32")
    lay = uniform_layout(spec, kinds, rank)
    lines = [header(*stores) + lay.wgsl_struct("Params")]
    slot = 0
    for i, kind in enumerate(kinds):
        if i in inplace:
            # "splat" here is the one-element case (in-place operands have the output's shape).
            if kind not in ("contig", "splat") or stores[i].name != stores[len(kinds) + inplace[i]].name:
                raise ValueError(f"in-place input {i} must be contiguous and share the output's storage")
            continue
        if stores[i].name == "f32":
            elem = T if kind in ("contig", "strided") else "f32"
            lines.append(f"@group(0) @binding({slot}) var<storage, read> in{i}: array<{elem}>;")
        else:
            lines.append(f"@group(0) @binding({slot}) var<storage, read> in{i}: {stores[i].array};")
        slot += 1
    k = len(kinds)
    for j in range(len(spec.outputs)):
        arr = f"array<{T}>" if stores[k + j].name == "f32" else stores[k + j].array
        lines.append(f"@group(0) @binding({slot + j}) var<storage, read_write> out{j}: {arr};")
    lines.append(f"@group(0) @binding({slot + len(spec.outputs)}) var<uniform> p: Params;")
    lines.append(LINEAR_WORKGROUP_WGSL)
    lines.append(helpers_for([step.op for step in spec.ops], vec))
    lines.append(f"@compute @workgroup_size({WORKGROUP})")
    lines.append(
        "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, "
        "@builtin(local_invocation_index) lid: u32) {"
    )
    body = [f"let gid = linear_workgroup(wid, nwg) * {WORKGROUP}u + lid;", "if (gid >= p.n) { return; }"]
    if any(kind in _DECODED for kind in kinds):
        # Coordinates of this thread's first element, innermost dim last.
        body.append(f"var rem = gid * {4 if vec else 1}u;")
        for j in reversed(range(rank)):
            body.append(f"let c{j} = rem % p.d{j};")
            body.append(f"rem = rem / p.d{j};")
    names: dict[str, str] = {}
    for i, kind in enumerate(kinds):
        v = f"v{i}"
        names[spec.inputs[i]] = v
        load = stores[i].load
        if i in inplace:
            body.append(f"let {v} = {T}({load(f'out{inplace[i]}', 'gid')});")
        elif kind == "contig":
            idx = f"gid + p.o{i}" + (" / 4u" if vec else "")
            body.append(f"let {v} = {load(f'in{i}', idx)};")
        elif kind == "splat":
            body.append(f"let {v} = {T}({load(f'in{i}', f'p.o{i}')});")
        else:
            off = " + ".join([f"p.o{i}"] + [f"c{j} * p.s{i}_{j}" for j in range(rank)])
            if vec and kind == "strided":
                body.append(f"let {v} = in{i}[({off}) / 4u];")
            else:
                body.append(f"let {v} = {T}({load(f'in{i}', off)});")
    for step in spec.ops:
        args = []
        for a in step.args:
            if isinstance(a, str) and a.startswith("$"):
                args.append(f"{T}(p.c_{a[1:]})")
            elif isinstance(a, str):
                args.append(names[a])
            else:
                args.append(f"{T}({f32_literal(a)})")
        v = f"t{len(names)}"
        if step.op == "sub" and args[0] == args[1]:
            # WGSL lets compilers assume finite values and fold x - x to 0 (lavapipe does); numpy
            # gives NaN for inf and NaN, so the special values are tested on the bits.
            a = args[0]
            expr = (f"select({T}(0.0), {T}(f32_from_bits(0x7fc00000u)), "
                    f"(bitcast<{U}>({a}) & {U}(0x7fffffffu)) >= {U}(0x7f800000u))")
        else:
            expr = OPS[step.op][1].format(*args, T=T, S=S, U=U)
        body.append(f"let {v} = {expr};")
        names[step.out] = v
    for j, out in enumerate(spec.outputs):
        body.append(stores[k + j].store(f"out{j}", "gid", names[out]) + ";")
    lines += ["    " + b for b in body]
    lines.append("}")
    return "\n".join(lines) + "\n"


def contiguous_strides(shape: Sequence[int]) -> tuple:
    """Row-major element strides of ``shape``.

    Example::

        >>> contiguous_strides((2, 3, 4))
        (12, 4, 1)
    """
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return tuple(reversed(out))


def broadcast_strides(in_shape: Sequence[int], out_shape: Sequence[int]) -> tuple:
    """Strides that read a contiguous ``in_shape`` array broadcast to ``out_shape``.

    Example::

        >>> broadcast_strides((3, 1), (2, 3, 4))
        (0, 1, 0)
    """
    own = contiguous_strides(in_shape)
    pad = len(out_shape) - len(in_shape)
    return tuple(0 if i < pad or in_shape[i - pad] == 1 else own[i - pad] for i in range(len(out_shape)))


class ElementwisePlanner:
    """Binds an :class:`ElementwiseSpec` to buffers as a ready launch.

    ``inputs`` are ``(buffer, strides, offset)`` with strides in elements
    over the output ``shape`` (0 broadcasts); outputs are contiguous.

    Example::

        ew = ElementwisePlanner(ctx)
        ew.launch(spec, (1024,), [(x, (1,), 0), (y, (1,), 0)], [z]).run()
    """

    def __init__(self, ctx: Any, pipelines: PipelineCache | None = None):
        self.ctx = ctx
        self.pipelines = pipelines if pipelines is not None else PipelineCache(ctx)

    def launch(self, spec: ElementwiseSpec, shape: Sequence[int], inputs: Sequence[tuple], outputs: Sequence[Any],
               scalars: dict | None = None, storages: Sequence[str] | None = None,
               inplace: dict | None = None) -> KernelLaunch:
        """A launch of the fused kernel for this shape and these operands.

        ``storages``: device storage name of each input, then each output (default f32);
        ``inplace``: input index -> output index sharing its buffer (see the generator).
        """
        inplace = dict(inplace or {})
        if len(inputs) != len(spec.inputs) or len(outputs) != len(spec.outputs):
            raise ValueError(
                f"elementwise: spec has {len(spec.inputs)} inputs / {len(spec.outputs)} outputs, "
                f"got {len(inputs)} / {len(outputs)}"
            )
        shape = tuple(int(n) for n in shape)
        numel = int(np.prod(shape, dtype=np.int64))
        strides = [tuple(s) for _, s, _ in inputs] + [contiguous_strides(shape)]
        cshape, cstrides = collapse_dims(shape, strides)
        rank = len(cshape)
        in_strides = cstrides[:-1]
        kinds = [access_kind(cshape, st) for st in in_strides]
        offsets = [int(off) for _, _, off in inputs]
        vec = self._vec_ok(cshape, kinds, in_strides, offsets, numel)
        if storages is not None and any(name != "f32" for name in storages):
            vec = False
        src = generate_elementwise_wgsl(spec, kinds, rank, vec, storages, inplace)
        pipe = self.pipelines.get(src)
        n = numel // 4 if vec else numel
        values: dict = {"n": n}
        values.update({f"d{j}": cshape[j] for j in range(rank)})
        for i, kind in enumerate(kinds):
            values[f"o{i}"] = offsets[i]
            if kind in _DECODED:
                values.update({f"s{i}_{j}": in_strides[i][j] for j in range(rank)})
        scalars = scalars or {}
        missing = [s for s in spec.scalars if s not in scalars]
        if missing:
            raise KeyError(f"elementwise: scalars {missing} not given")
        values.update({f"c_{k}": float(scalars[k]) for k in spec.scalars})
        layout = uniform_layout(spec, kinds, rank)
        ubuf = uniform_buffer(self.ctx, layout.pack(**values))
        resources = [buf for i, (buf, _, _) in enumerate(inputs) if i not in inplace] + list(outputs) + [ubuf]
        return KernelLaunch(self.ctx, pipe, resources, max(-(-n // WORKGROUP), 1), label="elementwise",
                            uniforms=(layout, values))

    @staticmethod
    def _vec_ok(cshape, kinds, strides, offsets, numel) -> bool:
        if numel % 4 or "gather" in kinds:
            return False
        decoded = any(k in _DECODED for k in kinds)
        if decoded and cshape[-1] % 4:
            return False  # a vec4 would straddle two rows of the inner dim
        for kind, st, off in zip(kinds, strides, offsets):
            if kind in ("contig", "strided") and off % 4:
                return False
            if kind == "strided" and any(s % 4 for s in st[:-1]):
                return False
        return True
