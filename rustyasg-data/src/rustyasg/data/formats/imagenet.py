"""ImageNet (ILSVRC-2012 classification) in the folder layouts it is distributed in.

Two layouts are read, each exactly as it comes:

* **ILSVRC2012 tars unpacked, with the devkit** (torchvision's ``ImageNet`` expects this)::

      root/train/n01440764/n01440764_10026.JPEG
      root/val/ILSVRC2012_val_00000001.JPEG                  (flat, or already in class folders)
      root/ILSVRC2012_devkit_t12/data/meta.mat               (synsets; read with scipy)
      root/ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt

* **the Kaggle "ImageNet Object Localization Challenge" layout**::

      root/ILSVRC/Data/CLS-LOC/train/n01440764/n01440764_10026.JPEG
      root/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000001.JPEG
      root/LOC_synset_mapping.txt                            ("n01440764 tench, Tinca tinca")
      root/LOC_val_solution.csv                              ("ImageId,PredictionString")

Classes are the WordNet ids (wnids) in sorted order — the standard 0..999 label order that
pre-trained models use — with their human-readable names in ``class_names``. Images are read
lazily, one file per ``ds[i]``, as C×H×W float32 in [0, 1]; pair with
:func:`rustyasg.data.image_transforms.imagenet_transforms`.

``ImageNet("/data/imagenet", split="val")[0]`` is then ``(image, label)``; see :class:`ImageNet`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import DatasetBase, normalize_index
from ..errors import MalformedDataError, MissingDataFileError, MissingDependencyError
from .images import decode_image, to_float_chw

__all__ = ["ImageNet", "imagenet", "read_synsets"]

_DEVKIT = Path("ILSVRC2012_devkit_t12") / "data"
_KAGGLE = Path("ILSVRC") / "Data" / "CLS-LOC"
_EXTENSIONS = (".jpeg", ".jpg", ".png")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _EXTENSIONS)


def _read_devkit_meta(meta: Path) -> tuple[dict[int, str], dict[str, str]]:
    """ILSVRC2012_ID -> wnid and wnid -> words, for the 1000 leaf classes in ``meta.mat``."""
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise MissingDependencyError("scipy", "reading the ImageNet devkit's meta.mat") from exc
    try:
        synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
    except (KeyError, ValueError, OSError) as exc:
        raise MalformedDataError(meta, f"is not the devkit's meta.mat ({exc})", "a MATLAB file with 'synsets'") from exc
    leaves = [s for s in synsets if int(s["num_children"]) == 0]
    ids = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in leaves}
    words = {str(s["WNID"]): str(s["words"]) for s in leaves}
    return ids, words


def read_synsets(root: str | os.PathLike) -> dict[str, str]:
    """wnid -> human-readable name, from ``LOC_synset_mapping.txt`` or the devkit's ``meta.mat``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "LOC_synset_mapping.txt").write_text("n01440764 tench, Tinca tinca\\n")
    >>> read_synsets(d)
    {'n01440764': 'tench, Tinca tinca'}
    """
    root = Path(root)
    mapping = root / "LOC_synset_mapping.txt"
    if mapping.is_file():
        names = {}
        for number, line in enumerate(mapping.read_text().splitlines(), 1):
            wnid, _, words = line.strip().partition(" ")
            if not (wnid.startswith("n") and wnid[1:].isdigit() and words):
                raise MalformedDataError(mapping, f"line {number} is {line!r}", "'<wnid> <names>' per line")
            names[wnid] = words
        return names
    meta = root / _DEVKIT / "meta.mat"
    if meta.is_file():
        return _read_devkit_meta(meta)[1]
    raise MissingDataFileError(root / "LOC_synset_mapping.txt", "no such file (nor the devkit's meta.mat)",
                               f"LOC_synset_mapping.txt or {_DEVKIT / 'meta.mat'} under the ImageNet root")


def _validation_labels(root: Path, images: list[Path]) -> list[str]:
    """The wnid of each flat validation image, from LOC_val_solution.csv or the devkit's ground truth."""
    solution = root / "LOC_val_solution.csv"
    if solution.is_file():
        with solution.open(newline="") as f:
            rows = {r["ImageId"]: r["PredictionString"].split()[0] for r in csv.DictReader(f)
                    if r.get("PredictionString")}
        missing = [p.stem for p in images if p.stem not in rows]
        if missing:
            raise MalformedDataError(solution, f"has no label for {len(missing)} images, e.g. {missing[0]}",
                                     "one 'ImageId,PredictionString' row per validation image")
        return [rows[p.stem] for p in images]
    truth = root / _DEVKIT / "ILSVRC2012_validation_ground_truth.txt"
    if not truth.is_file():
        raise MissingDataFileError(solution, "no such file (nor the devkit's validation ground truth)",
                                   "LOC_val_solution.csv, or the devkit with "
                                   "ILSVRC2012_validation_ground_truth.txt and meta.mat")
    ids, _ = _read_devkit_meta(root / _DEVKIT / "meta.mat")
    numbers = [int(v) for v in truth.read_text().split()]
    labels = []
    for p in images:  # the n-th line labels ILSVRC2012_val_<n>, whatever subset of images is present
        n = int(p.stem.rsplit("_", 1)[-1])
        if not 1 <= n <= len(numbers):
            raise MalformedDataError(truth, f"has {len(numbers)} labels; {p.name} needs line {n}",
                                     "one ILSVRC2012_ID per validation image")
        labels.append(ids[numbers[n - 1]])
    return labels


class ImageNet(DatasetBase):
    """ILSVRC-2012 ``split`` ("train" or "val") under ``root``, in either layout the module describes.

    ``classes`` are the wnids (sorted: the standard label order), ``class_names`` their names,
    ``samples`` the (path, label) pairs. ``transform`` is applied to each C×H×W float image.

    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "LOC_synset_mapping.txt").write_text("n01440764 tench\\nn01443537 goldfish\\n")
    >>> for wnid in ("n01440764", "n01443537"):
    ...     (root / "train" / wnid).mkdir(parents=True)
    ...     Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "train" / wnid / "a.JPEG")
    >>> ds = ImageNet(root, "train")
    >>> len(ds), ds.class_names, ds[1][0].shape, int(ds[1][1])
    (2, ['tench', 'goldfish'], (3, 8, 8), 1)
    """

    def __init__(self, root: str | os.PathLike, split: str = "train",
                 transform: Callable[[np.ndarray], Any] | None = None):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.root, self.split, self.transform = Path(root), split, transform
        folder = next((self.root / base / split for base in (Path("."), _KAGGLE)
                       if (self.root / base / split).is_dir()), None)
        if folder is None:
            raise MissingDataFileError(self.root / split, "no such directory",
                                       f"{split}/ or {_KAGGLE / split}/ under the ImageNet root")
        names = read_synsets(self.root)
        self.classes = sorted(names)
        self.class_names = [names[w] for w in self.classes]
        self.class_to_idx = {w: i for i, w in enumerate(self.classes)}
        class_dirs = sorted(d for d in folder.iterdir() if d.is_dir())
        if class_dirs:
            unknown = [d.name for d in class_dirs if d.name not in self.class_to_idx]
            if unknown:
                raise MalformedDataError(folder, f"has class folders {unknown[:5]} that are not synsets",
                                         "one folder per wnid listed in the synset mapping")
            self.samples = [(str(p), self.class_to_idx[d.name]) for d in class_dirs for p in _images(d)]
        else:
            images = _images(folder)
            wnids = _validation_labels(self.root, images)
            self.samples = [(str(p), self.class_to_idx[w]) for p, w in zip(images, wnids)]
        if not self.samples:
            raise MalformedDataError(folder, "contains no images", f"files ending in {', '.join(_EXTENSIONS)}")
        self.targets = np.array([t for _, t in self.samples], np.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, np.int64]:
        path, target = self.samples[normalize_index(index, len(self.samples))]
        pixels, maxval = decode_image(path)
        if pixels.ndim == 2:  # a few ILSVRC images are greyscale: replicate to RGB like PIL's convert("RGB")
            pixels = np.repeat(pixels[..., None], 3, axis=-1)
        image = to_float_chw(pixels[..., :3], maxval)
        return (self.transform(image) if self.transform is not None else image), np.int64(target)

    def __repr__(self) -> str:
        return f"ImageNet(root={str(self.root)!r}, split={self.split!r}, len={len(self)}, classes={len(self.classes)})"


def imagenet(root: str | os.PathLike, split: str = "train", **kwargs: Any) -> ImageNet:
    """Registry factory for :class:`ImageNet`: ``get_dataset("imagenet", root=..., split=...)``.

    >>> imagenet("/no/such/folder")
    Traceback (most recent call last):
    ...
    rustyasg.data.errors.MissingDataFileError: /no/such/folder/train: no such directory (expected train/ or ILSVRC/Data/CLS-LOC/train/ under the ImageNet root)
    """
    return ImageNet(root, split, **kwargs)
