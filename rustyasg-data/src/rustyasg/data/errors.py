"""Errors raised by ``rustyasg.data``.

Every problem with a file on disk is a :class:`DataFormatError` that names the file and says
what was expected, so a user can tell a missing download from a corrupt one at a glance.

>>> from rustyasg.data.errors import TruncatedDataError
>>> str(TruncatedDataError("x.idx", "file ends after 10 bytes", "784 bytes of pixels"))
'x.idx: file ends after 10 bytes (expected 784 bytes of pixels)'
"""

from __future__ import annotations

import errno
import os

__all__ = [
    "DataFormatError",
    "MissingDataFileError",
    "TruncatedDataError",
    "MalformedDataError",
    "MissingDependencyError",
]


class DataFormatError(ValueError):
    """A data file is missing, truncated or not in the expected format.

    ``path`` is the offending file, ``problem`` what was found and ``expected`` what should have
    been there; all three stay available as attributes for programmatic handling.

    >>> try:
    ...     raise DataFormatError("labels.idx", "magic number 0x1234", "0x00000801")
    ... except DataFormatError as e:
    ...     print(e.path, "|", e.expected)
    labels.idx | 0x00000801
    """

    def __init__(self, path: str | os.PathLike, problem: str, expected: str | None = None):
        self.path = os.fspath(path)
        self.problem = problem
        self.expected = expected
        message = f"{self.path}: {problem}"
        if expected:
            message += f" (expected {expected})"
        super().__init__(message)

    def __reduce__(self):
        # The three-argument constructor would otherwise break pickling (e.g. across processes).
        return (type(self), (self.path, self.problem, self.expected))


class MissingDataFileError(DataFormatError, FileNotFoundError):
    """A data file does not exist. Also a ``FileNotFoundError``, so generic handlers still work.

    >>> isinstance(MissingDataFileError("a.gz", "no such file"), FileNotFoundError)
    True
    """

    def __init__(self, path: str | os.PathLike, problem: str, expected: str | None = None):
        super().__init__(path, problem, expected)
        # Fill OSError's fields the way open() would, for handlers that inspect them.
        self.errno, self.strerror, self.filename = errno.ENOENT, problem, self.path

    def __str__(self) -> str:
        # OSError.__str__ would print "[Errno ...]" noise instead of our message.
        return ValueError.__str__(self)


class TruncatedDataError(DataFormatError):
    """A data file ends before all the data its header promises.

    >>> isinstance(TruncatedDataError("a.gz", "short"), DataFormatError)
    True
    """


class MalformedDataError(DataFormatError):
    """A data file has the wrong magic number, header, structure, shape or dtype.

    >>> isinstance(MalformedDataError("a.pkl", "not a tuple"), DataFormatError)
    True
    """


class MissingDependencyError(ImportError):
    """An optional package is needed for this feature; the message names the pip command.

    >>> str(MissingDependencyError("Pillow", "reading PNG files"))
    'reading PNG files needs the optional package Pillow: pip install Pillow'
    """

    def __init__(self, package: str, purpose: str, pip_name: str | None = None, hint: str | None = None):
        self.package = package
        self.pip_name = pip_name or package
        message = f"{purpose} needs the optional package {package}: pip install {self.pip_name}"
        if hint:
            message += f" ({hint})"
        super().__init__(message, name=package)
