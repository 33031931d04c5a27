"""What both attention generators share: the uniforms and the WGSL helpers for IEEE edge values.

Example::

    >>> [name for name, _ in ATTN_UNIFORMS.fields]
    ['L', 'S', 'groups', 'blocks', 'scale']
    >>> "fn exp_f" in EDGE_HELPERS_WGSL
    True
"""

from __future__ import annotations

from ..pipelines import UniformLayout

ATTN_UNIFORMS = UniformLayout([("L", "u32"), ("S", "u32"), ("groups", "u32"), ("blocks", "u32"),
                               ("scale", "f32")])

#: WGSL: NaN and infinities from their bits, bit tests for them, and ``exp`` with its IEEE edges.
EDGE_HELPERS_WGSL = """
fn nan_f() -> f32 { return f32_from_bits(0x7fc00000u); }
fn ninf_f() -> f32 { return f32_from_bits(0xff800000u); }
// Bit tests, not x != x: drivers may fold self-comparisons away under fast math.
fn isnan_f(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn is_pinf(x: f32) -> bool { return bitcast<u32>(x) == 0x7f800000u; }
fn is_ninf(x: f32) -> bool { return bitcast<u32>(x) == 0xff800000u; }
// exp with IEEE edges said explicitly: NaN stays NaN, overflow is inf, -inf (and underflow) 0.
fn exp_f(x: f32) -> f32 {
    let r = select(exp(x), f32_from_bits(0x7f800000u), x > 88.72284);
    return select(select(r, 0.0, x < -104.0), x, isnan_f(x));
}
"""
