"""The ``rustyasg`` console command.

``rustyasg plugins``  lists installed backends and plugins and, for every op, which backends implement it.
``rustyasg ops``      lists the registered ops with their kind, declaring distribution and summary.
``rustyasg check BACKEND [--op NAME]``  runs the conformance kit on a backend.

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
    rows = []
    for op in sorted(OPS):
        if OPS[op].kind == "source":
            continue
        impl = ["reference"] if "reference" in usable else []
        impl += [b for b in KERNELS.backends_for(op) if b in usable]
        taken = OPS.overrides.get(op)
        owner = OPS[op].plugin + (f" (OVERRIDES {taken.previous})" if taken else "")
        rows.append((op, ", ".join(impl) or "-", owner))
    table = format_table(("op", "backends", "declared by"), rows)
    print("\n".join("  " + line for line in table.splitlines()))
    if OPS.overrides:
        print("overridden ops (a plugin replaced another distribution's declaration):")
        for taken in OPS.overrides.values():
            print(f"  {taken.op}: {taken.previous} -> {taken.plugin}: {taken.reason}")
    return 0


def _cmd_ops(args) -> int:
    from .registry import OPS

    if args.torch:
        from .torch_names import ROWS

        print(format_table(("torch", "jax", "rustyasg", "notes"), [(r.torch, r.jax, r.rustyasg, r.note) for r in ROWS]))
        return 0
    rows = []
    for op in sorted(OPS):
        d = OPS[op]
        if d.kind == "source" and not args.all:
            continue
        if args.kind and d.kind != args.kind:
            continue
        first = (d.doc or "").strip().splitlines()[0] if (d.doc or "").strip() else ""
        rows.append((op, d.kind, d.plugin, first))
    print(format_table(("op", "kind", "declared by", "summary"), rows))
    return 0


def format_table(header, rows) -> str:
    """Rows of strings as left-aligned columns, each as wide as its longest cell.

    >>> print(format_table(("op", "kind"), [("relu", "elementwise"), ("matmul", "linalg")]))
    op      kind
    relu    elementwise
    matmul  linalg
    """
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in [tuple(header), *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [tuple(header), *rows]]
    return "\n".join(lines)


def _cmd_check(args) -> int:
    from .registry import OPS
    from .testing import check_all_ops

    unknown = [op for op in args.op if op not in OPS]
    if unknown:
        print(f"unknown op(s): {', '.join(unknown)}; `rustyasg ops` lists them", file=sys.stderr)
        return 2
    failures = check_all_ops(args.backend, args.dtype, ops=args.op or None)
    checked = sum(1 for op in (args.op or OPS) if OPS[op].examples)
    for op, why in failures.items():
        print(f"FAIL {op}: {why}")
    verdict = (f"all {checked} checked op(s) conform" if not failures
               else f"{len(failures)} of {checked} checked op(s) failed")
    print(f"{verdict} on {args.backend} ({args.dtype})")
    return 1 if failures else 0


CHECK_HELP = """\
Run the conformance kit on BACKEND: every registered op's examples (random operands drawn
from the op's declared ranges) are compiled on BACKEND; the forward result is compared with
the op's float64 numpy reference, and the gradient rule with central finite differences.
Tolerances follow the precision the backend computes in (wgpu computes float64 in float32).
Prints one FAIL line per failing op with the mismatch, then a summary; exit status 1 if any
op failed. Plugin authors run the same check on their ops (--op NAME)."""

OPS_HELP = """\
List the registered ops (core and plugins): name, kind (elementwise, reduce, movement,
linalg, nn, random, ...), the distribution that declared it, and the first line of its
docstring. `rustyasg plugins` shows which backends implement each op."""


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="rustyasg", description="RustyASG command line: inspect the installed "
                                     "backends, plugins and ops, and check a backend against the reference.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("plugins", help="installed backends, plugins, and which backend implements each op",
                   description="List the installed backends (and why one cannot be used here), the "
                               "plugins (and any that failed to load), every op with the backends that "
                               "implement it and the distribution that declared it, and ops a plugin "
                               "overrides.").set_defaults(handler=_cmd_plugins)
    ops = sub.add_parser("ops", help="list the registered ops: name, kind, declared by, summary",
                         description=OPS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ops.add_argument("--kind", help="only ops of this kind (elementwise, reduce, movement, linalg, nn, random, ...)")
    ops.add_argument("--all", action="store_true", help="include graph leaves (input, variable, constant)")
    ops.add_argument("--torch", action="store_true",
                     help="the PyTorch/JAX name of each function, layer and op, and RustyASG's (docs/torch_mapping.md)")
    ops.set_defaults(handler=_cmd_ops)
    check = sub.add_parser("check", help="run the conformance kit on a backend (every op against the reference)",
                           description=CHECK_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("backend", metavar="BACKEND", help="backend to check: reference, cpu, wgpu, ... (`rustyasg plugins` lists them)")
    check.add_argument("--dtype", default="float32", choices=("float16", "float32", "float64"),
                       help="dtype of the float operands (default: float32)")
    check.add_argument("--op", action="append", default=[], metavar="NAME",
                       help="check only this op (repeatable; default: every op with examples)")
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
