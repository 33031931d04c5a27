"""Transformer encoder/decoder layers, stacks and the full Transformer against PyTorch."""

import numpy as np
import pytest
import torch

import rustyasg.core as rg
import rustyasg.nn as nn

D, H, FF = 8, 2, 12


def _pair(kind, **kw):
    kw = dict(dim_feedforward=FF, dropout=0.0, **kw)
    ours = getattr(nn, kind)(D, H, **kw)
    theirs = getattr(torch.nn, kind)(D, H, batch_first=True, **kw)
    return ours, theirs


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_parity(norm_first, activation, dtype, parity, rng):
    ours, theirs = _pair("TransformerEncoderLayer", norm_first=norm_first, activation=activation)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    pad = np.zeros((2, 5), bool)
    pad[1, 3:] = True
    parity(ours, theirs, [rng.standard_normal((2, 5, D)), pad], dtype,
           call=lambda m, x, p: m(x, src_key_padding_mask=p))


def test_encoder_layer_causal_and_sequence_first(parity, rng):
    ours, theirs = _pair("TransformerEncoderLayer")
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    parity(ours, theirs, [rng.standard_normal((2, 5, D))], "float64",
           call=lambda m, x: m(x, is_causal=True), torch_call=lambda m, x: m(x, src_mask=mask, is_causal=True))
    ours = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=False)
    theirs = torch.nn.TransformerEncoderLayer(D, H, FF, dropout=0.0)
    parity(ours, theirs, [rng.standard_normal((5, 2, D))], "float64")


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_parity(norm_first, parity, rng):
    ours, theirs = _pair("TransformerDecoderLayer", norm_first=norm_first)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    causal = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    mem_pad = np.zeros((2, 6), bool)
    mem_pad[0, 5] = True
    parity(ours, theirs, [rng.standard_normal((2, 4, D)), rng.standard_normal((2, 6, D)), mem_pad], "float64",
           call=lambda m, t, mem, p: m(t, mem, tgt_is_causal=True, memory_key_padding_mask=p),
           torch_call=lambda m, t, mem, p: m(t, mem, tgt_mask=causal, tgt_is_causal=True,
                                             memory_key_padding_mask=p))


def test_full_transformer_parity(parity, rng):
    kw = dict(d_model=D, nhead=H, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=FF, dropout=0.0)
    ours, theirs = nn.Transformer(**kw), torch.nn.Transformer(batch_first=True, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    causal = torch.nn.Transformer.generate_square_subsequent_mask(3, dtype=torch.float64)
    parity(ours, theirs, [rng.standard_normal((2, 5, D)), rng.standard_normal((2, 3, D))], "float64",
           call=lambda m, s, t: m(s, t, tgt_mask=nn.Transformer.generate_square_subsequent_mask(3, "float64")),
           torch_call=lambda m, s, t: m(s, t, tgt_mask=causal))


def test_stacks_are_independent_copies():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, FF), 3, norm=nn.LayerNorm(D))
    names = list(enc.state_dict())
    assert names[0] == "layers.0.self_attn.in_proj_weight" and names[-1] == "norm.bias"
    ids = {id(enc.layers[i].self_attn.in_proj_weight) for i in range(3)}
    assert len(ids) == 3
    np.testing.assert_array_equal(enc.layers[0].linear1.weight.value(), enc.layers[2].linear1.weight.value())
    assert len(enc.parameters()) == 3 * len(nn.TransformerEncoderLayer(D, H, FF).parameters()) + 2


def test_encoder_trains_with_dropout_and_symbolic_batch(backend, rng):
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, FF, dropout=0.1), 2)
    enc.set_rng(0)
    x = rg.input((None, 5, D), name="x")
    loss = (enc(x, is_causal=True) ** 2).mean()
    params = enc.parameters()
    grads = rg.grad(loss, params)
    step = rg.function([x], loss, updates={p: p - 0.05 * g for p, g in zip(params, grads)}, backend=backend)
    batch = rng.standard_normal((4, 5, D)).astype(np.float32)
    losses = [float(step(batch)) for _ in range(5)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert float(step(batch[:1])) > 0  # another batch size compiles and runs
