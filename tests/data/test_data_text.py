import json

import numpy as np
import pytest

from rustyasg.data import (
    ByteTokenizer,
    CharTokenizer,
    DataLoader,
    MalformedDataError,
    MissingDataFileError,
    MissingDependencyError,
    TokenWindowDataset,
    Tokenizer,
    TruncatedDataError,
    load_tokenizer_json,
    read_text,
)

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\nAll: Speak, speak. — ünïcödé ✓\n"


def test_char_tokenizer_round_trip_and_vocabulary(tmp_path):
    tok = CharTokenizer.from_text(TEXT)
    assert tok.chars == sorted(set(TEXT)) and tok.vocab_size == len(set(TEXT))
    ids = tok.encode(TEXT)
    assert ids.dtype == np.int64 and len(ids) == len(TEXT)
    assert tok.decode(ids) == TEXT
    assert ids.tolist() == [tok.chars.index(c) for c in TEXT]  # ids follow the vocabulary order
    with pytest.raises(ValueError, match="'#' at position 2"):
        tok.encode("ea#")
    with_unk = CharTokenizer(tok.chars, unk=" ")
    assert with_unk.decode(with_unk.encode("a#e")) == "a e"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
    tok.save(tmp_path / "vocab.json")
    assert CharTokenizer.load(tmp_path / "vocab.json").encode(TEXT).tolist() == ids.tolist()
    (tmp_path / "bad.json").write_text('{"type": "char", "vocab": ["a"')
    with pytest.raises(TruncatedDataError, match="bad.json"):
        CharTokenizer.load(tmp_path / "bad.json")


def test_byte_tokenizer():
    tok = ByteTokenizer()
    ids = tok.encode(TEXT)
    assert ids.tolist() == list(TEXT.encode("utf-8")) and tok.vocab_size == 256
    assert tok.decode(ids) == TEXT
    assert tok.decode(ids[:-3]).endswith("\ufffd")  # a cut multi-byte char is replaced, not an error
    assert isinstance(tok, Tokenizer) and isinstance(CharTokenizer("ab"), Tokenizer)


def _train_tokenizer_json(path):
    from tokenizers import Tokenizer as RustTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    rust = RustTokenizer(models.BPE(unk_token="[UNK]"))
    rust.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["[UNK]", "[PAD]"], show_progress=False)
    rust.train_from_iterator([TEXT] * 20, trainer=trainer)
    rust.save(str(path))
    return rust


def test_tokenizer_json_through_the_tokenizers_library(tmp_path):
    path = tmp_path / "tokenizer.json"
    reference = _train_tokenizer_json(path)
    assert json.loads(path.read_text())["model"]["type"] == "BPE"
    tok = load_tokenizer_json(path)
    sentence = "Before we proceed, speak."
    ids = tok.encode(sentence)
    assert ids.dtype == np.int64 and ids.tolist() == reference.encode(sentence).ids
    assert tok.decode(ids) == reference.decode(reference.encode(sentence).ids)
    assert tok.vocab_size == reference.get_vocab_size() and tok.token_to_id("[PAD]") == 1
    assert [a.tolist() for a in tok.encode_batch(["hear me", "speak"])] == [
        reference.encode("hear me").ids, reference.encode("speak").ids]  # fmt: skip


def test_tokenizer_json_errors(tmp_path, monkeypatch):
    with pytest.raises(MissingDataFileError, match="tokenizer.json"):
        load_tokenizer_json(tmp_path / "tokenizer.json")
    good = tmp_path / "good.json"
    _train_tokenizer_json(good)
    cut = tmp_path / "cut.json"
    cut.write_text(good.read_text()[:200])
    with pytest.raises(TruncatedDataError, match="cut.json"):
        load_tokenizer_json(cut)
    other = tmp_path / "other.json"
    other.write_text('{"hello": "world"}')
    with pytest.raises(MalformedDataError, match="other.json"):
        load_tokenizer_json(other)
    import builtins

    real_import = builtins.__import__

    def no_tokenizers(name, *args, **kwargs):
        if name == "tokenizers":
            raise ImportError("No module named 'tokenizers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tokenizers)
    with pytest.raises(MissingDependencyError, match="pip install tokenizers"):
        load_tokenizer_json(good)


def test_read_text(tmp_path):
    (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")
    assert read_text(tmp_path / "a.txt") == TEXT
    (tmp_path / "b.txt").write_bytes(b"ok \xff\xfe")
    with pytest.raises(MalformedDataError, match="byte 3 is not valid utf-8"):
        read_text(tmp_path / "b.txt")


def test_token_windows_for_next_token_prediction():
    tokens = np.arange(100, 125)
    ds = TokenWindowDataset(tokens, block_size=8)
    assert len(ds) == 3  # windows need block_size + 1 tokens: starts 0, 8, 16
    x, y = ds[2]
    assert x.tolist() == list(range(116, 124)) and y.tolist() == list(range(117, 125))
    xb, yb = ds.get_batch([2, 0])
    np.testing.assert_array_equal(xb, np.stack([ds[2][0], ds[0][0]]))
    np.testing.assert_array_equal(yb[:, :-1], xb[:, 1:])
    overlapping = TokenWindowDataset(tokens, block_size=8, stride=1)
    assert len(overlapping) == 25 - 8
    batches = list(DataLoader(overlapping, batch_size=5, shuffle=True, seed=0))
    assert sum(len(b[0]) for b in batches) == 17
    for xb, yb in batches:
        np.testing.assert_array_equal(yb, xb + 1)
    assert len(TokenWindowDataset(tokens[:5], block_size=8)) == 0
