"""Graph passes the wgpu backend adds (positions >= 100, ``backends=("wgpu",)``).

``wgpu_narrow_integers``: int8, uint8, int16 and uint32 live in wider words; values that can
leave their range are computed wide and wrapped back (:mod:`rustyasg.wgpu.narrow_ints`).

``wgpu_bfloat16``: bfloat16 is stored as 16-bit words and computed in float32 (WGSL has
no bfloat16 arithmetic): only casts and views touch bfloat16 values
(:func:`rustyasg.core.backend_api.compute_widened`). float16 needs no pass: with
``shader-f16`` kernels compute in f16, without it the storage is f32.
Fusion and memory planning happen when the program is compiled
(:mod:`rustyasg.wgpu.fusion`, :mod:`rustyasg.wgpu.memory`), where the device's limits are known.

Example:
    >>> from rustyasg.core.registry import PassRegistry
    >>> reg = PassRegistry(); register(reg); sorted(reg)
    ['wgpu_bfloat16', 'wgpu_narrow_integers']
"""

from __future__ import annotations


def bfloat16_compute(program):
    """Compute bfloat16 instructions in float32 between casts (see the module docstring)."""
    from rustyasg.core.backend_api import bfloat16, compute_widened

    return compute_widened(program, narrow=(bfloat16,))


def narrow_integer_ranges(program):
    """Keep int8/uint8/int16/uint32 values, stored in wider words, inside their ranges."""
    from .narrow_ints import narrow_integers

    return narrow_integers(program)


def register(registry) -> None:
    """Add the wgpu passes to ``registry`` (a :class:`~rustyasg.core.registry.PassRegistry`)."""
    registry.register("wgpu_narrow_integers", narrow_integer_ranges, 98, backends=("wgpu",))
    registry.register("wgpu_bfloat16", bfloat16_compute, 99, backends=("wgpu",))
