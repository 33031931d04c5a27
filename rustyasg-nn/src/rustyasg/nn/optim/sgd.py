"""Stochastic gradient descent with momentum, dampening, weight decay and Nesterov (PyTorch's ``SGD``).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> w = rg.variable(np.array([1.0]), name="w")
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> step = rg.function([], w.sum(), updates=opt.updates(w.sum()), backend="reference")
    >>> _ = step(); _ = step(); w.value()      # buffers: 1, then 0.9 * 1 + 1
    array([0.71])
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the examples use np)

import rustyasg.core as rg

from .optimizer import Optimizer


class SGD(Optimizer):
    """``p -= lr * d`` where ``d`` is the (momentum, Nesterov, weight-decayed) gradient, exactly as PyTorch.

    The momentum buffer starts as the first gradient (no dampening on the first step), like
    PyTorch's lazily created buffer; a per-parameter ``step`` counter tells the first step apart.

    >>> w = rg.variable(np.zeros(3, np.float32), name="w")
    >>> SGD([w], lr=0.1, momentum=0.9, nesterov=True).param_groups[0]["nesterov"]
    True
    """

    defaults = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False,
                "maximize": False}

    def validate(self, group):
        super().validate(group)
        if group["momentum"] < 0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def derive_scalars(self, group):
        return {"lr": group["lr"], "momentum": group["momentum"], "one_minus_dampening": 1.0 - group["dampening"],
                "weight_decay": group["weight_decay"]}

    def structure(self, group):
        return {"momentum": group["momentum"] != 0, "weight_decay": group["weight_decay"] != 0,
                "nesterov": bool(group["nesterov"]), "maximize": bool(group["maximize"])}

    def update_param(self, p, g, state, s, structure):
        if structure["maximize"]:
            g = -g
        if structure["weight_decay"]:
            g = g + s["weight_decay"] * p
        out = {}
        if structure["momentum"]:
            step, buf = state.get("step", scalar=True), state.get("momentum_buffer")
            started = step > 0
            new_buf = rg.where(started, s["momentum"], 0.0) * buf + rg.where(started, s["one_minus_dampening"], 1.0) * g
            out[buf], out[step] = new_buf, step + 1.0
            g = g + s["momentum"] * new_buf if structure["nesterov"] else new_buf
        out[p] = p - s["lr"] * g
        return out

    def normalize_state(self, entries, param):
        entries = super().normalize_state(entries, param)
        if "momentum_buffer" in entries and "step" not in entries:  # PyTorch's SGD keeps no step count
            entries["step"] = 1.0
        return entries
