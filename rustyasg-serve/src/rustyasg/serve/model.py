"""A saved program as a servable model: input checks, batching, padding to compiled sizes.

:class:`ServedModel` wraps the :class:`~rustyasg.core.Function` that ``rg.load_program``
returns. Requests are checked against the program's inputs (names, ranks, fixed sizes,
dtypes) before they reach the queue, so a wrong request is a 4xx that names the problem.

Batching: when every input's first dimension is symbolic (the batch dimension, whose size
the inputs of one request must agree on), the rows of several requests are concatenated into one call. Each batch is padded
to the next *bucket* size (powers of two up to ``max_batch``, and ``max_batch``): a compiled
program is specialised to its shapes, so a few bucket sizes, compiled once at start-up, serve
every batch instead of one compile per distinct row count. Padding repeats the last row and the
padded rows are dropped from the outputs (inference treats rows independently).

Example::

    model = ServedModel.load("model.rgp", backend="cpu")
    model.input_specs[0]
    # InputSpec(name='x', shape=(None, 784), dtype=dtype('float32'))
    model.run_batch([{"x": x1}, {"x": x2}])
    # [{'output': array(...)}, {'output': array(...)}]
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from rustyasg.core.errors import RustyASGError

PROGRAM_SUFFIXES = (".rgp",)


class RequestError(RustyASGError, ValueError):
    """A request the model cannot take; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: ``shape`` has ``None`` where a size is free (the batch dimension...)."""

    name: str
    shape: Tuple[Optional[int], ...]
    dtype: np.dtype

    def describe(self) -> str:
        dims = ", ".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype.name}[{dims}]"

    def as_json(self) -> Dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype.name}


def find_program(path: Union[str, os.PathLike]) -> Path:
    """The saved program at ``path``: the file itself, or the one ``*.rgp`` file in a folder."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        found = sorted(f for f in p.iterdir() if f.suffix in PROGRAM_SUFFIXES and f.is_file())
        if len(found) == 1:
            return found[0]
        if not found:
            raise FileNotFoundError(f"{p} holds no saved program (*.rgp); save one with fn.save('{p}/model.rgp')")
        raise FileNotFoundError(f"{p} holds {len(found)} saved programs ({', '.join(f.name for f in found)}); "
                                "pass the file to serve")
    raise FileNotFoundError(f"{p} does not exist; pass a saved program (fn.save(path)) or a folder holding one")


def _dim(d: Any) -> Optional[int]:
    return d if isinstance(d, (int, np.integer)) else None


def bucket_sizes(max_batch: int) -> List[int]:
    """Row counts batches are padded to: powers of two below ``max_batch``, then ``max_batch``.

    Example::

        >>> bucket_sizes(12)
        [1, 2, 4, 8, 12]
    """
    out, b = [], 1
    while b < max_batch:
        out.append(b)
        b *= 2
    return out + [max_batch]


class ServedModel:
    """See the module docstring. ``fn`` is a :class:`~rustyasg.core.Function`."""

    def __init__(self, fn: Any, name: str = "model", max_batch: int = 1):
        self.fn = fn
        self.name = name
        self.input_specs = [InputSpec(t.name or f"x{i}", tuple(_dim(d) for d in t.shape), np.dtype(t.dtype))
                            for i, t in enumerate(fn.inputs)]
        self.output_names = ["output"] if len(fn.outputs) == 1 else [f"output{i}" for i in range(len(fn.outputs))]
        first = [t.shape[0] if t.shape else None for t in fn.inputs]
        # Batchable: every input starts with a symbolic dimension (requests must then agree on
        # its size across inputs: check() enforces it).
        self.batchable = bool(first) and all(d is not None and _dim(d) is None for d in first)
        self.max_batch = max(1, int(max_batch)) if self.batchable else 1
        self.buckets = bucket_sizes(self.max_batch)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], backend: Any = None, max_batch: int = 1) -> "ServedModel":
        """Load a saved program (a ``.rgp`` file or a folder with one) for ``backend``."""
        import rustyasg.core as rg

        program = find_program(path)
        return cls(rg.load_program(program, backend=backend), name=program.stem, max_batch=max_batch)

    # -- checking requests ------------------------------------------------------------------------
    def check(self, inputs: Dict[str, Any]) -> Tuple[Dict[str, np.ndarray], int]:
        """Arrays of the right dtypes for ``inputs`` (by name) and their row count; RequestError if wrong."""
        if not isinstance(inputs, dict):
            raise RequestError("the request must map input names to arrays", 400)
        names = [s.name for s in self.input_specs]
        unknown = sorted(set(inputs) - set(names))
        missing = [n for n in names if n not in inputs]
        if unknown or missing:
            raise RequestError(f"inputs {'missing: ' + ', '.join(missing) if missing else ''}"
                               f"{'; ' if missing and unknown else ''}{'unknown: ' + ', '.join(unknown) if unknown else ''}"
                               f"; the model takes {'; '.join(s.describe() for s in self.input_specs)}")
        out: Dict[str, np.ndarray] = {}
        rows = None
        for spec in self.input_specs:
            arr = self._as_array(spec, inputs[spec.name])
            if arr.ndim != len(spec.shape):
                raise RequestError(f"input {spec.name!r} has shape {list(arr.shape)}; expected {spec.describe()} "
                                   f"({len(spec.shape)} dimensions)")
            for axis, (got, want) in enumerate(zip(arr.shape, spec.shape)):
                if want is not None and got != want:
                    raise RequestError(f"input {spec.name!r} has shape {list(arr.shape)}; expected {spec.describe()} "
                                       f"(dimension {axis} must be {want})")
            if self.batchable:
                if rows is not None and arr.shape[0] != rows:
                    raise RequestError(f"inputs disagree on the batch size: {spec.name!r} has {arr.shape[0]} rows, "
                                       f"the others {rows}")
                rows = arr.shape[0]
            out[spec.name] = arr
        rows = rows if rows is not None else 1
        if self.batchable and rows == 0:
            raise RequestError("the request has 0 rows; send at least one")
        if self.batchable and rows > self.max_batch:
            raise RequestError(f"the request has {rows} rows; this server takes at most {self.max_batch} per request "
                               "(--max-batch); split it", 413)
        return out, rows

    @staticmethod
    def _as_array(spec: InputSpec, value: Any) -> np.ndarray:
        if isinstance(value, np.ndarray):
            arr = value
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                raise RequestError(f"input {spec.name!r} has dtype {arr.dtype}; expected {spec.dtype.name}")
            if arr.dtype != spec.dtype and not np.can_cast(arr.dtype, spec.dtype, "same_kind"):
                raise RequestError(f"input {spec.name!r} has dtype {arr.dtype}; expected {spec.dtype.name} "
                                   "(cast it before sending)")
            return np.ascontiguousarray(arr, dtype=spec.dtype)
        try:  # JSON: nested lists of numbers
            arr = np.array(value, dtype=np.float64 if spec.dtype.kind == "f" else None)
        except (ValueError, TypeError) as exc:
            raise RequestError(f"input {spec.name!r} is not a rectangular array of numbers ({exc})") from None
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise RequestError(f"input {spec.name!r} is not an array of numbers (got {arr.dtype.name} values)")
        if spec.dtype.kind in "iub" and arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise RequestError(f"input {spec.name!r} must hold integers ({spec.dtype.name}); got fractions")
        return np.ascontiguousarray(arr, dtype=spec.dtype)

    # -- running ----------------------------------------------------------------------------------
    def bucket(self, rows: int) -> int:
        """The padded row count a batch of ``rows`` runs at."""
        return next(b for b in self.buckets if b >= rows)

    def run_batch(self, requests: Sequence[Dict[str, np.ndarray]]) -> List[Dict[str, np.ndarray]]:
        """Outputs of each request (checked arrays); the rows of all requests run as one call."""
        if not self.batchable:
            return [self._call(r) for r in requests]
        counts = [r[self.input_specs[0].name].shape[0] for r in requests]
        total = sum(counts)
        pad = self.bucket(total) - total
        args = []
        for spec in self.input_specs:
            parts = [r[spec.name] for r in requests]
            if pad:
                parts.append(np.repeat(parts[-1][-1:], pad, axis=0))
            args.append(np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0])
        outs = self.fn(*args)
        outs = [outs] if len(self.output_names) == 1 else list(outs)
        result, start = [], 0
        for n in counts:
            result.append({name: np.asarray(o)[start:start + n] for name, o in zip(self.output_names, outs)})
            start += n
        return result

    def _call(self, request: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        outs = self.fn(*[request[s.name] for s in self.input_specs])
        outs = [outs] if len(self.output_names) == 1 else list(outs)
        return {name: np.asarray(o) for name, o in zip(self.output_names, outs)}

    def warmup(self) -> List[int]:
        """Compile every bucket size now (inputs whose other sizes are all fixed); returns the sizes done."""
        if not all(d is not None for s in self.input_specs for d in s.shape[1 if self.batchable else 0:]):
            return []
        done = []
        for b in (self.buckets if self.batchable else [None]):
            request = {s.name: np.zeros(((b,) + s.shape[1:]) if b else s.shape, s.dtype) for s in self.input_specs}
            self.run_batch([request])
            done.append(b or 1)
        return done

    def describe(self) -> Dict[str, Any]:
        """Inputs, outputs and batching, for /health and /metadata."""
        return {"name": self.name, "inputs": [s.as_json() for s in self.input_specs], "outputs": self.output_names,
                "batchable": self.batchable, "max_batch": self.max_batch, "buckets": self.buckets}
