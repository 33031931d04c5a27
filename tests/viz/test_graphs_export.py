"""Viewer graphs of real programs: node counts, names, module paths, highlighted paths, SVG export."""

import re


import rustyasg.core as rg
import rustyasg.nn as nn
from rustyasg.core.graph import toposort
from rustyasg.viz import static
from rustyasg.viz.graphs import build_graphs, loss_of
from rustyasg.viz.overlays import path_between
from rustyasg.viz.viewer import highlight_paths, resolve_target


def _grad_ids(fn):
    roots = list(fn.outputs) + [v for _, v in fn.updates]
    return {t.id for t in toposort(roots) if t.scope is not None and t.scope.grad_of is not None}


def test_mnist_graphs_match_the_program(mnist):
    t = resolve_target(mnist["trainer"], mnist["batch"])
    graphs = build_graphs(t.function, t.args, t.model, t.optimizer)
    fwd = graphs["forward"]
    # The forward graph of a step built by hand is exactly its loss's graph.
    x = rg.input((None, 1, 28, 28), name="x")
    y = rg.input((None,), "int64", name="y")
    loss = nn.cross_entropy(mnist["model"](x), y)
    opt = nn.optim.SGD(mnist["model"].parameters(), lr=0.1)
    step = rg.function([x, y], rg.stack([loss, loss * 2.0]), updates=opt.updates(loss))
    own = build_graphs(step, None, mnist["model"], opt)
    assert {int(n.id) for n in own["forward"].nodes} == {t.id for t in toposort([loss])}
    assert len(fwd.nodes) == len(toposort([loss_of(t.function)])) > 20
    grads = _grad_ids(t.function)
    assert {int(n.id) for n in graphs["gradient"].nodes if n.kind == "gradient"} == grads
    assert len(graphs["step"].nodes) == len(t.function.lower(*t.args).instrs)
    labels = {n.label for n in graphs["step"].nodes if n.op == "variable"}
    assert {"1.weight", "1.bias", "3.weight", "3.bias", "optimizer.1.weight.exp_avg"} <= labels
    assert any("fused group" in n.attrs for n in graphs["step"].nodes)
    assert any(n.attrs.get("memory slot", "").startswith("arena+") for n in graphs["step"].nodes)
    matmul = next(n for n in graphs["forward"].nodes if n.op == "matmul")
    assert matmul.namespace in ("1", "3") and re.search(r"\.py:\d+$", matmul.attrs["source"])


def test_gpt_module_paths_and_gradient_origins(gpt):
    t = resolve_target(gpt["trainer"], gpt["batch"])
    graphs = build_graphs(t.function, None, t.model, t.optimizer)
    spaces = {n.namespace for n in graphs["forward"].nodes}
    assert {"transformer.h.0/attn/c_attn", "transformer.h.1/mlp/c_fc", "lm_head"} <= spaces
    grad = graphs["gradient"]
    assert any(n.namespace == "grad/transformer.h.0/attn/c_attn" for n in grad.nodes)
    fwd_ids = {n.id for n in graphs["forward"].nodes}
    origins = [n.attrs["gradient of"].split()[0][1:] for n in grad.nodes if n.kind == "gradient"]
    assert origins and all(o in fwd_ids or o.isdigit() for o in origins)


def test_highlight_marks_the_path_from_a_parameter_to_the_loss(mnist):
    t = resolve_target(mnist["trainer"], mnist["batch"])
    graphs = build_graphs(t.function, t.args, t.model, t.optimizer)
    w = mnist["model"][3].weight
    marked = highlight_paths(graphs, t.function, w)
    fwd = set(marked["forward"])
    loss = str(loss_of(t.function).id)
    assert str(w.id) in fwd and loss in fwd
    # every forward node on the weight->loss path is marked with 1.0
    on_path = path_between(graphs["forward"], str(w.id), loss)
    assert on_path and all(marked["forward"][n] == 1.0 for n in on_path)
    assert marked["gradient"] and all(graphs["gradient"].by_id()[n].kind == "gradient" for n in marked["gradient"])


def test_svg_export_counts_match_the_program(tmp_path, mnist):
    t = resolve_target(mnist["trainer"], mnist["batch"])
    graphs = build_graphs(t.function, t.args, t.model, t.optimizer)
    for gid in ("forward", "gradient"):
        g = graphs[gid]
        path = static.export(g, str(tmp_path / f"{gid}.svg"), collapse_above=10_000)
        svg = open(path).read()
        assert svg.count('class="node"') == len(g.nodes)
        assert svg.count('class="edge"') == len([e for e in g.edges() if e[0] in g.by_id()])
    png = static.export(graphs["forward"], str(tmp_path / "f.png"))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_large_graphs_collapse_to_modules(tmp_path, gpt):
    t = resolve_target(gpt["trainer"], gpt["batch"])
    g = build_graphs(t.function, None, t.model)["forward"]
    svg = open(static.export(g, str(tmp_path / "gpt.svg"), collapse_above=100, depth=1)).read()
    modules = {(n.namespace.split("/")[0] or "(top level)") for n in g.nodes}
    assert svg.count('class="node"') == len(modules) < len(g.nodes)


def test_bad_bundle_is_a_clear_error(tmp_path):
    from rustyasg.viz.bundle import read_bundle

    p = tmp_path / "x.rgviz"
    p.write_text('{"format": "other"}')
    try:
        read_bundle(str(p))
    except rg.RustyASGError as exc:
        assert "not a RustyASG graph bundle" in str(exc)
    else:
        raise AssertionError("no error")
