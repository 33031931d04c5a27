"""The PyTorch twin of ``rustyasg.nn.zoo.GPT`` (nanoGPT names and layout), shared by the CPU and GPU suites.

Both suites load the rustyasg model's state dict into it, so the two sides start from the same
weights. Attention uses torch's fused ``scaled_dot_product_attention``; GELU is the tanh form.

Example:
    >>> model = torch_gpt(vocab=16, d=8, heads=2, layers=1, block=4)   # doctest: +SKIP
"""

from __future__ import annotations


def torch_gpt(vocab: int, d: int, heads: int, layers: int, block: int, tie: bool = True):
    """A torch ``nn.Module`` mapping token ids (N, T) to logits (N, T, vocab)."""
    import torch.nn as tnn
    import torch.nn.functional as F

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = tnn.LayerNorm(d), tnn.LayerNorm(d)
            self.attn = tnn.Module()
            self.attn.c_attn, self.attn.c_proj = tnn.Linear(d, 3 * d), tnn.Linear(d, d)
            self.mlp = tnn.Module()
            self.mlp.c_fc, self.mlp.c_proj = tnn.Linear(d, 4 * d), tnn.Linear(4 * d, d)

        def forward(self, x):
            n, t, c = x.shape
            q, k, v = self.attn.c_attn(self.ln_1(x)).split(c, dim=-1)
            q, k, v = (z.view(n, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(n, t, c)
            x = x + self.attn.c_proj(y)
            return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = tnn.ModuleDict({"wte": tnn.Embedding(vocab, d), "wpe": tnn.Embedding(block, d),
                                               "h": tnn.ModuleList([Block() for _ in range(layers)]),
                                               "ln_f": tnn.LayerNorm(d)})
            self.lm_head = tnn.Linear(d, vocab, bias=False)
            if tie:
                self.lm_head.weight = self.transformer.wte.weight

        def forward(self, idx):
            x = self.transformer.wte(idx) + self.transformer.wpe.weight[: idx.shape[1]]
            for blk in self.transformer.h:
                x = blk(x)
            return self.lm_head(self.transformer.ln_f(x))

    return GPT()
