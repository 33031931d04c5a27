import numpy as np
import pytest
from sklearn import metrics as skm

from rustyasg.data.metrics import (
    Accuracy,
    ConfusionMatrix,
    F1Score,
    FBetaScore,
    Precision,
    Recall,
    TopKAccuracy,
    to_labels,
)

K = 5


def _batches(n, rng):
    """Random batch boundaries (including an empty batch) covering range(n)."""
    cuts = np.sort(rng.choice(np.arange(1, n), size=6, replace=False))
    bounds = np.concatenate([[0], cuts, [cuts[-1]], [n]])
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _streamed(metric, preds, target, rng):
    for s in _batches(len(target), rng):
        metric.update(preds[s], target[s])
    return metric.compute()


def _whole(metric, preds, target):
    metric.update(preds, target)
    return metric.compute()


@pytest.fixture
def multiclass(rng):
    target = rng.integers(0, K, size=600)
    logits = rng.normal(size=(600, K)) + 1.5 * np.eye(K)[target]  # informative but imperfect
    return logits, target


SK_SCORES = {Precision: skm.precision_score, Recall: skm.recall_score, F1Score: skm.f1_score}


@pytest.mark.parametrize("cls", [Precision, Recall, F1Score])
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
@pytest.mark.parametrize("form", ["labels", "logits"])
def test_multiclass_averages_match_sklearn(cls, average, form, multiclass, rng):
    logits, target = multiclass
    labels = logits.argmax(1)
    preds = labels if form == "labels" else logits
    expected = SK_SCORES[cls](target, labels, average=average, zero_division=0)
    streamed = _streamed(cls(average=average), preds, target, rng)
    assert streamed == pytest.approx(expected, abs=1e-12)
    assert _whole(cls(average=average), preds, target) == pytest.approx(streamed, abs=1e-12)


@pytest.mark.parametrize("cls", [Precision, Recall, F1Score])
def test_per_class_scores_match_sklearn(cls, multiclass, rng):
    logits, target = multiclass
    expected = SK_SCORES[cls](target, logits.argmax(1), average=None, zero_division=0)
    np.testing.assert_allclose(_streamed(cls(average=None), logits, target, rng), expected, atol=1e-12)


@pytest.mark.parametrize("cls", [Precision, Recall, F1Score])
@pytest.mark.parametrize("form", ["labels", "probabilities", "logits"])
def test_binary_matches_sklearn(cls, form, rng):
    target = rng.integers(0, 2, size=400)
    logit = rng.normal(size=400) + 1.2 * (2 * target - 1)
    labels = (logit >= 0).astype(np.int64)
    preds = {"labels": labels, "probabilities": 1 / (1 + np.exp(-logit)), "logits": logit * 3}[form]
    expected = SK_SCORES[cls](target, labels)
    assert _streamed(cls(), preds, target, rng) == pytest.approx(expected, abs=1e-12)
    flipped = SK_SCORES[cls](target, labels, pos_label=0)
    assert _streamed(cls(pos_label=0), preds, target, rng) == pytest.approx(flipped, abs=1e-12)


def test_fbeta_matches_sklearn(multiclass, rng):
    logits, target = multiclass
    for beta in (0.5, 2.0):
        for average in ("macro", "weighted", "micro"):
            expected = skm.fbeta_score(target, logits.argmax(1), beta=beta, average=average, zero_division=0)
            assert _streamed(FBetaScore(beta, average=average), logits, target, rng) == pytest.approx(expected)


def test_macro_ignores_classes_absent_from_targets_and_predictions(rng):
    # Classes 0..6 possible; 3 never occurs, 6 occurs only as a (wrong) prediction.
    target = rng.choice([0, 1, 2, 4, 5], size=300)
    preds = target.copy()
    wrong = rng.random(300) < 0.3
    preds[wrong] = rng.choice([0, 1, 2, 4, 5, 6], size=wrong.sum())
    for cls in (Precision, Recall, F1Score):
        expected = SK_SCORES[cls](target, preds, average="macro", zero_division=0)
        assert _streamed(cls(average="macro", num_classes=7), preds, target, rng) == pytest.approx(expected)


def test_accuracy_and_balanced_accuracy(multiclass, rng):
    logits, target = multiclass
    labels = logits.argmax(1)
    assert _streamed(Accuracy(), logits, target, rng) == pytest.approx(skm.accuracy_score(target, labels))
    assert _streamed(Accuracy(), labels, target, rng) == pytest.approx(skm.accuracy_score(target, labels))
    assert _streamed(Accuracy(average="macro"), logits, target, rng) == pytest.approx(
        skm.balanced_accuracy_score(target, labels))  # fmt: skip
    probs = rng.random(200)
    y = rng.integers(0, 2, 200)
    assert Accuracy()(probs, y) == pytest.approx(skm.accuracy_score(y, probs >= 0.5))


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_matches_sklearn(normalize, multiclass, rng):
    logits, target = multiclass
    expected = skm.confusion_matrix(target, logits.argmax(1), labels=range(K), normalize=normalize)
    got = _streamed(ConfusionMatrix(num_classes=K, normalize=normalize), logits, target, rng)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    binary_t, binary_p = rng.integers(0, 2, 100), rng.random(100)
    np.testing.assert_array_equal(
        _streamed(ConfusionMatrix(), binary_p, binary_t, rng), skm.confusion_matrix(binary_t, binary_p >= 0.5)
    )


def test_confusion_matrix_grows_and_checks_range():
    cm = ConfusionMatrix()
    cm.update([0, 1], [1, 1])
    cm.update([4], [2])
    assert cm.compute().shape == (5, 5) and cm.compute()[2, 4] == 1 and cm.compute()[1, 0] == 1
    fixed = ConfusionMatrix(num_classes=3)
    with pytest.raises(ValueError, match="label 3 is outside"):
        fixed.update([3], [0])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_accuracy_matches_sklearn(k, multiclass, rng):
    logits, target = multiclass
    expected = skm.top_k_accuracy_score(target, logits, k=k, labels=range(K))
    assert _streamed(TopKAccuracy(k), logits, target, rng) == pytest.approx(expected)


def test_input_forms_and_errors():
    assert to_labels([[0.1, 0.9], [0.7, 0.3]], [1, 0])[0].tolist() == [1, 0]
    assert to_labels([-2.0, 3.0], [0, 1])[0].tolist() == [0, 1]  # logits through a sigmoid
    assert to_labels(np.array([0, 2]), [0, 2])[0].tolist() == [0, 2]  # integers are labels
    assert to_labels([0.0, 1.0, 0.4], [0, 1, 1])[0].tolist() == [0, 1, 0]  # floats are probabilities
    # (N, C, H, W) scores against (N, H, W) targets: class axis 1, as torch's cross-entropy.
    scores = np.zeros((2, 3, 2, 2))
    scores[:, 2] = 1
    assert to_labels(scores, np.zeros((2, 2, 2), int))[0].tolist() == [2] * 8
    with pytest.raises(ValueError, match="do not match"):
        to_labels([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="average='binary' needs labels 0/1"):
        Precision()([0, 2], [0, 1])
    metric = F1Score(average="macro")
    assert metric([0, 1], [0, 1]) == 1.0 and metric([1, 0], [0, 1]) == 0.0
    assert metric.compute() == pytest.approx(0.5)
    metric.reset()
    assert metric.compute() == 0.0
