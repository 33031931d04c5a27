"""Mixed precision as whole-step passes: the registry's policies, autocast, loss scaling, 16-bit storage.

Every backend runs the same rewritten step; values are checked against the float64 reference
backend, against float32 training, and (loss scaling) against the GradScaler rules.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rustyasg.core as rg
from rustyasg.core.registry import OPS, precision_of
from rustyasg.core.testing import sample_input

BACKENDS = ["reference", "cpu", "wgpu"]


def _mlp(seed=0, n_in=6, hidden=16, n_out=3):
    rng = np.random.default_rng(seed)
    w1 = rg.variable((rng.standard_normal((n_in, hidden)) * 0.4).astype(np.float32), name="w1")
    b1 = rg.variable(np.zeros(hidden, np.float32), name="b1")
    w2 = rg.variable((rng.standard_normal((hidden, n_out)) * 0.4).astype(np.float32), name="w2")
    return [w1, b1, w2]


def _loss(params, x, y):
    w1, b1, w2 = params
    h = rg.gelu(x @ w1 + b1)
    return rg.mean((rg.log_softmax(h @ w2, axis=-1) * y) * -1.0) * 3.0


def _sgd_step(params, precision, backend, lr=0.5, **kw):
    x = rg.input((None, 6), name="x")
    y = rg.input((None, 3), name="y")
    loss = _loss(params, x, y)
    grads = rg.grad(loss, params)
    return rg.function([x, y], loss, updates={p: p - lr * g for p, g in zip(params, grads)}, backend=backend,
                       precision=precision, **kw)


def _data(n=32, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    return x, np.eye(3, dtype=np.float32)[labels]


# --- the policy lives in the op registry --------------------------------------------------------
def test_policies_come_from_the_op_declarations():
    assert precision_of("matmul") == "low" and OPS["matmul"].precision == "low"
    assert precision_of("conv2d") == "low"
    for op in ("softmax", "log_softmax", "sum", "mean", "layer_norm", "batch_norm", "layer_norm_backward"):
        assert precision_of(op) == "float32", op
    for op in ("relu", "add", "reshape", "transpose", "where"):
        assert precision_of(op) == "follow", op
    with pytest.raises(ValueError, match="expected one of"):
        precision_of("matmul", {"matmul": "half"})


def test_a_plugin_op_declares_its_policy():
    from rustyasg.core.ops._define import defop
    from rustyasg.core.registry import OpRegistry

    reg = OpRegistry()
    defop("twice_low", infer=lambda ts: ts[0], reference=lambda x: 2 * x, registry=reg, precision="low")
    assert reg["twice_low"].precision == "low"


def test_autocast_dtypes_master_weights_and_outputs():
    params = _mlp()
    step = _sgd_step(params, "bf16", "reference")
    x, y = _data()
    program = step.lower(x, y)
    by_op = {}
    for ins in program.instrs:
        by_op.setdefault(ins.op, set()).add(str(ins.dtype))
    assert by_op["matmul"] == {"bfloat16"}               # forward and backward products
    assert by_op["log_softmax"] == {"float32"} and by_op["mean"] == {"float32"}
    assert by_op["variable"] == {"float32"}              # master weights
    by_id = program.by_id()
    assert all(by_id[v].dtype == np.float32 for _, v in program.updates)
    assert by_id[program.outputs[0]].dtype == np.float32
    report = step.report(x, y)["precision"]
    assert report["dtype"] == "bfloat16" and report["low_ops"] > 0


def test_user_overrides_keep_an_op_in_float32():
    params = _mlp()
    policy = rg.Precision("bfloat16", overrides={"matmul": "float32"})
    program = _sgd_step(params, policy, "reference").lower(*_data())
    assert {str(i.dtype) for i in program.instrs if i.op == "matmul"} == {"float32"}


def test_bad_precision_requests_are_clear_errors():
    params = _mlp()
    with pytest.raises(ValueError, match="expected 'bf16', 'f16'"):
        _sgd_step(params, "int8", "reference")
    with pytest.raises(ValueError, match="float16 or bfloat16"):
        rg.Precision("float32")
    with pytest.raises(ValueError, match="policy is one of"):
        rg.Precision("bf16", overrides={"matmul": "fast"})


# --- bfloat16 storage: bit shifts on cpu, 16-bit words on wgpu --------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_bfloat16_round_trip_matches_ml_dtypes(backend):
    vals = np.array([0.0, -0.0, 1.0, 3.14159, -2.7, 1e-3, 65504.0, 3.4e38, np.inf, -np.inf, np.nan,
                     1.00390625, 1.01171875], np.float32)  # the last two are ties: nearest-even
    x = rg.input(vals.shape, name="x")
    b = x.astype("bfloat16")
    out_b, out_f = rg.function([x], [b, b.astype("float32") * 2.0], backend=backend)(vals)
    want = vals.astype(rg.bfloat16)
    assert out_b.dtype == rg.bfloat16
    np.testing.assert_array_equal(out_b.view(np.uint16)[~np.isnan(vals)], want.view(np.uint16)[~np.isnan(vals)])
    assert np.isnan(out_b.astype(np.float32)[np.isnan(vals)]).all()
    np.testing.assert_array_equal(out_f, want.astype(np.float32) * 2.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bfloat16_casts_to_and_from_integers_and_bool(backend):
    x = rg.input((5,), "bfloat16", name="x")
    i = rg.input((5,), "int64", name="i")
    outs = [x.astype("int64"), x.astype("bool"), i.astype("bfloat16"), (x > 0.5).astype("bfloat16")]
    xv = np.array([0.0, 1.5, -2.25, 3.0, -0.0], rg.bfloat16)
    iv = np.array([0, 1, -2, 300, 257], np.int64)
    got = rg.function([x, i], outs, backend=backend)(xv, iv)
    want = [xv.astype(np.float32).astype(np.int64), xv.astype(np.float32) != 0, iv.astype(rg.bfloat16),
            (xv.astype(np.float32) > 0.5).astype(rg.bfloat16)]
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g.astype(np.float64), w.astype(np.float64))


@pytest.mark.parametrize("precision", ["bf16", "f16"])
@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_mixed_precision_step_matches_the_reference_backend(precision, backend):
    """The same rewritten step on every backend: loss and new weights agree with the float64
    reference rounded at the same places (16-bit tolerances)."""
    x, y = _data()
    results = {}
    for be in ("reference", backend):
        params = _mlp()
        scaler = rg.LossScaler(init_scale=256.0) if precision == "f16" else None
        req = rg.Precision("float16", loss_scale=scaler) if precision == "f16" else rg.Precision("bfloat16")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            step = _sgd_step(params, req, be)
            loss = float(step(x, y))
        results[be] = (loss, [p.value() for p in params])
    (l_ref, p_ref), (l_got, p_got) = results["reference"], results[backend]
    tol = 2e-2 if precision == "bf16" else 5e-3
    assert abs(l_got - l_ref) <= tol * abs(l_ref)
    for a, b in zip(p_got, p_ref):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 1e-1)


# --- dynamic loss scaling inside the step -------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_overflow_skips_the_step_and_halves_the_scale_then_grows(backend):
    params = _mlp()
    scaler = rg.LossScaler(init_scale=1024.0, growth_interval=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step = _sgd_step(params, rg.Precision("float16", loss_scale=scaler), backend)
    x, y = _data()
    before = [p.value() for p in params]
    step(x, y)                                           # a good step: applied, counted
    assert step.loss_scale == 1024.0 and float(scaler.good_steps.value()) == 1.0
    after_good = [p.value() for p in params]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after_good))
    huge = x * 3e4                                       # float16 gradients overflow to inf
    with np.errstate(all="ignore"):
        step(huge, y)
    for a, b in zip(after_good, params):
        np.testing.assert_array_equal(a, b.value())      # skipped: no variable changed
    assert step.loss_scale == 512.0 and float(scaler.good_steps.value()) == 0.0
    for _ in range(3):                                   # growth_interval good steps double it
        step(x, y)
    assert step.loss_scale == 1024.0 and float(scaler.good_steps.value()) == 0.0


def test_loss_scaler_defaults_are_gradscalers():
    s = rg.LossScaler()
    assert (float(s.scale.value()), s.growth_factor, s.backoff_factor, s.growth_interval) == (65536.0, 2.0, 0.5, 2000)
    with pytest.raises(ValueError, match="growth_interval"):
        rg.LossScaler(growth_interval=0)
    assert rg.Precision.of("bf16").loss_scale is None and rg.Precision.of("f16").loss_scale == "dynamic"


def test_wgpu_without_shader_f16_warns_and_falls_back():
    from rustyasg.core.backends import get_backend

    be = get_backend("wgpu")
    has = be.ctx.has("shader-f16")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        be.check_precision(rg.Precision("float16"))
    assert bool(caught) is (not has)
    if not has:
        assert "falls back to float32" in str(caught[0].message)


# --- training curves: bf16 and f16 against float32 -----------------------------------------------
def _train(precision, backend="cpu", steps=40):
    params = _mlp(seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        req = None if precision is None else rg.Precision.of(precision)
        if precision == "f16":
            req = rg.Precision("float16", loss_scale=rg.LossScaler(init_scale=2.0 ** 12))
        step = _sgd_step(params, req, backend, lr=0.3)
    x, y = _data(n=64, seed=5)
    return np.array([float(step(x, y)) for _ in range(steps)])


@pytest.mark.parametrize("precision", ["bf16", "f16"])
def test_mlp_trains_like_float32(precision):
    """Tolerance: every point of the 16-bit loss curve within 5% (bf16) / 2% (f16) of float32's,
    and the loss falls by the same factor."""
    ref = _train(None)
    got = _train(precision)
    tol = 0.05 if precision == "bf16" else 0.02
    assert ref[-1] < 0.6 * ref[0]
    np.testing.assert_allclose(got, ref, rtol=tol)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "f16"])
def test_gpt_mini_trains_like_float32(precision):
    """GPT-mini (the nn zoo's GPT, 2 layers) with AdamW through nn.Trainer's step: 15 steps,
    each loss within 3% of float32's, and the curve falls."""
    import rustyasg.nn as nn
    from rustyasg.nn.losses import cross_entropy
    from rustyasg.nn.training import build_train_step
    from rustyasg.nn.zoo.gpt import GPT, GPTConfig

    def curve(prec):
        rg.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0))
        opt = nn.optim.AdamW(model.parameters(), lr=3e-3)
        rng = np.random.default_rng(0)
        tokens = rng.integers(0, 64, size=(8, 17))
        batch = (tokens[:, :-1].astype(np.int64), tokens[:, 1:].astype(np.int64))

        def loss_fn(logits, y):
            return cross_entropy(logits.reshape((-1, 64)), y.reshape((-1,)))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            step = build_train_step(model, loss_fn, opt, batch, backend="cpu", precision=prec)
        return np.array([float(np.asarray(step(*batch)).reshape(-1)[0]) for _ in range(15)])

    ref, got = curve(None), curve(precision)
    assert ref[-1] < ref[0]
    np.testing.assert_allclose(got, ref, rtol=0.03)


# --- 16-bit graphs never crash in a kernel ---------------------------------------------------------
def _sampled_ops(seed, k):
    names = sorted(n for n, d in OPS.items() if d.examples and d.kind not in ("collective", "random")
                   and any(np.dtype(s.dtype).kind == "f" for s in d.examples[0].inputs))
    rng = np.random.default_rng(seed)
    return [names[i] for i in rng.choice(len(names), size=min(k, len(names)), replace=False)]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_sixteen_bit_graphs_run_every_sampled_op(dtype, backend):
    """A seeded random sample of the registry's ops (with their conformance examples) on 16-bit
    operands, forward and gradient: no kernel may fail, and the forward agrees with the
    reference backend at the same dtype (16-bit tolerance) where the reference is finite."""
    from rustyasg.core.graph import apply

    dt = rg.promote_types(dtype, dtype)
    rtol = 3e-2 if dtype == "float16" else 8e-2
    failures = {}
    for op in _sampled_ops(seed=14, k=30):
        ex = OPS[op].examples[0]
        rng = np.random.default_rng(0)
        arrays = [sample_input(s, rng) for s in ex.inputs]
        arrays = [a.astype(dt) if a.dtype.kind == "f" else a for a in arrays]
        ins = [rg.input(a.shape, a.dtype, name=f"in{i}") for i, a in enumerate(arrays)]
        try:
            out = apply(op, *ins, **dict(ex.attrs))
            outs = [out]
            diff = [t for t, s in zip(ins, ex.inputs) if s.differentiable and t.dtype == dt]
            if OPS[op].grad is not None and ex.check_grad and diff and out.dtype == dt:
                outs += rg.grad(rg.sum(out.astype("float32")), diff)
            got = rg.function(ins, outs, backend=backend)(*arrays)
            want = rg.function(ins, outs, backend="reference")(*arrays)
        except Exception as exc:  # collect them all
            failures[op] = f"{type(exc).__name__}: {str(exc)[:200]}"
            continue
        g, w = np.asarray(got[0]), np.asarray(want[0])
        assert g.dtype == w.dtype, op
        if g.dtype == dt:
            g, w = g.astype(np.float64), w.astype(np.float64)
            ok = np.isfinite(w)
            if not np.allclose(g[ok], w[ok], rtol=rtol, atol=rtol):
                failures[op] = f"forward differs: {g.reshape(-1)[:4]} vs {w.reshape(-1)[:4]}"
    assert not failures, failures


def test_trainer_passes_precision_and_memory_budget_to_its_step():
    import rustyasg.nn as nn

    rg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.GELU(), nn.Linear(32, 3))
    opt = nn.optim.AdamW(model.parameters(), lr=1e-2)
    trainer = nn.Trainer(model, nn.cross_entropy, opt, backend="cpu", progress=False, precision="bf16",
                         memory_budget=10 ** 7)
    x, y = _data(n=64)
    trainer.fit([(x, y.argmax(axis=1))], epochs=2)
    step = trainer.train_step
    assert step.precision.dtype == rg.bfloat16 and step.memory_budget == 10 ** 7
    report = step.report(x, y.argmax(axis=1))
    assert report["precision"]["low_ops"] > 0 and report["remat"]["fits"]
