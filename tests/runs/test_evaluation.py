import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from transferkit.errors import DataError
from transferkit.models.builders import build_baseline_cnn
from transferkit.runs.evaluation import Evaluation, evaluate, evaluate_predictions, predict


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


# --------------------------------------------------------------------------- test-time augmentation


def _mirror_symmetric_model(classes: int = 3):
    """Global average pooling first: an image and its mirror image score the same."""
    import keras

    return keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(classes, activation="softmax")])


def test_tta_averages_exactly_the_image_and_its_mirror_image(tiny):
    model = build_baseline_cnn(tiny.num_classes, input_shape=tiny.image_shape, filters=(4,))
    x = tiny.x_test[:10]
    plain = model.predict(x, batch_size=4, verbose=0)  # batch shapes as below: JAX compiles once
    mirrored = model.predict(np.ascontiguousarray(x[:, :, ::-1]), batch_size=4, verbose=0)
    assert np.abs(plain - mirrored).max() > 1e-4  # the CNN sees the flip: TTA changes something
    # batch_size 4: three batches, the last one short
    np.testing.assert_allclose(predict(model, x, batch_size=4, tta=True), (plain + mirrored) / 2,
                               atol=1e-6)
    np.testing.assert_allclose(predict(model, x, batch_size=4), plain, atol=1e-6)


def test_a_mirror_symmetric_model_scores_the_same_with_tta(tiny):
    model = _mirror_symmetric_model(tiny.num_classes)
    plain, tta = evaluate(model, tiny), evaluate(model, tiny, tta=True, batch_size=5)
    np.testing.assert_allclose(tta.probabilities, plain.probabilities, atol=1e-6)
    assert tta.accuracy == plain.accuracy and tta.confusion_matrix == plain.confusion_matrix


def test_tta_is_recorded_in_the_evaluation_and_its_record(tiny):
    from transferkit.errors import ConfigurationError

    model = build_baseline_cnn(tiny.num_classes, input_shape=tiny.image_shape, filters=(4,))
    ev = evaluate(model, tiny, tta=True)
    assert ev.tta and not evaluate(model, tiny).tta and "tta=True" in repr(ev)
    again = Evaluation.from_dict(json.loads(json.dumps(ev.to_dict())))
    assert again.tta and again == ev
    slim = ev.to_dict(include_predictions=False)
    assert slim["tta"] is True and Evaluation.from_dict(slim).tta
    assert Evaluation.from_dict({**slim, "tta": False}) != Evaluation.from_dict(slim)
    assert not Evaluation.from_dict({k: v for k, v in slim.items() if k != "tta"}).tta  # old records
    with pytest.raises(ConfigurationError, match="tta must be True or False"):
        predict(model, tiny.x_test, tta="yes")
    with pytest.raises(DataError, match="uint8"):
        predict(model, tiny.x_test.astype(np.float32), tta=True)
