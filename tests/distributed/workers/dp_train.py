"""Run under mpiexec: data-parallel (or ZeRO-1) training; rank 0 saves the parameters after every step.

Usage: mpiexec -n N python dp_train.py KIND BACKEND STEPS OUT.npz [MODE]
MODE: 0 data_parallel(optimizer), 1 ZeRO-1, step: data_parallel(step) on a step built for one process.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import rustyasg.distributed as dist  # noqa: E402
from programs import DTYPES, build_step, make_batches, make_model, make_optimizer, shard  # noqa: E402

kind, backend, steps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
mode = sys.argv[5] if len(sys.argv) > 5 else "0"
zero = int(mode) if mode != "step" else 0
comm = dist.init(timeout=60)
dtype = DTYPES[backend]
# Each rank draws different initial weights: the broadcast from rank 0 must make them equal.
model = make_model(kind, dtype, seed=comm.rank)
batches = make_batches(kind, dtype, steps)
first = shard(batches[0], comm.rank, comm.world_size)
if mode == "step":  # the single-process step, made data parallel afterwards (it broadcasts rank 0's weights)
    opt = make_optimizer(model.parameters(), kind)
    step = dist.data_parallel(build_step(model, kind, opt, first, backend))
else:
    dist.broadcast_variables(model.parameters())
    opt = dist.data_parallel(make_optimizer(model.parameters(), kind), zero=zero)
    step = build_step(model, kind, opt, first, backend)
record, spread = {}, []
for i, b in enumerate(batches):
    step(*shard(b, comm.rank, comm.world_size))
    spread.append(dist.check_equal_across_ranks(model.parameters()))
    for k, v in model.state_dict().items():
        record[f"{i}/{k}"] = np.array(v)
report = opt.memory_report() if zero else {}
mem = comm.all_gather(np.array([report.get("state_bytes_this_rank", 0)], np.int64))
if comm.rank == 0:
    np.savez(out, spread=np.array(spread), state_bytes=mem,
             unsharded=np.array(report.get("state_bytes_unsharded", 0)), **record)
