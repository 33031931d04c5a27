import json

import numpy as np
import pytest

from rustyasg.data import EarlyStopping, MetricLogger, MissingDependencyError, read_metric_log
from rustyasg.data.metrics import EMA, Accuracy, RunningMean, RunningStd


def test_running_mean_and_window(rng):
    values = [rng.normal(size=rng.integers(1, 5)) for _ in range(20)] + [3.0]
    flat = np.concatenate([np.atleast_1d(v) for v in values])
    mean, last = RunningMean(), RunningMean(window=7)
    for v in values:
        mean.update(v)
        last.update(v)
    assert mean.compute() == pytest.approx(flat.mean())
    assert last.compute() == pytest.approx(flat[-7:].mean())
    assert np.isnan(RunningMean().compute())


@pytest.mark.parametrize("ddof", [0, 1])
def test_running_std_matches_numpy(ddof, rng):
    chunks = [rng.normal(5e6, 2.0, size=rng.integers(1, 50)) for _ in range(30)]
    s = RunningStd(ddof=ddof)
    for c in chunks:
        s.update(c)
    flat = np.concatenate(chunks)
    assert s.compute() == pytest.approx(flat.std(ddof=ddof), rel=1e-9)
    assert s.mean == pytest.approx(flat.mean()) and s.count == len(flat)


def test_ema_matches_its_definition(rng):
    xs = rng.normal(size=50)
    for decay in (0.0, 0.5, 0.99):
        corrected, plain = EMA(decay), EMA(decay, bias_correction=False)
        for x in xs:
            corrected.update(x)
            plain.update(x)
        # Bias-corrected EMA = weighted mean with weights decay**age (what pandas' ewm(adjust=True) gives).
        weights = decay ** np.arange(len(xs))[::-1]
        assert corrected.compute() == pytest.approx((weights * xs).sum() / weights.sum())
        value = xs[0]
        for x in xs[1:]:
            value = decay * value + (1 - decay) * x
        assert plain.compute() == pytest.approx(value)


def test_early_stopping_min_and_max():
    es = EarlyStopping(mode="min", patience=2, min_delta=0.1)
    decisions = [es.step(v) for v in (1.0, 0.95, 0.85, 0.84, 0.80)]
    # 0.95 is not 0.1 better than 1.0; 0.85 is; then 0.84 and 0.80 are not -> stop after the 2nd.
    assert decisions == [False, False, False, False, True]
    assert es.best == 0.85 and es.best_step == 2 and es.should_stop
    assert es.step(0.5) is True and es.improved  # the stop is sticky; the best is still tracked
    up = EarlyStopping(mode="max", patience=1)
    assert [up.step(v) for v in (0.5, 0.6, float("nan"))] == [False, False, True]
    assert up.best == 0.6
    resumed = EarlyStopping(mode="max", patience=1)
    resumed.load_state_dict(up.state_dict())
    assert resumed.best == 0.6 and resumed.should_stop
    baseline = EarlyStopping(mode="max", patience=0, baseline=0.9)
    assert baseline.step(0.8) is True
    acc = Accuracy()
    acc.update([1, 1], [1, 0])
    tracker = EarlyStopping(mode="max")
    tracker.step(acc)  # metric objects are computed
    assert tracker.best == 0.5 and tracker.improved
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="down")


def test_metric_logger_csv_and_jsonl_round_trip(tmp_path):
    for suffix in (".csv", ".jsonl"):
        path = tmp_path / f"run{suffix}"
        with MetricLogger(path) as log:
            log.log(step=0, loss=np.float32(2.5))
            log.log({"loss": 1.25, "acc": np.array(0.5)}, step=1)
            log.log(loss=0.75, acc=Accuracy()([1, 1], [1, 1]), phase="eval")
        rows = read_metric_log(path)
        assert [r["step"] for r in rows] == [0, 1, 2]
        assert [r["loss"] for r in rows] == [2.5, 1.25, 0.75]
        assert rows[1]["acc"] == 0.5 and rows[2]["phase"] == "eval"
        assert rows[0].get("acc") is None
    header = (tmp_path / "run.csv").read_text().splitlines()[0]
    assert header == "step,loss,acc,phase"  # widened when new metrics appeared
    assert json.loads((tmp_path / "run.jsonl").read_text().splitlines()[0]) == {"step": 0, "loss": 2.5}
    with pytest.raises(ValueError, match="cannot tell the log format"):
        MetricLogger(tmp_path / "run.txt")
    with pytest.raises(ValueError, match="scalars"):
        MetricLogger().log(x=np.zeros(3))


def test_metric_logger_plots_png(tmp_path):
    from PIL import Image

    log = MetricLogger()
    for step in range(30):
        log.log(step=step, loss=1 / (step + 1), acc=step / 30, phase="train")
    out = log.plot(tmp_path / "plots" / "curves.png", title="run 1")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as img:
        width, height = img.size
        pixels = np.asarray(img.convert("L"))
    assert width == 640 and height == 480  # two panels: 6.4 x (2 x 2.4) inches at 100 dpi
    assert pixels.std() > 10  # something was drawn
    with pytest.raises(KeyError, match="no metric named"):
        log.plot(tmp_path / "x.png", metrics=["nope"])


def test_metric_logger_plot_without_matplotlib(tmp_path, monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now fails
    log = MetricLogger()
    log.log(loss=1.0)
    with pytest.raises(MissingDependencyError, match="pip install matplotlib"):
        log.plot(tmp_path / "x.png")
