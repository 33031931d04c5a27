"""Decoding single image files to numpy: PGM/PPM natively, NPY natively, anything else via Pillow.

Netpbm (``P2``/``P5`` grey, ``P3``/``P6`` colour, 8 or 16 bit) and ``.npy`` need nothing but
numpy, so an image-folder data set in those formats works in a minimal install. PNG, JPEG, BMP,
GIF, TIFF and WebP are read with Pillow when it is installed.

>>> import numpy as np, os, tempfile
>>> p = os.path.join(tempfile.mkdtemp(), "a.pgm")
>>> with open(p, "wb") as f: _ = f.write(b"P5 2 1 255\\n" + bytes([0, 200]))
>>> read_image(p)
array([[  0, 200]], dtype=uint8)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import MalformedDataError, MissingDependencyError, TruncatedDataError
from ._io import read_bytes, require_file

__all__ = ["read_image", "read_netpbm", "decode_image", "to_float_chw", "NATIVE_EXTENSIONS", "PILLOW_EXTENSIONS"]

NATIVE_EXTENSIONS = (".pgm", ".ppm", ".pnm", ".npy")
PILLOW_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_NETPBM_KINDS = {
    b"P2": (1, False),
    b"P3": (3, False),
    b"P5": (1, True),
    b"P6": (3, True),
}  # magic -> (channels, binary)
_NETPBM_EXPECTED = "a Netpbm image: P2/P3/P5/P6, width, height, maxval (1-65535), then the pixels"
# Header tokens are separated by whitespace; '#' starts a comment that runs to the end of the line.
_TOKEN = re.compile(rb"(?:\s+|#[^\n]*\n?)*([^\s#]+)")


def _netpbm(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    data = read_bytes(path, _NETPBM_EXPECTED)
    magic = data[:2]
    if magic not in _NETPBM_KINDS:
        raise MalformedDataError(path, f"starts with {data[:2]!r}", _NETPBM_EXPECTED)
    channels, binary = _NETPBM_KINDS[magic]
    pos, fields = 2, []
    for _ in range(3):
        m = _TOKEN.match(data, pos)
        if m is None:
            raise TruncatedDataError(path, "header ends before width, height and maxval", _NETPBM_EXPECTED)
        if not m.group(1).isdigit():
            raise MalformedDataError(path, f"header field {m.group(1)[:20]!r} is not a number", _NETPBM_EXPECTED)
        fields.append(int(m.group(1)))
        pos = m.end()
    width, height, maxval = fields
    if not 1 <= maxval <= 65535 or width == 0 or height == 0:
        raise MalformedDataError(path, f"header says {width}x{height}, maxval {maxval}", _NETPBM_EXPECTED)
    shape = (height, width, channels) if channels > 1 else (height, width)
    count = height * width * channels
    dtype = np.dtype(np.uint8 if maxval < 256 else ">u2")
    if binary:
        if pos < len(data) and not data[pos : pos + 1].isspace():
            raise MalformedDataError(path, "no whitespace between maxval and the pixels", _NETPBM_EXPECTED)
        raster = data[pos + 1 :]  # exactly one whitespace byte separates the header from the pixels
        need = count * dtype.itemsize
        if len(raster) < need:
            raise TruncatedDataError(path, f"has {len(raster)} pixel bytes", f"{need} for {width}x{height}x{channels}")
        pixels = np.frombuffer(raster, dtype=dtype, count=count)
    else:
        try:
            pixels = np.array(data[pos:].split(), dtype=np.int64)
        except ValueError:
            raise MalformedDataError(path, "ASCII pixel data contains a non-number", _NETPBM_EXPECTED) from None
        if len(pixels) < count:
            raise TruncatedDataError(
                path, f"has {len(pixels)} pixel values", f"{count} for {width}x{height}x{channels}"
            )
        pixels = pixels[:count]
    if pixels.max(initial=0) > maxval:
        raise MalformedDataError(path, f"pixel value {pixels.max()} exceeds maxval {maxval}", _NETPBM_EXPECTED)
    return pixels.reshape(shape).astype(np.uint8 if maxval < 256 else np.uint16), maxval


def read_netpbm(path: str | os.PathLike) -> np.ndarray:
    """A PGM (H×W) or PPM (H×W×3) image, ASCII or binary, as uint8 (maxval < 256) or uint16.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.ppm")
    >>> with open(p, "w") as f: _ = f.write("P3\\n# a comment\\n1 1\\n255\\n255 0 7\\n")
    >>> read_netpbm(p).tolist()
    [[[255, 0, 7]]]
    """
    return _netpbm(path)[0]


def _npy(path: str | os.PathLike) -> tuple[np.ndarray, None]:
    p = require_file(path, "a .npy array file")
    try:
        array = np.load(p, allow_pickle=False)  # never unpickle objects from a data folder
    except EOFError:
        raise TruncatedDataError(p, "ends before the array header", "a .npy file") from None
    except ValueError as e:
        kind = TruncatedDataError if "reshape" in str(e) or "read" in str(e) else MalformedDataError
        raise kind(p, f"cannot be read as .npy ({e})", "a .npy file with an H×W or H×W×C array") from None
    if not isinstance(array, np.ndarray) or array.ndim not in (2, 3):
        raise MalformedDataError(p, f"holds an array of shape {getattr(array, 'shape', None)}", "an H×W or H×W×C array")
    return array, None


def _pillow_module():
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def _pillow(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    p = require_file(path, "an image file")
    Image = _pillow_module()
    if Image is None:
        raise MissingDependencyError(
            "Pillow", f"reading {p.suffix or 'extension-less'} images ({p})",
            hint=f"without it only {', '.join(NATIVE_EXTENSIONS)} files are read",
        )  # fmt: skip
    try:
        with Image.open(p) as img:
            img.load()
            if img.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
                img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
            elif img.mode == "1":
                img = img.convert("L")
            array = np.asarray(img)
    except OSError as e:
        kind = TruncatedDataError if "truncated" in str(e) or "broken data stream" in str(e) else MalformedDataError
        raise kind(p, f"cannot be decoded ({e})", f"a valid {p.suffix or 'image'} file") from None
    except (ValueError, SyntaxError) as e:  # Pillow raises SyntaxError for some broken headers
        raise MalformedDataError(p, f"cannot be decoded ({e})", f"a valid {p.suffix or 'image'} file") from None
    # 8- and 16-bit modes scale to [0, 1]; 32-bit integer ("I") and float ("F") modes are kept as is.
    maxval = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(np.dtype(array.dtype).newbyteorder("="))
    return array, maxval


def decode_image(path: str | os.PathLike) -> tuple[np.ndarray, int | None]:
    """``(pixels, maxval)`` of an image file; ``maxval`` is None when values are to be taken as is
    (``.npy`` files, 32-bit integer and float images).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "digit.pgm"
    >>> _ = path.write_bytes(b"P5 3 2 255\\n" + bytes([0, 128, 255, 1, 2, 3]))
    >>> decode_image(path)
    (array([[  0, 128, 255],
           [  1,   2,   3]], dtype=uint8), 255)
    """
    suffix = Path(path).suffix.lower()
    if suffix in (".pgm", ".ppm", ".pnm"):
        return _netpbm(path)
    if suffix == ".npy":
        return _npy(path)
    return _pillow(path)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Pixels of an image file as stored: H×W (grey) or H×W×C, uint8/uint16 (or the .npy dtype).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cat.npy"
    >>> np.save(path, np.zeros((32, 32, 3), np.uint8))
    >>> read_image(path).shape
    (32, 32, 3)
    """
    return decode_image(path)[0]


def to_float_chw(pixels: np.ndarray, maxval: int | None) -> np.ndarray:
    """H×W or H×W×C pixels -> float32 C×H×W, integers divided by ``maxval`` (so in [0, 1]).

    >>> to_float_chw(np.array([[0, 255]], dtype=np.uint8), 255).tolist()
    [[[0.0, 1.0]]]
    """
    chw = pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)
    out = chw.astype(np.float32)
    if maxval is not None and np.issubdtype(pixels.dtype, np.integer):
        out *= np.float32(1.0 / maxval)
    return out
