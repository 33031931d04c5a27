"""Module forms of the losses, generated from the functions' signatures.

Each class stores the function's keyword options (the same names and defaults
as PyTorch's loss modules); array-valued options such as class ``weight`` and
``pos_weight`` become buffers, so they appear in ``state_dict`` as in PyTorch
and can change without recompiling.

Example:
    >>> import rustyasg.core as rg
    >>> loss_fn = CrossEntropyLoss(label_smoothing=0.1)
    >>> loss_fn
    CrossEntropyLoss(ignore_index=-100, reduction='mean', label_smoothing=0.1)
    >>> loss_fn(rg.input((4, 3), name="logits"), rg.input((4,), "int64", name="y")).shape
    ()
"""

from __future__ import annotations

import inspect

import numpy as np

from ..module import Module
from . import classification as C, margin as M, regression as R

_TENSOR_OPTIONS = {"weight", "pos_weight"}  # array options: buffers, as PyTorch registers them

# class name, function, number of tensor arguments of forward
_TABLE = (
    ("MSELoss", R.mse_loss, 2),
    ("L1Loss", R.l1_loss, 2),
    ("SmoothL1Loss", R.smooth_l1_loss, 2),
    ("HuberLoss", R.huber_loss, 2),
    ("CrossEntropyLoss", C.cross_entropy, 2),
    ("NLLLoss", C.nll_loss, 2),
    ("BCELoss", C.binary_cross_entropy, 2),
    ("BCEWithLogitsLoss", C.binary_cross_entropy_with_logits, 2),
    ("KLDivLoss", C.kl_div, 2),
    ("SigmoidFocalLoss", C.sigmoid_focal_loss, 2),
    ("HingeEmbeddingLoss", M.hinge_embedding_loss, 2),
    ("MultiMarginLoss", M.multi_margin_loss, 2),
    ("CosineEmbeddingLoss", M.cosine_embedding_loss, 3),
    ("TripletMarginLoss", M.triplet_margin_loss, 3),
    ("MarginRankingLoss", M.margin_ranking_loss, 3),
)


class Loss(Module):
    """Base of the loss modules: keyword options bound at construction, tensors at call."""

    function = None  # the functional form
    n_inputs = 2
    options: dict = {}

    def __init__(self, **options):
        super().__init__()
        unknown = set(options) - set(self.options)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected option(s) {sorted(unknown)}; "
                            f"it takes {sorted(self.options)}")
        self._values = {}
        for key, default in self.options.items():
            value = options.get(key, default)
            if key in _TENSOR_OPTIONS and value is not None:
                arr = np.asarray(value)
                self.register_buffer(key, arr if arr.dtype.kind == "f" else arr.astype(np.float32))
                value = getattr(self, key)
            self._values[key] = value

    def forward(self, *tensors):
        if len(tensors) != self.n_inputs:
            raise TypeError(f"{type(self).__name__} takes {self.n_inputs} tensors, got {len(tensors)}")
        return type(self).function(*tensors, **self._values)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._values.items() if k not in _TENSOR_OPTIONS)


def _make(name: str, fn, n_inputs: int) -> type:
    params = list(inspect.signature(fn).parameters.values())[n_inputs:]
    options = {p.name: p.default for p in params}
    args = ", ".join(p.name for p in list(inspect.signature(fn).parameters.values())[:n_inputs])
    doc = (f"Module form of :func:`{fn.__name__}`: ``{name}(**options)({args})``.\n\n"
           f"Options and defaults: {', '.join(f'{k}={v!r}' for k, v in options.items())}.\n\n"
           f"    >>> {name}()\n    {name}({', '.join(f'{k}={v!r}' for k, v in options.items() if k not in _TENSOR_OPTIONS)})\n")
    return type(name, (Loss,), {"function": staticmethod(fn), "n_inputs": n_inputs, "options": options,
                                "__doc__": doc, "__module__": __name__})


for _name, _fn, _n in _TABLE:
    globals()[_name] = _make(_name, _fn, _n)

FocalLoss = globals()["SigmoidFocalLoss"]
__all__ = [name for name, _, _ in _TABLE] + ["Loss", "FocalLoss"]
