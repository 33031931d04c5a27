"""Image-folder datasets: ``root/<class name>/<image file>``, as torchvision's ``ImageFolder``.

Classes are the sub-folder names in sorted order; images are found recursively inside each class
folder and read lazily (one file per ``ds[i]``), or all at once with ``.to_memory()``.

>>> import tempfile, pathlib, numpy as np
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for name in ("circle", "square"):
...     (root / name).mkdir()
...     for i in range(2):
...         np.save(root / name / f"{i}.npy", np.full((8, 8), 0.5, np.float32))
>>> ds = ImageFolder(root)
>>> image, label = ds[2]
>>> ds.classes, image.shape, int(label)
(['circle', 'square'], (1, 8, 8), 1)
>>> ds.to_memory().inputs.shape
(4, 1, 8, 8)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import ClassificationDataset, DatasetBase, normalize_index
from ..errors import MalformedDataError, MissingDataFileError
from .images import NATIVE_EXTENSIONS, PILLOW_EXTENSIONS, decode_image, to_float_chw

__all__ = ["ImageFolder", "image_folder"]


class ImageFolder(DatasetBase):
    """Lazily loaded ``(image, label)`` samples from one sub-folder per class.

    Images come out as float32 C×H×W in [0, 1] (``raw=True`` keeps the decoded H×W[×C] pixels);
    ``transform``/``target_transform`` are applied per sample. Supported files: PGM/PPM/PNM/NPY
    always, PNG/JPEG/BMP/GIF/TIFF/WebP when Pillow is installed.

    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name, color in [("red", (255, 0, 0)), ("blue", (0, 0, 255))]:
    ...     (root / name).mkdir()
    ...     Image.new("RGB", (6, 4), color).save(root / name / "0.png")
    >>> ds = ImageFolder(root, extensions=(".png",))
    >>> image, label = ds[1]
    >>> ds.classes, len(ds), image.shape, image.dtype, image[:, 0, 0].tolist(), int(label)
    (['blue', 'red'], 2, (3, 4, 6), dtype('float32'), [1.0, 0.0, 0.0], 1)
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
        extensions: Sequence[str] | None = None,
        raw: bool = False,
        loader: Callable[[str], tuple[np.ndarray, int | None]] = decode_image,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingDataFileError(self.root, "no such directory", "a folder with one sub-folder per class")
        self.extensions = tuple(e.lower() for e in (extensions or NATIVE_EXTENSIONS + PILLOW_EXTENSIONS))
        self.transform, self.target_transform, self.raw, self.loader = transform, target_transform, raw, loader
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not self.classes:
            raise MalformedDataError(self.root, "has no class sub-folders", "root/<class name>/<image files>")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples: list[tuple[str, int]] = []
        empty = []
        for c in self.classes:
            files = sorted(
                str(p) for p in (self.root / c).rglob("*")
                if p.is_file() and p.suffix.lower() in self.extensions and not p.name.startswith(".")
            )  # fmt: skip
            if not files:
                empty.append(c)
            self.samples.extend((f, self.class_to_idx[c]) for f in files)
        if empty:
            raise MalformedDataError(
                self.root,
                f"class folders {empty} contain no image files",
                f"files ending in {', '.join(self.extensions)}",
            )
        self.targets = np.array([t for _, t in self.samples], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[normalize_index(index, len(self.samples))]
        pixels, maxval = self.loader(path)
        image = pixels if self.raw else to_float_chw(pixels, maxval)
        if self.transform is not None:
            image = self.transform(image)
        label: Any = np.int64(target)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def to_memory(self) -> ClassificationDataset:
        """Read every image now and return them stacked (all images must have the same shape).

        A usage example is in the module's docstring.
        """
        images = [self[i][0] for i in range(len(self))]
        shapes = {np.shape(im) for im in images}
        if len(shapes) > 1:
            raise MalformedDataError(self.root, f"images have different shapes {sorted(shapes)}",
                                     "one shape for all images (resize them, or keep the folder lazy)")  # fmt: skip
        return ClassificationDataset(np.stack(images), self.targets, self.classes)

    def __repr__(self) -> str:
        return f"ImageFolder(root={str(self.root)!r}, len={len(self)}, classes={len(self.classes)})"


def image_folder(
    root: str | os.PathLike, split: str | None = None, in_memory: bool = False, **kwargs: Any
) -> ImageFolder | ClassificationDataset:
    """Registry factory: ``root/<split>/<class>/...`` if ``split`` is given, else ``root/<class>/...``.

    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name, shade in [("dark", 0), ("light", 255)]:
    ...     (root / "train" / name).mkdir(parents=True)
    ...     Image.new("L", (8, 8), shade).save(root / "train" / name / "0.png")
    >>> train = image_folder(root, split="train", in_memory=True)
    >>> train, train.classes, train.inputs.dtype, train.inputs.max(axis=(1, 2, 3)).tolist()
    (ClassificationDataset(len=2, inputs=(2, 1, 8, 8), classes=2), ['dark', 'light'], dtype('float32'), [0.0, 1.0])
    """
    folder = ImageFolder(Path(root) / split if split else root, **kwargs)
    return folder.to_memory() if in_memory else folder
