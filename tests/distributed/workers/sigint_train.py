"""Run under mpiexec: a long Trainer(distributed=True) run that the test interrupts with SIGINT.

Usage: mpiexec -n N python sigint_train.py CKPT_DIR OUT_PREFIX
Every rank writes OUT_PREFIX-<rank>.txt: the step it stopped at and whether fit said it was interrupted.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rustyasg.distributed as dist  # noqa: E402
import rustyasg.nn as nn  # noqa: E402
from programs import PER_RANK_BATCH, loss_fn, make_model, make_optimizer, trainer_loader  # noqa: E402

ckpt_dir, prefix = sys.argv[1], sys.argv[2]
comm = dist.init(timeout=60)


class Slow:
    def on_step_end(self, trainer, step):
        if step == 3 and comm.rank == 0:
            print("training", flush=True)
        time.sleep(0.02 * (1 + comm.rank))  # ranks run at different speeds


model = make_model("mlp", "float64")
trainer = nn.Trainer(model, loss_fn("mlp"), make_optimizer(model.parameters(), "mlp"), backend="reference",
                     distributed=True, checkpoints=nn.CheckpointManager(ckpt_dir), callbacks=[Slow()], progress=False)
result = trainer.fit(trainer_loader("float64", comm.rank, comm.world_size, PER_RANK_BATCH[comm.world_size]),
                     epochs=1000)
Path(f"{prefix}-{comm.rank}.txt").write_text(f"{result.global_step} {result.interrupted} {result.checkpoint}")
