"""Run under mpiexec: Trainer(distributed=...) on the MLP with a DistributedSampler and checkpoints.

Usage: mpiexec -n N python trainer_train.py BACKEND EPOCHS CKPT_DIR OUT.npz ZERO [FAULT RANK STEP]
FAULT is ``die`` (the rank exits at once), ``raise`` (an exception) or ``hang`` (the rank sleeps).
Rank 0 writes the final parameters and the run's logs to OUT.npz.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import rustyasg.distributed as dist  # noqa: E402
import rustyasg.nn as nn  # noqa: E402
from programs import DTYPES, PER_RANK_BATCH, TRAINER_SEED, loss_fn, make_model, make_optimizer, trainer_loader  # noqa: E402

backend, epochs, ckpt_dir, out, zero = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
fault = sys.argv[6:9]
comm = dist.init(timeout=float(os.environ.get("WORKER_TIMEOUT", "60")))
dtype = DTYPES[backend]


class Fault:
    def on_step_end(self, trainer, step):
        if fault and comm.rank == int(fault[1]) and step == int(fault[2]):
            if fault[0] == "die":
                os._exit(3)
            if fault[0] == "raise":
                raise RuntimeError(f"injected failure on rank {comm.rank} at step {step}")
            time.sleep(3600)


model = make_model("mlp", dtype, seed=TRAINER_SEED + comm.rank)  # different on purpose: rank 0's are broadcast
trainer = nn.Trainer(model, loss_fn("mlp"), make_optimizer(model.parameters(), "mlp"), backend=backend,
                     distributed=dist.DataParallel(zero=zero), checkpoints=nn.CheckpointManager(ckpt_dir),
                     callbacks=[Fault()], log_every=2)
manager = nn.CheckpointManager(ckpt_dir)
resume = manager if manager.latest() is not None else None
loader = trainer_loader(dtype, comm.rank, comm.world_size, PER_RANK_BATCH[comm.world_size])
result = trainer.fit(loader, epochs=epochs, val_data=loader, resume_from=resume)
spread = dist.check_equal_across_ranks(model.parameters())
if comm.rank == 0:
    np.savez(out, spread=spread, global_step=result.global_step, val_loss=result.final["val_loss"],
             **{f"param/{k}": np.array(v) for k, v in model.state_dict().items()})
