"""The PyTorch (and jax.numpy) names of RustyASG's functions, layers and ops, as data.

One table, three readers: ``rustyasg ops --torch`` prints it, ``docs/torch_mapping.md`` is
rendered from it (:func:`render_markdown`; a test keeps the page in sync), and a test
resolves every RustyASG name in it, so the mapping cannot drift from the code.

RustyASG names are written with these prefixes: ``rg.`` = ``rustyasg.core``, ``Tensor.`` =
a method of :class:`rustyasg.core.Tensor`, ``nn.`` = ``rustyasg.nn``, ``F.`` =
``rustyasg.nn.functional``.

Example:
    >>> row = next(r for r in ROWS if r.torch == "torch.einsum")
    >>> row.rustyasg, row.section
    ('rg.einsum', 'Movement and indexing')
    >>> resolve("rg.einsum").__name__
    'einsum'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, List, Tuple

PREFIXES = {"rg": "rustyasg.core", "nn": "rustyasg.nn", "F": "rustyasg.nn.functional"}


@dataclass(frozen=True)
class Row:
    """One mapping: the PyTorch name, the jax.numpy name ('' if none), RustyASG's name, a note."""

    section: str
    torch: str
    jax: str
    rustyasg: str
    note: str = ""


# section -> rows "torch | jax.numpy | RustyASG | note" (blank jax cell: no counterpart worth naming)
_TABLE = {
    "Tensors and creation": """
torch.tensor | jnp.asarray | rg.constant | a constant baked into the graph; values that change per call are rg.input
torch.zeros | jnp.zeros | rg.zeros |
torch.ones | jnp.ones | rg.ones |
torch.zeros_like | jnp.zeros_like | rg.zeros_like |
torch.ones_like | jnp.ones_like | rg.ones_like |
torch.full | jnp.full | rg.full |
torch.full_like | jnp.full_like | rg.full_like |
torch.arange | jnp.arange | rg.arange |
torch.linspace | jnp.linspace | rg.linspace |
torch.eye | jnp.eye | rg.eye |
torch.meshgrid | jnp.meshgrid | rg.meshgrid |
torch.tril | jnp.tril | rg.tril |
torch.triu | jnp.triu | rg.triu |
torch.empty | jnp.empty | rg.empty | zeros: a graph has no uninitialised memory
torch.empty_like | jnp.empty_like | rg.empty_like | zeros, as rg.empty
torch.randint | jax.random.randint | rg.randint | seeded like the other random ops (an explicit seed tensor / rg.RNG)
torch.nn.Parameter | | rg.variable | backend-resident state; modules register them with register_parameter
""",
    "Elementwise math": """
torch.add / + | jnp.add | rg.add |
torch.sub / - | jnp.subtract | rg.sub |
torch.mul / * | jnp.multiply | rg.mul |
torch.div / / | jnp.divide | rg.div | integer / integer is a float division, as in PyTorch
torch.floor_divide / // | jnp.floor_divide | rg.floor_divide |
torch.pow / ** | jnp.power | rg.pow |
torch.abs | jnp.abs | rg.abs |
torch.exp | jnp.exp | rg.exp |
torch.log | jnp.log | rg.log |
torch.sqrt | jnp.sqrt | rg.sqrt |
torch.rsqrt | jax.lax.rsqrt | rg.rsqrt |
torch.sin | jnp.sin | rg.sin |
torch.cos | jnp.cos | rg.cos |
torch.tan | jnp.tan | rg.tan |
torch.asin | jnp.arcsin | rg.asin |
torch.acos | jnp.arccos | rg.acos |
torch.atan | jnp.arctan | rg.atan |
torch.sinh | jnp.sinh | rg.sinh |
torch.cosh | jnp.cosh | rg.cosh |
torch.asinh | jnp.arcsinh | rg.asinh |
torch.acosh | jnp.arccosh | rg.acosh |
torch.atanh | jnp.arctanh | rg.atanh |
torch.log2 | jnp.log2 | rg.log2 |
torch.log10 | jnp.log10 | rg.log10 |
torch.exp2 | jnp.exp2 | rg.exp2 |
torch.trunc | jnp.trunc | rg.trunc |
torch.frac |  | rg.frac |
torch.reciprocal | jnp.reciprocal | rg.reciprocal |
torch.square | jnp.square | rg.square |
torch.copysign | jnp.copysign | rg.copysign |
torch.isinf | jnp.isinf | rg.isinf |
torch.isclose | jnp.isclose | rg.isclose |
torch.fmod | jnp.fmod | rg.fmod | exact (C's fmod) on every backend
torch.remainder / % | jnp.remainder | rg.remainder |
torch.div(rounding_mode=) | jnp.floor_divide | rg.div | rounding_mode 'trunc' or 'floor'; integers stay exact
torch.bitwise_and / & | jnp.bitwise_and | rg.bitwise_and | & on two bool tensors is the logical and
torch.bitwise_or | jnp.bitwise_or | rg.bitwise_or |
torch.bitwise_xor / ^ | jnp.bitwise_xor | rg.bitwise_xor |
torch.bitwise_not / ~ | jnp.invert | rg.bitwise_not |
torch.bitwise_left_shift / << | jnp.left_shift | rg.bitwise_left_shift |
torch.bitwise_right_shift / >> | jnp.right_shift | rg.bitwise_right_shift | arithmetic for signed integers
Tensor.view(dtype) | jax.lax.bitcast_convert_type | rg.bitcast | same-size dtypes; on wgpu between same-size integers and 32-bit ones and float32 (not int16 <-> 16-bit floats, not int64 <-> float64)
int8 / uint8 / int16 / uint32 / uint64 | | rg.int8 | PyTorch's promotion, wrap-around arithmetic; wgpu stores 8/16-bit integers in 32-bit words and uint32 in exact 64-bit ones, and refuses uint64 (cast to int64); float -> int of NaN, inf and out-of-range values as PyTorch on x86 on every backend
torch.tanh | jnp.tanh | rg.tanh |
torch.atan2 | jnp.arctan2 | rg.atan2 |
torch.log1p | jnp.log1p | rg.log1p |
torch.expm1 | jnp.expm1 | rg.expm1 |
torch.erf | jax.scipy.special.erf | rg.erf |
torch.floor | jnp.floor | rg.floor |
torch.ceil | jnp.ceil | rg.ceil |
torch.round | jnp.round | rg.round |
torch.clamp | jnp.clip | rg.clamp |
torch.maximum | jnp.maximum | rg.maximum |
torch.minimum | jnp.minimum | rg.minimum |
torch.where | jnp.where | rg.where |
torch.isnan | jnp.isnan | rg.isnan |
torch.isfinite | jnp.isfinite | rg.isfinite |
torch.logaddexp | jnp.logaddexp | rg.logaddexp |
torch.lerp | | rg.lerp |
torch.hypot | jnp.hypot | rg.hypot |
torch.nan_to_num | jnp.nan_to_num | rg.nan_to_num |
torch.eq / == | jnp.equal | rg.equal |
torch.logical_and / & | jnp.logical_and | rg.logical_and |
Tensor.to(dtype) | Array.astype | Tensor.astype |
""",
    "Reductions and scans": """
torch.sum | jnp.sum | rg.sum | axis= (numpy's keyword) in the core functions, keepdims= likewise
torch.mean | jnp.mean | rg.mean |
torch.prod | jnp.prod | rg.prod |
torch.amax | jnp.max | rg.max | rg.max reduces (values only); torch.max(dim) with indices is rg.max plus rg.argmax
torch.amin | jnp.min | rg.min |
torch.argmax | jnp.argmax | rg.argmax |
torch.var | jnp.var | rg.var | correction=1 by default, as PyTorch
torch.std | jnp.std | rg.std |
torch.logsumexp | jax.nn.logsumexp | rg.logsumexp |
torch.softmax | jax.nn.softmax | rg.softmax |
torch.cumsum | jnp.cumsum | rg.cumsum |
torch.cumprod | jnp.cumprod | rg.cumprod |
torch.sort | jnp.sort | rg.sort |
torch.argsort | jnp.argsort | rg.argsort |
torch.topk | jax.lax.top_k | rg.topk |
torch.any | jnp.any | rg.any |
torch.all | jnp.all | rg.all |
torch.amax(dim=(a, b)) | jnp.max | rg.amax | several axes; ties share the gradient (rg.amin likewise)
torch.count_nonzero | jnp.count_nonzero | rg.count_nonzero |
torch.std_mean | | rg.std_mean |
torch.var_mean | | rg.var_mean |
torch.logcumsumexp | | rg.logcumsumexp |
torch.cummax | | rg.cummax | (values, indices); the gradient goes to the index (rg.cummin likewise)
torch.median | jnp.median | rg.median | the lower median, as PyTorch (numpy averages the two middle values)
torch.norm | | rg.norm | a number p with two axes is a vector norm, as torch.norm; 'nuc' is the nuclear norm
torch.linalg.norm | jnp.linalg.norm | rg.linalg.norm | a number ord with two axes is a matrix norm (2: spectral)
torch.linalg.vector_norm | jnp.linalg.vector_norm | rg.vector_norm | also rg.linalg.vector_norm
torch.linalg.matrix_norm | jnp.linalg.matrix_norm | rg.matrix_norm | 'fro', 'nuc', 2, -2, 1, -1, inf, -inf; also rg.linalg.matrix_norm
""",
    "Movement and indexing": """
torch.reshape / Tensor.view | jnp.reshape | rg.reshape | always a reshape of the value (no aliasing views)
torch.permute | jnp.transpose | rg.transpose | rg.transpose(x) reverses the axes, as numpy
Tensor.transpose(a, b) | jnp.swapaxes | Tensor.swapaxes |
torch.cat | jnp.concatenate | rg.concat | axis= instead of dim=
torch.stack | jnp.stack | rg.stack |
torch.split | jnp.split | rg.split | sections or sizes
torch.squeeze | jnp.squeeze | rg.squeeze |
torch.unsqueeze | jnp.expand_dims | rg.unsqueeze |
torch.flatten | jnp.ravel | rg.flatten |
torch.unflatten | | rg.unflatten |
Tensor.expand | jnp.broadcast_to | rg.expand |
torch.flip | jnp.flip | rg.flip |
torch.roll | jnp.roll | rg.roll |
Tensor.repeat | jnp.tile | rg.repeat |
torch.tile | jnp.tile | rg.tile |
torch.repeat_interleave | jnp.repeat | rg.repeat_interleave | per-element counts must be known when the graph is built (a list), not a graph tensor
torch.diag | jnp.diag | rg.diag |
torch.diagonal | jnp.diagonal | rg.diagonal |
torch.diag_embed | | rg.diag_embed |
Tensor.unfold | | rg.unfold |
torch.movedim | jnp.moveaxis | rg.movedim |
torch.einsum | jnp.einsum | rg.einsum | any equation; lowered to diagonals, sums and batched matmuls
torch.narrow | jax.lax.dynamic_slice_in_dim | rg.narrow | static start and length
x[i, :, j] (integer arrays) | x[i, :, j] | Tensor.__getitem__ | several integer arrays broadcast together (PyTorch's placement rule); boolean masks are refused
torch.index_select | jnp.take | rg.index_select |
torch.take_along_dim | jnp.take_along_axis | rg.take_along_dim |
torch.gather | | rg.gather |
torch.index_add | x.at[idx].add | rg.index_add |
torch.scatter | x.at[idx].set | rg.scatter | where two index positions write one place, the later wins (PyTorch leaves it unspecified)
torch.scatter_add | x.at[idx].add | rg.scatter_add |
torch.scatter_reduce | x.at[idx].max/min/multiply | rg.scatter_reduce | sum, prod, mean, amax, amin; include_self
torch.masked_fill | jnp.where | rg.masked_fill |
torch.nn.functional.one_hot | jax.nn.one_hot | rg.one_hot | num_classes is required (shapes are fixed before the data is seen)
torch.nn.functional.pad | jnp.pad | F.pad | rg.pad takes numpy order ((before, after) per axis, first axis first) and mode=
torch.masked_select | | rg.masked_select | refused: data-dependent shape; the error points to where / masked_fill
torch.nonzero | jnp.nonzero | rg.nonzero | refused: data-dependent shape
torch.unique | jnp.unique | rg.unique | refused: data-dependent shape
""",
    "Linear algebra": """
torch.matmul / @ | jnp.matmul | rg.matmul |
torch.linalg.svdvals | jnp.linalg.svdvals | rg.svdvals | also rg.linalg.svdvals; NaN or inf in a matrix gives NaN (PyTorch's CPU raises)
torch.nn.functional.linear | | F.linear |
""",
    "Layers (torch.nn)": """
torch.nn.Linear | | nn.Linear | same state_dict keys (weight, bias) and init, as for every layer below
torch.nn.Conv1d | | nn.Conv1d | lowered to conv2d over a unit height
torch.nn.Conv2d | | nn.Conv2d | padding_mode zeros, reflect, replicate, circular
torch.nn.Conv3d | | nn.Conv3d | lowered to one conv2d over depth taps folded into channels
torch.nn.ConvTranspose1d | | nn.ConvTranspose1d |
torch.nn.ConvTranspose2d | | nn.ConvTranspose2d |
torch.nn.ConvTranspose3d | | nn.ConvTranspose3d |
torch.nn.MaxPool1d | | nn.MaxPool1d |
torch.nn.MaxPool2d | | nn.MaxPool2d |
torch.nn.MaxPool3d | | nn.MaxPool3d | return_indices too (flat (d*H + h)*W + w, int64)
torch.nn.AvgPool1d | | nn.AvgPool1d |
torch.nn.AvgPool2d | | nn.AvgPool2d |
torch.nn.AvgPool3d | | nn.AvgPool3d |
torch.nn.MaxUnpool1d | | nn.MaxUnpool1d |
torch.nn.MaxUnpool2d | | nn.MaxUnpool2d |
torch.nn.MaxUnpool3d | | nn.MaxUnpool3d |
torch.nn.AdaptiveAvgPool1d | | nn.AdaptiveAvgPool1d |
torch.nn.AdaptiveAvgPool2d | | nn.AdaptiveAvgPool2d |
torch.nn.AdaptiveAvgPool3d | | nn.AdaptiveAvgPool3d |
torch.nn.AdaptiveMaxPool1d | | nn.AdaptiveMaxPool1d | return_indices too
torch.nn.AdaptiveMaxPool2d | | nn.AdaptiveMaxPool2d | return_indices too
torch.nn.AdaptiveMaxPool3d | | nn.AdaptiveMaxPool3d | return_indices too
torch.nn.Upsample | jax.image.resize | nn.Upsample | nearest, nearest-exact, linear, bilinear, bicubic, trilinear, area; antialias (bilinear, bicubic) in F.interpolate
torch.nn.PixelShuffle | | nn.PixelShuffle |
torch.nn.Unfold | | nn.Unfold |
torch.nn.Fold | | nn.Fold |
torch.nn.Unflatten | | nn.Unflatten |
torch.nn.ReflectionPad2d | | nn.ReflectionPad2d | and Zero/Constant/Reflection/Replication/CircularPad 1d/2d/3d
torch.nn.BatchNorm1d | | nn.BatchNorm1d |
torch.nn.BatchNorm2d | | nn.BatchNorm2d |
torch.nn.BatchNorm3d | | nn.BatchNorm3d | running statistics, momentum (None: cumulative average), affine, track_running_stats as PyTorch
torch.nn.LayerNorm | | nn.LayerNorm |
torch.nn.GroupNorm | | nn.GroupNorm |
torch.nn.InstanceNorm1d | | nn.InstanceNorm1d |
torch.nn.InstanceNorm2d | | nn.InstanceNorm2d | track_running_stats records running averages as PyTorch
torch.nn.InstanceNorm3d | | nn.InstanceNorm3d |
torch.nn.RMSNorm | | nn.RMSNorm |
torch.nn.Embedding | | nn.Embedding |
torch.nn.Dropout | | nn.Dropout | masks from the module's rg.RNG (model.set_rng(seed))
torch.nn.MultiheadAttention | | nn.MultiheadAttention |
torch.nn.RNN | | nn.RNN | unrolled over the (static) sequence length
torch.nn.LSTM | | nn.LSTM | unrolled; num_layers, bidirectional, batch_first, proj_size, dropout
torch.nn.GRU | | nn.GRU | unrolled
torch.nn.LSTMCell | | nn.LSTMCell |
torch.nn.GRUCell | | nn.GRUCell |
torch.nn.TransformerEncoderLayer | | nn.TransformerEncoderLayer |
torch.nn.Sequential | | nn.Sequential |
torch.nn.PReLU | | nn.PReLU | one weight, or one per channel (axis 1)
torch.nn.CELU | | nn.CELU |
torch.nn.SELU | | nn.SELU |
torch.nn.GLU | | nn.GLU |
torch.nn.Hardsigmoid | | nn.Hardsigmoid |
torch.nn.Hardswish | | nn.Hardswish |
torch.nn.Hardtanh | | nn.Hardtanh |
torch.nn.ReLU6 | | nn.ReLU6 |
torch.nn.LogSigmoid | | nn.LogSigmoid |
torch.nn.Mish | | nn.Mish |
torch.nn.Softsign | | nn.Softsign |
torch.nn.Tanhshrink | | nn.Tanhshrink |
torch.nn.Softmin | | nn.Softmin |
""",
    "Functions (torch.nn.functional)": """
F.relu | jax.nn.relu | F.relu |
F.gelu | jax.nn.gelu | F.gelu |
F.silu | jax.nn.silu | F.silu |
F.softmax | jax.nn.softmax | F.softmax |
F.celu | jax.nn.celu | F.celu |
F.selu | jax.nn.selu | F.selu |
F.hardsigmoid | jax.nn.hard_sigmoid | F.hardsigmoid |
F.hardswish | jax.nn.hard_swish | F.hardswish |
F.hardtanh | jax.nn.hard_tanh | F.hardtanh | gradient 0 on the bounds, as PyTorch's
F.relu6 | jax.nn.relu6 | F.relu6 |
F.logsigmoid | jax.nn.log_sigmoid | F.logsigmoid |
F.mish | jax.nn.mish | F.mish |
F.softsign | jax.nn.soft_sign | F.softsign |
F.glu | jax.nn.glu | F.glu |
F.softmin |  | F.softmin |
F.tanhshrink |  | F.tanhshrink |
F.prelu |  | F.prelu |
F.normalize |  | F.normalize |
F.conv1d | jax.lax.conv_general_dilated | F.conv1d | padding also 'same' and explicit (before, after) pairs
F.conv2d | jax.lax.conv_general_dilated | F.conv2d | padding also 'same' and ((top, bottom), (left, right))
F.conv3d | jax.lax.conv_general_dilated | F.conv3d |
F.conv_transpose1d | jax.lax.conv_transpose | F.conv_transpose1d |
F.conv_transpose3d | jax.lax.conv_transpose | F.conv_transpose3d |
F.max_pool1d | | F.max_pool1d | return_indices too
F.max_pool2d | | F.max_pool2d | return_indices too
F.max_pool3d | | F.max_pool3d | return_indices too
F.avg_pool1d | | F.avg_pool1d |
F.avg_pool2d | | F.avg_pool2d |
F.avg_pool3d | | F.avg_pool3d |
F.adaptive_avg_pool1d | | F.adaptive_avg_pool1d | window i spans floor(i*in/out) to ceil((i+1)*in/out), as PyTorch
F.adaptive_avg_pool2d | | F.adaptive_avg_pool2d |
F.adaptive_avg_pool3d | | F.adaptive_avg_pool3d |
F.adaptive_max_pool1d | | F.adaptive_max_pool1d | return_indices too
F.adaptive_max_pool2d | | F.adaptive_max_pool2d | return_indices too
F.adaptive_max_pool3d | | F.adaptive_max_pool3d | return_indices too
F.max_unpool1d | | F.max_unpool1d |
F.max_unpool2d | | F.max_unpool2d |
F.max_unpool3d | | F.max_unpool3d |
F.interpolate | jax.image.resize | F.interpolate | antialias=True for bilinear and bicubic
F.pixel_shuffle | | F.pixel_shuffle |
F.pixel_unshuffle | | F.pixel_unshuffle |
F.unfold | | F.unfold |
F.fold | | F.fold |
F.group_norm | | F.group_norm |
F.instance_norm | | F.instance_norm |
F.layer_norm | | F.layer_norm |
F.scaled_dot_product_attention | jax.nn.dot_product_attention | F.scaled_dot_product_attention | enable_gqa, is_causal, bool or additive masks; fused=True builds the fused rg.attention op (flash attention)
F.embedding | | F.embedding |
F.dropout | | F.dropout |
F.cross_entropy | optax.softmax_cross_entropy | nn.cross_entropy | losses live in rustyasg.nn (nn.losses)
F.mse_loss | | nn.mse_loss |
F.ctc_loss | optax.ctc_loss | nn.ctc_loss | unrolled over the time steps; an impossible alignment gives inf and a NaN gradient (0 and 0 with zero_infinity), as PyTorch
torch.nn.CTCLoss | | nn.CTCLoss |
""",
    "Autograd and execution": """
torch.autograd.grad | jax.grad | rg.grad | gradients are more graph (define-then-run)
torch.compile | jax.jit | rg.function | compile once per input signature, run many times
torch.no_grad | jax.lax.stop_gradient | rg.stop_gradient |
torch.manual_seed | jax.random.PRNGKey | rg.manual_seed |
""",
}


def _parse() -> Tuple[Row, ...]:
    rows: List[Row] = []
    for section, text in _TABLE.items():
        for line in text.strip().splitlines():
            cells = [c.strip() for c in line.split("|")]
            torch_name, jax_name, ours, note = (cells + [""] * 4)[:4]
            rows.append(Row(section, torch_name, jax_name, ours, note))
    return tuple(rows)


ROWS: Tuple[Row, ...] = _parse()


def resolve(name: str) -> Any:
    """The object a RustyASG name of the table refers to (AttributeError if it does not exist)."""
    prefix, _, rest = name.partition(".")
    if prefix == "Tensor":
        from .graph import Tensor

        return getattr(Tensor, rest)
    obj = importlib.import_module(PREFIXES[prefix])
    for part in rest.split("."):
        obj = getattr(obj, part)
    return obj


def render_markdown() -> str:
    """The docs page ``docs/torch_mapping.md`` (MyST markdown), one table per section."""
    out = ["# Mapping from PyTorch and JAX", "",
           "Each row names a PyTorch function, layer or method, its `jax.numpy`/`jax` counterpart where one is",
           "useful, and RustyASG's name (`rg` = `rustyasg.core`, `nn` = `rustyasg.nn`, `F` = `rustyasg.nn.functional`,",
           "`Tensor.` = a method of a symbolic tensor). The table is generated from `rustyasg.core.torch_names`",
           "(`rustyasg ops --torch` prints it too), and a test checks that every RustyASG name in it exists.", "",
           "## The deliberate differences", "",
           "- **Define-then-run.** Functions build a graph; `rg.function` compiles it once per input signature.",
           "  Shapes are fixed when the graph is built, so ops whose output shape depends on the data",
           "  (`masked_select`, `nonzero`, `unique`, boolean-mask indexing, `repeat_interleave` with tensor counts)",
           "  are refused with an error naming the static alternative (`where`, `masked_fill`, a list of counts).",
           "- **numpy keywords in the core.** Core reductions and joins take `axis=` / `keepdims=` (`rg.sum(x, axis=1)`);",
           "  the functions named after PyTorch ones (`rg.roll`, `rg.index_select`, ...) keep PyTorch's `dim=`.",
           "- **`rg.pad` takes numpy order** ((before, after) for each axis, first axis first); `F.pad` takes PyTorch's.",
           "- **No aliasing views.** `view`, `reshape`, slicing and `transpose` give new values; in-place methods",
           "  (`x.add_()`, `x[idx] = v`) have functional forms (`x + y`, `rg.scatter`, `rg.index_add`).",
           "- **Duplicate scatter indices.** `rg.scatter` writes the later value where PyTorch leaves the order open.",
           "- **Randomness is explicit state**: random ops take a seed tensor or an `rg.RNG`, so a compiled step is",
           "  reproducible and its random stream advances inside the step.",
           "- **Recurrent layers are unrolled** over the static sequence length (one graph step per time step).",
           ""]
    section = None
    for row in ROWS:
        if row.section != section:
            section = row.section
            out += ["", f"## {section}", "", "| PyTorch | JAX | RustyASG | notes |", "|---|---|---|---|"]
        cell = lambda s: f"`{s}`".replace("|", "\\|") if s else ""  # noqa: E731
        out.append(f"| {cell(row.torch)} | {cell(row.jax)} | {cell(row.rustyasg)} | {row.note.replace('|', '/')} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # python -m rustyasg.core.torch_names > docs/torch_mapping.md
    print(render_markdown(), end="")
