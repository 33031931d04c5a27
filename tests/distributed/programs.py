"""Models, data and the single-process baseline shared by the MPI worker scripts and the tests.

The worker scripts run under ``mpiexec`` (each rank imports this module from this folder);
the tests import it to compute the one-process, full-batch trajectory they compare with.
"""

from __future__ import annotations

import numpy as np

GLOBAL_BATCH = 8
DTYPES = {"reference": "float64", "cpu": "float32", "wgpu": "float32"}


def make_model(kind: str, dtype: str, seed: int = 0):
    import rustyasg.nn as nn
    from rustyasg.nn import init

    init.manual_seed(seed)
    if kind == "mlp":
        model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3))
    elif kind == "gpt":
        from rustyasg.nn.zoo import GPT, GPTConfig

        model = GPT(GPTConfig(vocab_size=32, block_size=8, n_layer=2, n_head=2, n_embd=16, tie_weights=False))
    else:
        raise ValueError(kind)
    return model.double() if dtype == "float64" else model


def make_batches(kind: str, dtype: str, steps: int, seed: int = 1):
    """``steps`` global batches of ``GLOBAL_BATCH`` samples, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        if kind == "mlp":
            x = rng.standard_normal((GLOBAL_BATCH, 6)).astype(dtype)
            y = rng.integers(0, 3, GLOBAL_BATCH).astype(np.int64)
        else:
            seq = rng.integers(0, 32, (GLOBAL_BATCH, 9)).astype(np.int64)
            x, y = seq[:, :-1].copy(), seq[:, 1:].copy()
        out.append((x, y))
    return out


def shard(batch, rank: int, world: int):
    """Rank ``rank``'s contiguous rows of a global batch."""
    n = GLOBAL_BATCH // world
    return tuple(a[rank * n:(rank + 1) * n] for a in batch)


def loss_fn(kind: str):
    import rustyasg.nn as nn

    if kind == "mlp":
        return nn.cross_entropy
    return lambda logits, y: nn.cross_entropy(logits.reshape((-1, logits.shape[-1])), y.reshape((-1,)))


def make_optimizer(params, kind: str):
    from rustyasg.nn import optim

    return optim.AdamW(params, lr=1e-2, weight_decay=0.01)


def build_step(model, kind, opt, batch, backend):
    """Compiled step ``step(x, y) -> loss`` with ``opt.updates(loss)``."""
    import rustyasg.core as rg

    x0, y0 = batch
    x = rg.input(("b",) + x0.shape[1:], x0.dtype, name="x")
    y = rg.input(("b",) + y0.shape[1:], y0.dtype, name="y")
    loss = loss_fn(kind)(model(x), y)
    return rg.function([x, y], loss, updates=opt.updates(loss), backend=backend)


def baseline(kind: str, backend: str, steps: int):
    """One process on the full batch: the parameters (name -> array) after every step."""
    dtype = DTYPES[backend]
    model = make_model(kind, dtype)
    opt = make_optimizer(model.parameters(), kind)
    batches = make_batches(kind, dtype, steps)
    step = build_step(model, kind, opt, batches[0], backend)
    history = []
    for b in batches:
        step(*b)
        history.append({k: np.array(v) for k, v in model.state_dict().items()})
    return history


# --- Trainer runs -----------------------------------------------------------------------------------
DATASET_SIZE = 48
TRAINER_SEED = 10  # rank 0's initial weights in the worker
PER_RANK_BATCH = {2: 4, 4: 2, 1: 8}


def trainer_dataset(dtype: str):
    from rustyasg.data import InMemoryDataset

    rng = np.random.default_rng(7)
    x = rng.standard_normal((DATASET_SIZE, 6)).astype(dtype)
    y = rng.integers(0, 3, DATASET_SIZE).astype(np.int64)
    return InMemoryDataset(x, y)


def trainer_loader(dtype: str, rank: int, world: int, batch_size: int):
    from rustyasg.data import DataLoader
    from rustyasg.distributed import DistributedSampler

    ds = trainer_dataset(dtype)
    sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=3)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, prefetch=0)


def trainer_baseline(backend: str, epochs: int):
    """One process, global batch 8, the same per-epoch permutations: parameters after training."""
    import rustyasg.nn as nn

    dtype = DTYPES[backend]
    model = make_model("mlp", dtype, seed=TRAINER_SEED)
    trainer = nn.Trainer(model, loss_fn("mlp"), make_optimizer(model.parameters(), "mlp"), backend=backend,
                         progress=False)
    trainer.fit(trainer_loader(dtype, 0, 1, GLOBAL_BATCH), epochs=epochs)
    return {k: np.array(v) for k, v in model.state_dict().items()}
