"""Ctrl-C for real: a training subprocess gets SIGINT mid-epoch, finishes the running step, writes a
checkpoint and exits normally; a second process resumes from it and completes the run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

from rustyasg.nn.checkpoint import read_checkpoint

CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import rustyasg.nn as nn
    from rustyasg.nn.checkpoint import CheckpointManager
    from rustyasg.nn.training import LambdaCallback, Trainer

    directory, backend, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "resume"
    gen = np.random.default_rng(0)
    x = gen.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 64, 8)]
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def slow_step(trainer, step):
        print(f"step {step}", flush=True)
        time.sleep(0.05)  # leave the parent time to send SIGINT while an epoch runs

    trainer = Trainer(model, nn.cross_entropy, nn.optim.Adam(model.parameters(), lr=1e-2),
                      checkpoints=CheckpointManager(directory), backend=backend, progress="lines",
                      callbacks=[LambdaCallback(on_step_end=slow_step)])
    result = trainer.fit(batches, epochs=6, resume_from=trainer.checkpoints if resume else None)
    print(f"RESULT interrupted={result.interrupted} step={result.global_step} checkpoint={result.checkpoint}",
          flush=True)
""")


def run_child(script, directory, backend, mode):
    return subprocess.Popen([sys.executable, str(script), str(directory), backend, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigint_saves_a_checkpoint_and_a_new_process_resumes(tmp_path):
    backend = os.environ.get("RUSTYASG_TEST_BACKEND", "cpu")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ckpt_dir = tmp_path / "ckpt"

    child = run_child(script, ckpt_dir, backend, "fresh")
    seen = []
    for line in child.stdout:  # wait until the loop is inside the second epoch
        seen.append(line.strip())
        if line.strip() == "step 11":
            child.send_signal(signal.SIGINT)
            break
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    result = re.search(r"RESULT interrupted=(\w+) step=(\d+) checkpoint=(\S+)", out)
    assert result, out + err
    assert result.group(1) == "True"
    stopped = int(result.group(2))
    steps_run = [int(s.split()[1]) for s in seen + out.splitlines() if re.fullmatch(r"step \d+", s)]
    assert stopped == max(steps_run) and 11 <= stopped < 48  # the running step finished; no step after it
    assert "interrupted: finishing the current step" in err and f"checkpoint: {result.group(3)}" in err
    ckpt = read_checkpoint(result.group(3))
    state = ckpt.metadata["rustyasg.trainer"]
    assert ckpt.step == stopped and state["global_step"] == stopped
    assert (state["epoch"], state["batch"]) == divmod(stopped, 8)

    resumed = run_child(script, ckpt_dir, backend, "resume")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    steps = [int(s.split()[1]) for s in out.splitlines() if re.fullmatch(r"step \d+", s)]
    assert steps == list(range(stopped + 1, 49))  # continues at the next step, runs the rest once
    assert "RESULT interrupted=False step=48" in out
