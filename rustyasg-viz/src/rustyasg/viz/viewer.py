"""``rg.view(...)``: open a compiled function's graphs in Model Explorer on localhost.

The graphs (:mod:`.graphs`) are written as an ``.rgviz`` bundle that the Model Explorer
adapter in :mod:`.explorer` reads; measurements become node-data overlays
(:mod:`.overlays`): per-node time and bytes from a :class:`~rustyasg.viz.profiler.Profile`,
value statistics and first-NaN marks from :func:`value_stats`, highlighted paths.

Targets: a :class:`~rustyasg.core.Function` (with example arguments for the compiled
``step`` graph), a ``rustyasg.nn.Trainer`` with a batch (its training step, parameters
named by their ``state_dict`` keys), or a model with example inputs (its forward).

Example (opens a browser tab, so not run here)::

    viewer = rg.view(trainer, batch, profile=prof, block=False)
    viewer.url
    # 'http://127.0.0.1:8080/?data=...'
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from rustyasg.core.errors import RustyASGError
from rustyasg.core.graph import Tensor

from . import overlays as ov
from .bundle import write_bundle
from .graphs import VizGraph, build_graphs, gradient_node_of

EXTENSION_MODULE = "rustyasg.viz.explorer"
ADAPTER_ID = "rustyasg_viz_adapter"


@dataclass
class Target:
    """What is shown: a function, example arguments, and where names come from."""

    name: str
    function: Any
    args: Optional[List[np.ndarray]] = None
    model: Any = None
    optimizer: Any = None


@dataclass
class ViewData:
    """Everything one model contributes to the viewer: graphs and overlays."""

    name: str
    graphs: Dict[str, VizGraph]
    overlays: Dict[str, tuple] = field(default_factory=dict)  # overlay name -> (Overlay, colour kind)


def resolve_target(target, *args, model=None, optimizer=None, name: Optional[str] = None) -> Target:
    """Turn a Function, Trainer or model (+ example arguments) into a :class:`Target`."""
    from rustyasg.core.function import Function

    if isinstance(target, Function):
        return Target(name or target.name or "function", target, list(args) if args else None, model, optimizer)
    if hasattr(target, "train_step") and hasattr(target, "model") and hasattr(target, "optimizer"):
        if not args and target.train_step is None:
            raise RustyASGError("view(trainer): pass a batch, e.g. trainer.view((x, y)): the training step is "
                                "compiled from the first batch's shapes")
        flat = None
        if args:
            batch = args[0] if len(args) == 1 else tuple(args)
            target._ensure_train_step(batch)
            from rustyasg.nn.training.steps import flatten_batch

            flat = flatten_batch(batch)
        return Target(name or "train_step", target.train_step, flat, target.model, target.optimizer)
    if callable(target) and hasattr(target, "named_modules"):
        if not args:
            raise RustyASGError("view(model): pass example inputs, e.g. rg.view(model, x): they fix dtypes and "
                                "the non-batch dimensions")
        import rustyasg.core as rg

        arrays = [np.asarray(a) for a in args]
        inputs = [rg.input((None,) + a.shape[1:] if a.ndim else (), a.dtype, name=f"x{i}") for i, a in enumerate(arrays)]
        out = target(*inputs)
        fn = rg.function(inputs, out, name=type(target).__name__)
        return Target(name or type(target).__name__, fn, arrays, target, optimizer)
    raise RustyASGError(f"view() takes a compiled function, a Trainer or a model, got {type(target).__name__}")


def _tensor_id(t) -> str:
    return str(t.id) if isinstance(t, Tensor) else str(t).lstrip("%")


def view_data(target: Target, profile=None, stats: bool = False, highlight=None) -> ViewData:
    """Graphs and overlays for one target (no server involved: tests and exporters use this)."""
    graphs = build_graphs(target.function, target.args, target.model, target.optimizer)
    data = ViewData(target.name, graphs)
    data.overlays["bytes"] = (ov.bytes_overlay(graphs), "memory")
    if profile is not None:
        data.overlays["time (us)"] = (profile.node_time_overlay(graphs), "time")
        peak = profile.peak_live_overlay(graphs)
        if peak:
            data.overlays["live bytes at step"] = (peak, "memory")
    if stats and target.args is not None:
        from .debugging import value_stats

        s = value_stats(target.function, target.args, graphs)
        for key, kind in (("mean", "time"), ("max_abs", "time"), ("nonfinite", "nan")):
            data.overlays[f"value {key}"] = (s[key], kind)
        if s["first_nonfinite"]:
            data.overlays["first NaN/Inf"] = (s["first_nonfinite"], "nan")
    if highlight is not None:
        data.overlays["path"] = (highlight_paths(graphs, target.function, highlight), "path")
    return data


def highlight_paths(graphs: Dict[str, VizGraph], function, highlight) -> ov.Overlay:
    """Nodes to mark for ``highlight``: a tensor (its path to the first output, the loss), a
    ``(source, target)`` pair, or a parameter (the gradient-graph path from the loss to its gradient,
    plus the forward nodes those gradient nodes came from)."""
    from rustyasg.core.graph import Variable

    from .graphs import loss_of

    loss = _tensor_id(loss_of(function))
    out: ov.Overlay = {}
    if isinstance(highlight, tuple):
        src, dst = (_tensor_id(h) for h in highlight)
    else:
        src, dst = _tensor_id(highlight), loss
    for gid in ("forward", "step"):
        if gid in graphs:
            nodes = ov.path_between(graphs[gid], src, dst)
            if nodes:
                out[gid] = {n: 1.0 for n in nodes}
    if isinstance(highlight, Variable) and "gradient" in graphs:
        grad_node = gradient_node_of(function, highlight)
        if grad_node is not None:
            nodes = ov.gradient_path(graphs["gradient"], str(grad_node))
            out["gradient"] = {n: 1.0 for n in nodes}
            origins = ov.forward_origins(graphs["gradient"], nodes)
            fwd = graphs["forward"].by_id()
            marks = out.setdefault("forward", {})
            for n in origins:  # forward nodes the path's gradients came from (0.5 unless on the path)
                if n in fwd:
                    marks.setdefault(n, 0.5)
    return out


def _free_port(host: str, start: int) -> int:
    for port in range(start, start + 50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex((host, port)) != 0:
                return port
    raise RustyASGError(f"no free port in {start}..{start + 49} on {host}; pass port=")


@dataclass
class Viewer:
    """A running viewer: its ``url`` and the data it shows."""

    url: str
    port: int
    folder: str
    data: List[ViewData]
    thread: Optional[threading.Thread] = None


def serve(data: Sequence[ViewData], host: str = "127.0.0.1", port: int = 8080, open_browser: bool = True,
          block: bool = True, folder: Optional[str] = None) -> Viewer:
    """Start Model Explorer on ``data`` (one or more models); returns once the page is served."""
    from model_explorer import server
    from model_explorer.config import ModelExplorerConfig

    folder = folder or tempfile.mkdtemp(prefix="rustyasg-view-")
    cfg = ModelExplorerConfig()
    for d in data:
        path = os.path.join(folder, f"{d.name}.rgviz")
        write_bundle(path, d.graphs)
        cfg.add_model_from_path(path, adapterId=ADAPTER_ID)
    for d in data:
        for name, (overlay, kind) in d.overlays.items():
            if any(overlay.values()):
                cfg.add_node_data(f"{d.name}: {name}", ov.to_node_data(name, overlay, kind), model_name=f"{d.name}.rgviz")
    port = _free_port(host, port)
    url = f"http://{host}:{port}/?data={cfg.to_url_param_value()}"

    def run():
        server.start(host=host, port=port, config=cfg, no_open_in_browser=not open_browser,
                     extensions=[EXTENSION_MODULE], skip_health_check=False)

    if block:
        print(f"RustyASG viewer: {url}")
        run()
        return Viewer(url, port, folder, list(data))
    thread = threading.Thread(target=run, daemon=True, name="rustyasg-viewer")
    thread.start()
    _wait_for(f"http://{host}:{port}/check_health")
    return Viewer(url, port, folder, list(data), thread)


def _wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RustyASGError(f"the viewer did not start within {timeout:.0f} s ({url})")
        time.sleep(0.1)


def view(target, *args, model=None, optimizer=None, profile=None, stats: bool = False, highlight=None,
         host: str = "127.0.0.1", port: int = 8080, open_browser: bool = True, block: bool = True,
         name: Optional[str] = None) -> Viewer:
    """Show ``target``'s forward, gradient and compiled-step graphs in the browser.

    ``args``: example arguments (a batch for a Trainer); they add the compiled ``step``
    graph and fix shapes. ``profile``: a :class:`~rustyasg.viz.profiler.Profile` whose
    per-node times and live bytes become overlays. ``stats``: run the function once more
    and overlay value statistics (mean, max ``|x|``, NaN/Inf counts, first non-finite node).
    ``highlight``: a tensor (path to the loss), a ``(source, target)`` pair, or a
    parameter (gradient path from the loss). ``block=False`` returns once the page is served.
    """
    t = resolve_target(target, *args, model=model, optimizer=optimizer, name=name)
    return serve([view_data(t, profile, stats, highlight)], host, port, open_browser, block)
