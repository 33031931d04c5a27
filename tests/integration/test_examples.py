"""Every example script runs end to end on a reduced size, in a fresh process, and learns."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_example(name, *args, timeout=900):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in output:\n{text[-2000:]}"
    return float(match.group(1))


def test_shakespeare_genre_classifier_beats_the_majority_class():
    out = run_example("shakespeare_genre.py", "--limit", "2400", "--epochs", "3", "--vocab", "2000")
    accuracy = number(r"test accuracy (\d\.\d+) \(majority", out)
    majority = number(r"\(majority class (\d\.\d+)\)", out)
    assert accuracy > majority + 0.15, out


def test_char_gpt_learns_and_samples_from_its_prompt():
    out = run_example("char_gpt.py", "--steps", "60", "--layers", "2", "--width", "64", "--block", "64",
                      "--sample", "40", "--prompt", "HAMLET.\n")
    first = number(r"step\s+0\s+train loss (\d+\.\d+)", out)
    held_out = number(r"held-out loss (\d+\.\d+)", out)
    assert held_out < first - 0.8, out            # from ~ln(83) = 4.4 nats towards the text's statistics
    sample = out.split("---- sample ----\n", 1)[1]
    assert sample.startswith("HAMLET.\n") and len(sample) >= len("HAMLET.\n") + 40


def test_resnet_on_an_image_folder(tmp_path):
    out = run_example("resnet_image_folder.py", "--per-class", "100", "--epochs", "4", "--width", "8", "--batch-size", "32",
                      "--out", str(tmp_path / "folder"), "--workers", "1")
    assert len(list((tmp_path / "folder" / "train" / "7").glob("*.png"))) == 100
    assert number(r"val accuracy (\d\.\d+) after", out) > 0.6, out
