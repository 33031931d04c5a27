"""MetricLogger: record training curves to CSV or JSON Lines, and plot them to PNG.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
>>> with MetricLogger(path) as log:
...     log.log(step=1, loss=0.9)
...     log.log(step=2, loss=0.5, acc=0.8)   # a new column rewrites the header
>>> open(path).read().splitlines()
['step,loss,acc', '1,0.9,', '2,0.5,0.8']
"""

from __future__ import annotations

import csv
import io
import json
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MalformedDataError, MissingDependencyError
from .formats._io import require_file

__all__ = ["MetricLogger", "read_metric_log"]

_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def _plain(value: Any) -> Any:
    """A JSON/CSV-friendly Python scalar from numpy scalars, 0-d arrays or metric objects."""
    if hasattr(value, "compute") and callable(value.compute):
        value = value.compute()
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"can only log scalars, got an array of shape {value.shape}")
        value = value.reshape(()).item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"can only log numbers or strings, got {type(value).__name__}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numeric(points: list[tuple[int, Any]]) -> bool:
    """Whether a metric's history has anything to plot."""
    return any(_is_number(v) for _, v in points)


class MetricLogger:
    """Collect ``step``-indexed scalar metrics; append them to a CSV or JSON Lines file as they come.

    The format comes from the suffix (``.csv``, ``.jsonl``) or ``format=``; ``path=None`` keeps
    the history in memory only. ``plot("curves.png")`` draws one panel per metric with matplotlib
    (imported only then).

    >>> log = MetricLogger()
    >>> log.log(loss=1.0); log.log(loss=0.5)
    >>> log.history["loss"]
    [(0, 1.0), (1, 0.5)]
    """

    def __init__(self, path: str | os.PathLike | None = None, format: str | None = None):  # noqa: A002
        self.path = Path(path) if path is not None else None
        if format is None and self.path is not None:
            format = _FORMATS.get(self.path.suffix.lower())
            if format is None:
                raise ValueError(f"cannot tell the log format from {self.path.name!r}; pass format='csv' or 'jsonl'")
        if format not in (None, "csv", "jsonl"):
            raise ValueError(f"format must be 'csv' or 'jsonl', got {format!r}")
        self.format = format
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = ["step"]
        self._file: io.TextIOBase | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8", newline="")

    def log(self, values: Mapping[str, Any] | None = None, *, step: int | None = None, **kwargs: Any) -> None:
        """Record scalars for one step (``step`` defaults to the number of rows logged so far)."""
        merged = {**(values or {}), **kwargs}
        if not merged:
            raise ValueError("MetricLogger.log needs at least one value")
        row = {"step": len(self.rows) if step is None else int(step)}
        row.update({str(k): _plain(v) for k, v in merged.items()})
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        self.columns.extend(new)
        if self._file is not None:
            self._write(row, header_changed=bool(new) or len(self.rows) == 1)

    def _write(self, row: dict[str, Any], header_changed: bool) -> None:
        f = self._file
        assert f is not None
        if self.format == "jsonl":
            f.write(json.dumps(row) + "\n")
        elif header_changed:
            # CSV has one header: a new metric means rewriting the file with the wider header.
            f.seek(0)
            f.truncate()
            writer = csv.DictWriter(f, fieldnames=self.columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)
        else:
            csv.DictWriter(f, fieldnames=self.columns, lineterminator="\n").writerow(row)
        f.flush()  # a crash mid-training must not lose the curves logged so far

    @property
    def history(self) -> dict[str, list[tuple[int, Any]]]:
        """``{metric: [(step, value), ...]}`` for every metric logged."""
        out: dict[str, list[tuple[int, Any]]] = {c: [] for c in self.columns if c != "step"}
        for row in self.rows:
            for k, v in row.items():
                if k != "step":
                    out[k].append((row["step"], v))
        return out

    def plot(self, path: str | os.PathLike, metrics: Sequence[str] | None = None, title: str | None = None) -> Path:
        """Draw the numeric metrics (one panel each, against step) to a PNG file; returns its path.

        >>> import tempfile, os
        >>> log = MetricLogger()
        >>> for step in range(1, 4):
        ...     log.log(loss=1.0 / step)
        >>> png = log.plot(os.path.join(tempfile.mkdtemp(), "curves.png"))
        >>> png.read_bytes()[:4]
        b'\\x89PNG'
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            raise MissingDependencyError("matplotlib", "MetricLogger.plot") from None
        history = self.history
        names = list(metrics) if metrics is not None else [k for k, pts in history.items() if _numeric(pts)]
        unknown = [n for n in names if n not in history]
        if unknown:
            raise KeyError(f"no metric named {unknown}; logged: {sorted(history)}")
        if not names:
            raise ValueError("nothing to plot: no numeric metric has been logged")
        # Figure + Agg canvas directly: no pyplot global state, works headless and in threads.
        fig = Figure(figsize=(6.4, 2.4 * len(names)), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
        for ax, name in zip(axes, names):
            pts = [(s, v) for s, v in history[name] if _is_number(v)]
            steps, values = zip(*pts) if pts else ((), ())
            ax.plot(steps, values, marker="." if len(pts) < 50 else None)
            ax.set_ylabel(name)
            ax.grid(True, alpha=0.3)
        axes[-1].set_xlabel("step")
        if title:
            fig.suptitle(title)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", dpi=100)
        return out

    def close(self) -> None:
        """Close the log file (the in-memory history stays available)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "MetricLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MetricLogger(path={str(self.path) if self.path else None!r}, rows={len(self.rows)})"


def _parse_csv_value(text: str) -> Any:
    if text == "":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def read_metric_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a log written by :class:`MetricLogger` (CSV or JSON Lines, by suffix).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> with MetricLogger(path) as log:
    ...     log.log(loss=0.9); log.log(loss=0.5, acc=0.75)
    >>> read_metric_log(path)
    [{'step': 0, 'loss': 0.9, 'acc': None}, {'step': 1, 'loss': 0.5, 'acc': 0.75}]
    """
    p = require_file(path, "a metric log (.csv or .jsonl)")
    text = p.read_text(encoding="utf-8")
    if _FORMATS.get(p.suffix.lower()) == "csv":
        return [{k: _parse_csv_value(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise MalformedDataError(
                    p, f"line {number} is not JSON ({e.msg})", "one JSON object per line"
                ) from None
    return rows
