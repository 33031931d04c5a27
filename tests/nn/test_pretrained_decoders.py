"""GPT-2, Llama-style and ViT models written by ``transformers``' own ``save_pretrained`` (random weights, small
configs): the same logits as ``transformers`` and the same greedy-decoded tokens as its ``generate``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import rustyasg.core as rg
from rustyasg.nn.generation import Generator
from rustyasg.nn.pretrained import from_pretrained
from rustyasg.nn.zoo import GPT, Llama, ViT

VOCAB = 101


def _gpt2(**kw):
    cfg = dict(vocab_size=VOCAB, n_positions=48, n_embd=32, n_layer=2, n_head=4, initializer_range=0.3,
               bos_token_id=None, eos_token_id=None)
    cfg.update(kw)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg))


def _llama(**kw):
    cfg = dict(vocab_size=VOCAB, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=6,
               num_key_value_heads=2, max_position_embeddings=64, rope_theta=500.0, rms_norm_eps=1e-5,
               initializer_range=0.3, bos_token_id=None, eos_token_id=None, pad_token_id=None)
    cfg.update(kw)
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**cfg))


MODELS = {
    "gpt2": (_gpt2, GPT),
    "gpt2-untied": (lambda: _gpt2(tie_word_embeddings=False), GPT),
    "llama-gqa": (_llama, Llama),
    "llama-mha-tied-bias": (lambda: _llama(num_key_value_heads=6, tie_word_embeddings=True, attention_bias=True,
                                           mlp_bias=True), Llama),
}


@pytest.fixture(scope="module", params=list(MODELS))
def saved(request, tmp_path_factory):
    torch.manual_seed(0)
    make, cls = MODELS[request.param]
    hf = make().eval()
    folder = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(folder)
    return request.param, hf, folder, cls


def test_logits_match_transformers(saved):
    name, hf, folder, cls = saved
    model = from_pretrained(folder)
    assert isinstance(model, cls)
    assert model.load_result.missing_keys == [] and model.load_result.unexpected_keys == []
    ids = np.random.default_rng(0).integers(0, VOCAB, (3, 11))
    x = rg.input((None, 11), "int64", name="ids")
    ours = rg.function([x], model(x))(ids)
    with torch.no_grad():
        theirs = hf(torch.tensor(ids)).logits.numpy()
    diff = float(np.abs(ours - theirs).max())
    print(f"{name}: logits max abs difference {diff:.2e} (logit scale {np.abs(theirs).max():.1f})")
    assert diff <= 1e-4 * max(1.0, np.abs(theirs).max())


def test_greedy_tokens_match_transformers_generate(saved):
    name, hf, folder, _ = saved
    model = from_pretrained(folder)
    prompt = np.random.default_rng(1).integers(1, VOCAB, (2, 5))
    new = 12
    gen = Generator(model, batch_size=2, max_len=prompt.shape[1] + new)
    ours = gen.generate(prompt, new)
    with torch.no_grad():
        theirs = hf.generate(torch.tensor(prompt), max_new_tokens=new, do_sample=False,
                             pad_token_id=0).numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert len(set(ours[:, 5:].ravel().tolist())) > 3  # a varied continuation, not one repeated token
    assert gen.compiles == 2  # one prefill and one decode step for all 12 tokens


def test_prompts_of_different_lengths_match_transformers(saved):
    """Left-padded prompts with an attention mask, as transformers' batched generate takes them."""
    name, hf, folder, _ = saved
    model = from_pretrained(folder)
    rng = np.random.default_rng(5)
    prompt = rng.integers(1, VOCAB, (3, 6))
    mask = np.ones_like(prompt)
    mask[0, :4] = 0  # row 0: two real tokens, row 1: five, row 2: six
    mask[1, :1] = 0
    prompt[mask == 0] = 0
    gen = Generator(model, batch_size=3, max_len=16)
    ours = gen.generate(prompt, 9, attention_mask=mask)
    with torch.no_grad():
        theirs = hf.generate(torch.tensor(prompt), attention_mask=torch.tensor(mask), max_new_tokens=9,
                             do_sample=False, pad_token_id=0).numpy()
    np.testing.assert_array_equal(ours, theirs)
    # each row alone gives the same continuation as in the batch
    for row in range(3):
        real = prompt[row, mask[row] == 1][None]
        alone = Generator(model, 1, 16).generate(real, 9)
        np.testing.assert_array_equal(alone[0, real.shape[1]:], ours[row, 6:])
    assert gen.compiles == 2


def test_sharded_llama_folder(tmp_path):
    torch.manual_seed(1)
    hf = _llama().eval()
    hf.save_pretrained(tmp_path, max_shard_size="30KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    model = from_pretrained(tmp_path)
    ids = np.arange(1, 8)[None]
    x = rg.input(ids.shape, "int64", name="ids")
    with torch.no_grad():
        theirs = hf(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(rg.function([x], model(x))(ids), theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("classifier", [True, False], ids=["ViTForImageClassification", "ViTModel"])
def test_vit_matches_transformers(classifier, tmp_path):
    torch.manual_seed(2)
    cfg = transformers.ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=64, num_labels=7)
    hf = (transformers.ViTForImageClassification(cfg) if classifier else transformers.ViTModel(cfg)).eval()
    hf.save_pretrained(tmp_path)
    model = from_pretrained(tmp_path)
    assert isinstance(model, ViT) and model.load_result.mapping == "huggingface"
    images = np.random.default_rng(3).standard_normal((2, 3, 16, 16)).astype(np.float32)
    x = rg.input(images.shape, name="img")
    with torch.no_grad():
        out = hf(torch.tensor(images))
    if classifier:
        ours, theirs = rg.function([x], model(x))(images), out.logits.numpy()
    else:  # ViTModel: the final normalised token sequence
        ours, theirs = rg.function([x], model.forward_features(x))(images), out.last_hidden_state.numpy()
    diff = float(np.abs(ours - theirs).max())
    print(f"ViT ({'classifier' if classifier else 'backbone'}): max abs difference {diff:.2e}")
    assert ours.shape == theirs.shape and diff <= 1e-4


def test_unsupported_decoder_configs_are_named(tmp_path):
    _gpt2(n_inner=40).save_pretrained(tmp_path / "g")
    with pytest.raises(ValueError, match="n_inner=40"):
        from_pretrained(tmp_path / "g")
    _llama(rope_scaling={"rope_type": "linear", "factor": 2.0}).save_pretrained(tmp_path / "l")
    with pytest.raises(ValueError, match="RoPE scaling 'linear' is not supported"):
        from_pretrained(tmp_path / "l")


def test_bfloat16_llama_weights_are_widened_exactly(tmp_path):
    """Llama releases ship bfloat16 SafeTensors; numpy has no bfloat16, the weights load as float32."""
    torch.manual_seed(4)
    hf = _llama().eval().to(torch.bfloat16)
    hf.save_pretrained(tmp_path)
    model = from_pretrained(tmp_path)
    # the same (bfloat16-representable) values in a float32 model (whose rotary table was not rounded to bf16)
    weights = {k: v.float() for k, v in hf.state_dict().items()}
    hf = _llama().eval()
    hf.load_state_dict(weights)
    for k, v in hf.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v.numpy(), err_msg=k)
    ids = np.arange(3, 12)[None]
    x = rg.input(ids.shape, "int64", name="ids")
    with torch.no_grad():
        theirs = hf(torch.tensor(ids)).logits.numpy()
    np.testing.assert_allclose(rg.function([x], model(x))(ids), theirs, rtol=1e-4, atol=1e-4)
