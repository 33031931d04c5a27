"""``rustyasg serve-web DIR`` and ``rustyasg web-demo DIR``."""

from __future__ import annotations

import sys


def _serve_web(args) -> int:
    from .server import make_server

    try:
        server = make_server(args.directory, args.host, args.port, verbose=args.verbose)
    except (FileNotFoundError, OSError) as exc:
        print(f"rustyasg serve-web: {exc}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    # The first line says where to point the browser (tests read it to find a port-0 server).
    print(f"serving {args.directory} at http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _web_demo(args) -> int:
    from .demo import build_mnist_demo

    result = build_mnist_demo(args.directory, epochs=args.epochs, limit=args.limit, seed=args.seed)
    print(f"MNIST demo in {args.directory}: test accuracy {result['test_accuracy']:.2%} (cpu backend); "
          f"serve it with: rustyasg serve-web {args.directory}")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("serve-web", help="serve an exported model folder (rg.web.export) on 127.0.0.1")
    p.add_argument("directory", help="the folder rg.web.export wrote")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port; default 8000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: WebGPU needs a secure context, and loopback is one)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(handler=_serve_web)

    d = subparsers.add_parser("web-demo", help="train the MNIST CNN and export it with the drawing demo page")
    d.add_argument("directory", help="output folder")
    d.add_argument("--epochs", type=int, default=1)
    d.add_argument("--limit", type=int, default=None, help="train on the first N images only (quick runs)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(handler=_web_demo)
