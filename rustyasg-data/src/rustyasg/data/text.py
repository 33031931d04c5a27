"""Text: character- and byte-level tokenizers, ``tokenizer.json`` files, and language-model windows.

All tokenizers share one small interface: ``encode(text) -> int64 array``, ``decode(ids) -> str``
and ``vocab_size``. :class:`TokenWindowDataset` turns a token stream into ``(x, y)`` training
pairs where ``y`` is ``x`` shifted by one token (next-token prediction).

>>> tok = CharTokenizer.from_text("hello world")
>>> ids = tok.encode("hello")
>>> tok.decode(ids), tok.vocab_size
('hello', 8)
>>> x, y = TokenWindowDataset(ids, block_size=3)[0]
>>> tok.decode(x), tok.decode(y)
('hel', 'ell')
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .datasets import DatasetBase, normalize_index, normalize_indices
from .errors import MalformedDataError, MissingDependencyError, TruncatedDataError
from .formats._io import require_file

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "ByteTokenizer",
    "HFTokenizer",
    "load_tokenizer_json",
    "read_text",
    "TokenWindowDataset",
]


@runtime_checkable
class Tokenizer(Protocol):
    """What every tokenizer offers: ``encode``, ``decode`` and ``vocab_size``.

    >>> isinstance(ByteTokenizer(), Tokenizer)
    True
    """

    vocab_size: int

    def encode(self, text: str) -> np.ndarray: ...

    def decode(self, ids: Any) -> str: ...


def _codepoints(text: str) -> np.ndarray:
    # UTF-32 gives one fixed-width code unit per character: vectorised, no Python loop per char.
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def _as_ids(ids: Any, vocab_size: int, who: str) -> np.ndarray:
    arr = np.asarray(ids).reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{who}.decode expects integer ids, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        bad = arr[(arr < 0) | (arr >= vocab_size)][0]
        raise ValueError(f"{who}.decode: id {bad} is outside the vocabulary [0, {vocab_size})")
    return arr


class CharTokenizer:
    """One id per character of a fixed vocabulary (ids follow the vocabulary's order).

    Unknown characters raise, unless ``unk`` names a vocabulary character to map them to.

    >>> tok = CharTokenizer("abc", unk="a")
    >>> tok.encode("cab?").tolist(), tok.decode([2, 1])
    ([2, 0, 1, 0], 'cb')
    """

    def __init__(self, vocab: str | Sequence[str], unk: str | None = None):
        chars = list(vocab)
        if any(len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer vocabulary entries must be single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer vocabulary has duplicate characters")
        if unk is not None and unk not in chars:
            raise ValueError(f"unk character {unk!r} is not in the vocabulary")
        self.chars = chars
        self.unk = unk
        self.vocab_size = len(chars)
        points = _codepoints("".join(chars))
        self._order = np.argsort(points)
        self._sorted_points = points[self._order]
        self._itos = np.array(chars, dtype="<U1")

    @classmethod
    def from_text(cls, text: str, unk: str | None = None) -> "CharTokenizer":
        """Vocabulary = the sorted distinct characters of ``text`` (the nanoGPT convention)."""
        return cls(sorted(set(text)), unk=unk)

    def encode(self, text: str) -> np.ndarray:
        """int64 ids of the characters of ``text``."""
        points = _codepoints(text)
        pos = np.searchsorted(self._sorted_points, points)
        pos_clipped = np.minimum(pos, len(self._sorted_points) - 1)
        known = self._sorted_points[pos_clipped] == points if len(self._sorted_points) else np.zeros(len(points), bool)
        ids = self._order[pos_clipped].astype(np.int64) if len(points) else np.empty(0, np.int64)
        if not known.all():
            if self.unk is None:
                first = int(np.flatnonzero(~known)[0])
                raise ValueError(
                    f"character {text[first]!r} at position {first} is not in the vocabulary (pass unk=...)"
                )
            ids[~known] = self.chars.index(self.unk)
        return ids

    def decode(self, ids: Any) -> str:
        """The string for ``ids``."""
        return "".join(self._itos[_as_ids(ids, self.vocab_size, "CharTokenizer")].tolist())

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (``CharTokenizer.load`` reads it back)."""
        Path(path).write_text(json.dumps({"type": "char", "vocab": self.chars, "unk": self.unk}), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CharTokenizer":
        """Read a vocabulary written by :meth:`save`."""
        expected = 'a JSON object {"type": "char", "vocab": [...], "unk": ...}'
        text = read_text(path)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            kind = TruncatedDataError if e.pos >= len(text.rstrip()) else MalformedDataError
            raise kind(path, f"invalid JSON ({e})", expected) from None
        if not isinstance(obj, dict) or obj.get("type") != "char" or not isinstance(obj.get("vocab"), list):
            raise MalformedDataError(path, "is not a character vocabulary", expected)
        return cls(obj["vocab"], unk=obj.get("unk"))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class ByteTokenizer:
    """UTF-8 bytes as ids (vocabulary of 256): any text round-trips, nothing is unknown.

    >>> ByteTokenizer().encode("é").tolist(), ByteTokenizer().decode([104, 105])
    ([195, 169], 'hi')
    """

    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def decode(self, ids: Any, errors: str = "replace") -> str:
        """Bytes back to text; a cut-off multi-byte character becomes U+FFFD by default."""
        return _as_ids(ids, 256, "ByteTokenizer").astype(np.uint8).tobytes().decode("utf-8", errors=errors)

    def __repr__(self) -> str:
        return "ByteTokenizer()"


class HFTokenizer:
    """A ``tokenizers.Tokenizer`` (e.g. loaded from ``tokenizer.json``) with numpy in and out.

    >>> from tokenizers import Tokenizer, models, pre_tokenizers
    >>> rust = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    >>> rust.pre_tokenizer = pre_tokenizers.Whitespace()
    >>> tok = HFTokenizer(rust)
    >>> ids = tok.encode("hello big world")
    >>> ids, [tok.id_to_token(i) for i in ids], tok.vocab_size
    (array([1, 0, 2]), ['hello', '[UNK]', 'world'], 3)
    >>> tok.decode(ids)
    'hello [UNK] world'
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str, add_special_tokens: bool = True) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids, dtype=np.int64)

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = True) -> list[np.ndarray]:
        """Encode many texts at once (the Rust library parallelises this)."""
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return [np.asarray(e.ids, dtype=np.int64) for e in encodings]

    def decode(self, ids: Any, skip_special_tokens: bool = True) -> str:
        ids = _as_ids(ids, self.vocab_size, "HFTokenizer")
        return self.tokenizer.decode(ids.tolist(), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self.tokenizer.id_to_token(int(token_id))

    def __repr__(self) -> str:
        return f"HFTokenizer(vocab_size={self.vocab_size})"


def load_tokenizer_json(path: str | os.PathLike) -> HFTokenizer:
    """Load a Hugging Face ``tokenizer.json`` with the ``tokenizers`` library.

    >>> import os, tempfile
    >>> from tokenizers import Tokenizer, models, pre_tokenizers
    >>> rust = Tokenizer(models.WordLevel({"[UNK]": 0, "the": 1, "cat": 2, "sat": 3}, unk_token="[UNK]"))
    >>> rust.pre_tokenizer = pre_tokenizers.Whitespace()
    >>> path = os.path.join(tempfile.mkdtemp(), "tokenizer.json")
    >>> rust.save(path)
    >>> tok = load_tokenizer_json(path)
    >>> tok, tok.encode("the cat sat").tolist(), tok.decode([2, 3])
    (HFTokenizer(vocab_size=4), [1, 2, 3], 'cat sat')
    """
    expected = "a tokenizer.json written by the tokenizers library"
    p = require_file(path, expected)
    try:
        from tokenizers import Tokenizer as _RustTokenizer
    except ImportError:
        raise MissingDependencyError("tokenizers", f"loading {p.name}") from None
    try:
        return HFTokenizer(_RustTokenizer.from_file(str(p)))
    except Exception as e:  # the Rust side raises plain Exception with a serde message
        message = str(e)
        kind = TruncatedDataError if "EOF while parsing" in message else MalformedDataError
        raise kind(p, f"cannot be loaded ({message})", expected) from None


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The content of a text file, with a clear error if it is missing or not valid ``encoding``.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "input.txt"
    >>> _ = path.write_text("First Citizen: Before we proceed any further, hear me speak.")
    >>> read_text(path)[:5]
    'First'
    """
    p = require_file(path, f"a {encoding} text file")
    try:
        return p.read_bytes().decode(encoding)
    except UnicodeDecodeError as e:
        raise MalformedDataError(
            p, f"byte {e.start} is not valid {encoding} ({e.reason})", f"{encoding} text"
        ) from None


class TokenWindowDataset(DatasetBase):
    """``(x, y)`` windows of a token stream for next-token prediction: ``y[t] = x[t + 1]``.

    Window ``i`` starts at ``i * stride`` (default stride: ``block_size``, non-overlapping);
    ``get_batch`` builds a whole batch with one fancy-index.

    >>> ds = TokenWindowDataset(np.arange(10), block_size=4, stride=2)
    >>> len(ds), ds[1][0].tolist(), ds[1][1].tolist()
    (3, [2, 3, 4, 5], [3, 4, 5, 6])
    """

    def __init__(self, tokens: Any, block_size: int, stride: int | None = None):
        self.tokens = np.asarray(tokens)
        if self.tokens.ndim != 1:
            raise ValueError(f"tokens must be 1-D, got shape {self.tokens.shape}")
        self.block_size = int(block_size)
        self.stride = int(stride) if stride is not None else self.block_size
        if self.block_size < 1 or self.stride < 1:
            raise ValueError("block_size and stride must be positive")
        span = len(self.tokens) - self.block_size - 1
        self._length = span // self.stride + 1 if span >= 0 else 0
        self._offsets = np.arange(self.block_size + 1)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        start = normalize_index(index, self._length) * self.stride
        window = self.tokens[start : start + self.block_size + 1]
        return window[:-1], window[1:]

    def get_batch(self, indices: Any) -> tuple[np.ndarray, np.ndarray]:
        starts = normalize_indices(indices, self._length) * self.stride
        windows = self.tokens[starts[:, None] + self._offsets]
        return windows[:, :-1], windows[:, 1:]
