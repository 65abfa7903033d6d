"""Evaluation of a classifier on a split: metrics from scikit-learn, JSON-serialisable."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from transferkit.data import DataSplits, check_labels
from transferkit.errors import DataError
from transferkit.models import check_model_input


@dataclass
class Evaluation:
    """Metrics of one model on one split.

    Attributes:
        split: Which split was evaluated.
        class_names: Names in label order.
        accuracy: Fraction of correct top-1 predictions.
        loss: Mean cross-entropy of the predicted probabilities.
        top5_accuracy: Top-5 accuracy, where there are more than 5 classes.
        precision: Macro-averaged precision.
        recall: Macro-averaged recall.
        f1: Macro-averaged F1.
        per_class: ``{class: {"precision", "recall", "f1", "support"}}``.
        confusion_matrix: Counts, rows = true class, columns = predicted.
        report: scikit-learn's classification report text.
        y_true: True labels.
        y_pred: Predicted labels.
        probabilities: Predicted class probabilities, shape ``(n, classes)``.
    """

    split: str
    class_names: list[str]
    accuracy: float
    loss: float
    top5_accuracy: float | None
    precision: float
    recall: float
    f1: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    report: str
    y_true: list[int] = field(repr=False)
    y_pred: list[int] = field(repr=False)
    probabilities: list[list[float]] = field(repr=False)

    def to_dict(self, *, include_predictions: bool = True) -> dict:
        """A JSON-serialisable dict (predictions and probabilities optional)."""
        d = asdict(self)
        if not include_predictions:
            for key in ("y_true", "y_pred", "probabilities"):
                d.pop(key)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Evaluation:
        """Rebuild from :meth:`to_dict` output (missing predictions become empty)."""
        d = {**{"y_true": [], "y_pred": [], "probabilities": []}, **d}
        return cls(**d)

    def summary(self) -> dict[str, float | None]:
        """The headline numbers: accuracy, top-5, macro precision/recall/F1, loss."""
        return {
            "accuracy": self.accuracy,
            "top5_accuracy": self.top5_accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "loss": self.loss,
        }


def evaluate(
    model, data: DataSplits, split: str = "test", *, batch_size: int = 256
) -> Evaluation:
    """Evaluate a model on a split of ``data``.

    Args:
        model: A Keras classifier taking raw images and returning probabilities.
        data: The dataset.
        split: ``"test"`` (default), ``"val"`` or ``"train"``.
        batch_size: Prediction batch size.

    Returns:
        An :class:`Evaluation`.

    Raises:
        DataError: If the split is empty or the model's output does not match
            the number of classes.

    Example:
        >>> ev = evaluate(model, data)  # doctest: +SKIP
        >>> print(ev.report)  # doctest: +SKIP
    """
    if not isinstance(data, DataSplits):
        raise DataError(
            f"data must be a DataSplits (see load_cifar10 or DataSplits(...)), got "
            f"{type(data).__name__}. For bare arrays use evaluate_predictions."
        )
    x, y = data.split(split)
    check_model_input(model, x)
    if len(x) == 0:
        raise DataError(f"Cannot evaluate on the empty {split!r} split.")
    probs = model.predict(
        data.as_tf_dataset(split, batch_size, shuffle=False), verbose=0
    )
    return evaluate_predictions(y, probs, data.class_names, split=split)


def evaluate_predictions(
    y_true, probabilities, class_names, *, split: str = "test"
) -> Evaluation:
    """Compute every metric from true labels and predicted probabilities.

    Args:
        y_true: Integer labels, shape ``(n,)``.
        probabilities: Probabilities, shape ``(n, num_classes)``.
        class_names: Names in label order.
        split: Name recorded in the result.

    Returns:
        An :class:`Evaluation`.

    Raises:
        DataError: For mismatched shapes or labels out of range.

    Example:
        >>> ev = evaluate_predictions([0, 1], [[0.9, 0.1], [0.2, 0.8]], ["a", "b"])
        >>> ev.accuracy
        1.0
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    names = [str(c) for c in class_names]
    y = check_labels(np.asarray(y_true), len(names), what="y_true")
    if probs.ndim != 2 or probs.shape != (len(y), len(names)):
        raise DataError(
            f"probabilities must have shape ({len(y)}, {len(names)}), got {probs.shape}: "
            "does the model's output match the number of classes?"
        )
    labels = np.arange(len(names))
    pred = probs.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    top5 = None
    if len(names) > 5:
        top = np.argsort(-probs, axis=1)[:, :5]
        top5 = float((top == y[:, None]).any(axis=1).mean())
    eps = 1e-7
    loss = float(-np.log(np.clip(probs[np.arange(len(y)), y], eps, 1.0)).mean())
    return Evaluation(
        split=split,
        class_names=names,
        accuracy=float((pred == y).mean()),
        loss=loss,
        top5_accuracy=top5,
        precision=float(p.mean()),
        recall=float(r.mean()),
        f1=float(f.mean()),
        per_class={
            n: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, n in enumerate(names)
        },
        confusion_matrix=confusion_matrix(y, pred, labels=labels).tolist(),
        report=classification_report(
            y, pred, labels=labels, target_names=names, digits=4, zero_division=0
        ),
        y_true=y.tolist(),
        y_pred=pred.tolist(),
        probabilities=probs.round(6).tolist(),
    )
