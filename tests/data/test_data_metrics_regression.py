import numpy as np
import pytest
from sklearn import metrics as skm

from rustyasg.data.metrics import (
    MAE,
    MSE,
    ExplainedVariance,
    MaxError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    R2Score,
    RootMeanSquaredError,
)

REFERENCE = {
    MeanSquaredError: skm.mean_squared_error,
    RootMeanSquaredError: skm.root_mean_squared_error,
    MeanAbsoluteError: skm.mean_absolute_error,
    MeanAbsolutePercentageError: skm.mean_absolute_percentage_error,
    R2Score: skm.r2_score,
    ExplainedVariance: skm.explained_variance_score,
}


def _stream(metric, preds, target, rng):
    cuts = np.sort(rng.choice(np.arange(1, len(target)), size=7, replace=False))
    for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(target)]])):
        metric.update(preds[a:b], target[a:b])
    return metric.compute()


def _data(rng, shape, offset=0.0):
    target = rng.normal(size=shape) * 3 + offset
    preds = target + rng.normal(size=shape) * 1.5 + 0.2
    return preds, target


@pytest.mark.parametrize("cls", list(REFERENCE))
def test_single_output_matches_sklearn_streamed_and_whole(cls, rng):
    preds, target = _data(rng, 500)
    expected = REFERENCE[cls](target, preds)  # scikit-learn takes (y_true, y_pred)
    streamed = _stream(cls(), preds, target, rng)
    whole = cls()
    whole.update(preds, target)
    assert streamed == pytest.approx(expected, rel=1e-10)
    assert whole.compute() == pytest.approx(streamed, rel=1e-10)


@pytest.mark.parametrize("cls", list(REFERENCE))
@pytest.mark.parametrize("multioutput", ["raw_values", "uniform_average"])
def test_multi_output_matches_sklearn(cls, multioutput, rng):
    preds, target = _data(rng, (300, 3))
    expected = REFERENCE[cls](target, preds, multioutput=multioutput)
    np.testing.assert_allclose(_stream(cls(multioutput=multioutput), preds, target, rng), expected, rtol=1e-10)


def test_max_error(rng):
    preds, target = _data(rng, 400)
    assert _stream(MaxError(), preds, target, rng) == pytest.approx(skm.max_error(target, preds))
    p2, t2 = _data(rng, (50, 2))
    np.testing.assert_allclose(_stream(MaxError(multioutput="raw_values"), p2, t2, rng), np.abs(p2 - t2).max(0))


def test_statistics_stay_accurate_for_large_offsets(rng):
    # A naive sum-of-squares variance would lose every digit here; mergeable moments do not.
    preds, target = _data(rng, 2000, offset=1e7)
    for cls in (R2Score, ExplainedVariance):
        assert _stream(cls(), preds, target, rng) == pytest.approx(REFERENCE[cls](target, preds), rel=1e-7)


def test_constant_targets_follow_sklearn_finite_convention():
    target = np.full(5, 2.0)
    for cls in (R2Score, ExplainedVariance):
        assert cls()(target, target) == REFERENCE[cls](target, target) == 1.0
        shifted = target + 1.0  # a constant bias: explained variance forgives it, R² does not
        assert cls()(shifted, target) == REFERENCE[cls](target, shifted)
        noisy = target + np.array([0.0, 1.0, 0.0, -1.0, 0.5])
        assert cls()(noisy, target) == REFERENCE[cls](target, noisy) == 0.0
    assert R2Score()(target + 1.0, target) == 0.0 and ExplainedVariance()(target + 1.0, target) == 1.0


def test_mape_with_zero_targets_uses_the_same_floor_as_sklearn(rng):
    target = np.array([0.0, 1.0, -2.0, 0.0])
    preds = np.array([0.5, 1.5, -1.0, 0.0])
    assert MeanAbsolutePercentageError()(preds, target) == pytest.approx(
        skm.mean_absolute_percentage_error(target, preds))  # fmt: skip


def test_aliases_errors_and_reset(rng):
    assert MSE is MeanSquaredError and MAE is MeanAbsoluteError
    m = MSE()
    with pytest.raises(ValueError, match="before any update"):
        m.compute()
    with pytest.raises(ValueError, match="same shape"):
        m.update(np.zeros(3), np.zeros(4))
    m.update(np.zeros((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="output shape changed"):
        m.update(np.zeros((2, 3)), np.ones((2, 3)))
    assert m.compute() == 1.0
    m.reset()
    assert m([1.0, 3.0], [1.0, 1.0]) == 2.0
