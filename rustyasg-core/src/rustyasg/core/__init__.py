"""RustyASG core: symbolic tensors, the op registry, graph-to-graph autograd,
compilation with graph passes, the executor protocol and plugin discovery.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> x = rg.input((None, 3), "float32", name="x")
    >>> w = rg.variable(np.full((3, 1), 0.5, np.float32), name="w")
    >>> loss = rg.mean((x @ w) ** 2)
    >>> (gw,) = rg.grad(loss, [w])
    >>> step = rg.function([x], loss, updates={w: w - 0.1 * gw}, backend="reference")
    >>> float(step(np.ones((4, 3), np.float32)))
    2.25
"""

from __future__ import annotations

from . import tensor_api as _tensor_api  # noqa: F401  (installs Tensor operators and methods)
from .autograd import grad
from .backends import get_backend, installed_backends
from .builders import builder
from .dtypes import int8, int16, uint8, uint32, uint64  # noqa: F401
from .dtypes import bfloat16, bool_, float16, float32, float64, int32, int64, promote_types
from .checkpoint import checkpoint, checkpoint_name, checkpoint_policies
from .compile.precision import LossScaler, Precision
from .registry import precision_of
from .errors import (BackendError, DTypeError, GraphBuildError, IndexingError, MissingKernelError,
                     MissingPartError, NotDifferentiableError, RustyASGError, ShapeError)
from .function import Function, evaluate, function, jit
from .functional import (arange, dropout, expand, expand_dims, flatten, narrow, ones, ones_like, permute,  # noqa: F401
                         reshape, split, squeeze, stack, std, transpose, unsqueeze, unstack, zeros, zeros_like)
from .graph import Tensor, Variable, apply, as_tensor, constant, input, variable
from .movement_functions import *  # noqa: F401,F403
from .einsum_lowering import einsum
from .ops import *  # noqa: F401,F403
from .ops import matmul, max, min, pow, round, slice_, sum  # noqa: A004 - numpy-style names
from .functional import permute, reshape, transpose  # noqa: F811  (user forms over the raw op builders)
from .ops._define import defop
from . import attention_second_order  # noqa: F401,E402  (installs the fused attention's second derivatives)
from .activations import *  # noqa: F401,F403
from .creation import *  # noqa: F401,F403
from .math_functions import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403
from .parts import distribution_version, install as install_missing_part_finder
from .plugins import plugin_manager, register_plugin, unregister_plugin
from .registry import KERNELS, OPS, PASSES, Attr, Example, InputSpec, OpDef, TensorType
from .rng import RNG
from .seeding import initial_seed, manual_seed
from .saved_function import load_program
from .saved_program import SavedProgramError, read_signature
from .shapes import Dim
import rustyasg.core.linalg as linalg  # torch.linalg's names; rebinds the name the star import gave ops.linalg

install_missing_part_finder()
plugin_manager()  # registers the built-in ops and passes, then every installed plugin's

__version__ = distribution_version("rustyasg-core")  # from the package metadata


def __getattr__(name: str):
    """Names contributed by installed parts (``rg.view``, ``rg.onnx``, ...): see :mod:`.part_api`."""
    if name.startswith("__"):
        raise AttributeError(name)
    from .part_api import resolve

    value = resolve(name)
    globals()[name] = value
    return value
