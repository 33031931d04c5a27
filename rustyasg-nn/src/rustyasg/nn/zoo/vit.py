"""``ViT``: the Vision Transformer (Dosovitskiy et al.) with a class token and learned positions.

Names follow timm (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.0`` ...,
``norm``, ``head``); each block is a pre-norm :class:`TransformerEncoderLayer` with
GELU, i.e. PyTorch's names inside the blocks.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn.zoo import ViT
    >>> vit = ViT(image_size=32, patch_size=8, num_classes=10, dim=32, depth=2, heads=4, mlp_dim=64)
    >>> vit(rg.input((None, 3, 32, 32), name="img")).shape
    (Dim(img.0), 10)
"""

from __future__ import annotations

import rustyasg.core as rg
from rustyasg.core import Tensor

from .. import init
from .._checks import check_rank, shape_error
from ..containers import ModuleList
from ..conv import Conv2d
from ..dropout import Dropout
from ..linear import Identity, Linear
from ..module import Module
from ..normalization import LayerNorm
from ..transformer import TransformerEncoderLayer


class PatchEmbedding(Module):
    """Non-overlapping ``patch_size`` patches projected to ``dim`` by a strided convolution: ``(N, P, dim)``.

    >>> PatchEmbedding(32, 8, 3, 16)(rg.input((2, 3, 32, 32), name="img")).shape
    (2, 16, 16)
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, dim: int, dtype="float32"):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"PatchEmbedding: image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size = image_size, patch_size
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = Conv2d(in_channels, dim, patch_size, stride=patch_size, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        check_rank("PatchEmbedding", x, 4, "images (N, C, H, W)")
        if tuple(x.shape[2:]) != (self.image_size, self.image_size):
            raise shape_error("PatchEmbedding", f"expected {self.image_size}x{self.image_size} images", x)
        y = self.proj(x)  # (N, dim, H/p, W/p)
        n, d = y.shape[0], y.shape[1]
        return y.reshape((n, d, self.num_patches)).transpose((0, 2, 1))


class ViT(Module):
    """Patch embedding, class token, learned positions, ``depth`` pre-norm encoder blocks, LayerNorm, ``head``.

    ``pool="cls"`` classifies from the class token, ``"mean"`` from the mean of the patch tokens.
    """

    def __init__(self, image_size: int = 224, patch_size: int = 16, num_classes: int = 1000, dim: int = 768,
                 depth: int = 12, heads: int = 12, mlp_dim: int = 3072, in_channels: int = 3, dropout: float = 0.0,
                 pool: str = "cls", layer_norm_eps: float = 1e-6, dtype="float32", seed: int = 0):
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"ViT: pool must be 'cls' or 'mean', got {pool!r}")
        self.pool = pool
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, dim, dtype)
        self.cls_token = rg.variable(init.zeros((1, 1, dim), dtype=dtype), name="cls_token")
        self.pos_embed = rg.variable(init.normal((1, self.patch_embed.num_patches + 1, dim), std=0.02, dtype=dtype),
                                     name="pos_embed")
        self.pos_drop = Dropout(dropout)
        self.blocks = ModuleList([TransformerEncoderLayer(dim, heads, mlp_dim, dropout, activation="gelu",
                                                          layer_norm_eps=layer_norm_eps, norm_first=True, dtype=dtype)
                                  for _ in range(depth)])
        self.norm = LayerNorm(dim, eps=layer_norm_eps, dtype=dtype)
        self.head = Linear(dim, num_classes, dtype=dtype) if num_classes > 0 else Identity()
        self.set_rng(seed)

    def forward_features(self, x: Tensor) -> Tensor:
        """The normalised token sequence ``(N, 1 + patches, dim)``."""
        tokens = self.patch_embed(x)
        n, _, d = tokens.shape
        cls = rg.broadcast_to(self.cls_token, shape=(n, 1, d))
        x = self.pos_drop(rg.concat(cls, tokens, axis=1) + self.pos_embed)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_features(x)
        pooled = x[:, 0] if self.pool == "cls" else x[:, 1:].mean(axis=1)
        return self.head(pooled)
