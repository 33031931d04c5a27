"""Request and response bodies: JSON, safetensors and ``.npy``.

============================== ======================================= ===============================
``Content-Type``               request body                            response body (same kind)
============================== ======================================= ===============================
``application/json``           ``{"inputs": {"x": [[...], ...]}}``     ``{"outputs": {"output": [...]}}``
``application/x-safetensors``  tensors named after the inputs          tensors named after the outputs
``application/x-npy``          one array (models with one input)       one array (the first output)
============================== ======================================= ===============================

``Accept`` may ask for another response kind than the request's. Binary bodies are parsed
without pickle (``np.load(allow_pickle=False)``, safetensors): a request never runs code.

Example::

    >>> decode("application/json", b'{"inputs": {"x": [[1, 2]]}}')
    {'x': [[1, 2]]}
"""

from __future__ import annotations

import io
import json
import math
from typing import Any, Dict, Optional

import numpy as np

from .model import RequestError

JSON = "application/json"
SAFETENSORS = "application/x-safetensors"
NPY = "application/x-npy"
OCTET = "application/octet-stream"  # taken as safetensors
KINDS = (JSON, SAFETENSORS, NPY)


def kind_of(content_type: Optional[str]) -> str:
    """The body kind of a ``Content-Type`` header; RequestError(415) for anything else."""
    base = (content_type or JSON).split(";")[0].strip().lower()
    if base == OCTET:
        return SAFETENSORS
    if base in KINDS:
        return base
    raise RequestError(f"unsupported Content-Type {content_type!r}; send {', '.join(KINDS)}", 415)


def response_kind(accept: Optional[str], request_kind: str) -> str:
    """What to answer with: the first kind ``Accept`` names, else the request's kind."""
    for part in (accept or "").split(","):
        base = part.split(";")[0].strip().lower()
        if base == OCTET:
            return SAFETENSORS
        if base in KINDS:
            return base
    return request_kind


def decode(kind: str, body: bytes, single_input: Optional[str] = None) -> Dict[str, Any]:
    """The request's inputs by name (arrays, or nested lists from JSON)."""
    if kind == JSON:
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(f"the body is not valid JSON: {exc}", 400) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), dict):
            raise RequestError('a JSON request is {"inputs": {"<input name>": [[...], ...]}}', 400)
        return doc["inputs"]
    if kind == SAFETENSORS:
        from safetensors.numpy import load

        try:
            return dict(load(body))
        except Exception as exc:  # the parser raises its own error types for every kind of damage
            raise RequestError(f"the body is not a valid safetensors file: {exc}", 400) from None
    try:
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except Exception as exc:
        raise RequestError(f"the body is not a valid .npy array (object arrays are refused): {exc}", 400) from None
    if single_input is None:
        raise RequestError("an .npy request carries one array, but this model takes several inputs; "
                           "send safetensors or JSON", 415)
    return {single_input: arr}


def _json_value(arr: np.ndarray) -> Any:
    """Nested lists; JSON has no inf/nan, so those become the strings "inf", "-inf", "nan"."""
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        return np.vectorize(lambda v: float(v) if math.isfinite(v) else str(float(v)), otypes=[object])(arr).tolist()
    return arr.tolist()


def encode(kind: str, outputs: Dict[str, np.ndarray]) -> bytes:
    """The response body of ``outputs`` (by name) in ``kind``."""
    if kind == JSON:
        return json.dumps({"outputs": {k: _json_value(np.asarray(v)) for k, v in outputs.items()}}).encode()
    if kind == SAFETENSORS:
        from safetensors.numpy import save

        return save({k: np.ascontiguousarray(v) for k, v in outputs.items()})
    buf = io.BytesIO()
    np.save(buf, np.asarray(next(iter(outputs.values()))), allow_pickle=False)
    return buf.getvalue()
