"""PyTorch checkpoints read without torch: real ``torch.save`` files (zip and legacy), refused payloads,
name mappings onto the zoo (torchvision ResNet, nanoGPT, timm ViT), and ``rustyasg convert`` in an
environment where ``import torch`` fails."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import torch
import torch.nn.functional as TF

import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.nn import zoo
from rustyasg.nn.name_mapping import load_state_dict_from
from rustyasg.nn.serialization import CheckpointError
from rustyasg.nn.torch_checkpoint import UnsafeCheckpointError, load_torch_checkpoint, read_torch_checkpoint

FORMATS = {"zip": {}, "legacy": {"_use_new_zipfile_serialization": False}}


def _tensors():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=g, dtype=torch.float64)
    shared = torch.arange(10, dtype=torch.int32)
    return OrderedDict([
        ("f64", base), ("f32", base.float()), ("f16", base.half()), ("bf16", base.bfloat16()),
        ("i64", torch.tensor([-(2 ** 62), 0, 2 ** 62])), ("i32", shared), ("i16", torch.tensor([-3, 7], dtype=torch.int16)),
        ("i8", torch.tensor([-128, 127], dtype=torch.int8)), ("u8", torch.tensor([0, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True])), ("c64", torch.complex(base[0].float(), base[1].float())),
        ("scalar", torch.tensor(2.5)), ("empty", torch.zeros(0, 3)),
        ("transposed", base.float().t()), ("strided", base.float()[::2, 1::3]), ("view_of_shared", shared[3:8]),
        ("special", torch.tensor([float("inf"), -float("inf"), float("nan"), -0.0])),
    ])


def _expected(t: torch.Tensor) -> np.ndarray:
    return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_dtype_and_layout_matches_torch(fmt, tmp_path):
    tensors = _tensors()
    path = tmp_path / "all.pt"
    torch.save(tensors, path, **FORMATS[fmt])
    loaded = load_torch_checkpoint(path)
    assert list(loaded) == list(tensors)
    for name, t in tensors.items():
        want = _expected(t)
        got = loaded[name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert got.flags.c_contiguous and got.flags.writeable, name


@pytest.mark.parametrize("fmt", FORMATS)
def test_training_checkpoint_structure_is_kept(fmt, tmp_path):
    """A nanoGPT-style checkpoint: model, optimizer state, config, counters, a Parameter, numpy scalars."""
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "iter_num": 7,
            "best_val_loss": torch.tensor(1.25), "config": {"lr": 1e-3, "name": "run", "tags": {"a", "b"},
                                                            "raw": b"\x00\xff", "eps": np.float64(1e-8)},
            "param": torch.nn.Parameter(torch.ones(2))}
    path = tmp_path / "ckpt.pt"
    torch.save(ckpt, path, **FORMATS[fmt])
    obj = read_torch_checkpoint(path)
    assert obj["iter_num"] == 7 and float(obj["best_val_loss"]) == 1.25
    assert obj["config"]["tags"] == {"a", "b"} and obj["config"]["raw"] == b"\x00\xff"
    assert obj["config"]["eps"] == 1e-8 and obj["config"]["name"] == "run"
    np.testing.assert_array_equal(obj["param"], np.ones(2, np.float32))
    np.testing.assert_array_equal(obj["optimizer"]["state"][0]["exp_avg"], opt.state[model.weight]["exp_avg"].numpy())
    assert obj["optimizer"]["param_groups"][0]["lr"] == opt.param_groups[0]["lr"]
    assert obj["model"]._metadata[""]["version"] == 1  # the OrderedDict's attribute survives
    state = load_torch_checkpoint(path)  # finds the "model" entry
    assert list(state) == ["weight", "bias"]
    np.testing.assert_array_equal(state["weight"], model.weight.detach().numpy())
    with pytest.raises(CheckpointError, match="no entry 'weights'.*'model', 'optimizer'"):
        load_torch_checkpoint(path, key="weights")
    np.testing.assert_array_equal(load_torch_checkpoint(path, key="optimizer.state.0")["exp_avg_sq"],
                                  opt.state[model.weight]["exp_avg_sq"].numpy())


class _Payload:
    """Runs a shell command when unpickled: what a malicious checkpoint carries."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalPayload:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_malicious_checkpoint_is_refused_and_nothing_runs(fmt, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.ones(2), "extra": _Payload(marker)}, path, **FORMATS[fmt])
    # the payload is real: an unrestricted load runs it
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafeCheckpointError, match=r"refers to the global '(posix|os)\.system'.*never runs code"):
        load_torch_checkpoint(path)
    assert not marker.exists()
    torch.save([_EvalPayload()], tmp_path / "eval.pt", **FORMATS[fmt])
    with pytest.raises(UnsafeCheckpointError, match="'builtins.eval'"):
        read_torch_checkpoint(tmp_path / "eval.pt")


def test_payload_hidden_in_a_hand_made_zip_is_refused(tmp_path):
    """A pickle calling os.system via STACK_GLOBAL (protocol 4) inside a well-formed checkpoint zip."""
    marker = tmp_path / "pwned"
    import pickle

    evil = pickle.dumps(_Payload(marker), protocol=4)
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(1)}, path)
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(path, "w") as z:
        for n, data in entries.items():
            z.writestr(n, evil if n.endswith("data.pkl") else data)
    with pytest.raises(UnsafeCheckpointError, match="system"):
        read_torch_checkpoint(path)
    assert not marker.exists()


def test_damaged_files_give_clear_errors(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"w": torch.arange(1000.0)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_torch_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a"):
        load_torch_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load_torch_checkpoint(tmp_path / "missing.pt")
    import tarfile

    with tarfile.open(tmp_path / "old.tar", "w") as tar:  # PyTorch < 0.4 wrote tar archives
        tar.add(tmp_path / "junk.pt", arcname="storages")
    with pytest.raises(CheckpointError, match="tar checkpoint format of PyTorch < 0.4 is not supported"):
        load_torch_checkpoint(tmp_path / "old.tar")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_torch_checkpoint(tmp_path / "other.zip")
    torch.save({"w": torch.arange(8.0)}, tmp_path / "z.pt")
    with zipfile.ZipFile(tmp_path / "z.pt") as z:
        entries = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(tmp_path / "short.pt", "w") as z:
        for n, d in entries.items():
            z.writestr(n, d[:8] if "/data/" in n else d)
    with pytest.raises(CheckpointError, match="reads past its storage"):
        load_torch_checkpoint(tmp_path / "short.pt")


# --- name mappings onto the zoo -------------------------------------------------------------------
def _torch_resnet():
    import importlib.util

    spec = importlib.util.spec_from_file_location("zoo_twins", Path(__file__).with_name("test_zoo.py"))
    twins = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(twins)
    return twins._randomize_bn(twins.TorchResNet(twins.TorchBasic, (1, 1, 1, 1), (4, 4, 8, 8), 3)).eval()


def test_torchvision_resnet_checkpoint_loads_into_the_zoo(tmp_path):
    theirs = _torch_resnet()
    path = tmp_path / "resnet.pth"
    torch.save(theirs.state_dict(), path)
    ours = zoo.ResNet(zoo.BasicBlock, (1, 1, 1, 1), num_classes=3, widths=(4, 4, 8, 8), small_input=True).eval()
    result = load_state_dict_from(ours, path)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert result.mapping in ("rustyasg", "torchvision")
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    sym = rg.input(x.shape, name="x")
    got = rg.function([sym], ours(sym))(x)
    with torch.no_grad():
        want = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


class _NanoAttn(torch.nn.Module):
    def __init__(self, e, h, t):
        super().__init__()
        self.c_attn, self.c_proj, self.n_head = torch.nn.Linear(e, 3 * e), torch.nn.Linear(e, e), h
        self.register_buffer("bias", torch.tril(torch.ones(t, t)).view(1, 1, t, t))  # nanoGPT's mask buffer

    def forward(self, x):
        n, t, e = x.shape
        q, k, v = (z.view(n, t, self.n_head, -1).transpose(1, 2) for z in self.c_attn(x).split(e, 2))
        return self.c_proj(TF.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(n, t, e))


class _NanoBlock(torch.nn.Module):
    def __init__(self, e, h, t):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = torch.nn.LayerNorm(e), _NanoAttn(e, h, t), torch.nn.LayerNorm(e)
        self.mlp = torch.nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = torch.nn.Linear(e, 4 * e), torch.nn.Linear(4 * e, e)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp.c_proj(TF.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class _NanoGPT(torch.nn.Module):
    """nanoGPT's module tree (model.py): transformer.{wte, wpe, h, ln_f}, tied lm_head, attn.bias buffers."""

    def __init__(self, v=19, t=8, e=16, h=2, n=2):
        super().__init__()
        self.transformer = torch.nn.ModuleDict(dict(
            wte=torch.nn.Embedding(v, e), wpe=torch.nn.Embedding(t, e),
            h=torch.nn.ModuleList([_NanoBlock(e, h, t) for _ in range(n)]), ln_f=torch.nn.LayerNorm(e)))
        self.lm_head = torch.nn.Linear(e, v, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, idx):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.shape[1]))
        for b in self.transformer.h:
            x = b(x)
        return self.lm_head(self.transformer.ln_f(x))


def test_nanogpt_training_checkpoint_loads_with_its_names(tmp_path):
    theirs = _NanoGPT().eval()
    compiled_names = {"_orig_mod." + k: v for k, v in theirs.state_dict().items()}  # torch.compile'd model
    ckpt = {"model": compiled_names, "optimizer": torch.optim.AdamW(theirs.parameters()).state_dict(),
            "model_args": dict(n_layer=2, n_head=2, n_embd=16, block_size=8, bias=True, vocab_size=19),
            "iter_num": 100, "best_val_loss": torch.tensor(2.5), "config": {"dataset": "shakespeare_char"}}
    path = tmp_path / "ckpt.pt"
    torch.save(ckpt, path)
    ours = zoo.GPT(zoo.GPTConfig(vocab_size=19, block_size=8, n_layer=2, n_head=2, n_embd=16)).eval()
    result = load_state_dict_from(ours, path, key="model")
    assert result.mapping == "nanogpt" and result.missing_keys == [] and result.unexpected_keys == []
    ids = np.random.default_rng(1).integers(0, 19, (2, 8))
    sym = rg.input(ids.shape, "int64", name="ids")
    got = rg.function([sym], ours(sym))(ids)
    with torch.no_grad():
        want = theirs(torch.tensor(ids)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


class _TimmBlock(torch.nn.Module):
    def __init__(self, d, h, m):
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(d, eps=1e-6), torch.nn.LayerNorm(d, eps=1e-6)
        self.attn = torch.nn.Module()
        self.attn.qkv, self.attn.proj, self.heads = torch.nn.Linear(d, 3 * d), torch.nn.Linear(d, d), h
        self.mlp = torch.nn.Module()
        self.mlp.fc1, self.mlp.fc2 = torch.nn.Linear(d, m), torch.nn.Linear(m, d)

    def forward(self, x):
        n, t, d = x.shape
        qkv = self.attn.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = TF.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(n, t, d)
        x = x + self.attn.proj(y)
        return x + self.mlp.fc2(TF.gelu(self.mlp.fc1(self.norm2(x))))


class _TimmViT(torch.nn.Module):
    """timm's VisionTransformer names: patch_embed.proj, cls_token, pos_embed, blocks.N.{attn.qkv, mlp.fc1}, norm, head."""

    def __init__(self, image=8, patch=4, d=16, depth=2, h=2, m=32, classes=5):
        super().__init__()
        self.patch_embed = torch.nn.Module()
        self.patch_embed.proj = torch.nn.Conv2d(3, d, patch, patch)
        self.cls_token = torch.nn.Parameter(torch.randn(1, 1, d))
        self.pos_embed = torch.nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, d))
        self.blocks = torch.nn.Sequential(*[_TimmBlock(d, h, m) for _ in range(depth)])
        self.norm, self.head = torch.nn.LayerNorm(d, eps=1e-6), torch.nn.Linear(d, classes)

    def forward(self, x):
        t = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(t), -1, -1), t], 1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


def test_timm_vit_checkpoint_loads_and_reports_keys(tmp_path):
    theirs = _TimmViT().eval()
    path = tmp_path / "vit.pth"
    torch.save(theirs.state_dict(), path)
    ours = zoo.ViT(image_size=8, patch_size=4, num_classes=5, dim=16, depth=2, heads=2, mlp_dim=32).eval()
    result = load_state_dict_from(ours, path)
    assert result == ([], [], "timm")
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    sym = rg.input(x.shape, name="x")
    got = rg.function([sym], ours(sym))(x)
    with torch.no_grad():
        want = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    # missing and unexpected keys are reported like load_state_dict, strict or not
    state = load_torch_checkpoint(path)
    del state["head.bias"]
    state["blocks.0.ls1.gamma"] = np.ones(16, np.float32)
    with pytest.raises(nn.StateDictError, match=r"missing keys: head\.bias; unexpected keys: blocks\.0\.ls1\.gamma"):
        load_state_dict_from(ours, state, mapping="timm")
    result = load_state_dict_from(ours, state, mapping="timm", strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["blocks.0.ls1.gamma"]
    state["head.bias"] = np.zeros(7, np.float32)
    with pytest.raises(nn.StateDictError, match=r"head\.bias is \(7,\) in the checkpoint but \(5,\)"):
        load_state_dict_from(ours, state, strict=False)
    with pytest.raises(ValueError, match="no mapping 'keras'.*timm"):
        load_state_dict_from(ours, state, mapping="keras")


# --- the converter, with torch and without it -----------------------------------------------------------
def _cli(*args, env=None, python=sys.executable, flags=()):
    return subprocess.run([python, *flags, "-m", "rustyasg.core.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_convert_command_writes_safetensors_torch_reads(tmp_path):
    tensors = _tensors()
    del tensors["c64"]  # SafeTensors has no complex dtype
    src, dst = tmp_path / "w.pt", tmp_path / "w.safetensors"
    torch.save({"state_dict": tensors, "epoch": 3}, src)
    run = _cli("convert", str(src), str(dst))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(tensors)} tensors" in run.stdout
    back = safetensors.numpy.load_file(dst)
    for name, t in tensors.items():
        np.testing.assert_array_equal(back[name], _expected(t), err_msg=name)
    marker = tmp_path / "pwned"
    torch.save({"w": _Payload(marker)}, tmp_path / "evil.pt")
    dst.write_bytes(b"last good copy")
    run = _cli("convert", str(tmp_path / "evil.pt"), str(dst))
    assert run.returncode == 2 and "refused" in run.stdout and "system" in run.stdout
    assert not marker.exists() and dst.read_bytes() == b"last good copy"


def _requirement_closure(md, roots) -> list:
    """The distributions ``roots`` declare (transitively, extras left out): what a plain install pulls in."""
    from packaging.requirements import Requirement

    seen, todo = [], list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        for line in md.distribution(name).requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _torchless_path(tmp_path: Path) -> str:
    """A directory of links to only what rustyasg-core + rustyasg-nn declare (numpy, safetensors, pluggy,
    stevedore, ml_dtypes, ... and their metadata), used as the whole import path of a ``python -S`` process."""
    import importlib.metadata as md

    import rustyasg.core
    import rustyasg.nn

    site = tmp_path / "site"
    site.mkdir()
    for dist in _requirement_closure(md, ("rustyasg-core", "rustyasg-nn")):
        d = md.distribution(dist)
        for f in d.files or []:
            top = f.parts[0]
            if top.endswith(".dist-info") or (top != ".." and not top.endswith(".pth") and "/" not in top
                                              and not top.startswith("__")):
                src = Path(d.locate_file(top))
                if src.exists() and not (site / top).exists():
                    (site / top).symlink_to(src)
    roots = {str(Path(p).parents[1]) for p in list(rustyasg.core.__path__) + list(rustyasg.nn.__path__)}
    return os.pathsep.join([str(site), *sorted(roots)])


def test_convert_runs_where_torch_cannot_be_imported(tmp_path):
    theirs = _TimmViT().eval()
    src, dst = tmp_path / "vit.pth", tmp_path / "vit.safetensors"
    torch.save({"model": theirs.state_dict(), "epoch": 1}, src, _use_new_zipfile_serialization=False)
    env = {"PYTHONPATH": _torchless_path(tmp_path), "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "NUMBA_CACHE_DIR": str(tmp_path)}
    flags = ("-S", "-s")  # no site-packages: only PYTHONPATH
    probe = subprocess.run([sys.executable, *flags, "-c", "import torch"], capture_output=True, text=True, env=env)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    run = _cli("convert", str(src), str(dst), "--key", "model", env=env, flags=flags)
    assert run.returncode == 0, run.stdout + run.stderr
    check = subprocess.run([sys.executable, *flags, "-c",
                            "import sys, rustyasg.nn; print('torch' in sys.modules)"],
                           capture_output=True, text=True, env=env)
    assert check.stdout.strip() == "False", check.stderr
    back = safetensors.numpy.load_file(dst)
    ref = theirs.state_dict()
    assert list(back) == list(ref) or sorted(back) == sorted(ref)
    for k, v in ref.items():
        np.testing.assert_array_equal(back[k], v.numpy(), err_msg=k)
    ours = zoo.ViT(image_size=8, patch_size=4, num_classes=5, dim=16, depth=2, heads=2, mlp_dim=32)
    assert load_state_dict_from(ours, dst).mapping == "timm"
