"""The ``rustyasg`` console command.

``rustyasg plugins``  lists installed backends and plugins and, for every op, which backends implement it.
``rustyasg ops``      lists the registered ops with their kind and docstring.
``rustyasg check BACKEND``  runs the conformance kit on a backend.

Installed parts add their own subcommands through the ``rustyasg_add_commands`` hook
(``rustyasg view``, ``rustyasg convert``, ...); a part whose command fails to register is
reported like any broken plugin and the other commands still work.

Example:
    $ rustyasg plugins
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def _cmd_plugins(args) -> int:
    from . import plugins
    from .backends import get_backend, installed_backends
    from .registry import KERNELS, OPS

    backends = installed_backends()
    print("backends:")
    usable = []
    for name in backends:
        try:
            get_backend(name)
            usable.append(name)
            print(f"  {name}")
        except Exception as exc:  # list it, with the reason it cannot be used here
            print(f"  {name}  (unavailable: {exc})")
    print("plugins:")
    for name in plugins.plugin_names():
        print(f"  {name}")
    for name, reason in plugins.failed_plugins().items():
        print(f"  {name}  (FAILED: {reason})")
    for name in usable:
        if name != "reference":
            plugins.load_kernels(name)
    print("ops:")
    width = max(len(n) for n in OPS)
    for op in sorted(OPS):
        if OPS[op].kind == "source":
            continue
        impl = ["reference"] if "reference" in usable else []
        impl += [b for b in KERNELS.backends_for(op) if b in usable]
        taken = OPS.overrides.get(op)
        owner = OPS[op].plugin + (f", OVERRIDES {taken.previous}" if taken else "")
        print(f"  {op:<{width}}  {', '.join(impl) or '-'}   [{owner}]")
    if OPS.overrides:
        print("overridden ops (a plugin replaced another distribution's declaration):")
        for taken in OPS.overrides.values():
            print(f"  {taken.op}: {taken.previous} -> {taken.plugin}: {taken.reason}")
    return 0


def _cmd_ops(args) -> int:
    from .registry import OPS

    for op in sorted(OPS):
        d = OPS[op]
        first = (d.doc or "").strip().splitlines()[0] if d.doc else ""
        print(f"{op:<24} {d.kind:<12} {first}")
    return 0


def _cmd_check(args) -> int:
    from .testing import check_all_ops

    failures = check_all_ops(args.backend, args.dtype)
    for op, why in failures.items():
        print(f"FAIL {op}: {why}")
    print(f"{'all ops conform' if not failures else str(len(failures)) + ' op(s) failed'} on {args.backend} ({args.dtype})")
    return 1 if failures else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="rustyasg", description="RustyASG command line")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("plugins", help="installed backends, plugins, and which backend implements each op"
                   ).set_defaults(handler=_cmd_plugins)
    sub.add_parser("ops", help="registered ops").set_defaults(handler=_cmd_ops)
    check = sub.add_parser("check", help="run the conformance kit on a backend")
    check.add_argument("backend")
    check.add_argument("--dtype", default="float32")
    check.set_defaults(handler=_cmd_check)
    _add_part_commands(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


def _add_part_commands(sub) -> None:
    """Let every installed part and plugin add its subcommands (``rustyasg_add_commands``)."""
    from . import plugins

    for impl in plugins.plugin_manager().hook.rustyasg_add_commands.get_hookimpls():
        plugins.call_guarded(impl.plugin_name, impl.function, subparsers=sub)


if __name__ == "__main__":
    sys.exit(main())
