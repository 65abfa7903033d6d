"""Evaluation of a classifier on a split: predictions (with optional mirror TTA), metrics."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from transferkit._validation import check_scalar
from transferkit.data.batches import StreamBatches
from transferkit.data.splits import DataSplits, check_images, check_labels
from transferkit.data.stream import ImageFiles
from transferkit.errors import ConfigurationError, DataError
from transferkit.models.anatomy import check_model_input

# Keras' epsilon (keras.config.epsilon()). Probabilities are clipped to it, as in Keras'
# cross-entropy, so a confidently wrong prediction costs -log(1e-7) ~ 16 as in training,
# not the -log(float64 eps) ~ 36 of scikit-learn's own clipping.
_EPS = 1e-7
_METRICS = ("accuracy", "balanced_accuracy", "loss", "top5_accuracy", "precision", "recall",
            "f1", "per_class", "confusion_matrix", "report")


class Evaluation:
    """Metrics of one model on one split, derived from the labels and probabilities it holds.

    Every metric is computed from ``y_true`` and ``probabilities`` on first
    use, so they can never disagree with the predictions. A record read back
    without its predictions (``to_dict(include_predictions=False)``) keeps the
    metrics it was saved with.

    Args:
        y_true: Integer labels, shape ``(n,)``.
        probabilities: Predicted class probabilities, shape ``(n, classes)``.
        class_names: Names in label order.
        split: Which split was evaluated.
        tta: Whether the probabilities average each image's and its mirror
            image's (test-time augmentation, see :func:`predict`); recorded, not applied.

    Attributes:
        accuracy: Fraction of correct top-1 predictions.
        balanced_accuracy: The mean of the per-class recalls over the classes
            present in ``y_true`` (scikit-learn's ``balanced_accuracy_score``):
            chance is ``1 / classes`` however unbalanced the split is, and a
            model that ignores a small class loses its share. None in records
            saved before it was computed.
        loss: Mean cross-entropy of the predicted probabilities.
        top5_accuracy: Top-5 accuracy, where there are more than 5 classes.
        precision: Macro-averaged precision.
        recall: Macro-averaged recall.
        f1: Macro-averaged F1.
        per_class: ``{class: {"precision", "recall", "f1", "support"}}``.
        confusion_matrix: Counts, rows = true class, columns = predicted.
        report: scikit-learn's classification report text.
        y_pred: Predicted labels.

    Example:
        >>> ev = Evaluation([0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]], ["a", "b"])
        >>> round(ev.accuracy, 3), ev.balanced_accuracy, ev.confusion_matrix
        (0.667, 0.75, [[1, 0], [1, 1]])
        >>> ev.recall_per_class
        {'a': 1.0, 'b': 0.5}
    """

    def __init__(self, y_true, probabilities, class_names, *, split: str = "test",
                 tta: bool = False, recorded: dict | None = None):
        self.split = split
        self.tta = bool(tta)
        self.class_names = [str(c) for c in class_names]
        y = np.asarray(y_true)
        y = y.astype(np.int64) if y.size == 0 else y  # [] reads as float
        self.y_true = check_labels(y, len(self.class_names), what="y_true")
        probs = np.asarray(probabilities, dtype=np.float64)
        if len(self.y_true) == 0 and recorded is not None:
            probs = probs.reshape(0, len(self.class_names))
        if probs.ndim != 2 or probs.shape != (len(self.y_true), len(self.class_names)):
            raise DataError(
                f"probabilities must have shape ({len(self.y_true)}, {len(self.class_names)}), "
                f"got {probs.shape}: does the model's output match the number of classes?"
            )
        self.probabilities = probs
        self._recorded = recorded if len(self.y_true) == 0 else None
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (f"Evaluation(split={self.split!r}, accuracy={self.accuracy:.4f}, "
                f"n={len(self.y_true) or 'not kept'}{', tta=True' if self.tta else ''})")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Evaluation):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    @property
    def y_pred(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def recall_per_class(self) -> dict[str, float]:
        """The recall of each class (the share of its images predicted as it), by name."""
        return {name: scores["recall"] for name, scores in (self.per_class or {}).items()}

    def __getattr__(self, name: str):
        # The metrics: computed once from the arrays, or read from the record.
        if name not in _METRICS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if self.__dict__.get("_recorded") is not None:
            return self._recorded.get(name)
        cache = self.__dict__.setdefault("_cache", {})
        if not cache:
            cache.update(_metrics(self.y_true, self.probabilities, self.class_names))
        return cache[name]

    def to_dict(self, *, include_predictions: bool = True) -> dict:
        """A JSON-serialisable dict (predictions and probabilities optional)."""
        d = {"split": self.split, "tta": self.tta, "class_names": list(self.class_names),
             **{m: getattr(self, m) for m in _METRICS}}
        if include_predictions:
            d.update(y_true=self.y_true.tolist(), y_pred=self.y_pred.tolist(),
                     probabilities=self.probabilities.tolist())
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Evaluation:
        """Rebuild from :meth:`to_dict` output; metrics are recomputed where predictions are kept."""
        kept = len(d.get("y_true") or []) > 0
        return cls(d.get("y_true") or [], d.get("probabilities") or [], d["class_names"],
                   split=d.get("split", "test"), tta=d.get("tta", False),
                   recorded=None if kept else d)

    def summary(self) -> dict[str, float | None]:
        """The headline numbers: accuracy, balanced accuracy, top-5, macro precision/recall/F1, loss."""
        return {m: getattr(self, m) for m in ("accuracy", "balanced_accuracy", "top5_accuracy",
                                              "precision", "recall", "f1", "loss")}


def evaluate(
    model, data: DataSplits, split: str = "test", *, batch_size: int = 256, tta: bool = False
) -> Evaluation:
    """Evaluate a model on a split of ``data``.

    Args:
        model: A Keras classifier taking raw images and returning probabilities.
        data: The dataset.
        split: ``"test"`` (default), ``"val"`` or ``"train"``.
        batch_size: Prediction batch size.
        tta: Test-time augmentation: average each image's probabilities with its
            mirror image's (:func:`predict`); twice the prediction time. Recorded
            in the result (``Evaluation.tta``).

    Returns:
        An :class:`Evaluation`.

    Raises:
        DataError: If the split is empty or the model's output does not match
            the number of classes.

    Example:
        ``data`` here is a small real CIFAR-10 subset (cat and ship, 100 test
        images each), scored by a frozen MobileNetV2 whose head trained on it:

        >>> model = build_transfer_model("mobilenet_v2", data)
        >>> _ = train(model, data, epochs=10, verbose=0)
        >>> ev = evaluate(model, data, "test")
        >>> ev.class_names, len(ev.y_true), ev.accuracy > 0.8
        (['cat', 'ship'], 200, True)
        >>> ev.report.split()[:5]  # scikit-learn's classification report
        ['precision', 'recall', 'f1-score', 'support', 'cat']
        >>> evaluate(model, data, "test", tta=True).tta  # with the mirror images too
        True
    """
    if not isinstance(data, DataSplits):
        raise DataError(
            f"data must be a DataSplits (see load_cifar10 or DataSplits(...)), got "
            f"{type(data).__name__}. For bare arrays use evaluate_predictions."
        )
    x, y = data.split(split)
    if len(x) == 0:
        raise DataError(f"Cannot evaluate on the empty {split!r} split.")
    probs = predict(model, x, batch_size=batch_size, tta=tta)
    return evaluate_predictions(y, probs, data.class_names, split=split, tta=tta)


def predict(model, images: np.ndarray, *, batch_size: int = 256, tta: bool = False) -> np.ndarray:
    """Class probabilities of raw images, optionally averaged with their mirror images'.

    With ``tta`` (test-time augmentation), each image and its horizontal mirror
    image are predicted and their softmax probabilities averaged: the flip the
    recipes train with, undone at test time. It doubles the prediction time. The
    mirror images are made one batch at a time (a NumPy view of the uint8 batch,
    copied with it), never for the whole set.

    Args:
        model: A Keras classifier taking raw uint8 images and returning probabilities.
        images: Raw uint8 images, ``(n, height, width, channels)`` (or streamed
            :class:`~transferkit.data.stream.ImageFiles`).
        batch_size: Images per forward pass.
        tta: Average each image's probabilities with its mirror image's.

    Returns:
        Probabilities, ``(n, classes)``, in the order of ``images``.

    Raises:
        DataError: For images that are not uint8 ``(n, h, w, c)`` of the model's input shape.

    Example:
        >>> model = build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(4,))
        >>> x = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
        >>> p = predict(model, x, tta=True)
        >>> mirrored = model.predict(x[:, :, ::-1], verbose=0)
        >>> np.allclose(p, (model.predict(x, verbose=0) + mirrored) / 2, atol=1e-6)
        True
    """
    check_images(images)
    check_model_input(model, images)
    check_scalar(batch_size, "batch_size", int, min_val=1)
    if not isinstance(tta, (bool, np.bool_)):
        raise ConfigurationError(f"tta must be True or False, got {tta!r}.")
    if not tta:
        if isinstance(images, ImageFiles):  # streamed from disk: decoded a batch at a time
            return model.predict(StreamBatches(images, None, batch_size), verbose=0)
        return model.predict(images, batch_size=batch_size, verbose=0)  # uint8 in, every backend
    out = np.empty((len(images), model.output_shape[-1]), np.float32)
    for start in range(0, len(images), batch_size):
        part = images[start:start + batch_size]
        # The batch and its mirror image in one call: half the per-call overhead.
        both = model.predict(np.concatenate([part, part[:, :, ::-1]]), batch_size=batch_size,
                             verbose=0)
        out[start:start + len(part)] = (both[:len(part)] + both[len(part):]) / 2
    return out


def evaluate_predictions(
    y_true, probabilities, class_names, *, split: str = "test", tta: bool = False
) -> Evaluation:
    """Compute every metric from true labels and predicted probabilities.

    Args:
        y_true: Integer labels, shape ``(n,)``.
        probabilities: Probabilities, shape ``(n, num_classes)``.
        class_names: Names in label order.
        split: Name recorded in the result.
        tta: Whether the probabilities came from :func:`predict` with ``tta=True``
            (recorded in the result).

    Returns:
        An :class:`Evaluation`.

    Raises:
        DataError: For mismatched shapes or labels out of range.

    Example:
        >>> ev = evaluate_predictions([0, 1], [[0.9, 0.1], [0.2, 0.8]], ["a", "b"])
        >>> ev.accuracy
        1.0
    """
    return Evaluation(y_true, probabilities, class_names, split=split, tta=tta)


def _metrics(y: np.ndarray, probs: np.ndarray, names: list[str]) -> dict:
    labels = np.arange(len(names))
    pred = probs.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    top5 = None
    if len(names) > 5:
        top5 = float(top_k_accuracy_score(y, probs, k=5, labels=labels))
    # Rows are renormalised after clipping: float32 softmax rows sum to one only within
    # float32 rounding, which scikit-learn's float64 check would warn about.
    clipped = np.clip(probs, _EPS, 1.0)
    loss = float(log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=labels))
    with warnings.catch_warnings():  # a class predicted but absent from y_true: expected here
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true")
        balanced = float(balanced_accuracy_score(y, pred))
    return {
        "accuracy": float((pred == y).mean()),
        "balanced_accuracy": balanced,
        "loss": loss,
        "top5_accuracy": top5,
        "precision": float(p.mean()),
        "recall": float(r.mean()),
        "f1": float(f.mean()),
        "per_class": {
            n: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                "support": int(s[i])}
            for i, n in enumerate(names)
        },
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
        "report": classification_report(y, pred, labels=labels, target_names=names, digits=4,
                                        zero_division=0),
    }
