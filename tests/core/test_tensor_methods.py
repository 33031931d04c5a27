"""Tensor's operators and methods are attached at import time and declared for type checkers: the two agree."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
import textwrap

import rustyasg.core  # noqa: F401  (attaches the methods)
from rustyasg.core import graph
from rustyasg.core.graph import Tensor


def _class_body():
    """(names defined in Tensor's body, names declared in its ``if TYPE_CHECKING:`` block)."""
    tree = ast.parse(inspect.getsource(graph))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tensor")
    body, declared = set(), set()
    for node in cls.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            declared |= {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            body.add(node.name)
    return body, declared


def test_every_attached_method_is_declared_and_every_declaration_is_attached():
    body, declared = _class_body()
    attached = {name for name, value in vars(Tensor).items()
                if (callable(value) or isinstance(value, property)) and name not in body}
    assert attached, "tensor_api attaches the operators at import"
    assert attached - declared == set(), "attached at run time but not declared on Tensor (add them to graph.py)"
    assert declared - attached == set(), "declared on Tensor but attached by nothing"
    assert not (declared & body)


def test_mypy_sees_the_types_of_a_typical_snippet(tmp_path):
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent("""
        import numpy as np
        import rustyasg.core as rg

        x = rg.input((4, 5), name="x")
        w = rg.variable(np.ones((5, 3), np.float32), name="w")
        reveal_type(x.sum(axis=1))
        reveal_type((x * 2.0 + 1) @ w)
        reveal_type(x.T[0, 1:])
        reveal_type(x.reshape(5, 4).softmax() == 1)
        reveal_type(x.numpy())
        reveal_type(x.mean().item())
        x.no_such_method()
        x.sum(axis="rows")
    """))
    run = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
                          "--cache-dir", str(tmp_path / "cache"), "--python-executable", sys.executable,
                          str(snippet)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    lines = [m.group(1) for m in re.finditer(r"snippet\.py:\d+: (.*)", run.stdout)]
    revealed = [line.split('"')[1] for line in lines if line.startswith("note: Revealed type")]
    assert revealed[:4] == ["rustyasg.core.graph.Tensor"] * 4, run.stdout
    assert revealed[4].startswith("numpy.ndarray") and revealed[5] == "Any", run.stdout
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 2, run.stdout
    assert '"Tensor" has no attribute "no_such_method"' in errors[0]
    assert 'incompatible type "str"' in errors[1] and '"sum" of "Tensor"' in errors[1]
