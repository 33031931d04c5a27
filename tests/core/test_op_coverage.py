"""Coverage: every registered op runs on every installed backend (or says why not), and the
PyTorch name table (``rustyasg ops --torch``, ``docs/torch_mapping.md``) names only things that exist.
"""

from __future__ import annotations

import pathlib

import pytest

import rustyasg.core as rg
from rustyasg.core import cli
from rustyasg.core.backends import installed_backends
from rustyasg.core.plugins import load_kernels
from rustyasg.core.torch_names import ROWS, render_markdown, resolve

LEAVES = {"input", "variable", "constant"}  # values the executor supplies, not computed
# Backends that do not run ops from a kernel table, with where their coverage is checked.
NOT_KERNEL_TABLES = {
    "reference": "runs each op's float64 numpy reference (checked below: every op declares one)",
    "onnxruntime": "runs ONNX exported through translators; tests/onnx/test_translators.py checks their coverage",
}
# (backend, op) -> why that backend has no kernel for it. Empty today: every op runs everywhere.
DECLARED_GAPS: dict = {}
DOCS_PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "torch_mapping.md"


def test_every_op_declares_a_reference():
    missing = sorted(n for n, d in rg.OPS.items() if n not in LEAVES and not callable(d.reference))
    assert missing == []


@pytest.mark.parametrize("backend", sorted(set(installed_backends()) - set(NOT_KERNEL_TABLES)))
def test_every_op_has_a_kernel_on_every_installed_backend_or_a_declared_reason(backend):
    table = set(load_kernels(backend))
    missing = sorted(n for n in rg.OPS if n not in LEAVES and n not in table and (backend, n) not in DECLARED_GAPS)
    assert missing == [], f"ops without a {backend} kernel: {missing} (add one, or a reason to DECLARED_GAPS)"
    stale = sorted(op for (b, op) in DECLARED_GAPS if b == backend and op in table)
    assert stale == [], f"declared gaps that have a kernel now: {stale}"


def test_the_kernel_backends_here_are_the_ones_the_project_promises():
    assert {"cpu", "wgpu"} <= set(installed_backends()) - set(NOT_KERNEL_TABLES)


def test_every_rustyasg_name_in_the_torch_table_exists():
    import rustyasg.nn  # noqa: F401  (the nn and F prefixes)

    missing = []
    for row in ROWS:
        try:
            resolve(row.rustyasg)
        except (AttributeError, KeyError, ImportError):
            missing.append(f"{row.torch} -> {row.rustyasg}")
    assert missing == []
    assert len({r.torch for r in ROWS}) == len(ROWS), "a PyTorch name is listed twice"


def test_the_docs_page_is_rendered_from_the_table():
    assert DOCS_PAGE.read_text() == render_markdown(), \
        "docs/torch_mapping.md is stale: python -m rustyasg.core.torch_names > docs/torch_mapping.md"


def test_rustyasg_ops_torch_prints_the_table(capsys):
    assert cli.main(["ops", "--torch"]) == 0
    out = capsys.readouterr().out
    assert "torch.einsum" in out and "rg.einsum" in out and "nn.LSTM" in out
    assert len(out.strip().splitlines()) == len(ROWS) + 1


def test_rustyasg_ops_lists_the_new_op():
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert cli.main(["ops", "--kind", "movement"]) == 0
    assert "scatter_reduce" in buf.getvalue()
