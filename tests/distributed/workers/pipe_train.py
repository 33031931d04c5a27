"""Run under mpiexec: the MLP split into one stage per rank, GPipe micro-batches.

Usage: mpiexec -n N python pipe_train.py BACKEND STEPS MICRO OUT_PREFIX
Each rank writes OUT_PREFIX-<rank>.npz: its stage's parameters (under the unsplit model's
names) after every step, and the losses.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import rustyasg.distributed as dist  # noqa: E402
import rustyasg.nn as nn  # noqa: E402
from programs import DTYPES, loss_fn, make_batches, make_model, make_optimizer  # noqa: E402

backend, steps, micro, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
comm = dist.init(timeout=60)
dtype = DTYPES[backend]
model = make_model("mlp", dtype)
names = {id(v): k for k, v in model.named_parameters().items()}
layers = np.array_split(np.arange(len(model)), comm.world_size)[comm.rank]
stage = nn.Sequential(*[model[int(i)] for i in layers])
optimizer = make_optimizer(stage.parameters(), "mlp") if stage.parameters() else None  # Tanh alone: none
pipe = dist.Pipeline(stage, optimizer, loss_fn=loss_fn("mlp"),
                     micro_batches=micro, backend=backend)
record, losses = {}, []
for i, (x, y) in enumerate(make_batches("mlp", dtype, steps)):
    losses.append(pipe.step(x, y))
    for p in stage.parameters():
        record[f"{i}/{names[id(p)]}"] = p.value()
np.savez(f"{prefix}-{comm.rank}.npz", losses=np.array(losses), **record)
