"""Movement and indexing functions against PyTorch: values and gradients, on every backend.

One table of cases (random operands, edge values ±inf/NaN/0, empty and 0-d shapes); each
backend compiles the whole table into one function (see ``torch_parity_table.py``).
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import rustyasg.core as rg


def _load_sibling(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, pathlib.Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


parity = _load_sibling("torch_parity_table")
Case = parity.Case

R = np.random.default_rng(11)
X = R.standard_normal((3, 4, 5))
M = R.standard_normal((4, 4))
V = R.standard_normal(4)
EDGE = np.array([[0.0, -1.5, np.inf, 2.0], [-np.inf, np.nan, -0.0, 3.0]])
EMPTY = np.zeros((2, 0, 3))
S = np.array(0.7)
IDX = np.array([[0, 2, 2, 1], [3, 1, 0, 0], [4, 4, 1, 2]])  # duplicates on purpose
UNIQ = np.array([[2, 0], [1, 3], [0, 3]])
SRC = R.standard_normal((3, 4))
SRC_ZERO = SRC.copy()
SRC_ZERO[0, 1] = 0.0  # a single zero aimed at one target, for the product's gradient
MASK = R.random((3, 4, 5)) < 0.4
EYE_MASK = np.eye(3, dtype=bool)[:, None, :]
METHOD_INDEX = R.integers(0, 3, (4, 1, 2, 3))


def _i(a):
    return np.asarray(a, np.int64)


def _c(a):
    return torch.as_tensor(a)


def _advanced(key_fn):
    """x[key] with RustyASG constants for the arrays, and the same key for torch."""
    return (lambda x: x[tuple(rg.constant(k) if isinstance(k, np.ndarray) else k for k in key_fn())],
            lambda t: t[tuple(torch.as_tensor(k) if isinstance(k, np.ndarray) else k for k in key_fn())])


def _pad_case(name, x, widths, mode):
    """numpy-order widths for rg.pad, reversed pairs for torch's F.pad (last axis first)."""
    torch_pad = [w for ax in reversed(range(x.ndim)) for w in widths[2 * ax:2 * ax + 2]]
    return Case(name, [x], lambda a: rg.pad(a, widths, mode=mode),
                lambda t: TF.pad(t, torch_pad[:2 * _padded_rank(widths)], mode=mode))


def _padded_rank(widths):
    n = len(widths) // 2
    first = next(ax for ax in range(n) if widths[2 * ax:2 * ax + 2] != (0, 0))
    return n - first


X4 = R.standard_normal((2, 3, 5, 6))
ADV = [
    ("adv_two_arrays", lambda: (_i([[0, 2], [1, 1]]), slice(None), _i([1, -1]))),
    ("adv_adjacent", lambda: (slice(None), _i([0, 3, 3]), _i([4, 0, 2]))),
    ("adv_int_and_array_apart", lambda: (1, slice(None), _i([0, 4]))),
    ("adv_with_none", lambda: (None, _i([2, 0]), 0)),
    ("adv_int_between", lambda: (_i([2, 0]), 1, _i([3, 3]))),
    ("adv_none_between", lambda: (_i([2, 0]), None, _i([3, 3]))),
    ("adv_three", lambda: (_i([0, 1]), _i([[3], [2]]), _i([4, 0]))),
    ("adv_single_with_slice", lambda: (slice(1, None), _i([3, 0, 3]))),
]

CASES = [
    Case("roll_dims", [X], lambda x: rg.roll(x, (1, -2), (0, 2)), lambda t: torch.roll(t, (1, -2), (0, 2))),
    Case("roll_flat", [X], lambda x: rg.roll(x, 7), lambda t: torch.roll(t, 7)),
    Case("roll_edge", [EDGE], lambda x: rg.roll(x, 3, 1), lambda t: torch.roll(t, 3, 1), grad=False),
    Case("repeat", [M[:2, :3]], lambda x: rg.repeat(x, 2, 1, 3), lambda t: t.repeat(2, 1, 3)),
    Case("repeat_0d", [S], lambda x: rg.repeat(x, 3), lambda t: t.repeat(3)),
    Case("repeat_empty", [EMPTY], lambda x: rg.repeat(x, 1, 2, 2), lambda t: t.repeat(1, 2, 2)),
    Case("tile", [M[:2, :3]], lambda x: rg.tile(x, (2,)), lambda t: torch.tile(t, (2,))),
    Case("tile_more", [V], lambda x: rg.tile(x, (2, 3)), lambda t: torch.tile(t, (2, 3))),
    Case("repeat_interleave_int", [X], lambda x: rg.repeat_interleave(x, 2, dim=1),
         lambda t: torch.repeat_interleave(t, 2, dim=1)),
    Case("repeat_interleave_list", [X], lambda x: rg.repeat_interleave(x, [1, 0, 3], dim=0),
         lambda t: torch.repeat_interleave(t, torch.tensor([1, 0, 3]), dim=0)),
    Case("repeat_interleave_flat", [M], lambda x: rg.repeat_interleave(x, 2), lambda t: torch.repeat_interleave(t, 2)),
    Case("diag_vector", [V], lambda x: rg.diag(x, 1), lambda t: torch.diag(t, 1)),
    Case("diag_matrix", [M], lambda x: rg.diag(x, -1), lambda t: torch.diag(t, -1)),
    Case("diagonal", [X], lambda x: rg.diagonal(x, 1, 0, 2), lambda t: torch.diagonal(t, 1, 0, 2)),
    Case("diagonal_swapped", [X], lambda x: rg.diagonal(x, -1, 2, 1), lambda t: torch.diagonal(t, -1, 2, 1)),
    Case("diagonal_offset_past_end", [M], lambda x: rg.diagonal(x, 5), lambda t: torch.diagonal(t, 5)),
    Case("diag_embed", [M[:2, :3]], lambda x: rg.diag_embed(x, 1, 0, 2), lambda t: torch.diag_embed(t, 1, 0, 2)),
    Case("diag_embed_default", [X], lambda x: rg.diag_embed(x, -2), lambda t: torch.diag_embed(t, -2)),
    Case("unfold", [X], lambda x: rg.unfold(x, 2, 2, 1), lambda t: t.unfold(2, 2, 1)),
    Case("unfold_step", [X], lambda x: rg.unfold(x, 1, 3, 2), lambda t: t.unfold(1, 3, 2)),
    Case("unflatten", [X], lambda x: rg.unflatten(x, 2, (1, -1)), lambda t: t.unflatten(2, (1, -1))),
    Case("movedim", [X], lambda x: rg.movedim(x, (0, 1), (2, 0)), lambda t: torch.movedim(t, (0, 1), (2, 0))),
    Case("index_select", [X], lambda x: rg.index_select(x, 2, rg.constant(_i([4, 0, 4]))),
         lambda t: torch.index_select(t, 2, _c(_i([4, 0, 4])))),
    Case("index_add", [X, X[:, :2]], lambda x, s: rg.index_add(x, 1, rg.constant(_i([3, 3])), s, alpha=2.0),
         lambda t, s: torch.index_add(t, 1, _c(_i([3, 3])), s, alpha=2.0)),
    Case("scatter_src", [X[:, :, 0], SRC[:, :2]], lambda x, s: rg.scatter(x, 1, rg.constant(UNIQ[:, :2] % 4), s),
         lambda t, s: torch.scatter(t, 1, _c(UNIQ[:, :2] % 4), s)),
    Case("scatter_value", [X[:, :, 0]], lambda x: rg.scatter(x, 1, rg.constant(UNIQ % 4), value=-2.5),
         lambda t: torch.scatter(t, 1, _c(UNIQ % 4), -2.5)),
    *[Case(f"scatter_reduce_{r}_{s}", [X[:, :, 0] + 0.1, SRC_ZERO if r == "prod" else SRC],
           lambda x, src, r=r, s=s: rg.scatter_reduce(x, 1, rg.constant(IDX % 4), src, r, include_self=s),
           lambda t, src, r=r, s=s: torch.scatter_reduce(t, 1, _c(IDX % 4), src, r, include_self=s))
      for r in ("sum", "prod", "mean", "amax", "amin") for s in (True, False)],
    Case("scatter_reduce_nan", [EDGE, EDGE], lambda x, s: rg.scatter_reduce(x, 1, rg.constant(_i([[1, 1, 0, 2]] * 2)),
                                                                           s, "amax", include_self=False),
         lambda t, s: torch.scatter_reduce(t, 1, _c(_i([[1, 1, 0, 2]] * 2)), s, "amax", include_self=False),
         grad=False),
    Case("masked_fill", [X], lambda x: rg.masked_fill(x, rg.constant(MASK), -np.inf),
         lambda t: t.masked_fill(_c(MASK), -np.inf)),
    Case("masked_fill_broadcast", [X], lambda x: rg.masked_fill(x, rg.constant(MASK[0, 0]), 2.0),
         lambda t: t.masked_fill(_c(MASK[0, 0]), 2.0)),
    Case("take_along_dim", [X], lambda x: rg.take_along_dim(x, rg.constant(_i([[[4], [0], [1], [2]]])), 2),
         lambda t: torch.take_along_dim(t, _c(_i([[[4], [0], [1], [2]]])), 2)),
    Case("take_along_dim_flat", [M], lambda x: rg.take_along_dim(x, rg.constant(_i([15, 0, 7]))),
         lambda t: torch.take_along_dim(t, _c(_i([15, 0, 7])))),
    _pad_case("pad_reflect", X4, (0, 0, 0, 0, 2, 1, 1, 3), "reflect"),
    _pad_case("pad_replicate", X4, (0, 0, 0, 0, 3, 0, 2, 4), "replicate"),
    _pad_case("pad_circular", X4, (0, 0, 0, 0, 1, 2, 6, 3), "circular"),
    _pad_case("pad_reflect_crop", X4, (0, 0, 0, 0, -1, 2, 2, -3), "reflect"),
    _pad_case("pad_replicate_crop", X4, (0, 0, 0, 0, 0, -2, -1, 3), "replicate"),
    _pad_case("pad_circular_crop", X4, (0, 0, 0, 0, -1, 2, 0, -2), "circular"),
    Case("pad_constant_crop", [X4], lambda x: rg.pad(x, (0, 0, 0, 0, -1, 2, 3, -4), value=1.5),
         lambda t: TF.pad(t, (3, -4, -1, 2), value=1.5)),
    Case("einsum_matmul", [X, X], lambda a, b: rg.einsum("bij,bkj->bik", a, b),
         lambda a, b: torch.einsum("bij,bkj->bik", a, b)),
    Case("einsum_ellipsis", [X, M[:, :3].T.copy()], lambda a, b: rg.einsum("...j,kj", a[:, :, :4], b),
         lambda a, b: torch.einsum("...j,kj", a[:, :, :4], b)),
    Case("einsum_trace_diag", [M], lambda a: rg.einsum("ii", a), lambda a: torch.einsum("ii", a)),
    Case("einsum_diag", [M], lambda a: rg.einsum("ii->i", a), lambda a: torch.einsum("ii->i", a)),
    Case("einsum_outer", [V, X[0, 0]], lambda a, b: rg.einsum("i,j->ji", a, b), lambda a, b: torch.einsum("i,j->ji", a, b)),
    Case("einsum_three", [X, M, V], lambda a, b, c: rg.einsum("bij,jk,k->ib", a[:, :, :4], b, c),
         lambda a, b, c: torch.einsum("bij,jk,k->ib", a[:, :, :4], b, c)),
    Case("einsum_sum_all", [X], lambda a: rg.einsum("ijk->", a), lambda a: torch.einsum("ijk->", a)),
    Case("einsum_broadcast", [X[:1], X], lambda a, b: rg.einsum("bij,bij->bj", a, b),
         lambda a, b: torch.einsum("bij,bij->bj", a, b)),
    *[Case(name, [X], *_advanced(key)) for name, key in ADV],
    Case("tensor_methods", [X], lambda x: x.roll(1, 0).repeat(1, 1, 2).movedim(0, -1).unflatten(0, (2, 2))
         .diagonal(0, 0, 1).unfold(0, 3, 2).masked_fill(rg.constant(EYE_MASK), 0.0)
         .scatter(1, rg.constant(METHOD_INDEX), 1.5),
         lambda t: t.roll(1, 0).repeat(1, 1, 2).movedim(0, -1).unflatten(0, (2, 2))
         .diagonal(0, 0, 1).unfold(0, 3, 2).masked_fill(_c(EYE_MASK), 0.0)
         .scatter(1, _c(METHOD_INDEX), 1.5)),
    Case("adv_runtime_index", [X, _i([[0, 2], [1, 1]]), _i([1, -1])], lambda x, i, j: x[i, :, j],
         lambda t, i, j: t[i, :, j]),
]


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
def test_movement_and_indexing_match_torch(backend):
    parity.check_cases(CASES, backend)


def test_data_dependent_shapes_are_refused_with_the_static_alternative():
    x = rg.input((3,), name="x")
    for fn, hint in ((rg.masked_select, "where"), (rg.nonzero, "where"), (rg.unique, "sort")):
        with pytest.raises(rg.ShapeError, match=hint):
            fn(x, x > 0)


@pytest.mark.parametrize("call, message", [
    (lambda x: rg.roll(x, (1, 2), (0,)), "same length"),
    (lambda x: rg.repeat(x, 2), "at least 3 sizes"),
    (lambda x: rg.repeat_interleave(x, [1, 2], dim=0), "2 counts for an axis of size 3"),
    (lambda x: rg.repeat_interleave(x, rg.input((3,), "int64", name="r"), dim=0), "data-dependent"),
    (lambda x: rg.diagonal(x, 0, 1, 1), "must differ"),
    (lambda x: rg.unfold(x, 1, 9, 1), "exceeds"),
    (lambda x: rg.unflatten(x, 1, (3, 3)), "multiply to 9"),
    (lambda x: rg.pad(x, (0, 0, 4, 0, 0, 0), mode="reflect"), "smaller than the size 4"),
    (lambda x: rg.pad(x, (0, 0, 1, 1, 0, 0), mode="wrap"), "mode must be"),
    (lambda x: rg.einsum("ij,jk->ik", x), "2 operand"),
    (lambda x: rg.einsum("ij,ab->ia", x, x[0]), "do not match"),
    (lambda x: rg.einsum("ijk->z", x), "appears in no operand"),
    (lambda x: rg.scatter_reduce(x, 0, rg.constant(np.zeros((3, 4, 5), np.int64)), x, "median"), "reduce must be"),
    (lambda x: x[rg.constant(_i([0, 1])), rg.constant(_i([0, 1, 2]))], "cannot be broadcast"),
    (lambda x: x[rg.constant(_i([0, 3])), rg.constant(_i([0, 1]))], "out of bounds"),
    (lambda x: rg.masked_fill(x, rg.constant(np.ones(4)), 1.0), "must be bool"),
])
def test_mistakes_are_build_time_errors_naming_the_function_and_the_line(call, message):
    x = rg.input((3, 4, 5), name="x")
    with pytest.raises(rg.RustyASGError, match=message) as info:
        call(x)
    assert "test_movement_parity.py" in str(info.value)
