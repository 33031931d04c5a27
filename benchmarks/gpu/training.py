"""GPU training-step workloads: rustyasg.nn models on the wgpu backend next to torch.cuda eager.

* ``W2``: MLP 784-512-512-10, ReLU, batch 128, cross-entropy, Adam (lr 1e-3).
* ``W4``: GPT-mini: vocab 256, d 128, 4 heads, 2 pre-LN blocks, causal, GELU (tanh) MLP,
  T 64, batch 16, AdamW (lr 3e-4, weight decay 0.01).
* ``W5``: GPT: vocab 256, d 512, 8 heads, 6 blocks, T 256, batch 32, AdamW (same settings).
* ``R18``: ResNet-18 (zoo), 3x224x224 images, 1000 classes, batch 64, training-mode batch norm,
  SGD with momentum 0.9 (lr 0.1).

``precision="f16"`` builds the RustyASG step with mixed precision (``rg.function(precision=...)``);
``torch_mode`` runs torch in ``fp32`` (TF32 off), ``tf32``, or ``bf16``/``fp16`` autocast.

Both sides start from the same weights (torch's modules get the rustyasg model's state dict,
which uses PyTorch's names and layouts) and see the same batches; torch runs fp32 with TF32
off (``F.scaled_dot_product_attention`` with ``is_causal``: its fastest eager path). A step is
forward + backward + optimizer update. RustyASG steps are queued with ``fetch=False`` and the
clock stops when the last loss is read back (which waits for the GPU); torch's clock stops at
``torch.cuda.synchronize()``. The first losses of both are recorded as a parity check.

Example::

    python benchmarks/gpu/run_gpu.py --sections training --workloads W2,W4
"""

from __future__ import annotations

import time
from typing import Callable, Dict

import numpy as np

WORKLOADS: Dict[str, dict] = {
    "W2": {"kind": "mlp", "sizes": (784, 512, 512, 10), "batch": 128, "lr": 1e-3},
    "W4": {"kind": "gpt", "vocab": 256, "d": 128, "heads": 4, "layers": 2, "T": 64, "batch": 16, "lr": 3e-4},
    "W5": {"kind": "gpt", "vocab": 256, "d": 512, "heads": 8, "layers": 6, "T": 256, "batch": 32, "lr": 3e-4},
    "R18": {"kind": "resnet", "classes": 1000, "image": 224, "batch": 64, "lr": 0.1},
}
WEIGHT_DECAY = 0.01


# --- rustyasg side ------------------------------------------------------------------------------
def ensure_backend() -> None:
    """Make ``backend="wgpu"`` work when the parts are on ``sys.path`` but not pip-installed
    (the GPU machine: no entry points there), by registering the plugin and an instance."""
    from rustyasg.core.backends import installed_backends, register_backend_instance

    if "wgpu" in installed_backends():
        return
    import rustyasg.wgpu.plugin as plugin
    from rustyasg.core.plugins import plugin_names, register_plugin
    from rustyasg.wgpu.backend import WgpuBackend

    from rustyasg.core.reference import ReferenceBackend

    if "wgpu" not in plugin_names():
        register_plugin(plugin, "wgpu")
    register_backend_instance("wgpu", WgpuBackend())
    register_backend_instance("reference", ReferenceBackend())  # the tests compare against it
    try:  # the cpu backend too where numba is there: some wgpu tests compare with it bit for bit
        import rustyasg.cpu.plugin as cpu_plugin
        from rustyasg.cpu.backend import CpuBackend
    except ImportError:
        return
    if "cpu" not in plugin_names():
        register_plugin(cpu_plugin, "cpu")
    register_backend_instance("cpu", CpuBackend())


def rustyasg_model(cfg, seed: int = 0):
    """(model, step function builder) with rustyasg.nn."""
    import rustyasg.core as rg
    import rustyasg.nn as nn
    from rustyasg.nn import optim
    from rustyasg.nn.zoo import GPT, GPTConfig

    if cfg["kind"] == "mlp":
        s = cfg["sizes"]
        layers = []
        for k, (a, b) in enumerate(zip(s[:-1], s[1:])):
            layers.append(nn.Linear(a, b))
            if k < len(s) - 2:
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers)

        def build(backend, precision=None):
            x, y = rg.input(("B", s[0]), name="x"), rg.input(("B",), "int64", name="y")
            loss = nn.cross_entropy(model(x), y)
            opt = optim.Adam(model.parameters(), lr=cfg["lr"])
            return rg.function([x, y], loss, updates=opt.updates(loss), backend=backend, **_precision(precision))
        return model, build
    if cfg["kind"] == "resnet":
        from rustyasg.nn import zoo

        model = zoo.resnet18(num_classes=cfg["classes"])

        def build(backend, precision=None):
            x = rg.input(("B", 3, cfg["image"], cfg["image"]), name="x")
            y = rg.input(("B",), "int64", name="y")
            loss = nn.cross_entropy(model(x), y)
            opt = optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9)
            return rg.function([x, y], loss, updates=opt.updates(loss), backend=backend, **_precision(precision))
        return model, build

    gcfg = GPTConfig(vocab_size=cfg["vocab"], block_size=cfg["T"], n_layer=cfg["layers"], n_head=cfg["heads"],
                     n_embd=cfg["d"], dropout=0.0, attention=cfg.get("attention", "composed"))
    model = GPT(gcfg, seed=seed)

    def build(backend, precision=None):
        idx = rg.input(("B", cfg["T"]), "int64", name="idx")
        tgt = rg.input(("B", cfg["T"]), "int64", name="tgt")
        loss = GPT.loss(model(idx), tgt)
        opt = optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=WEIGHT_DECAY)
        return rg.function([idx, tgt], loss, updates=opt.updates(loss), backend=backend, **_precision(precision))
    return model, build


def _precision(precision):
    """``rg.function`` keywords for a mixed-precision request (none for full precision)."""
    return {} if precision in (None, "fp32") else {"precision": precision}


def batches(cfg, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    if cfg["kind"] == "mlp":
        s = cfg["sizes"]
        return [(rng.standard_normal((cfg["batch"], s[0])).astype(np.float32),
                 rng.integers(0, s[-1], cfg["batch"]).astype(np.int64)) for _ in range(n)]
    if cfg["kind"] == "resnet":
        shape = (cfg["batch"], 3, cfg["image"], cfg["image"])
        return [(rng.standard_normal(shape).astype(np.float32),
                 rng.integers(0, cfg["classes"], cfg["batch"]).astype(np.int64)) for _ in range(n)]
    out = []
    for _ in range(n):
        seq = rng.integers(0, cfg["vocab"], (cfg["batch"], cfg["T"] + 1)).astype(np.int64)
        out.append((np.ascontiguousarray(seq[:, :-1]), np.ascontiguousarray(seq[:, 1:])))
    return out


# --- torch side ----------------------------------------------------------------------------------
def torch_model(cfg, state: dict, device: str = "cuda", mode: str = "fp32"):
    """The torch twin of ``rustyasg_model`` loaded with ``state`` (a rustyasg state dict);
    ``mode`` ``bf16``/``fp16`` runs the forward pass under autocast."""
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F

    if cfg["kind"] == "mlp":
        s = cfg["sizes"]
        layers = []
        for k, (a, b) in enumerate(zip(s[:-1], s[1:])):
            layers.append(tnn.Linear(a, b))
            if k < len(s) - 2:
                layers.append(tnn.ReLU())
        model = tnn.Sequential(*layers)

        def loss_fn(x, y):
            return F.cross_entropy(model(x), y)
    elif cfg["kind"] == "resnet":
        from torch_resnet import torch_resnet18  # benchmarks/ is on the suite's path

        model = torch_resnet18(cfg["classes"])

        def loss_fn(x, y):
            return F.cross_entropy(model(x), y)
    else:
        d, h, T = cfg["d"], cfg["heads"], cfg["T"]

        from torch_gpt import torch_gpt  # benchmarks/ is on the suite's path

        model = torch_gpt(cfg["vocab"], d, h, cfg["layers"], T)

        def loss_fn(idx, tgt):
            logits = model(idx)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))

    own = model.state_dict()
    if "lm_head.weight" in own and "lm_head.weight" not in state:  # tied to the token embedding
        state = {**state, "lm_head.weight": state["transformer.wte.weight"]}
    state = {**{k: np.zeros((), np.int64) for k in own if k.endswith("num_batches_tracked")}, **state}
    missing = [k for k in own if k not in state]
    if missing:
        raise KeyError(f"torch twin: parameters {missing} not in the rustyasg state dict")
    model.load_state_dict({k: torch.from_numpy(np.asarray(state[k], own[k].numpy().dtype)) for k in own})
    model = model.to(device)
    params = list(model.parameters())
    if cfg["kind"] == "mlp":
        opt = torch.optim.Adam(params, lr=cfg["lr"])
    elif cfg["kind"] == "resnet":
        opt = torch.optim.SGD(params, lr=cfg["lr"], momentum=0.9)
    else:
        opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=WEIGHT_DECAY)

    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
    scaler = torch.amp.GradScaler("cuda") if mode == "fp16" else None

    def step(*batch):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=autocast, enabled=autocast is not None):
            loss = loss_fn(*batch)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return loss
        loss.backward()
        opt.step()
        return loss

    return step


# --- timing --------------------------------------------------------------------------------------
def time_rustyasg(step: Callable, data, warmup: int, steps: int):
    import rustyasg.core as rg  # noqa: F401

    t0 = time.perf_counter()
    first = float(step(*data[0]))
    compile_s = time.perf_counter() - t0
    losses = [first] + [float(step(*data[i % len(data)])) for i in range(1, warmup)]
    be = step.backend
    t0 = time.perf_counter()
    handle = None
    for i in range(steps):
        handle = step(*data[(warmup + i) % len(data)], fetch=False)
    last = float(be.to_host(handle))
    seconds = (time.perf_counter() - t0) / steps
    return {"ms": seconds * 1e3, "compile_s": compile_s, "losses": losses, "last_loss": last}


def time_torch(step: Callable, data, warmup: int, steps: int, device: str = "cuda"):
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    dev = [tuple(torch.from_numpy(a).to(device) for a in b) for b in data]
    losses = [float(step(*dev[i % len(dev)])) for i in range(warmup)]
    sync()
    t0 = time.perf_counter()
    for i in range(steps):
        loss = step(*dev[(warmup + i) % len(dev)])
    sync()
    seconds = (time.perf_counter() - t0) / steps
    return {"ms": seconds * 1e3, "losses": losses, "last_loss": float(loss)}


def run_workload(name: str, warmup: int = 3, steps: int = 20, backend: str = "wgpu", with_torch: bool = True,
                 device: str = "cuda", overrides: dict | None = None, precision: str | None = None,
                 torch_modes: tuple = ()):
    """One workload: rustyasg-wgpu and torch.cuda step times, first losses, launch counts.

    ``torch_modes`` (``tf32``, ``bf16``, ``fp16``) adds torch anchors beside its fp32 run."""
    ensure_backend()
    cfg = {**WORKLOADS[name], **(overrides or {})}
    model, build = rustyasg_model(cfg)
    state = {k: np.array(v) for k, v in model.state_dict().items()}
    data = batches(cfg, 8)
    step = build(backend, precision)
    out = {"workload": name, "config": {k: v for k, v in cfg.items()}, "precision": precision or "fp32"}
    out["rustyasg"] = time_rustyasg(step, data, warmup, steps)
    exe = step.compile(*data[0])
    out["rustyasg"]["plan"] = exe.memory_report()
    out["rustyasg"]["launches"] = len(getattr(exe, "launches", ()))  # kernel dispatches per step
    if with_torch:
        import torch

        for mode in torch_modes:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
            out[f"torch_{mode}"] = time_torch(torch_model(cfg, state, device, mode), data, warmup, steps, device)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        out["torch"] = time_torch(torch_model(cfg, state, device), data, warmup, steps, device)
        out["ratio"] = out["rustyasg"]["ms"] / out["torch"]["ms"]
        a, b = np.array(out["rustyasg"]["losses"]), np.array(out["torch"]["losses"])
        out["first_losses_max_rel_diff"] = float(np.max(np.abs(a - b) / np.abs(b)))
    return out
