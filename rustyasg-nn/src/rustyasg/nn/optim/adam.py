"""Adam (optionally AMSGrad) and AdamW with decoupled weight decay (PyTorch's ``Adam`` / ``AdamW``).

Bias corrections use ``1 - beta ** step = -expm1(step * log(beta))`` with ``log(beta)``
derived on the host in double precision, so a float32 step loses nothing to the
rounding of ``beta`` itself (``1 - float32(0.999)`` is off by 1e-5 relative).

Example:
    >>> import numpy as np, rustyasg.core as rg
    >>> w = rg.variable(np.array([1.0, -1.0]), name="w")
    >>> opt = Adam([w], lr=0.1)
    >>> step = rg.function([], w.sum(), updates=opt.updates(w.sum()), backend="reference")
    >>> _ = step(); np.round(w.value(), 6)    # the first Adam step moves each weight by ~lr
    array([ 0.9, -1.1])
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the examples use np)

import rustyasg.core as rg

from .optimizer import Optimizer, log_or_ninf


class Adam(Optimizer):
    """Adam with L2 ``weight_decay`` added to the gradient; ``amsgrad`` keeps the running maximum of ``v``.

    >>> w = rg.variable(np.zeros(3, np.float32), name="w")
    >>> Adam([{"params": [w], "lr": 1e-2}], amsgrad=True).param_groups[0]["lr"]
    0.01
    """

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
                "maximize": False}
    decoupled = False

    def validate(self, group):
        super().validate(group)
        b1, b2 = group["betas"]
        if group["eps"] < 0:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        if not 0.0 <= b1 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {b1}")
        if not 0.0 <= b2 < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {b2}")
        if group["weight_decay"] < 0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")

    def derive_scalars(self, group):
        b1, b2 = group["betas"]
        lr, wd = group["lr"], group["weight_decay"]
        return {"lr": lr, "one_minus_beta1": 1.0 - b1, "beta2": b2, "one_minus_beta2": 1.0 - b2,
                "log_beta1": log_or_ninf(b1), "log_beta2": log_or_ninf(b2), "eps": group["eps"],
                "weight_decay": wd, "decay_factor": 1.0 - lr * wd}

    def structure(self, group):
        return {"weight_decay": group["weight_decay"] != 0, "amsgrad": bool(group["amsgrad"]),
                "maximize": bool(group["maximize"])}

    def update_param(self, param, g, state, s, structure):
        p = param
        if structure["maximize"]:
            g = -g
        if structure["weight_decay"]:
            if self.decoupled:
                p = p * s["decay_factor"]
            else:
                g = g + s["weight_decay"] * p
        step, m, v = state.get("step", scalar=True), state.get("exp_avg"), state.get("exp_avg_sq")
        t = step + 1.0
        new_m = m + s["one_minus_beta1"] * (g - m)  # PyTorch's lerp(m, g, 1 - beta1)
        new_v = v * s["beta2"] + s["one_minus_beta2"] * g * g
        out = {step: t, m: new_m, v: new_v}
        bias1 = -rg.expm1(t * s["log_beta1"])
        bias2_sqrt = rg.sqrt(-rg.expm1(t * s["log_beta2"]))
        second = new_v
        if structure["amsgrad"]:
            vmax = state.get("max_exp_avg_sq")
            second = out[vmax] = rg.maximum(vmax, new_v)
        denom = rg.sqrt(second) / bias2_sqrt + s["eps"]
        out[param] = p + (-(s["lr"] / bias1)) * new_m / denom
        return out


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam step.

    >>> w = rg.variable(np.zeros(3, np.float32), name="w")
    >>> AdamW([w]).param_groups[0]["weight_decay"]   # PyTorch's default
    0.01
    """

    defaults = {**Adam.defaults, "weight_decay": 1e-2}
    decoupled = True
