"""Sizes of one 2-D convolution, shared by its kernels (im2col + GEMM, and direct).

Example::

    >>> geo = conv_geometry((2, 4, 9, 9), (6, 2, 3, 3), (7, 7), {"groups": 2})
    >>> geo.Og, geo.P, geo.identity_columns
    (3, 49, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..pipelines import UniformLayout, uniform_buffer

# The uniform block of every conv kernel: sizes, window, an element offset `base`
# (a chunk of images) and `SPLIT` (images per column split, see im2col).
CONV_UNIFORMS = UniformLayout([(n, "u32") for n in (
    "total", "N", "C", "H", "W", "O", "G", "OH", "OW", "KH", "KW", "SH", "SW", "PH", "PW", "DH", "DW", "base",
    "SPLIT")])


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one convolution; ``OH, OW`` are those of the output (or of the given gradient).

    Example::

        >>> geo = ConvGeometry(2, 4, 9, 9, 6, 2, 3, 3, 7, 7, (1, 1), (0, 0), (1, 1))
        >>> geo.Cg, geo.Og, geo.K, geo.P
        (2, 3, 18, 49)
    """

    N: int
    C: int
    H: int
    W: int
    O: int
    G: int
    KH: int
    KW: int
    OH: int
    OW: int
    stride: tuple
    padding: tuple
    dilation: tuple

    @property
    def Cg(self) -> int:
        return self.C // self.G

    @property
    def Og(self) -> int:
        return self.O // self.G

    @property
    def K(self) -> int:
        """Reduction length of the forward GEMM: ``C/groups * kh * kw``."""
        return self.Cg * self.KH * self.KW

    @property
    def P(self) -> int:
        """Output positions per image."""
        return self.OH * self.OW

    @property
    def identity_columns(self) -> bool:
        """True when the input *is* its column matrix (1x1 kernel, stride 1, no padding, full output)."""
        return ((self.KH, self.KW, self.OH, self.OW) == (1, 1, self.H, self.W)
                and tuple(self.stride) == (1, 1) and tuple(self.padding) == (0, 0))

    def uniforms(self, total: int, base: int = 0, split: int = 1) -> dict:
        """Values of :data:`CONV_UNIFORMS` for a kernel over ``total`` elements (or workgroups)."""
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        return dict(total=total, N=self.N, C=self.C, H=self.H, W=self.W, O=self.O, G=self.G, OH=self.OH, OW=self.OW,
                    KH=self.KH, KW=self.KW, SH=sh, SW=sw, PH=ph, PW=pw, DH=dh, DW=dw, base=base, SPLIT=split)


#: What a GEMM launch that gathers B (an implicit-GEMM convolution) adds to its label.
GATHER_LABEL = " (implicit conv)"


def gather_fields(gather: "tuple[str, dict] | None") -> dict:
    """The ``MatmulLayout`` fields of a GEMM's ``gather`` (a gather's name and its convolution's
    :data:`CONV_UNIFORMS` values, or None for a plain GEMM).

    Example::

        >>> gather_fields(("columns", {"KH": 3, "KW": 2}))
        {'gather_b': 'columns', 'gather_kernel': (3, 2)}
    """
    if gather is None:
        return {"gather_b": "", "gather_kernel": ()}
    return {"gather_b": gather[0], "gather_kernel": (gather[1]["KH"], gather[1]["KW"])}


def gather_bindings(ctx: Any, gather: "tuple[str, dict] | None") -> list:
    """The bindings a GEMM launch adds for its ``gather``: its convolution's uniforms (binding 4), or none."""
    return [] if gather is None else [uniform_buffer(ctx, CONV_UNIFORMS.pack(**gather[1]))]


def conv_geometry(x_shape, w_shape, out_hw, attrs) -> ConvGeometry:
    """The geometry of a conv with input ``x_shape``, weight ``w_shape``, output (or gradient) ``out_hw``.

    Example::

        >>> conv_geometry((2, 4, 9, 9), (6, 2, 3, 3), (7, 7), {"groups": 2}).K
        18
    """
    N, C, H, W = x_shape
    O, _, KH, KW = w_shape
    return ConvGeometry(N, C, H, W, O, int(attrs.get("groups", 1)), KH, KW, out_hw[0], out_hw[1],
                        tuple(attrs.get("stride", (1, 1))), tuple(attrs.get("padding", (0, 0))),
                        tuple(attrs.get("dilation", (1, 1))))


def transposed_taps_wgsl(accumulate: str, indent: str = "    ") -> str:
    """WGSL loops over the window taps ``(i, j)`` whose output position ``(oh, ow)`` reads input pixel ``(h, w)``.

    Shared by col2im and the direct backward-input kernel; ``accumulate`` is the
    statement run for each tap (it may use ``i``, ``j``, ``oh``, ``ow``).

    Example::

        >>> "let ow = u32(tw) / p.SW;" in transposed_taps_wgsl("acc += 1.0;")
        True
    """
    lines = [
        "for (var i = 0u; i < p.KH; i = i + 1u) {",
        "    let th = i32(h + p.PH) - i32(i * p.DH);",
        "    if (th < 0) { break; }  // later taps start further up",
        "    if (u32(th) % p.SH != 0u) { continue; }",
        "    let oh = u32(th) / p.SH;",
        "    if (oh >= p.OH) { continue; }",
        "    for (var j = 0u; j < p.KW; j = j + 1u) {",
        "        let tw = i32(w + p.PW) - i32(j * p.DW);",
        "        if (tw < 0) { break; }",
        "        if (u32(tw) % p.SW != 0u) { continue; }",
        "        let ow = u32(tw) / p.SW;",
        "        if (ow >= p.OW) { continue; }",
        f"        {accumulate}",
        "    }",
        "}",
    ]
    return "".join(indent + line + "\n" for line in lines)
