"""Math, activations, reductions, scans and sorting against PyTorch: values and gradients, on every backend.

One table (:data:`CASES`) of RustyASG expressions and their torch twins: random operands for
gradients, PyTorch's own kinks (where its gradient is a convention: ``hardtanh`` is 0 on its
bounds), edge values (0, -0, +-inf, NaN, large and tiny), empty and 0-d shapes. Each backend
compiles the whole table into one function (``torch_parity_table.py``).
"""

from __future__ import annotations

import importlib.util
import math
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

R = np.random.default_rng(2026)
SPECIALS = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.5, 1e-3, -1e-4, 30.0, -30.0, np.inf, -np.inf, np.nan])


def uniform(low, high, shape=(3, 5), away=()):
    x = R.uniform(low, high, shape)
    for point in away:  # finite differences and kinks: keep random draws off the non-smooth points
        near = np.abs(x - point) < 0.05
        x = np.where(near, point + np.where(x >= point, 0.1, -0.1), x)
    return x


def edges(shape=(5, 6)):
    """The special values spread over ``shape`` among random ones, in a random order."""
    n = int(np.prod(shape))
    values = np.concatenate([SPECIALS, R.uniform(-4, 4, max(n - SPECIALS.size, 0))])[:n]
    return R.permutation(values).reshape(shape)


def edge_pairs():
    """Every pair of special values (a and b as two flat operands)."""
    a, b = np.meshgrid(SPECIALS, SPECIALS)
    return a.ravel(), b.ravel()


EMPTY, SCALAR = np.zeros((0, 4)), np.array(0.75)

# --- elementwise: name, ours, theirs, (low, high) of the smooth domain, points the gradient avoids
UNARY = [
    ("tan", rg.tan, torch.tan, (-1.2, 1.2), ()),
    ("asin", rg.asin, torch.asin, (-0.95, 0.95), ()),
    ("acos", rg.acos, torch.acos, (-0.95, 0.95), ()),
    ("atan", rg.atan, torch.atan, (-4, 4), ()),
    ("sinh", rg.sinh, torch.sinh, (-4, 4), ()),
    ("cosh", rg.cosh, torch.cosh, (-4, 4), ()),
    ("asinh", rg.asinh, torch.asinh, (-6, 6), ()),
    ("acosh", rg.acosh, torch.acosh, (1.1, 6), ()),
    ("atanh", rg.atanh, torch.atanh, (-0.9, 0.9), ()),
    ("log2", rg.log2, torch.log2, (0.1, 6), ()),
    ("log10", rg.log10, torch.log10, (0.1, 6), ()),
    ("log1p", rg.log1p, torch.log1p, (-0.9, 4), ()),
    ("expm1", rg.expm1, torch.expm1, (-3, 3), ()),
    ("exp2", rg.exp2, torch.exp2, (-5, 5), ()),
    ("trunc", rg.trunc, torch.trunc, (-5, 5), (-4, -3, -2, -1, 0, 1, 2, 3, 4)),
    ("round", rg.round, torch.round, (-5, 5), (-4.5, -3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5)),
    ("round2", lambda x: rg.round(x, decimals=2), lambda t: torch.round(t, decimals=2), (-5, 5), ()),
    ("frac", rg.frac, torch.frac, (-5, 5), (-4, -3, -2, -1, 0, 1, 2, 3, 4)),
    ("reciprocal", rg.reciprocal, torch.reciprocal, (0.2, 3), ()),
    ("square", rg.square, torch.square, (-3, 3), ()),
    ("nan_to_num_args", lambda x: rg.nan_to_num(x, 1.0, 2.0, -2.0),
     lambda t: torch.nan_to_num(t, 1.0, 2.0, -2.0), (-3, 3), ()),
    # activations
    ("hardsigmoid", rg.hardsigmoid, TF.hardsigmoid, (-5, 5), (-3, 3)),
    ("hardswish", rg.hardswish, TF.hardswish, (-5, 5), (-3, 3)),
    ("hardtanh", rg.hardtanh, TF.hardtanh, (-2, 2), (-1, 1)),
    ("hardtanh_args", lambda x: rg.hardtanh(x, -0.5, 2.0), lambda t: TF.hardtanh(t, -0.5, 2.0), (-3, 3), (-0.5, 2)),
    ("relu6", rg.relu6, TF.relu6, (-2, 8), (0, 6)),
    ("selu", rg.selu, TF.selu, (-3, 3), (0,)),
    ("celu", lambda x: rg.celu(x, 0.7), lambda t: TF.celu(t, 0.7), (-3, 3), (0,)),
    ("logsigmoid", rg.logsigmoid, TF.logsigmoid, (-25, 25), ()),
    ("mish", rg.mish, TF.mish, (-5, 5), ()),
    ("softsign", rg.softsign, TF.softsign, (-4, 4), ()),
    ("quick_gelu", rg.quick_gelu, lambda t: t * torch.sigmoid(1.702 * t), (-4, 4), ()),
    ("tanhshrink", rg.tanhshrink, TF.tanhshrink, (-3, 3), ()),
]
BOOL_UNARY = [("isnan", rg.isnan, torch.isnan), ("isinf", rg.isinf, torch.isinf),
              ("isfinite", rg.isfinite, torch.isfinite)]
BINARY = [
    ("atan2", rg.atan2, torch.atan2, (-3, 3), (-3, 3)),
    ("hypot", rg.hypot, torch.hypot, (-3, 3), (-3, 3)),
    ("copysign", rg.copysign, torch.copysign, (-3, 3), (0.3, 3)),
    ("fmod", rg.fmod, torch.fmod, (-5, 5), (0.7, 0.9)),
    ("remainder", rg.remainder, torch.remainder, (-5, 5), (0.7, 0.9)),
    ("logaddexp", rg.logaddexp, torch.logaddexp, (-5, 5), (-5, 5)),
    ("div_trunc", lambda a, b: rg.div(a, b, rounding_mode="trunc"),
     lambda a, b: torch.div(a, b, rounding_mode="trunc"), (-5, 5), (0.7, 0.9)),
    ("div_floor", lambda a, b: rg.div(a, b, rounding_mode="floor"),
     lambda a, b: torch.div(a, b, rounding_mode="floor"), (-5, 5), (0.7, 0.9)),
]
# where PyTorch's gradient is a convention: the kinks themselves, gradient included
KINKS = [
    ("hardtanh", rg.hardtanh, TF.hardtanh, [-1.0, 1.0, 0.0, -2.0]),
    ("relu6", rg.relu6, TF.relu6, [0.0, 6.0, 3.0, -1.0, 7.0]),
    ("hardsigmoid", rg.hardsigmoid, TF.hardsigmoid, [-3.0, 3.0, 0.0, 4.0]),
    ("hardswish", rg.hardswish, TF.hardswish, [-3.0, 3.0, 0.0, -4.0, 4.0]),
    ("softsign", rg.softsign, TF.softsign, [0.0, -0.0, 1.0]),
    ("selu", rg.selu, TF.selu, [0.0, -1.0, 1.0]),
    ("celu", rg.celu, TF.celu, [0.0, -1.0, 1.0]),
    ("nan_to_num", lambda x: rg.nan_to_num(x, 0.5, 9.0, -7.0), lambda t: torch.nan_to_num(t, 0.5, 9.0, -7.0),
     [np.nan, np.inf, -np.inf, 1.0]),
]


# PyTorch's own float64 gradients of these are off by float32 roundings (hardsigmoid uses 1.0f / 6.0f)
LOOSE = {"hardsigmoid": 10.0, "hardswish": 10.0, "celu": 10.0}


def _elementwise_cases():
    cases = []
    for name, ours, theirs, (lo, hi), away in UNARY:
        cases += [Case(name, [uniform(lo, hi, away=away)], ours, theirs, tol_scale=LOOSE.get(name, 1.0)),
                  Case(f"{name} on edge values", [edges()], ours, theirs, grad=False),
                  Case(f"{name} on an empty tensor", [EMPTY], ours, theirs, grad=False),
                  Case(f"{name} on a 0-d tensor", [SCALAR], ours, theirs, tol_scale=LOOSE.get(name, 1.0))]
    for name, ours, theirs in BOOL_UNARY:
        cases += [Case(f"{name} on edge values", [edges()], ours, theirs),
                  Case(f"{name} on a 0-d tensor", [np.array(np.inf)], ours, theirs),
                  Case(f"{name} on int64", [np.arange(-2, 3)], ours, theirs)]
    ea, eb = edge_pairs()
    for name, ours, theirs, (lo, hi), (blo, bhi) in BINARY:
        cases += [Case(name, [uniform(lo, hi), uniform(blo, bhi, (5,))], ours, theirs),
                  Case(f"{name} on edge values", [ea, eb], ours, theirs, grad=False),
                  Case(f"{name} on empty tensors", [EMPTY, np.ones(4)], ours, theirs, grad=False)]
    for name, ours, theirs, points in KINKS:
        cases.append(Case(f"{name} at its kinks", [np.array(points)], ours, theirs, tol_scale=LOOSE.get(name, 1.0)))
    cases += [
        Case("fmod of int64", [np.arange(-7, 8), np.array([3, -3, 2, -2, 5] * 3)], rg.fmod, torch.fmod),
        Case("div trunc of int64", [np.arange(-7, 8), np.array([3, -3, 2, -2, 5] * 3)],
             lambda a, b: rg.div(a, b, rounding_mode="trunc"), lambda a, b: torch.div(a, b, rounding_mode="trunc")),
        Case("lerp", [uniform(-2, 2), uniform(-2, 2), uniform(-0.5, 1.5)], rg.lerp, torch.lerp),
        Case("lerp on edge values", [edges(), edges(), edges()], rg.lerp, torch.lerp, grad=False),
        Case("isclose", [ea, eb], rg.isclose, torch.isclose),
        Case("isclose equal_nan", [ea, np.where(R.random(ea.shape) < 0.5, ea, ea * (1 + 1e-6))],
             lambda a, b: rg.isclose(a, b, equal_nan=True), lambda a, b: torch.isclose(a, b, equal_nan=True)),
        Case("softmin", [uniform(-3, 3, (3, 5))], lambda x: rg.softmin(x, 0), lambda t: TF.softmin(t, 0)),
        Case("glu", [uniform(-3, 3, (3, 6))], rg.glu, TF.glu),
        Case("glu dim 0", [uniform(-3, 3, (4, 3))], lambda x: rg.glu(x, 0), lambda t: TF.glu(t, 0)),
        Case("prelu per channel", [uniform(-3, 3, (2, 3, 4), away=(0,)), uniform(0.1, 0.5, (3,))], rg.prelu,
             TF.prelu),
        Case("prelu one weight", [uniform(-3, 3, (2, 3), away=(0,)), np.array([0.25])], rg.prelu, TF.prelu),
        Case("prelu at 0", [np.array([[0.0, -1.0, 2.0]]), np.array([0.3])], rg.prelu, TF.prelu),
        Case("normalize", [uniform(-3, 3, (3, 4))], rg.normalize, TF.normalize),
        Case("normalize p=1 dim 0", [uniform(-3, 3, (3, 4), away=(0,))], lambda x: rg.normalize(x, 1.0, 0),
             lambda t: TF.normalize(t, 1.0, 0)),
        Case("normalize a zero row", [np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])], rg.normalize, TF.normalize),
    ]
    return cases


# --- reductions, scans, sorting, norms ------------------------------------------------------------
X = R.standard_normal((3, 4, 5))
E = edges((4, 6))
ZEROS = uniform(0.5, 1.5, (3, 5)) * np.where(R.random((3, 5)) < 0.5, 1, -1)
ZEROS[0, 2] = 0.0           # one zero in a row
ZEROS[1, 1] = ZEROS[1, 3] = 0.0  # two zeros in a row


def _reduction_cases():
    def first(f):
        return lambda *a: f(*a)[0]

    def second(f):
        return lambda *a: f(*a)[1]

    c = [
        Case("any", [E], lambda x: rg.any(x, 1), lambda t: torch.any(t, 1)),
        Case("all", [E], lambda x: rg.all(x, 0, keepdim=True), lambda t: torch.all(t, 0, keepdim=True)),
        Case("any of nothing", [EMPTY], lambda x: rg.any(x), torch.any),
        Case("all of nothing", [EMPTY], lambda x: rg.all(x, 0), lambda t: torch.all(t, 0)),
        Case("count_nonzero", [E], lambda x: rg.count_nonzero(x, 1), lambda t: torch.count_nonzero(t, 1)),
        Case("count_nonzero all", [X], rg.count_nonzero, torch.count_nonzero),
        Case("std_mean std", [X], lambda x: rg.std_mean(x, (0, 2))[0], lambda t: torch.std_mean(t, (0, 2))[0]),
        Case("std_mean mean", [X], lambda x: rg.std_mean(x, (0, 2))[1], lambda t: torch.std_mean(t, (0, 2))[1]),
        Case("var_mean var", [X], lambda x: rg.var_mean(x, 1, correction=0)[0],
             lambda t: torch.var_mean(t, 1, correction=0)[0]),
        Case("var_mean mean", [X], lambda x: rg.var_mean(x, 1, keepdim=True)[1],
             lambda t: torch.var_mean(t, 1, keepdim=True)[1]),
        Case("amax two axes", [X], lambda x: rg.amax(x, (0, 2)), lambda t: torch.amax(t, (0, 2))),
        Case("amin two axes keepdim", [X], lambda x: rg.amin(x, (-1, 0), keepdim=True),
             lambda t: torch.amin(t, (-1, 0), keepdim=True)),
        Case("amax with ties", [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])], lambda x: rg.amax(x, 1),
             lambda t: torch.amax(t, 1)),
        Case("sum dtype", [np.arange(12).reshape(3, 4)], lambda x: rg.sum(x, 1, dtype="float64"),
             lambda t: torch.sum(t, 1, dtype=torch.float64)),
        Case("prod dtype", [X], lambda x: rg.prod(x, 2, dtype="float64"),
             lambda t: torch.prod(t, 2, dtype=torch.float64)),
        Case("cumsum", [X], lambda x: rg.cumsum(x, 1), lambda t: torch.cumsum(t, 1)),
        Case("cumsum last", [X], lambda x: rg.cumsum(x, -1), lambda t: torch.cumsum(t, -1)),
        Case("cumsum of bool", [E > 0], lambda x: rg.cumsum(x, 1), lambda t: torch.cumsum(t, 1)),
        Case("cumsum of int64", [np.arange(-6, 6).reshape(3, 4)], lambda x: rg.cumsum(x, 0),
             lambda t: torch.cumsum(t, 0)),
        Case("cumsum and cumprod of large int64", [np.array([[1 << 40, -3, 1 << 62, 5, -(1 << 62)], [1, 2, 3, 4, 5]])],
             lambda x: rg.cumsum(x, 1) + rg.cumprod(x, 1), lambda t: torch.cumsum(t, 1) + torch.cumprod(t, 1)),
        Case("cumprod of int32", [np.arange(1, 13, dtype=np.int32).reshape(3, 4)], lambda x: rg.cumprod(x, 1),
             lambda t: torch.cumprod(t, 1)),
        Case("sum of bool", [E > 0], lambda x: rg.sum(x, 1), lambda t: torch.sum(t, 1)),
        Case("cumsum dtype", [np.arange(6).reshape(2, 3)], lambda x: rg.cumsum(x, 1, dtype="float32"),
             lambda t: torch.cumsum(t, 1, dtype=torch.float32)),
        Case("cumprod", [uniform(0.5, 1.5, (3, 5))], lambda x: rg.cumprod(x, 1), lambda t: torch.cumprod(t, 1)),
        Case("cumprod with zeros", [ZEROS], lambda x: rg.cumprod(x, 1), lambda t: torch.cumprod(t, 1)),
        Case("cumprod dim 0", [X], lambda x: rg.cumprod(x, 0), lambda t: torch.cumprod(t, 0)),
        Case("logcumsumexp", [X * 3], lambda x: rg.logcumsumexp(x, 1), lambda t: torch.logcumsumexp(t, 1)),
        Case("logcumsumexp large", [X * 40], lambda x: rg.logcumsumexp(x, 2), lambda t: torch.logcumsumexp(t, 2),
             tol_scale=3.0),
        Case("cummax values", [X], lambda x: rg.cummax(x, 1)[0], lambda t: torch.cummax(t, 1)[0]),
        Case("cummax indices", [X], second(lambda x: rg.cummax(x, 2)), second(lambda t: torch.cummax(t, 2))),
        Case("cummin values", [X], lambda x: rg.cummin(x, 0)[0], lambda t: torch.cummin(t, 0)[0]),
        Case("cummin indices", [X], second(lambda x: rg.cummin(x, 1)), second(lambda t: torch.cummin(t, 1))),
        Case("sort values", [X], first(lambda x: rg.sort(x, 1)), first(lambda t: torch.sort(t, 1))),
        Case("sort indices", [X], second(lambda x: rg.sort(x, 1)), second(lambda t: torch.sort(t, 1))),
        Case("sort descending", [X], first(lambda x: rg.sort(x, 0, descending=True)),
             first(lambda t: torch.sort(t, 0, descending=True))),
        Case("argsort", [X], lambda x: rg.argsort(x, -1), lambda t: torch.argsort(t, dim=-1)),
        Case("argsort descending of int64", [R.integers(-3, 3, (4, 7))],
             lambda x: rg.argsort(x, 1, descending=True),
             lambda t: torch.argsort(t, dim=1, descending=True, stable=True)),
        Case("topk values", [X], first(lambda x: rg.topk(x, 3)), first(lambda t: torch.topk(t, 3))),
        Case("topk indices", [X], second(lambda x: rg.topk(x, 2, 1)), second(lambda t: torch.topk(t, 2, 1))),
        Case("topk smallest", [X], first(lambda x: rg.topk(x, 2, 0, largest=False)),
             first(lambda t: torch.topk(t, 2, 0, largest=False))),
        Case("median values", [X], first(lambda x: rg.median(x, 2)), first(lambda t: torch.median(t, 2))),
        Case("median indices", [X], second(lambda x: rg.median(x, 1, keepdim=True)),
             second(lambda t: torch.median(t, 1, keepdim=True))),
        Case("median of all", [X], rg.median, torch.median),
        Case("vector_norm 2", [X], lambda x: rg.vector_norm(x, 2, (1, 2)),
             lambda t: torch.linalg.vector_norm(t, 2, (1, 2))),
        Case("vector_norm 1", [X], lambda x: rg.vector_norm(x, 1, 1), lambda t: torch.linalg.vector_norm(t, 1, 1)),
        Case("vector_norm inf", [X], lambda x: rg.vector_norm(x, math.inf, 0),
             lambda t: torch.linalg.vector_norm(t, math.inf, 0)),
        Case("vector_norm -inf", [X], lambda x: rg.vector_norm(x, -math.inf),
             lambda t: torch.linalg.vector_norm(t, -math.inf)),
        Case("vector_norm 3", [X], lambda x: rg.vector_norm(x, 3, -1, True),
             lambda t: torch.linalg.vector_norm(t, 3, -1, True)),
        Case("vector_norm 0", [ZEROS], lambda x: rg.vector_norm(x, 0, 1), lambda t: torch.linalg.vector_norm(t, 0, 1)),
        Case("norm of zeros", [np.zeros((2, 3))], lambda x: rg.norm(x, dim=1), lambda t: torch.norm(t, dim=1)),
        Case("norm fro", [X], rg.norm, torch.norm),
        Case("norm p=1 two axes", [X], lambda x: rg.norm(x, 1, (0, 1)), lambda t: torch.norm(t, 1, (0, 1))),
    ]
    for ord_ in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf):
        c.append(Case(f"matrix_norm {ord_}", [X], lambda x, o=ord_: rg.matrix_norm(x, o),
                      lambda t, o=ord_: torch.linalg.matrix_norm(t, o)))
    # edge values, empty and 0-d operands (values only; ties among the specials make indices a convention)
    scans = [("cumsum", rg.cumsum, torch.cumsum), ("cumprod", rg.cumprod, torch.cumprod),
             ("logcumsumexp", rg.logcumsumexp, torch.logcumsumexp),
             ("cummax", first(rg.cummax), first(torch.cummax)), ("cummin", first(rg.cummin), first(torch.cummin)),
             ("cummax indices", second(rg.cummax), second(torch.cummax)),
             ("cummin indices", second(rg.cummin), second(torch.cummin)),
             ("sort", first(rg.sort), first(lambda t, d: torch.sort(t, dim=d, stable=True))),
             ("sort indices", second(rg.sort), second(lambda t, d: torch.sort(t, dim=d, stable=True))),
             ("sort descending indices", second(lambda x, d: rg.sort(x, d, True)),
              second(lambda t, d: torch.sort(t, dim=d, descending=True, stable=True))),
             ("topk", lambda x, d: rg.topk(x, 2, d)[0], lambda t, d: torch.topk(t, 2, d)[0])]
    for name, ours, theirs in scans:
        c += [Case(f"{name} on edge values", [E], lambda x, f=ours: f(x, 1), lambda t, f=theirs: f(t, 1), grad=False),
              Case(f"{name} on edge values, dim 0", [E], lambda x, f=ours: f(x, 0), lambda t, f=theirs: f(t, 0),
                   grad=False)]
        if name != "topk":  # k=2 needs two entries
            c.append(Case(f"{name} on a 0-d tensor", [SCALAR], lambda x, f=ours: f(x, 0),
                          lambda t, f=theirs: f(t, 0), grad=False))
            c.append(Case(f"{name} on an empty tensor", [EMPTY], lambda x, f=ours: f(x, 0),
                          lambda t, f=theirs: f(t, 0), grad=False))
    c += [Case("median on edge values", [E], first(lambda x: rg.median(x, 1)), first(lambda t: torch.median(t, 1))),
          Case("median of a row with NaN, index", [np.array([[3.0, np.nan, 1.0, np.nan], [2.0, 1.0, 3.0, 0.0]])],
               second(lambda x: rg.median(x, 1)), second(lambda t: torch.median(t, 1))),
          Case("vector_norm on edge values", [E], lambda x: rg.vector_norm(x, 2, 1),
               lambda t: torch.linalg.vector_norm(t, 2, 1), grad=False),
          Case("amax on edge values", [E], lambda x: rg.amax(x, 0), lambda t: torch.amax(t, 0), grad=False)]
    return c


def _creation_cases():
    m = R.standard_normal((4, 5))
    return [
        Case("tril", [m], rg.tril, torch.tril),
        Case("tril diagonal -1 batched", [X], lambda x: rg.tril(x, -1), lambda t: torch.tril(t, -1)),
        Case("triu diagonal 2", [m], lambda x: rg.triu(x, 2), lambda t: torch.triu(t, 2)),
        Case("meshgrid ij", [R.standard_normal(3), R.standard_normal(4)], lambda a, b: rg.meshgrid(a, b)[0] * 2.0,
             lambda a, b: torch.meshgrid(a, b, indexing="ij")[0] * 2.0),
        Case("meshgrid xy", [R.standard_normal(3), R.standard_normal(4)],
             lambda a, b: rg.meshgrid(a, b, indexing="xy")[1] * 2.0,
             lambda a, b: torch.meshgrid(a, b, indexing="xy")[1] * 2.0),
        Case("full_like", [m], lambda x: rg.full_like(x, 2.5) * x, lambda t: torch.full_like(t, 2.5) * t),
        Case("zeros_like dtype", [m], lambda x: rg.zeros_like(x, dtype="int64"),
             lambda t: torch.zeros_like(t, dtype=torch.int64)),
        Case("ones_like", [m], lambda x: rg.ones_like(x) + x, lambda t: torch.ones_like(t) + t),
    ]


def _integer_cases():
    a64 = R.integers(-1000, 1000, (4, 6))
    b64 = R.integers(-1000, 1000, (6,))
    a32 = a64.astype(np.int32)
    count = np.array([0, 1, 5, 31, 32, 40, 63, 64, 70, 3, 2, 1])
    wide = np.array([1, -1, 7, -7, 1 << 40, -(1 << 40), 3, -3, 123456789, -5, 2, -2], np.int64)
    m, n = R.random((4, 6)) < 0.5, R.random((6,)) < 0.5
    return [
        Case("bitwise_and int64", [a64, b64], rg.bitwise_and, torch.bitwise_and),
        Case("bitwise_or int32 and int64", [a32, b64], rg.bitwise_or, torch.bitwise_or),
        Case("bitwise_xor int32", [a32, a32[::-1].copy()], rg.bitwise_xor, torch.bitwise_xor),
        Case("bitwise_not int64", [a64], rg.bitwise_not, torch.bitwise_not),
        Case("& | ^ ~ on int64", [a64, b64], lambda a, b: ((a & b) | (~a)) ^ (b & 255),
             lambda a, b: ((a & b) | (~a)) ^ (b & 255)),
        Case("& | ^ ~ on bool", [m, n], lambda a, b: ((a & b) | ~a) ^ b, lambda a, b: ((a & b) | ~a) ^ b),
        Case("left shift int64", [wide, count], rg.bitwise_left_shift, torch.bitwise_left_shift),
        Case("right shift int64", [wide, count], rg.bitwise_right_shift, torch.bitwise_right_shift),
        Case("shifts int32", [wide.astype(np.int32), count.astype(np.int32) % 31],
             lambda a, b: (a << b) + (a >> b), lambda a, b: (a << b) + (a >> b)),
        Case("bool + bool, bool * bool", [m, n], lambda a, b: (a + b, a * b)[0] * (a * b + a),
             lambda a, b: (a + b, a * b)[0] * (a * b + a)),
        Case("bool + int64", [m, b64], lambda a, b: a + b, lambda a, b: a + b),
        Case("bool + python int", [m], lambda a: a + 1, lambda a: a + 1),
        Case("int32 + int64", [a32, b64], lambda a, b: a + b, lambda a, b: a + b),
        Case("cumsum of a bool mask", [m], lambda a: rg.cumsum(a, 1), lambda a: torch.cumsum(a, 1)),
    ]


CASES = _elementwise_cases() + _reduction_cases() + _creation_cases() + _integer_cases()


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
def test_math_activations_reductions_and_scans_match_torch(backend):
    parity.check_cases(CASES, backend)


@pytest.mark.parametrize("backend, dtype", [("reference", "float64"), ("cpu", "float32"), ("wgpu", "float32")])
def test_nan_to_num_defaults_to_the_dtype_extremes(backend, dtype):
    x = rg.input((4,), dtype, name="x")
    values = np.array([np.nan, np.inf, -np.inf, 2.0], dtype)
    got = rg.function([x], rg.nan_to_num(x), backend=backend)(values)
    np.testing.assert_array_equal(got, torch.nan_to_num(torch.tensor(values)).numpy())


def test_creation_matches_torch():
    pairs = [
        (rg.arange(5), torch.arange(5)),
        (rg.arange(2, 11, 3), torch.arange(2, 11, 3)),
        (rg.arange(5, 0, -2), torch.arange(5, 0, -2)),
        (rg.arange(0.0, 1.0, 0.3), torch.arange(0.0, 1.0, 0.3)),
        (rg.arange(-1, 1, 0.25, dtype="float64"), torch.arange(-1, 1, 0.25, dtype=torch.float64)),
        (rg.arange(3, 3), torch.arange(3, 3)),
        (rg.linspace(-1, 2, 7), torch.linspace(-1, 2, 7)),
        (rg.linspace(0, 1, 1), torch.linspace(0, 1, 1)),
        (rg.linspace(0, 1, 0), torch.linspace(0, 1, 0)),
        (rg.eye(3), torch.eye(3)),
        (rg.eye(2, 4, dtype="int64"), torch.eye(2, 4, dtype=torch.int64)),
        (rg.full((2, 3), 7), torch.full((2, 3), 7)),
        (rg.full((2,), 1.5), torch.full((2,), 1.5)),
        (rg.full((), True), torch.full((), True)),
        (rg.zeros(2, 3), torch.zeros(2, 3)),
        (rg.ones((2, 3), dtype="int64"), torch.ones((2, 3), dtype=torch.int64)),
        (rg.empty(0, 2), torch.zeros(0, 2)),
        (rg.tril_mask(3), torch.ones(3, 3, dtype=torch.bool).tril()),
        (rg.triu_mask(3, 4, 1), torch.ones(3, 4, dtype=torch.bool).triu(1)),
    ]
    for ours, theirs in pairs:
        got, want = ours.numpy(), theirs.numpy()
        assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_randint_is_seeded_uniform_and_the_same_on_every_backend():
    seed = rg.input((), "int64", name="seed")
    draw = rg.randint(-3, 5, (4000,), seed=seed, salt=2)
    values = {b: rg.function([seed], draw, backend=b)(np.int64(11)) for b in ("reference", "cpu", "wgpu")}
    np.testing.assert_array_equal(values["cpu"], values["reference"])
    np.testing.assert_array_equal(values["wgpu"], values["reference"])
    v = values["reference"]
    assert v.dtype == np.int64 and v.min() == -3 and v.max() == 4
    counts = np.bincount(v + 3, minlength=8)
    assert counts.min() > 400 and counts.max() < 600  # 500 expected per value
    other = rg.function([seed], draw, backend="reference")(np.int64(12))
    assert not np.array_equal(other, v)
    with pytest.raises(rg.ShapeError, match="2\\*\\*24"):
        rg.randint(0, 1 << 25, (2,), seed=seed)
    with pytest.raises(rg.ShapeError, match="low < high"):
        rg.randint(5, 5, (2,), seed=seed)


def test_an_rng_stream_draws_new_integers_every_step():
    rng = rg.RNG(seed=3)
    draw = rg.randint(0, 100, (64,), generator=rng)
    step = rg.function([], draw, backend="cpu")
    first, second = step(), step()
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("call, message", [
    (lambda: rg.glu(rg.input((2, 5), name="g")), "must be even"),
    (lambda: rg.prelu(rg.input((2, 3), name="p"), np.ones(4, np.float32)), "4 entries but the input has 3"),
    (lambda: rg.topk(rg.input((2, 5), name="t"), 6), "k=6 is out of range"),
    (lambda: rg.cumsum(rg.input((2, 5), name="c"), 2), "out of range"),
    (lambda: rg.matrix_norm(rg.input((2, 0), name="m"), -2), "minimum of no singular value"),
    (lambda: rg.matrix_norm(rg.input((2, 5), name="m"), 3), "unknown matrix norm"),
    (lambda: rg.div(rg.input((2,), name="d"), 2.0, rounding_mode="ceil"), "rounding_mode"),
    (lambda: rg.arange(0, 5, 0), "step must be non-zero"),
    (lambda: rg.arange(0, 5, -1), "disagree"),
    (lambda: rg.hardtanh(rg.input((2,), name="h"), 1.0, -1.0), "above max_val"),
    (lambda: rg.tril(rg.input((5,), name="v")), "at least 2 dimensions"),
    (lambda: rg.fmod(rg.input((2,), "bool", name="b"), True), "bool"),
    (lambda: rg.median(rg.input((0, 3), name="e"), 0), "empty"),
    (lambda: rg.bitwise_and(rg.input((2,), name="f"), rg.input((2,), name="g")), "integer or bool"),
    (lambda: rg.input((2,), "float32", name="f") << 1, "shifts need integer"),
    (lambda: rg.input((2,), "bool", name="b") - rg.input((2,), "bool", name="c"), "bool"),
])
def test_mistakes_are_build_time_errors(call, message):
    with pytest.raises((rg.RustyASGError, ValueError, TypeError), match=message):
        call()


def test_tensor_methods_are_the_core_functions():
    x = rg.input((3, 4), name="x")
    unary = ["tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "log10", "exp2",
             "trunc", "frac", "isinf", "isfinite", "nan_to_num", "round", "any", "all", "count_nonzero", "amax",
             "amin", "norm", "tril", "triu", "median", "argsort"]
    for name in unary:
        assert getattr(x, name)().op == getattr(rg, name)(x).op, name
    for name in ["atan2", "hypot", "copysign", "fmod", "logaddexp", "remainder", "div", "isclose"]:
        assert getattr(x, name)(x).op == getattr(rg, name)(x, x).op, name
    for name in ["cumsum", "cumprod", "logcumsumexp"]:
        assert getattr(x, name)(1).op == getattr(rg, name)(x, 1).op, name
    assert x.lerp(x, 0.5).shape == (3, 4) and x.topk(2)[1].dtype == np.int64 and x.sort()[0].shape == (3, 4)
    assert x.cummax(0)[1].op == "cummax_indices" and x.div(2.0, rounding_mode="floor").op == "floor_divide"


def _narrow_integer_cases():
    cases = []
    for dt in ("int8", "uint8", "int16"):
        info = np.iinfo(dt)
        a = R.integers(info.min, info.max, (4, 6), endpoint=True).astype(dt)
        b = R.integers(info.min, info.max, (6,), endpoint=True).astype(dt)
        nz = np.where(b == 0, 1, b).astype(dt)
        small = R.integers(0, 8, (6,)).astype(dt)
        cases += [
            Case(f"{dt} + - * wrap around", [a, b], lambda x, y: (x + y) * (x - y) + x * 3,
                 lambda x, y: (x + y) * (x - y) + x * 3),
            Case(f"{dt} // and %", [a, nz], lambda x, y: (x // y) + (x % y), lambda x, y: (x // y) + (x % y)),
            Case(f"{dt} bitwise and shifts", [a, small], lambda x, y: ((x & y) | (x ^ 5)) + (x >> y) + (x << 1),
                 lambda x, y: ((x & y) | (x ^ 5)) + (x >> y) + (x << 1)),
            Case(f"{dt} comparisons and maximum", [a, b], lambda x, y: rg.where(x > y, rg.maximum(x, y), y),
                 lambda x, y: torch.where(x > y, torch.maximum(x, y), y)),
            Case(f"{dt} sum, prod and cumsum in int64", [a], lambda x: rg.sum(x, 1, keepdims=True) + rg.prod(x, 0).sum() + rg.cumsum(x, 1),
                 lambda x: torch.sum(x, 1, keepdim=True) + torch.prod(x, 0).sum() + torch.cumsum(x, 1)),
            Case(f"{dt} promotes with int64 and float", [a, b.astype(np.int64)],
                 lambda x, y: (x + y) * 1 + (x * 0.5).astype("int64"), lambda x, y: (x + y) * 1 + (x * 0.5).long()),
        ]
    i8, u8 = R.integers(-128, 128, (5,)).astype(np.int8), R.integers(0, 256, (5,)).astype(np.uint8)
    cases.append(Case("int8 + uint8 is int16", [i8, u8], lambda x, y: x + y, lambda x, y: x + y))
    return cases


@pytest.mark.parametrize("backend", ["reference", "cpu", "wgpu"])
def test_narrow_integers_match_torch(backend):
    parity.check_cases(_narrow_integer_cases(), backend)


@pytest.mark.parametrize("backend, dt", [("reference", "uint32"), ("reference", "uint64"), ("cpu", "uint32"),
                                         ("cpu", "uint64"), ("wgpu", "uint32")])
def test_wide_unsigned_integers_are_exact_and_do_not_mix(backend, dt):
    a = np.array([0, 1, np.iinfo(dt).max, 1 << 31, 12345], dt)
    b = np.array([7, np.iinfo(dt).max, 1, 3, 100], dt)
    x, y = rg.input((5,), dt, name="x"), rg.input((5,), dt, name="y")
    outs = rg.function([x, y], [x + y, x * y, x // y, x > y, x & y, x >> 1], backend=backend)(a, b)
    with np.errstate(over="ignore"):
        want = [a + b, a * b, a // b, a > b, a & b, a >> np.array(1, dt)]
    for got, exp in zip(outs, want):
        assert got.dtype == exp.dtype
        np.testing.assert_array_equal(got, exp)
    with pytest.raises(rg.DTypeError, match="no promotion"):
        x + rg.input((5,), "int64", name="z")


def test_wgpu_refuses_integers_it_cannot_hold_exactly():
    x = rg.input((3,), "uint64", name="x")
    with pytest.raises(Exception, match="no uint64 tensors .*cast to int64"):
        rg.function([x], x + x, backend="wgpu")(np.ones(3, "uint64"))


def test_bitcast_between_same_size_dtypes_on_every_backend():
    v = np.array([1.0, -2.0, np.inf, 0.0, -0.0, 3.5e-39], np.float32)
    x = rg.input((6,), "float32", name="x")
    want = torch.tensor(v).view(torch.int32).numpy()
    for backend in ("reference", "cpu", "wgpu"):
        got, back = rg.function([x], [rg.bitcast(x, "int32"), rg.bitcast(rg.bitcast(x, "int32"), "float32")],
                                backend=backend)(v)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(back.view(np.int32), v.view(np.int32))
    h = rg.input((2,), "float16", name="h")
    got = rg.function([h], rg.bitcast(h, "int16"), backend="cpu")(np.float16([1.0, -0.5]))
    np.testing.assert_array_equal(got, torch.tensor([1.0, -0.5], dtype=torch.float16).view(torch.int16).numpy())
    with pytest.raises(rg.DTypeError, match="one size"):
        rg.bitcast(x, "int64")
    with pytest.raises(Exception, match="only float32 <-> int32"):
        d = rg.input((2,), "float64", name="d")
        rg.function([d], rg.bitcast(d, "int64"), backend="wgpu")(np.zeros(2))
