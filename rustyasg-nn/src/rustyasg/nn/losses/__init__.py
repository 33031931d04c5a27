"""Loss functions and their Module forms, with PyTorch's formulas, names and defaults.

Every loss takes ``reduction`` = ``'mean'`` | ``'sum'`` | ``'none'`` (``kl_div`` also
``'batchmean'``) and checks its operands while the graph is built.

Example:
    >>> import rustyasg.core as rg
    >>> from rustyasg.nn import losses
    >>> x, y = rg.input((8, 3), name="x"), rg.input((8, 3), name="y")
    >>> losses.MSELoss()(x, y).shape
    ()
"""

from .ctc import CTCLoss, ctc_loss
from .classification import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, kl_div,
                             nll_loss, sigmoid_focal_loss)
from .margin import (cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss, multi_margin_loss,
                     pairwise_distance, triplet_margin_loss)
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _module_names
from .regression import huber_loss, l1_loss, mse_loss, smooth_l1_loss

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "kl_div", "nll_loss",
           "sigmoid_focal_loss", "cosine_embedding_loss", "hinge_embedding_loss", "margin_ranking_loss",
           "multi_margin_loss", "pairwise_distance", "triplet_margin_loss", "huber_loss", "l1_loss", "mse_loss",
           "smooth_l1_loss", "ctc_loss", "CTCLoss", *_module_names]
