"""The pieces of rustyasg.distributed that need no second process: sampler, buckets, op checks, wiring."""

import subprocess
import sys

import numpy as np
import pytest

import rustyasg.core as rg
import rustyasg.distributed as dist
import rustyasg.nn as nn
from rustyasg.core.errors import GraphBuildError
from rustyasg.distributed import DistributedError, DistributedSampler, plan_buckets


@pytest.mark.parametrize("n,world,drop_last", [(10, 4, False), (10, 4, True), (12, 3, False), (5, 8, False)])
def test_sampler_gives_every_rank_an_equal_shard_of_one_permutation(n, world, drop_last):
    shards = [DistributedSampler(n, num_replicas=world, rank=r, seed=3, drop_last=drop_last) for r in range(world)]
    epochs = []
    for epoch in range(3):
        for s in shards:
            s.set_epoch(epoch)
        parts = [s.epoch_indices() for s in shards]
        assert len({len(p) for p in parts}) == 1 and len(parts[0]) == len(shards[0])
        joined = np.concatenate(parts)
        if drop_last:
            assert len(set(joined.tolist())) == len(joined) == (n // world) * world
        else:
            assert set(joined.tolist()) == set(range(n))  # padding repeats indices, never drops one
        epochs.append(np.stack(parts).T.reshape(-1))
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch
    again = DistributedSampler(n, num_replicas=world, rank=0, seed=3, drop_last=drop_last)
    again.set_epoch(1)
    assert np.array_equal(again.epoch_indices(), epochs[1][0::world][:len(again)])


def test_sampler_rejects_a_rank_outside_the_world():
    with pytest.raises(DistributedError, match="rank 4 is outside 0..3"):
        DistributedSampler(10, num_replicas=4, rank=4)


def test_buckets_come_last_parameter_first_capped_and_per_dtype():
    f32, f64 = np.float32, np.float64
    specs = [((256,), f32), ((256,), f32), ((10,), f64), None, ((256,), f32), ((3,), f64)]
    assert plan_buckets(specs, bucket_bytes=2048) == [[5, 2], [4, 1], [0]]
    assert plan_buckets(specs, bucket_bytes=1 << 20) == [[5, 2], [4, 1, 0]]
    # the first bucket of a dtype is capped lower, so the last layers' gradients leave early
    assert plan_buckets(specs, bucket_bytes=1 << 20, first_bucket_bytes=1024) == [[5, 2], [4], [1, 0]]


@pytest.mark.parametrize("overlap", [True, False])
def test_bucketed_all_reduce_is_one_collective_per_bucket(overlap):
    grads = [rg.input((4, 3), name=f"g{i}") for i in range(5)]
    out = dist.all_reduce_buckets(grads, bucket_bytes=1 << 20, overlap=overlap)
    step = rg.function(grads, out, backend="cpu")
    values = [np.random.default_rng(i).standard_normal((4, 3)).astype(np.float32) for i in range(5)]
    for got, want in zip(step(*values), values):
        np.testing.assert_array_equal(got, want)  # a world of one: the mean is the value
    ops = [i.op for i in step.lower(*values).instrs]
    if overlap:
        assert (ops.count("all_reduce_start"), ops.count("all_reduce_wait"), ops.count("all_reduce")) == (1, 1, 0)
    else:
        assert (ops.count("all_reduce"), ops.count("all_reduce_start")) == (1, 0)


@pytest.mark.parametrize("backend", ["cpu", "wgpu"])
def test_overlapped_buckets_start_during_the_backward_pass_and_are_waited_for_at_the_end(backend):
    """Every bucket's all-reduce is issued before the backward pass ends; no wait comes before its last matmul."""
    from rustyasg.nn.zoo import GPT, GPTConfig

    nn.init.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=32, block_size=8, n_layer=2, n_head=2, n_embd=16, tie_weights=False))
    opt = dist.data_parallel(nn.optim.AdamW(model.parameters(), lr=1e-3), bucket_mb=4096 / 2 ** 20)
    x, y = rg.input((2, 8), "int64", name="x"), rg.input((2, 8), "int64", name="y")
    loss = nn.cross_entropy(model(x).reshape((-1, 32)), y.reshape((-1,)))
    step = rg.function([x, y], loss, updates=opt.updates(loss), backend=backend)
    tokens = np.random.default_rng(0).integers(0, 32, (2, 2, 8))
    plain = rg.function([x, y], loss, updates=nn.optim.AdamW(model.parameters(), lr=1e-3).updates(loss),
                        backend=backend)
    params = model.parameters()
    before = [p.value().copy() for p in params]
    want_loss = plain(*tokens)
    want = [p.value().copy() for p in params]
    for p, value in zip(params, before):
        p.assign(value)
    np.testing.assert_allclose(step(*tokens), want_loss, rtol=1e-6)  # a world of one: the mean is the value
    for p, value in zip(params, want):
        np.testing.assert_allclose(p.value(), value, rtol=1e-5, atol=1e-7)
    program = step.compile(*tokens).program
    by_id = program.by_id()
    ops = [by_id[u.head].op for u in program.plan.units]
    starts = [k for k, op in enumerate(ops) if op == "all_reduce_start"]
    waits = [k for k, op in enumerate(ops) if op == "all_reduce_wait"]
    last_matmul = max(k for k, op in enumerate(ops) if op == "matmul")
    assert len(starts) >= 3 and len(waits) == len(starts)
    assert starts[0] < last_matmul < waits[0], "the first bucket must travel while the backward pass goes on"
    assert max(starts) < min(waits)


def test_collective_shapes_are_checked_while_the_graph_is_built():
    x = rg.input((3, 2), name="x")
    with pytest.raises(GraphBuildError, match="must split into 4 equal blocks"):
        rg.apply("reduce_scatter", x, comm="world", size=4)
    with pytest.raises(GraphBuildError, match="at least one axis"):
        dist.all_gather(rg.input((), name="s"))
    with pytest.raises(GraphBuildError, match="'mean' all_reduce needs a floating tensor"):
        dist.all_reduce(rg.input((2,), "int64", name="i"), "mean")
    with pytest.raises(GraphBuildError, match="op must be one of"):
        dist.all_reduce(x, "median")
    assert dist.all_gather(x).shape == (3 * dist.world_size(), 2)


def test_a_graph_built_for_another_world_size_fails_with_the_sizes():
    x = rg.input((4,), name="x")
    y = rg.apply("all_reduce", x, comm="world", size=4, reduce="sum")
    with pytest.raises(DistributedError, match="built for 4 rank"):
        rg.function([x], y, backend="cpu")(np.zeros(4, np.float32))


def test_numpy_collectives_and_the_timeout_message():
    world = dist.world()
    assert world.all_reduce(np.arange(3.0), "max").tolist() == [0.0, 1.0, 2.0]
    assert world.reduce_scatter(np.arange(4.0)).tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(DistributedError, match="equal blocks"):
        dist.MpiCommunicator(world.comm).reduce_scatter(np.zeros(()))
    with pytest.raises(DistributedError, match="unknown reduction"):
        world.all_reduce(np.zeros(2), "median")


def test_zero1_in_one_process_matches_the_plain_optimizer_including_clipping():
    def run(wrap):
        nn.init.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2)).double()
        opt = nn.optim.AdamW(model.parameters(), lr=0.05)
        x = rg.input((6, 5), "float64", name="x")
        loss = rg.mean(model(x) ** 2)
        opt = wrap(opt)
        step = rg.function([x], loss, updates=opt.updates(loss, clip_grad_norm=0.1), backend="reference")
        for i in range(3):
            step(np.random.default_rng(i).standard_normal((6, 5)))
        return [p.value() for p in model.parameters()], opt

    plain, _ = run(lambda o: o)
    sharded, zero = run(lambda o: dist.ZeroOptimizer(o))
    for a, b in zip(plain, sharded):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    state = zero.state_dict()
    assert sorted(state["state"][0]) == ["exp_avg", "exp_avg_sq", "step"] and state["state"][0]["exp_avg"].shape == (7, 5)


def test_trainer_rejects_something_that_is_not_a_strategy():
    model = nn.Linear(2, 1)
    with pytest.raises(TypeError, match="distributed must be True, False or a strategy"):
        nn.Trainer(model, nn.mse_loss, nn.optim.SGD(model.parameters(), lr=0.1), distributed="mpi")


def test_importing_the_framework_does_not_start_mpi():
    code = "import sys, rustyasg.core, rustyasg.nn; print('mpi4py.MPI' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_rg_distributed_is_the_part_and_its_ops_have_cpu_and_wgpu_kernels():
    from rustyasg.core.plugins import load_kernels

    assert rg.distributed is dist
    for backend in ("cpu", "wgpu"):
        assert {"all_reduce", "all_gather", "reduce_scatter", "broadcast"} <= set(load_kernels(backend))
