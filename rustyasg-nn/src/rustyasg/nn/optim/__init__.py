"""Optimizers whose update is part of the compiled step: SGD, Adam, AdamW, RMSprop.

``opt.updates(loss)`` returns ``{variable: new value}`` for the parameters and the
optimizer's state variables; hyperparameters are scalar variables, so schedulers
change them between calls without recompiling.

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> from rustyasg.nn import optim
    >>> w = rg.variable(np.ones(3, np.float32), name="w")
    >>> x = rg.input((None, 3), name="x")
    >>> loss = rg.mean((x @ w) ** 2)
    >>> opt = optim.AdamW([{"params": [w], "weight_decay": 0.0}], lr=1e-2)
    >>> step = rg.function([x], loss, updates=opt.updates(loss), backend="reference")
"""

from .adam import Adam, AdamW
from .optimizer import Optimizer, StateView
from .param_group import ParamGroup
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "ParamGroup", "StateView", "SGD", "Adam", "AdamW", "RMSprop"]
