"""``compute_widened`` and the graph's own float32 casts of 16-bit values (autocast's).

After ``cse`` a value cast to float32 once feeds every float32 reader, from a norm in the
forward pass to its gradient in the backward; stored, that copy would live all that time at
twice the 16-bit value's bytes. ``compute_widened`` widens it per reader instead, each copy
made right before its reader; readers that read a stored operand (norms, convolutions) close
together share one copy. The values are unchanged.
"""

from __future__ import annotations

import numpy as np

import rustyasg.core as rg
from rustyasg.core.compile.precision import SHARE_WINDOW, compute_widened
from rustyasg.core.program import lower


def _far_apart(b32, n=SHARE_WINDOW + 4):
    far = rg.tanh(b32)
    for _ in range(n):
        far = rg.tanh(far) * 1.5
    return far


def test_a_graph_cast_read_far_apart_is_widened_right_before_each_reader():
    b = rg.input((4, 6), "bfloat16", name="b")
    b32 = b.astype("float32")
    out = _far_apart(b32) + rg.exp(b32)
    p = compute_widened(lower([b], [out], [], [((4, 6), rg.bfloat16)]))
    by_id, pos = p.by_id(), {i.id: k for k, i in enumerate(p.instrs)}
    readers = [i for i in p.instrs if any(by_id[a].op == "cast" and by_id[by_id[a].inputs[0]].name == "b"
                                         for a in i.inputs)]
    assert len(readers) == 2
    for r in readers:
        (c,) = [a for a in r.inputs if by_id[a].op == "cast"]
        assert pos[r.id] - pos[c] == 1       # made right before its reader


def test_a_norm_and_its_close_neighbour_share_one_copy_and_values_stay():
    rng = np.random.default_rng(2)
    b = rg.input((2, 3, 4, 4), "bfloat16", name="b")
    gamma = rg.variable(np.ones(3, np.float32), name="gamma")
    beta = rg.variable(np.zeros(3, np.float32), name="beta")
    b32 = b.astype("float32")
    y = rg.batch_norm(b32, gamma, beta) + rg.batch_norm(b32 * 1.0, gamma, beta)
    sig = [((2, 3, 4, 4), rg.bfloat16)]
    p = compute_widened(lower([b], [y], [], sig))
    by_id = p.by_id()
    norms = [i for i in p.instrs if i.op == "batch_norm"]
    direct = {a for i in norms for a in i.inputs if by_id[a].op == "cast"}
    assert len(direct) == 1   # both norms read one float32 copy
    bv = rng.standard_normal((2, 3, 4, 4)).astype(rg.bfloat16)
    f = rg.function([b], y, backend="cpu")
    ref = rg.function([b], y, backend="reference")
    np.testing.assert_allclose(f(bv), ref(bv), rtol=1e-5, atol=1e-5)
