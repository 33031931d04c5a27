"""``rustyasg view SCRIPT.py [SCRIPT.py ...]``: open scripts' models in the viewer, or export pictures.

A script is run as a module (its ``if __name__ == "__main__":`` block does not run) and
must define one of:

- ``trainer`` (a ``rustyasg.nn.Trainer``) and ``batch`` (one ``(x, y)`` batch): the training step;
- ``step`` (a compiled function) and ``example_args`` (a list of arrays);
- ``model`` and ``example_inputs`` (a list of arrays): the forward.

``--profile N`` runs the step N times under the profiler and overlays per-node time and live
bytes; ``--stats`` overlays value statistics; ``--highlight PARAM`` marks a parameter's paths; ``--svg/--png PATH`` writes a static picture
of ``--graph`` instead of serving; ``--trace PATH`` writes the Chrome trace of the profile.

Example:
    $ rustyasg view examples/view_mnist.py examples/view_gpt.py --profile 3 --highlight lm_head.weight
"""

from __future__ import annotations

import os
import runpy
from typing import List

from rustyasg.core.errors import RustyASGError


def load_script(path: str):
    """``(name, target, args)`` from a script following the conventions above."""
    if not os.path.isfile(path):
        raise RustyASGError(f"rustyasg view: no such file {path!r}")
    ns = runpy.run_path(path, run_name="__rustyasg_view__")
    name = os.path.splitext(os.path.basename(path))[0]
    if "trainer" in ns and "batch" in ns:
        return name, ns["trainer"], [ns["batch"]]
    if "step" in ns and "example_args" in ns:
        return name, ns["step"], list(ns["example_args"])
    if "model" in ns and "example_inputs" in ns:
        return name, ns["model"], list(ns["example_inputs"])
    raise RustyASGError(f"rustyasg view: {path} defines none of (trainer, batch), (step, example_args), "
                        f"(model, example_inputs) at module level")


def _parameter(target, name: str):
    """The variable called ``name`` (a state_dict key) in the target's model or program, or None."""
    from .graphs import variable_names

    names = variable_names(target.model, target.optimizer)
    trained = {id(v) for v, _ in target.function.updates}
    if target.model is not None and hasattr(target.model, "named_modules"):  # every name of a tied weight
        for prefix, mod in target.model.named_modules():
            for k, v in getattr(mod, "_parameters", {}).items():
                if (f"{prefix}.{k}" if prefix else k) == name and id(v) in trained:
                    return v
    for var, _ in target.function.updates:
        if names.get(var.id) == name or (var.name == name and var.id not in names):
            return var
    return None


def run_view(args) -> int:
    from . import static
    from .profiler import Profile
    from .viewer import resolve_target, serve, view_data

    datas = []
    for path in args.scripts:
        name, target, example = load_script(path)
        t = resolve_target(target, *example, name=name)
        prof = None
        if args.profile:
            prof = Profile()
            with prof:
                for _ in range(args.profile):
                    t.function(*t.args)
            print(prof.table(limit=15))
            if args.trace:
                prof.export_chrome_trace(args.trace if len(args.scripts) == 1 else f"{name}-{args.trace}")
        highlight = _parameter(t, args.highlight) if args.highlight else None
        data = view_data(t, prof, stats=args.stats, highlight=highlight)
        datas.append(data)
        for fmt in ("svg", "png"):
            out = getattr(args, fmt)
            if out:
                graph = data.graphs.get(args.graph)
                if graph is None:
                    raise RustyASGError(f"--graph {args.graph!r}: {name} has graphs {sorted(data.graphs)}")
                out = out if len(args.scripts) == 1 else f"{name}-{out}"
                static.export(graph, out, collapse_above=args.collapse_above)
                print(f"wrote {out}")
    if args.highlight and not any("path" in d.overlays for d in datas):
        raise RustyASGError(f"--highlight {args.highlight!r}: no script trains a variable of that name "
                            f"(give a state_dict key such as 1.weight)")
    if args.svg or args.png:
        return 0
    serve(datas, host=args.host, port=args.port, open_browser=not args.no_browser, block=True)
    return 0


def add_view_command(subparsers) -> None:
    p = subparsers.add_parser("view", help="show a script's forward, gradient and compiled-step graphs in the browser")
    p.add_argument("scripts", nargs="+", help="Python files defining trainer+batch, step+example_args or "
                                             "model+example_inputs")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="profile N runs and overlay the times")
    p.add_argument("--stats", action="store_true", help="overlay value statistics (mean, max |x|, NaN/Inf)")
    p.add_argument("--highlight", metavar="PARAM", help="highlight a parameter's paths: forward to the loss and "
                                                        "its gradient back from the loss (a state_dict name)")
    p.add_argument("--trace", metavar="PATH", help="with --profile: write a Chrome trace (Perfetto) here")
    p.add_argument("--svg", metavar="PATH", help="write a static SVG of --graph and exit")
    p.add_argument("--png", metavar="PATH", help="write a static PNG of --graph and exit")
    p.add_argument("--graph", default="forward", help="forward, gradient or step (for --svg/--png)")
    p.add_argument("--collapse-above", type=int, default=300, help="draw module-level boxes above this many nodes")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--no-browser", action="store_true", help="serve without opening a browser tab")
    p.set_defaults(handler=run_view)


def main(argv: List[str]) -> int:  # for `python -m rustyasg.viz.cli`
    import argparse

    parser = argparse.ArgumentParser(prog="rustyasg")
    add_view_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)
