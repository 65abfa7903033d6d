import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from transferkit.errors import DataError
from transferkit.models.builders import build_baseline_cnn
from transferkit.runs.evaluation import Evaluation, evaluate, evaluate_predictions


def _probs(n, k, seed=0):
    p = np.random.default_rng(seed).random((n, k))
    return p / p.sum(axis=1, keepdims=True)


def test_metrics_match_scikit_learn():
    y = np.random.default_rng(1).integers(0, 6, 200)
    p = _probs(200, 6)
    p[np.arange(150), y[:150]] += 2  # 150 surely right
    p /= p.sum(axis=1, keepdims=True)
    ev = evaluate_predictions(y, p, list("abcdef"))
    pred = p.argmax(1)
    assert ev.accuracy == pytest.approx(accuracy_score(y, pred))
    assert ev.precision == pytest.approx(precision_score(y, pred, average="macro", zero_division=0))
    assert ev.recall == pytest.approx(recall_score(y, pred, average="macro"))
    assert ev.f1 == pytest.approx(f1_score(y, pred, average="macro"))
    assert np.trace(ev.confusion_matrix) == (pred == y).sum()
    assert ev.top5_accuracy >= ev.accuracy
    assert "macro avg" in ev.report and ev.per_class["a"]["support"] == (y == 0).sum()
    expected_loss = -np.log(p[np.arange(200), y]).mean()
    assert ev.loss == pytest.approx(expected_loss, rel=1e-5)


def test_top5_only_with_more_than_five_classes_and_json_roundtrip():
    ev = evaluate_predictions([0, 1, 2], _probs(3, 3), ["x", "y", "z"])
    assert ev.top5_accuracy is None
    again = Evaluation.from_dict(json.loads(json.dumps(ev.to_dict())))
    assert again == ev
    slim = ev.to_dict(include_predictions=False)
    assert "probabilities" not in slim and Evaluation.from_dict(slim).accuracy == ev.accuracy


def test_shape_mismatch_and_bad_labels():
    with pytest.raises(DataError, match="number of classes"):
        evaluate_predictions([0, 1], _probs(2, 3), ["a", "b"])
    with pytest.raises(DataError, match="0..1"):
        evaluate_predictions([0, 2], _probs(2, 2), ["a", "b"])


def test_evaluate_model_on_split(tiny):
    model = build_baseline_cnn(tiny.num_classes, input_shape=tiny.image_shape, filters=(8,))
    ev = evaluate(model, tiny, "test")
    assert len(ev.y_true) == len(tiny.y_test) and ev.split == "test"
    np.testing.assert_array_equal(ev.y_true, tiny.y_test)


def test_top5_and_loss_with_classes_missing_from_y_true():
    # Only classes 0 and 1 occur: the metrics must still rank all seven columns.
    y = np.array([0, 1, 1, 0])
    p = _probs(4, 7, seed=3)
    p[0] = [0.0, 0.05, 0.1, 0.15, 0.3, 0.4, 0.0]  # true class 0 out of the top 5, at 0
    ev = evaluate_predictions(y, p, list("abcdefg"))
    in_top5 = [y[i] in np.argsort(-p[i])[:5] for i in range(4)]
    assert ev.top5_accuracy == pytest.approx(np.mean(in_top5))
    expected = -np.log(np.clip(p[np.arange(4), y], 1e-7, 1)).mean()  # clipped like Keras
    assert ev.loss == pytest.approx(expected, rel=1e-5)


def test_balanced_accuracy_and_recall_per_class_on_an_unbalanced_split():
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    # 90 cats, all right; 10 dogs, 2 right: accuracy flatters a model that ignores dogs.
    y = np.array([0] * 90 + [1] * 10)
    pred = np.array([0] * 90 + [1] * 2 + [0] * 8)
    ev = evaluate_predictions(y, np.eye(3)[pred], ["cat", "dog", "fox"])
    assert ev.accuracy == pytest.approx(0.92)
    assert ev.balanced_accuracy == pytest.approx(0.6) == balanced_accuracy_score(y, pred)
    assert ev.recall_per_class == {"cat": 1.0, "dog": 0.2, "fox": 0.0}
    assert ev.summary()["balanced_accuracy"] == pytest.approx(0.6)
    # A class predicted but absent from the split is no reason to warn.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = evaluate_predictions([0, 1], np.eye(3)[[2, 1]], ["cat", "dog", "fox"])
        assert other.balanced_accuracy == pytest.approx(0.5)
    slim = json.loads(json.dumps(ev.to_dict(include_predictions=False)))
    assert slim["balanced_accuracy"] == pytest.approx(0.6)
    assert Evaluation.from_dict(slim).recall_per_class["dog"] == pytest.approx(0.2)
    del slim["balanced_accuracy"]  # a record saved before the metric existed
    assert Evaluation.from_dict(slim).balanced_accuracy is None
