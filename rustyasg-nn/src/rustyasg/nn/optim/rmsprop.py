"""RMSprop with momentum and the centered variant (PyTorch's ``RMSprop``).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> w = rg.variable(np.array([1.0]), name="w")
    >>> opt = RMSprop([w], lr=0.01, alpha=0.99)
    >>> step = rg.function([], w.sum(), updates=opt.updates(w.sum()), backend="reference")
    >>> _ = step(); np.round(w.value(), 6)     # g / sqrt(0.01 g^2) = 10 for the first step
    array([0.9])
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the examples use np)

import rustyasg.core as rg

from .optimizer import Optimizer


class RMSprop(Optimizer):
    """Divide the gradient by a running RMS of past gradients (``centered``: by their running std).

    >>> w = rg.variable(np.zeros(3, np.float32), name="w")
    >>> RMSprop([w], centered=True).param_groups[0]["alpha"]
    0.99
    """

    defaults = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False,
                "maximize": False}

    def validate(self, group):
        super().validate(group)
        for key in ("eps", "momentum", "weight_decay", "alpha"):
            if group[key] < 0:
                raise ValueError(f"Invalid {key} value: {group[key]}")

    def derive_scalars(self, group):
        a = group["alpha"]
        return {"lr": group["lr"], "alpha": a, "one_minus_alpha": 1.0 - a, "eps": group["eps"],
                "weight_decay": group["weight_decay"], "momentum": group["momentum"]}

    def structure(self, group):
        return {"momentum": group["momentum"] != 0, "weight_decay": group["weight_decay"] != 0,
                "centered": bool(group["centered"]), "maximize": bool(group["maximize"])}

    def update_param(self, p, g, state, s, structure):
        if structure["maximize"]:
            g = -g
        if structure["weight_decay"]:
            g = g + s["weight_decay"] * p
        step, sq = state.get("step", scalar=True), state.get("square_avg")
        new_sq = sq * s["alpha"] + s["one_minus_alpha"] * g * g
        out = {step: step + 1.0, sq: new_sq}
        if structure["centered"]:
            ga = state.get("grad_avg")
            new_ga = out[ga] = ga + s["one_minus_alpha"] * (g - ga)
            avg = rg.sqrt(new_sq - new_ga * new_ga) + s["eps"]
        else:
            avg = rg.sqrt(new_sq) + s["eps"]
        if structure["momentum"]:
            buf = state.get("momentum_buffer")
            new_buf = out[buf] = buf * s["momentum"] + g / avg
            out[p] = p - s["lr"] * new_buf
        else:
            out[p] = p + (-s["lr"]) * g / avg
        return out
