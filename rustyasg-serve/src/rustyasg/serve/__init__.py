"""RustyASG inference server: a saved program over HTTP.

``rustyasg serve model.rgp --port 8000`` loads a program saved with ``fn.save(path)`` and serves
``POST /v1/predict`` (JSON, safetensors or .npy bodies) with dynamic batching of concurrent
requests, ``GET /health``, ``GET /v1/metadata`` and Prometheus ``GET /metrics``.

Example::

    $ rustyasg serve model.rgp --port 8000 --max-batch 32 --max-latency-ms 5
    $ curl -s localhost:8000/v1/predict -H 'Content-Type: application/json' \\
           -d '{"inputs": {"x": [[0.1, 0.2, 0.3, 0.4]]}}'
    {"outputs": {"output": [[...]]}}
"""

from .app import ServeConfig, create_app
from .batcher import Batcher, QueueFull
from .model import InputSpec, RequestError, ServedModel, find_program

__all__ = ["ServeConfig", "create_app", "Batcher", "QueueFull", "ServedModel", "InputSpec", "RequestError",
           "find_program"]

from rustyasg.core.parts import distribution_version as _distribution_version  # noqa: E402

__version__ = _distribution_version("rustyasg-serve")  # from the package metadata
