"""Zoo BERT and Llama against transformers' own modules with the parity fixture: outputs and the
gradients of every input and parameter (training works, not only inference); RMSNorm against torch's."""

import numpy as np
import pytest
import torch
import transformers

from rustyasg.nn import RMSNorm
from rustyasg.nn.zoo import Bert, BertConfig, Llama, LlamaConfig

BERT = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
            max_position_embeddings=12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
LLAMA = dict(vocab_size=40, hidden_size=24, intermediate_size=32, num_hidden_layers=2, num_attention_heads=6,
             num_key_value_heads=2, max_position_embeddings=16, rope_theta=100.0)


def test_rms_norm_parity(parity, rng):
    ours, theirs = RMSNorm(8, eps=1e-6), torch.nn.RMSNorm(8, eps=1e-6)
    with torch.no_grad():
        theirs.weight.copy_(torch.rand(8) + 0.5)
    parity(ours, theirs, [rng.standard_normal((3, 5, 8))], "float64")
    parity(RMSNorm(8), torch.nn.RMSNorm(8, eps=1e-6), [np.zeros((2, 8))], "float64")  # all-zero rows stay finite


def test_bert_parity_with_padding(parity, rng):
    theirs = transformers.BertModel(transformers.BertConfig(**BERT)).train()
    ours = Bert(BertConfig(**BERT))
    ids = rng.integers(1, 40, (2, 7))
    mask = np.ones((2, 7), np.int64)
    mask[1, 5:] = 0
    parity(ours, theirs, [ids, mask], "float64", call=lambda m, i, a: m(i, a),
           torch_call=lambda m, i, a: m(input_ids=i, attention_mask=a).last_hidden_state)


def test_bert_parity_with_token_types(parity, rng):
    theirs = transformers.BertModel(transformers.BertConfig(**BERT)).train()
    ours = Bert(BertConfig(**BERT))
    ids, types = rng.integers(1, 40, (2, 6)), np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    parity(ours, theirs, [ids, types], "float64", call=lambda m, i, t: m(i, token_type_ids=t),
           torch_call=lambda m, i, t: m(input_ids=i, token_type_ids=t).last_hidden_state)


@pytest.mark.parametrize("kv_heads", [2, 6], ids=["grouped", "multi-head"])
def test_llama_parity(kv_heads, parity, rng):
    cfg = dict(LLAMA, num_key_value_heads=kv_heads)
    theirs = transformers.LlamaForCausalLM(transformers.LlamaConfig(**cfg)).train()
    ours = Llama(LlamaConfig(**cfg))
    # float32: transformers computes the rotary angles in float32 even in a float64 model
    parity(ours, theirs, [rng.integers(0, 40, (2, 9))], "float32", torch_call=lambda m, i: m(i).logits)
