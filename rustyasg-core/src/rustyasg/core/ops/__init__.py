"""The core op set, one module per family, plus the composite functions built on them.

Importing this package registers every core op in :data:`rustyasg.core.registry.OPS`.
"""

from __future__ import annotations

from . import elementwise, elementwise_table, linalg, misc, movement, random, reduce  # noqa: F401  (registers the ops)
from .elementwise import *  # noqa: F401,F403
from .elementwise_math import *  # noqa: F401,F403
from .bitwise import *  # noqa: F401,F403
from .conv import conv2d, conv2d_backward_input, conv2d_backward_weight, conv_transpose2d  # noqa: F401
from .embedding_ops import embedding  # noqa: F401
from .linalg import matmul  # noqa: F401
from .misc import identity, ones_like_scalar, stop_gradient  # noqa: F401
from .attention import attention, attention_backward, attention_lse  # noqa: F401
from .norm import batch_norm, batch_norm_backward, layer_norm, layer_norm_backward  # noqa: F401
from .pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d,  # noqa: F401
                   adaptive_max_pool2d_backward, adaptive_max_pool2d_indices, avg_pool2d, avg_pool2d_backward,
                   global_avg_pool2d, max_pool2d, max_pool2d_backward, max_pool2d_indices)
from .movement import (concat, flip, gather, one_hot, pad, reshape, scatter_add, slice_, take,  # noqa: F401
                       take_grad, transpose, zeros_like_shape)
from .random import random_normal, random_uniform  # noqa: F401
from .scan import argsort, cummax_indices, cummin_indices, cumprod, cumsum, logcumsumexp  # noqa: F401
from .scatter_ops import scatter_reduce_op  # noqa: F401
from .svd import svdvals, svdvals_grad  # noqa: F401
from .reduce import (argmax, argmin, broadcast_to, dim_size, log_softmax, logsumexp, max, mean, min,  # noqa: F401
                     prod, softmax, sum, sum_to, var)
