"""A static file server for exported folders (``rustyasg serve-web``).

WebGPU only exists in secure contexts; ``http://127.0.0.1`` is one, so the server binds the
loopback address by default. It serves the folder read-only with the MIME types browsers
need for ES modules, and sends ``Cache-Control: no-cache`` so a re-export is picked up.

Example::

    server = make_server("out/", port=0)
    server.server_address
    # ('127.0.0.1', 41234)
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path
from typing import Union

MIME_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".wgsl": "text/wgsl",
    ".safetensors": "application/octet-stream",
}


class ExportRequestHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler with module MIME types, no caching, and quiet logs."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


def make_server(directory: Union[str, Path], host: str = "127.0.0.1", port: int = 8000,
                verbose: bool = False) -> http.server.ThreadingHTTPServer:
    """A threading HTTP server for ``directory`` (``port=0`` picks a free port)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a folder; export a model there first with rg.web.export(...)")
    handler = functools.partial(ExportRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.verbose = verbose
    return server
