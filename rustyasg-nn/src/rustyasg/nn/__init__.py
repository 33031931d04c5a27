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

from . import init
from .module import Module, StateDictError
