"""``rustyasg serve MODEL``: serve a saved program over HTTP."""

from __future__ import annotations

import sys


def _serve(args) -> int:
    from .app import ServeConfig
    from .model import find_program
    from .server import serve

    try:
        find_program(args.model)
    except FileNotFoundError as exc:
        print(f"rustyasg serve: {exc}", file=sys.stderr)
        return 2
    config = ServeConfig(model_path=args.model, backend=args.backend, max_batch=args.max_batch,
                         max_latency_ms=args.max_latency_ms, max_queue=args.max_queue,
                         max_request_bytes=args.max_request_bytes, warmup=not args.no_warmup)
    return serve(config, args.host, args.port, args.graceful_timeout, args.log_level)


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve a saved program (fn.save) over HTTP with dynamic batching")
    p.add_argument("model", help="a saved program (.rgp) or a folder holding one")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port; default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--backend", default=None, help="backend (default: $RUSTYASG_BACKEND or cpu)")
    p.add_argument("--max-batch", type=int, default=32, help="most rows per model call; 1 turns batching off")
    p.add_argument("--max-latency-ms", type=float, default=5.0,
                   help="how long a request may wait for others to share its batch (default 5 ms)")
    p.add_argument("--max-queue", type=int, default=256, help="waiting requests beyond this get 503 (default 256)")
    p.add_argument("--max-request-bytes", type=int, default=16 << 20, help="larger bodies get 413 (default 16 MiB)")
    p.add_argument("--graceful-timeout", type=float, default=30.0,
                   help="seconds open requests get to finish on SIGTERM (default 30)")
    p.add_argument("--no-warmup", action="store_true", help="do not compile the batch sizes before serving")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(handler=_serve)
