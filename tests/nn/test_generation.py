"""Text generation: the KV-cached prefill/decode steps equal the full forward pass and compile once;
temperature/top-k/top-p follow transformers' logits processors; seeded sampling draws from the right
distribution; eos handling and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import rustyasg.core as rg
from rustyasg.nn.generation import Generator, choose_tokens, generate, generator_for, process_logits
from rustyasg.nn.zoo import GPT, GPTConfig, Llama, LlamaConfig


def _llama(seed=0):
    from rustyasg.nn import init

    init.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=37, hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=6,
                      num_key_value_heads=3, max_position_embeddings=32, initializer_range=0.4)
    return Llama(cfg).eval()


def _gpt(positions):
    from rustyasg.nn import init

    init.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=29, block_size=24, n_layer=2, n_head=2, n_embd=16, positions=positions)).eval()
    for p in model.parameters():  # larger weights than GPT-2's init: varied, input-dependent continuations
        if p.ndim == 2:
            init.normal_(p, 0.0, 0.4)
    return model


def _full_logits(model, ids):
    x = rg.input(ids.shape, "int64", name="ids")
    return rg.function([x], model(x))(ids)


@pytest.mark.parametrize("make", [_llama, lambda: _gpt("learned"), lambda: _gpt("rotary")],
                         ids=["llama-gqa", "gpt-learned", "gpt-rotary"])
def test_cached_steps_equal_the_full_forward_and_compile_once(make):
    model = make()
    prompt = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3]])
    gen = Generator(model, batch_size=2, max_len=16)
    tokens = gen.generate(prompt, 11)
    assert tokens.shape == (2, 16) and gen.compiles == 2
    # every chosen token is the argmax of the uncached model's logits at that point
    full = _full_logits(model, tokens[:, :-1])
    np.testing.assert_array_equal(tokens[:, 5:], full[:, 4:].argmax(-1))
    # and the cached logits themselves agree with the full pass, step by step
    window = np.zeros((2, 15), np.int64)
    window[:, :5] = prompt
    steps = [gen.prefill(window, np.array([4, 4]))]
    for pos in range(5, 15):
        steps.append(gen.decode(tokens[:, pos:pos + 1], np.array([pos, pos])))
    np.testing.assert_allclose(np.stack(steps, 1), full[:, 4:], rtol=1e-4, atol=1e-5)
    # more prompts, of other lengths: still the same two compiled steps
    gen.generate(prompt[:, :2], 7)
    gen.generate(np.array([[7], [8]]), 15)
    assert gen.compiles == 2
    assert gen.prefill.stats["compiles"] == 1 and gen.decode.stats["compiles"] == 1


def test_process_logits_matches_transformers_warpers():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 50)) * 3
    logits[0, :5] = logits[0, 5]  # ties at the k-th value are kept
    logits[1, 10:] = -np.inf
    for temperature, top_k, top_p in [(1.0, None, None), (0.7, None, None), (1.0, 5, None), (1.3, None, 0.8),
                                      (0.5, 10, 0.9), (1.0, 1, None), (2.0, None, 0.05), (1.0, 500, 1.0)]:
        warpers = transformers.LogitsProcessorList()
        if temperature != 1.0:
            warpers.append(transformers.TemperatureLogitsWarper(temperature))
        if top_k is not None:
            warpers.append(transformers.TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            warpers.append(transformers.TopPLogitsWarper(top_p))
        scores = torch.tensor(logits)
        want = warpers(torch.zeros((6, 1), dtype=torch.long), scores).numpy()
        got = process_logits(logits, temperature, top_k, top_p)
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=f"{temperature} {top_k} {top_p}")
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12)


def test_sampling_draws_from_the_processed_distribution():
    rng = np.random.default_rng(1)
    row = np.log(np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.04]))
    logits = np.repeat(row[None], 40000, axis=0)
    for kw, expected in [({}, np.exp(row)), ({"top_k": 3}, np.r_[0.4, 0.25, 0.15, 0, 0, 0] / 0.8),
                         ({"top_p": 0.6}, np.r_[0.4, 0.25, 0, 0, 0, 0] / 0.65),
                         ({"temperature": 0.5}, np.exp(2 * row) / np.exp(2 * row).sum())]:
        draws = choose_tokens(logits, True, rng, **kw)
        freq = np.bincount(draws, minlength=6) / len(draws)
        assert np.all(freq[expected == 0] == 0), kw  # filtered tokens are never drawn
        # binomial standard error at 40000 draws is < 0.0025: 5 sigma
        np.testing.assert_allclose(freq, expected, atol=0.0125, err_msg=str(kw))


def test_seeded_sampling_is_reproducible_and_top_k_1_is_greedy():
    model = _llama(3)
    prompt = np.array([[1, 2, 3]])
    gen = Generator(model, 1, 20)
    a = gen.generate(prompt, 15, do_sample=True, temperature=1.5, seed=7)
    b = gen.generate(prompt, 15, do_sample=True, temperature=1.5, seed=7)
    c = gen.generate(prompt, 15, do_sample=True, temperature=1.5, seed=8)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    greedy = gen.generate(prompt, 15)
    np.testing.assert_array_equal(gen.generate(prompt, 15, do_sample=True, top_k=1, seed=3), greedy)
    np.testing.assert_array_equal(gen.generate(prompt, 15, do_sample=True, top_p=1e-9, seed=3), greedy)
    assert gen.compiles == 2


def test_eos_stops_rows_and_pads_them():
    model = _gpt("learned")
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    free = generate(model, prompt, 10)
    eos = int(free[0, 5])  # the third token row 0 produces
    out = generate(model, prompt, 10, eos_token_id=eos, pad_token_id=0)
    first = np.argmax(out[0, 3:] == eos) + 3
    assert out[0, first] == eos and (out[0, first + 1:] == 0).all()
    np.testing.assert_array_equal(out[0, :first + 1], free[0, :first + 1])
    for row in range(2):  # up to and including each row's eos, the same tokens as without eos handling
        hits = np.flatnonzero(free[row, 3:] == eos)
        stop = hits[0] + 3 if hits.size else free.shape[1] - 1
        np.testing.assert_array_equal(out[row, :stop + 1], free[row, :stop + 1])
    # every row done: generation stops early
    one = generate(model, prompt[:1], 10, eos_token_id=eos)
    assert one.shape[1] == first + 1
    assert generator_for(model, 2, 13) is generator_for(model, 2, 13)
    assert generator_for(model, 2, 13).compiles == 2 and generator_for(model, 1, 13).compiles == 2
    model.to("float64")  # new variables: a new generator traced over them
    assert generator_for(model, 2, 13).compiles == 0
    np.testing.assert_array_equal(generate(model, prompt, 10), free)


def test_generation_errors_are_clear():
    model = _llama()
    gen = Generator(model, 2, 8)
    with pytest.raises(ValueError, match=r"expected prompts of shape \(2, T0>=1\)"):
        gen.generate(np.array([[1, 2]]), 3)
    with pytest.raises(ValueError, match="6 prompt \\+ 3 new tokens exceed max_len 8"):
        gen.generate(np.ones((2, 6), np.int64), 3)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        gen.generate(np.ones((2, 2), np.int64), 2, do_sample=True, temperature=0.0)
    with pytest.raises(ValueError, match="attention_mask row 1 has padding between real tokens"):
        gen.generate(np.ones((2, 4), np.int64), 2, attention_mask=np.array([[1, 1, 1, 1], [1, 0, 1, 1]]))
    with pytest.raises(ValueError, match="must be shaped like the prompts"):
        gen.generate(np.ones((2, 4), np.int64), 2, attention_mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"every prompt needs 1\.\.7 real tokens, got \[4, 0\]"):
        gen.generate(np.ones((2, 4), np.int64), 2, attention_mask=np.array([[1, 1, 1, 1], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="max_len must be >= 2"):
        Generator(model, 1, 1)
    np.testing.assert_array_equal(gen.generate(np.ones((2, 3), np.int64), 0), np.ones((2, 3)))
    with pytest.raises(ValueError, match="exceeds block_size 24"):
        Generator(_gpt("learned"), 1, 30)


def test_generation_on_wgpu_matches_cpu():
    model = _llama()
    prompt = np.array([[5, 6, 7, 8]])
    cpu = Generator(model, 1, 12, backend="cpu").generate(prompt, 8)
    gpu = Generator(model, 1, 12, backend="wgpu")
    np.testing.assert_array_equal(gpu.generate(prompt, 8), cpu)
    assert gpu.compiles == 2


def test_gpt_generate_uses_the_cache_when_the_sequence_fits():
    model = _gpt("learned")
    prompt = np.array([[2, 3]])
    out = model.generate(prompt, 6, temperature=0.8, top_k=5, seed=4)
    gen = generator_for(model, 1, 8)
    assert gen.compiles == 2 and model.training is False
    np.testing.assert_array_equal(out, gen.generate(prompt, 6, do_sample=True, temperature=0.8, top_k=5, seed=4))
