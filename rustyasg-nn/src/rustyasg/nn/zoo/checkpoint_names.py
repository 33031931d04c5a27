"""The checkpoint naming conventions each zoo model loads: torchvision, nanoGPT, timm and Hugging Face.

One table: each row is a :class:`~rustyasg.nn.name_mapping.NameMapping` registered for a zoo
class; :func:`rustyasg.nn.load_state_dict_from` picks among them.

Example:
    >>> from rustyasg.nn.zoo import ViT
    >>> from rustyasg.nn.name_mapping import mappings_for
    >>> [m.name for m in mappings_for(ViT(32, 8, 10, 16, 1, 2, 32))]
    ['rustyasg', 'timm', 'huggingface']
"""

from __future__ import annotations

from ..name_mapping import NameMapping, register_mapping
from .bert import Bert
from .gpt import GPT
from .llama import Llama
from .resnet import ResNet
from .vit import ViT

_L = r"^encoder\.layer\.(\d+)\."  # a Hugging Face encoder layer

MAPPINGS = [
    (ResNet, NameMapping("torchvision", description="torchvision.models.resnet (the zoo's own names)")),
    (GPT, NameMapping("nanogpt", renames=[(r"^_orig_mod\.", "")], drop=[r"\.attn\.bias$"],
                      description="nanoGPT's model.py (torch.compile prefix and causal-mask buffers removed)")),
    (GPT, NameMapping("huggingface", renames=[(r"^(wte|wpe|h|ln_f)\.", r"transformer.\1.")],
                      drop=[r"\.attn\.(bias|masked_bias)$"], transpose=[r"\.(c_attn|c_proj|c_fc)\.weight$"],
                      description="transformers GPT2LMHeadModel / GPT2Model (Conv1D weights are (in, out))")),
    (ViT, NameMapping("timm", renames=[(r"\.attn\.qkv\.(weight|bias)$", r".self_attn.in_proj_\1"),
                                       (r"\.attn\.proj\.", ".self_attn.out_proj."),
                                       (r"\.mlp\.fc1\.", ".linear1."), (r"\.mlp\.fc2\.", ".linear2.")],
                      description="timm VisionTransformer")),
    (ViT, NameMapping("huggingface", renames=[
        (r"^vit\.", ""), (r"^embeddings\.cls_token$", "cls_token"),
        (r"^embeddings\.position_embeddings$", "pos_embed"),
        (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
        (_L + r"attention\.attention\.(query|key|value)\.(weight|bias)$", r"blocks.\1.self_attn.in_proj_\3#\2"),
        (_L + r"attention\.output\.dense\.", r"blocks.\1.self_attn.out_proj."),
        (_L + r"intermediate\.dense\.", r"blocks.\1.linear1."), (_L + r"output\.dense\.", r"blocks.\1.linear2."),
        (_L + r"layernorm_before\.", r"blocks.\1.norm1."), (_L + r"layernorm_after\.", r"blocks.\1.norm2."),
        (r"^layernorm\.", "norm."), (r"^classifier\.", "head.")],
        merge_order=("query", "key", "value"), drop=[r"^(vit\.)?pooler\."],
        description="transformers ViTForImageClassification / ViTModel (q, k, v packed; ViTModel's pooler "
                    "is not part of the zoo ViT)")),
    (Bert, NameMapping("huggingface", renames=[(r"^bert\.", "")], drop=[r"^embeddings\.position_ids$", r"^cls\."],
                       description="transformers BertModel (and the bert. body of task models)")),
    (Llama, NameMapping("huggingface", drop=[r"\.rotary_emb\.inv_freq$"],
                        description="transformers LlamaForCausalLM")),
]

for _cls, _mapping in MAPPINGS:
    register_mapping(_cls, _mapping)
