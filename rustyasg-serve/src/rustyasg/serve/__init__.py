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

from typing import TYPE_CHECKING

from rustyasg.core.parts import distribution_version as _distribution_version
from rustyasg.core.parts import lazy_exports

# Imported on first use: the plugin entry point imports this package in every process that
# imports rustyasg.core, and the server's web framework is not needed there.
_EXPORTS = {"ServeConfig": ".app", "create_app": ".app", "Batcher": ".batcher", "QueueFull": ".batcher",
            "InputSpec": ".model", "RequestError": ".model", "ServedModel": ".model", "find_program": ".model"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from .app import ServeConfig, create_app
    from .batcher import Batcher, QueueFull
    from .model import InputSpec, RequestError, ServedModel, find_program

__version__ = _distribution_version("rustyasg-serve")  # from the package metadata
