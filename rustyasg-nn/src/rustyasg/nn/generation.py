"""Text generation for decoder models (GPT, Llama): greedy, temperature, top-k and top-p sampling.

A :class:`Generator` compiles two steps for a batch size and a maximum length and reuses
them for every token: a *prefill* step that runs the (right-padded) prompt window and fills
the key/value cache, and a *decode* step that takes one token and its position. The cache
lives on the backend as state of both steps (see :mod:`rustyasg.nn.kv_cache`); only the
next-token logits ``(N, vocab)`` come back to the host, where the choice is made with the
same rules, in the same order, as ``transformers``' logits processors (temperature, then
top-k, then top-p, then sampling from the softmax) with a seeded numpy generator.

Example:
    >>> import numpy as np
    >>> from rustyasg.nn.zoo import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=8)).eval()
    >>> gen = Generator(model, batch_size=1, max_len=16, backend="reference")
    >>> out = gen.generate(np.array([[1, 2, 3]]), max_new_tokens=4)
    >>> out.shape, gen.compiles
    ((1, 7), 2)
"""

from __future__ import annotations

import weakref
from typing import Optional

import numpy as np

import rustyasg.core as rg

from .module import Module


def process_logits(logits: np.ndarray, temperature: float = 1.0, top_k: Optional[int] = None,
                   top_p: Optional[float] = None) -> np.ndarray:
    """Float64 logits ``(N, V)`` after temperature, top-k and top-p filtering (removed entries are ``-inf``).

    The rules of ``transformers``' ``TemperatureLogitsWarper``, ``TopKLogitsWarper`` (ties with the
    k-th value kept) and ``TopPLogitsWarper`` (the smallest set whose probability reaches
    ``top_p``, at least one token).

    >>> process_logits(np.log([[0.5, 0.3, 0.2]]), top_p=0.7).round(2).tolist()
    [[-0.69, -1.2, -inf]]
    """
    out = np.asarray(logits, np.float64)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature} (use do_sample=False for greedy)")
    if temperature != 1.0:
        out = out / temperature
    if top_k is not None and top_k > 0:
        k = min(int(top_k), out.shape[-1])
        kth = np.partition(out, -k, axis=-1)[:, -k][:, None]
        out = np.where(out < kth, -np.inf, out)
    if top_p is not None and top_p < 1.0:
        if not 0.0 <= top_p <= 1.0:
            raise ValueError(f"top_p must be in [0, 1], got {top_p}")
        order = np.argsort(out, axis=-1, kind="stable")  # ascending, as transformers sorts
        sorted_logits = np.take_along_axis(out, order, axis=-1)
        probs = _softmax(sorted_logits)
        remove_sorted = np.cumsum(probs, axis=-1) <= (1.0 - top_p)
        remove_sorted[:, -1] = False  # keep at least the most likely token
        remove = np.zeros_like(remove_sorted)
        np.put_along_axis(remove, order, remove_sorted, axis=-1)
        out = np.where(remove, -np.inf, out)
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def choose_tokens(logits: np.ndarray, do_sample: bool, rng: np.random.Generator, temperature: float = 1.0,
                  top_k: Optional[int] = None, top_p: Optional[float] = None) -> np.ndarray:
    """The next token of each row: ``argmax`` (greedy), or a draw from the processed distribution.

    >>> choose_tokens(np.array([[0.1, 2.0, 0.3]]), False, np.random.default_rng(0)).tolist()
    [1]
    """
    if not do_sample:
        return np.argmax(logits, axis=-1).astype(np.int64)
    probs = _softmax(process_logits(logits, temperature, top_k, top_p))
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=-1), probs.shape[-1] - 1).astype(np.int64)


class Generator:
    """Compiled prefill and decode steps of a causal LM for ``batch_size`` rows of up to ``max_len`` tokens.

    ``model`` provides ``hidden_states(idx, state)``, ``lm_head`` and ``make_cache(batch, max_len)``
    (the zoo's :class:`~rustyasg.nn.zoo.GPT` and :class:`~rustyasg.nn.zoo.Llama` do). ``compiles``
    counts the compilations of both steps: it stays 2 however many tokens are generated.
    """

    def __init__(self, model: Module, batch_size: int, max_len: int, backend=None):
        self.model, self.batch_size, self.max_len = model, int(batch_size), int(max_len)
        was_training = model.training
        model.eval()
        try:
            if self.max_len < 2:
                raise ValueError(f"Generator: max_len must be >= 2 (a prompt token and a new one), got {max_len}")
            dtype = next((p.dtype for p in model.parameters() if p.dtype.kind == "f"), np.dtype("float32"))
            self.cache = model.make_cache(self.batch_size, self.max_len, dtype)
            # prefill: the prompt right-padded to a window of max_len - 1 tokens (a longer prompt leaves
            # no room for a new token); logits of the last real token
            n, length = self.batch_size, self.max_len - 1
            tokens = rg.input((n, length), "int64", name="tokens")
            last = rg.input((n,), "int64", name="last")  # each row's last prompt position
            state = self.cache.prefill_state()
            hidden = model.hidden_states(tokens, state)
            pick = (rg.arange(length).reshape((1, length)) == last.reshape((n, 1))).astype(hidden.dtype)
            hidden = (hidden * pick.reshape((n, length, 1))).sum(axis=1, keepdims=True)
            self.prefill = rg.function([tokens, last], model.lm_head(hidden).reshape((n, -1)),
                                       updates=state.updates(), backend=backend, name="prefill")
            # decode: one token per row at runtime positions
            token = rg.input((n, 1), "int64", name="token")
            pos = rg.input((n,), "int64", name="pos")
            state = self.cache.decode_state(pos)
            logits = model.lm_head(model.hidden_states(token, state)).reshape((n, -1))
            self.decode = rg.function([token, pos], logits, updates=state.updates(), backend=backend, name="decode")
        finally:
            model.train(was_training)

    @property
    def compiles(self) -> int:
        """Compilations of the prefill and decode steps so far."""
        return self.prefill.stats["compiles"] + self.decode.stats["compiles"]

    def generate(self, input_ids, max_new_tokens: int, do_sample: bool = False, temperature: float = 1.0,
                 top_k: Optional[int] = None, top_p: Optional[float] = None, seed: Optional[int] = None,
                 eos_token_id: Optional[int] = None, pad_token_id: Optional[int] = None,
                 attention_mask=None) -> np.ndarray:
        """Prompt ``(N, T0)`` int tokens -> ``(N, T0 + new)``: greedy unless ``do_sample``.

        Prompts of different lengths come padded (left or right) with an ``attention_mask``
        ``(N, T0)`` of 1 for real tokens, as for ``transformers``' ``generate``; each row then
        continues from its own last token and its positions count from its first real token.
        Generation stops after ``max_new_tokens`` or when every row has produced
        ``eos_token_id``; rows that finished early are filled with ``pad_token_id`` (default: the eos id).
        """
        ids = np.asarray(input_ids, np.int64)
        if ids.ndim != 2 or ids.shape[0] != self.batch_size or ids.shape[1] < 1:
            raise ValueError(f"generate: expected prompts of shape ({self.batch_size}, T0>=1), got {ids.shape}")
        window, lengths = self._pack(ids, attention_mask)
        if int(lengths.max()) + max_new_tokens > self.max_len:
            raise ValueError(f"generate: {int(lengths.max())} prompt + {max_new_tokens} new tokens exceed "
                             f"max_len {self.max_len}")
        rng = np.random.default_rng(seed)
        if max_new_tokens <= 0:
            return ids.copy()
        logits = self.prefill(window, lengths - 1)
        out, done = [ids], np.zeros(self.batch_size, bool)
        pad = eos_token_id if pad_token_id is None else pad_token_id
        for step in range(max_new_tokens):
            nxt = choose_tokens(logits, do_sample, rng, temperature, top_k, top_p)
            if eos_token_id is not None:
                nxt = np.where(done, pad, nxt)
                done |= nxt == eos_token_id
            out.append(nxt[:, None])
            if (eos_token_id is not None and done.all()) or step == max_new_tokens - 1:
                break
            logits = self.decode(nxt[:, None], lengths + step)
        return np.concatenate(out, axis=1)

    def _pack(self, ids: np.ndarray, attention_mask):
        """Each row's real tokens moved to the start of a ``max_len - 1`` window, and their counts."""
        n, t0 = ids.shape
        window = np.zeros((n, self.max_len - 1), np.int64)
        if attention_mask is None:
            if t0 > self.max_len - 1:
                raise ValueError(f"generate: a prompt of {t0} tokens leaves no room in max_len {self.max_len}")
            window[:, :t0] = ids
            return window, np.full(n, t0, np.int64)
        mask = np.asarray(attention_mask).astype(bool)
        if mask.shape != ids.shape:
            raise ValueError(f"generate: attention_mask {mask.shape} must be shaped like the prompts {ids.shape}")
        lengths = mask.sum(axis=1).astype(np.int64)
        if lengths.min() < 1 or lengths.max() > self.max_len - 1:
            raise ValueError(f"generate: every prompt needs 1..{self.max_len - 1} real tokens, got {lengths.tolist()}")
        for row in range(n):
            real = np.flatnonzero(mask[row])
            if real[-1] - real[0] + 1 != real.size:
                raise ValueError(f"generate: attention_mask row {row} has padding between real tokens")
            window[row, :real.size] = ids[row, real]
        return window, lengths


def generate(model: Module, input_ids, max_new_tokens: int, max_len: Optional[int] = None, backend=None,
             **sampling) -> np.ndarray:
    """Generate with a :class:`Generator` kept on the model per ``(batch, max_len, backend)``.

    ``max_len`` defaults to the prompt length plus ``max_new_tokens``; ``sampling`` takes
    :meth:`Generator.generate`'s keywords (``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``seed``,
    ``eos_token_id``).
    """
    ids = np.asarray(input_ids, np.int64)
    max_len = int(max_len or ids.shape[1] + max_new_tokens)
    return generator_for(model, ids.shape[0], max_len, backend).generate(ids, max_new_tokens, **sampling)


# model -> {(batch, max_len, backend, variables): Generator}; weak, so a model's generators die with it
_GENERATORS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def generator_for(model: Module, batch_size: int, max_len: int, backend=None) -> Generator:
    """The :class:`Generator` kept for ``model`` and these sizes, built on first use.

    A model whose variables were replaced since (``model.to(dtype)``) gets a new one: the
    compiled steps read the variables they were traced with.
    """
    per_model = _GENERATORS.setdefault(model, {})
    variables = tuple(id(v) for v in model._state_vars().values())
    key = (batch_size, max_len, backend if backend is None or isinstance(backend, str) else id(backend), variables)
    if key not in per_model:
        per_model[key] = Generator(model, batch_size, max_len, backend)
    return per_model[key]


__all__ = ["Generator", "generate", "generator_for", "process_logits", "choose_tokens"]
