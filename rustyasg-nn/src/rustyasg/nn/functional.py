"""The function forms of the layers in one namespace, as ``torch.nn.functional``.

Example:
    >>> import rustyasg.core as rg
    >>> import rustyasg.nn.functional as F
    >>> x = rg.input((None, 3, 8, 8), name="x")
    >>> F.max_pool2d(F.relu(x), 2).shape
    (Dim(x.0), 3, 4, 4)
"""

from rustyasg.core import avg_pool2d, one_hot  # noqa: F401

from .activations import (elu, gelu, leaky_relu, log_softmax, relu, sigmoid, silu, softmax,  # noqa: F401
                          softplus, swish, tanh)
from .activations import (celu, glu, hardsigmoid, hardswish, hardtanh, logsigmoid, mish, normalize,  # noqa: F401
                          prelu, relu6, selu, softmin, softsign, tanhshrink)
from .attention import causal_mask, scaled_dot_product_attention  # noqa: F401
from .conv import conv2d, conv_transpose2d  # noqa: F401
from .dropout import dropout, dropout2d  # noqa: F401
from .embedding import embedding, embedding_bag  # noqa: F401
from .linear import linear  # noqa: F401
from .normalization import batch_norm, layer_norm  # noqa: F401
from .pooling import global_avg_pool2d  # noqa: F401
from .positional import apply_rotary  # noqa: F401
from .conv_nd import conv1d, conv3d, conv_transpose1d, conv_transpose3d  # noqa: F401
from .group_norm import group_norm, instance_norm  # noqa: F401
from .pooling_nd import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,  # noqa: F401
                         adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d, avg_pool1d, avg_pool3d,
                         max_pool1d, max_pool2d, max_pool3d, max_unpool1d, max_unpool2d, max_unpool3d)
from .resample import fold, interpolate, pad, pixel_shuffle, pixel_unshuffle, unfold, upsample  # noqa: F401
