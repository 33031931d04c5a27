"""Progress display for the training loop: a tqdm bar when tqdm is installed, plain lines otherwise.

tqdm is optional: ``progress="auto"`` (the default) uses it when it can be imported
and falls back to a line printer; ``progress="tqdm"`` insists and raises a
:class:`MissingProgressError` that names the pip command; ``progress=False`` is silent.

Example:
    >>> bar = make_progress(False, total=3, desc="epoch 1")
    >>> bar.update(1, {"loss": 0.5}); bar.close()
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, Mapping, Optional, TextIO, Union

import rustyasg.core as rg

ProgressSetting = Union[bool, str]


class MissingProgressError(rg.MissingPartError):
    """``progress="tqdm"`` was asked for but tqdm is not installed."""


def format_postfix(values: Mapping[str, Any]) -> str:
    """``loss=0.123, acc=0.98`` with 4 significant digits for floats.

    >>> format_postfix({"loss": 0.123456, "samples/s": 1234.5})
    'loss=0.1235, samples/s=1234'
    """
    parts = []
    for k, v in values.items():
        if isinstance(v, float):
            v = f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"
        parts.append(f"{k}={v}")
    return ", ".join(parts)


class Progress:
    """What the trainer drives: ``update(n, postfix)`` after steps, ``close()`` at the end of an epoch."""

    def update(self, n: int, postfix: Optional[Mapping[str, Any]] = None) -> None:
        """Advance by ``n`` steps and show ``postfix`` (loss, throughput)."""

    def write(self, message: str) -> None:
        """Print a line without breaking the bar."""

    def close(self) -> None:
        """Finish the display of this epoch."""


class SilentProgress(Progress):
    """``progress=False``: shows nothing."""


class LineProgress(Progress):
    """The fallback without tqdm: one line at most every ``interval`` seconds and one at the end.

    >>> import io
    >>> out = io.StringIO()
    >>> bar = LineProgress(total=2, desc="epoch 1", stream=out, interval=0.0)
    >>> bar.update(2, {"loss": 0.25}); bar.close()
    >>> out.getvalue().splitlines()[-1]
    'epoch 1: 2/2 loss=0.25'
    """

    def __init__(self, total: Optional[int], desc: str, stream: Optional[TextIO] = None, interval: float = 5.0):
        self.total, self.desc, self.n = total, desc, 0
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._last_print = time.perf_counter()
        self._postfix: Dict[str, Any] = {}
        self._dirty = True  # something changed since the last line

    def _line(self) -> str:
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        tail = format_postfix(self._postfix)
        return f"{self.desc}: {count}" + (f" {tail}" if tail else "")

    def update(self, n: int, postfix=None) -> None:
        self.n += n
        if postfix:
            self._postfix = dict(postfix)
        self._dirty = True
        now = time.perf_counter()
        if now - self._last_print >= self.interval:
            self._emit()
            self._last_print = now

    def _emit(self) -> None:
        print(self._line(), file=self.stream, flush=True)
        self._dirty = False

    def write(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self._dirty:
            self._emit()


class TqdmProgress(Progress):
    """A tqdm bar; the postfix carries the running loss and the throughput."""

    def __init__(self, tqdm_cls, total: Optional[int], desc: str, stream: Optional[TextIO] = None):
        self._tqdm = tqdm_cls
        self.bar = tqdm_cls(total=total, desc=desc, file=stream, dynamic_ncols=True, leave=True,
                            mininterval=0.5, unit="step")

    def update(self, n: int, postfix=None) -> None:
        if postfix:
            self.bar.set_postfix_str(format_postfix(postfix), refresh=False)
        self.bar.update(n)

    def write(self, message: str) -> None:
        self._tqdm.write(message, file=self.bar.fp)

    def close(self) -> None:
        self.bar.close()


def _import_tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def make_progress(setting: ProgressSetting, total: Optional[int], desc: str,
                  stream: Optional[TextIO] = None) -> Progress:
    """The progress display for one epoch.

    ``setting``: ``"auto"``/``True`` (tqdm if installed, else lines), ``"tqdm"`` (tqdm or an
    error), ``"lines"`` (plain lines), ``False``/``None`` (silent).

    >>> type(make_progress("lines", 10, "epoch 1")).__name__
    'LineProgress'
    """
    if setting in (False, None):
        return SilentProgress()
    if setting == "lines":
        return LineProgress(total, desc, stream)
    if setting in (True, "auto", "tqdm"):
        tqdm = _import_tqdm()
        if tqdm is not None:
            return TqdmProgress(tqdm, total, desc, stream)
        if setting == "tqdm":
            raise MissingProgressError('progress="tqdm" needs tqdm: pip install "tqdm>=4.60" '
                                       '(or pass progress="lines" for plain text)')
        return LineProgress(total, desc, stream)
    raise ValueError(f"progress must be True, False, 'auto', 'tqdm' or 'lines', got {setting!r}")
