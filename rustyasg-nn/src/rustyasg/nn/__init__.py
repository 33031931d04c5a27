"""RustyASG neural networks: modules, layers, attention, positional encodings, model zoo,
losses, optimizers, schedulers and checkpoints, all written against the core graph API
so they run on every backend.

Example:
    >>> import numpy as np, rustyasg.core as rg, rustyasg.nn as nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> x = rg.input((None, 4), name="x")
    >>> model(x).shape
    (Dim(x.0), 2)
"""

from . import functional, init, zoo
from .activations import (ELU, GELU, ReLU, LeakyReLU, LogSoftmax, Sigmoid, SiLU, Softmax, Softplus, Swish, Tanh,
                          elu, gelu, get_activation, leaky_relu, log_softmax, relu, sigmoid, silu, softmax, softplus,
                          swish, tanh)
from .activations import (CELU, GLU, SELU, Hardsigmoid, Hardswish, Hardtanh, LogSigmoid, Mish, PReLU,  # noqa: F401
                          ReLU6, Softmin, Softsign, Tanhshrink)
from .attention import MultiheadAttention, causal_mask, scaled_dot_product_attention
from .containers import ModuleDict, ModuleList, Sequential
from .conv import Conv2d, ConvTranspose2d, conv2d, conv_transpose2d
from .dropout import Dropout, Dropout2d, SpatialDropout, dropout, dropout2d
from .embedding import Embedding, EmbeddingBag, embedding, embedding_bag
from .linear import Flatten, Identity, Linear, linear
from .module import Module, StateDictError, clone
from .remat import checkpoint_module
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm, RMSNorm, batch_norm, layer_norm, rms_norm
from .pooling import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d,
                      global_avg_pool2d)
from .positional import (ALiBi, LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding,
                         alibi_bias, alibi_slopes, apply_rotary, rotary_angles, sinusoidal_table)
from .transformer import (Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
                          TransformerEncoderLayer)
from .conv_nd import (Conv1d, Conv3d, ConvTranspose1d, ConvTranspose3d, conv1d, conv3d, conv_transpose1d,
                      conv_transpose3d)
from .group_norm import GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, group_norm, instance_norm
from .pooling_nd import (AdaptiveAvgPool1d, AdaptiveAvgPool3d, AdaptiveMaxPool1d, AdaptiveMaxPool3d, AvgPool1d,
                         AvgPool3d, MaxPool1d, MaxPool3d, MaxUnpool1d, MaxUnpool2d, MaxUnpool3d)
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .resample import (PAD_MODULES, Fold, PixelShuffle, PixelUnshuffle, Unflatten, Unfold, Upsample,
                       UpsamplingBilinear2d, UpsamplingNearest2d)

globals().update(PAD_MODULES)  # ZeroPad1d ... CircularPad3d, generated from one table

# Losses, optimizers, schedulers, gradient clipping and checkpoints.
from . import checkpoint, clip, losses, optim, schedulers, serialization
from .checkpoint import CheckpointManager, load_checkpoint, read_checkpoint, save_checkpoint
from .summary import ModelSummary, summary
from .clip import clip_grad_norm, clip_grad_value
from .losses import *  # noqa: F401,F403  (functions and Module classes, PyTorch names)
from .serialization import CheckpointError, load_safetensors, load_safetensors_into, save_safetensors
from .training import Trainer, fit  # noqa: E402  (the training loop: rustyasg.nn.training)

# Models from elsewhere: Hugging Face folders, PyTorch checkpoints (read without torch), text generation.
from . import generation, hub, pretrained  # noqa: E402
from .generation import Generator, generate  # noqa: E402
from .name_mapping import load_state_dict_from  # noqa: E402
from .pretrained import from_pretrained  # noqa: E402
from .torch_checkpoint import UnsafeCheckpointError, load_torch_checkpoint  # noqa: E402

from rustyasg.core.parts import distribution_version as _distribution_version  # noqa: E402

__version__ = _distribution_version("rustyasg-nn")  # from the package metadata
