"""The JAX side of the workloads: optimizers with PyTorch's update rules and one ``jax.jit`` step.

Each workload writes its model as a pure function ``loss(params, *batch)`` over the same
state dict (PyTorch names and layouts); :func:`jax_trainer` compiles forward, gradient and
optimizer update into one ``jax.jit`` call whose parameter and optimizer-state buffers are
donated (updated in place by XLA, as PyTorch and RustyASG do).

The optimizers follow ``torch.optim`` exactly (SGD with momentum buffer ``b = m*b + g``;
Adam/AdamW with bias correction and ``eps`` added after the square root; AdamW's decoupled
decay ``p *= 1 - lr*wd``), so the three implementations do the same arithmetic per step.

Example (with jax installed: ``pip install "jax[cpu]"``)::

    step = jax_trainer({"w": np.ones(3, np.float32)}, lambda p, x: (p["w"] * x).sum(), sgd(lr=0.5))
    step(np.ones(3, np.float32))   # 3.0, and w is now 0.5 everywhere
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np


def sgd(lr: float, momentum: float = 0.0):
    """``(init, update)`` of ``torch.optim.SGD`` (no dampening, no Nesterov)."""
    import jax

    def init(params):
        return jax.tree_util.tree_map(lambda p: p * 0, params) if momentum else {}

    def update(params, grads, state, t):
        if not momentum:
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), state
        buf = jax.tree_util.tree_map(lambda b, g: momentum * b + g, state, grads)
        return jax.tree_util.tree_map(lambda p, b: p - lr * b, params, buf), buf

    return init, update


def adam(lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False):
    """``(init, update)`` of ``torch.optim.Adam`` (or ``AdamW`` with ``decoupled=True``)."""
    import jax
    import jax.numpy as jnp

    b1, b2 = betas

    def init(params):
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return {"m": zeros, "v": jax.tree_util.tree_map(jnp.zeros_like, params)}

    def update(params, grads, state, t):
        if weight_decay and not decoupled:
            grads = jax.tree_util.tree_map(lambda g, p: g + weight_decay * p, grads, params)
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t

        def one(p, m, v):
            if weight_decay and decoupled:
                p = p * (1 - lr * weight_decay)
            return p - (lr / c1) * m / (jnp.sqrt(v / c2) + eps)

        return jax.tree_util.tree_map(one, params, m, v), {"m": m, "v": v}

    return init, update


def jax_trainer(params: Dict[str, np.ndarray], loss_fn: Callable, optimizer) -> Callable:
    """``step(*batch) -> loss``: one jitted call doing forward, backward and the optimizer update."""
    import jax
    import jax.numpy as jnp

    init, update = optimizer
    state = {"params": {k: jnp.asarray(v) for k, v in params.items()}}
    state["opt"] = init(state["params"])
    state["t"] = jnp.zeros((), jnp.float32)

    def train(st, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(st["params"], *batch)
        t = st["t"] + 1
        new_params, new_opt = update(st["params"], grads, st["opt"], t)
        return loss, {"params": new_params, "opt": new_opt, "t": t}

    train = jax.jit(train, donate_argnums=0)
    holder = [state]

    def step(*batch):
        loss, holder[0] = train(holder[0], *batch)
        return float(loss)

    return step


def linear(p, name, x, bias=True):
    """``x @ W.T + b`` with PyTorch's ``Linear`` layout."""
    y = x @ p[f"{name}.weight"].T
    return y + p[f"{name}.bias"] if bias else y


def cross_entropy(logits, labels):
    """Mean cross-entropy of integer ``labels`` (``torch.nn.functional.cross_entropy``)."""
    import jax
    import jax.numpy as jnp

    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1))
