"""Model zoo: ready-made architectures built from :mod:`rustyasg.nn` layers.

- :class:`MLP`, :class:`LeNet5`
- ResNet: :class:`BasicBlock`, :class:`Bottleneck`, :class:`ResNet`, :func:`resnet18` / 34 / 50 / 101
- Transformers: :class:`~rustyasg.nn.Transformer`, :class:`~rustyasg.nn.TransformerEncoder`,
  :class:`~rustyasg.nn.TransformerDecoder` (re-exported), :class:`GPT`, :class:`ViT`
- Pre-trained families with Hugging Face names: :class:`Bert` (encoder), :class:`Llama` (decoder:
  RMSNorm, rotary positions, SwiGLU, grouped-query attention); checkpoint naming conventions in
  :mod:`.checkpoint_names`

Example:
    >>> from rustyasg.nn.zoo import resnet18
    >>> resnet18(num_classes=10).fc.out_features
    10
"""

from ..transformer import Transformer, TransformerDecoder, TransformerEncoder
from .gpt import GPT, CausalSelfAttention, GPTBlock, GPTConfig, GPTMLP
from .lenet import LeNet5
from .mlp import MLP
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet101
from .vit import PatchEmbedding, ViT
from .bert import Bert, BertConfig, mean_pool
from .llama import Llama, LlamaConfig
from . import checkpoint_names  # noqa: E402  (registers the checkpoint naming conventions)
