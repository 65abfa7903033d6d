"""Run records: what one training run did, saved to and loaded from a folder.

A :class:`Run` holds the configuration (model, data, recipe, versions,
machine), the per-epoch history, the test-split evaluation and wall times.
:func:`~transferkit.training.train` returns one; :mod:`transferkit.reporting.report`,
:mod:`transferkit.reporting.compare` and the plots read them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from transferkit import _machine
from transferkit._atomic import (
    atomic_save_model,
    atomic_write,
    atomic_write_json,
)
from transferkit.errors import ConfigurationError, DataNotFoundError
from transferkit.models.anatomy import find_backbone, parameter_counts
from transferkit.models.builders import load_model as load_keras_model
from transferkit.runs.evaluation import Evaluation
from transferkit.runs.layout import MODEL_FILE, PREDICTIONS_FILE, RUN_FILE

logger = logging.getLogger("transferkit")



@dataclass
class Run:
    """The record of one training run.

    Attributes:
        name: Run name.
        config: Backbone, freeze state, parameter counts, optimizer, learning
            rate, epochs, batch size, image size, seed, data, library versions.
        history: ``{metric: [value per epoch]}`` as ``model.fit`` reports it.
        evaluation: Test-split :class:`~transferkit.runs.evaluation.Evaluation`.
        timings: Wall seconds per phase (``features``, ``fit``, ``evaluate``, ``total``).
        artifacts: Paths of files written (model, history, checkpoint).
        model: The trained model (not serialised into ``run.json``).
    """

    name: str
    config: dict
    history: dict[str, list[float]]
    evaluation: Evaluation | None
    timings: dict[str, float]
    artifacts: dict[str, str] = field(default_factory=dict)
    model: keras.Model | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        score = f"test_accuracy={self.evaluation.accuracy:.4f}, " if self.evaluation else ""
        total = self.timings.get("total")
        took = f", {total:.0f} s" if total is not None else ""
        return f"Run({self.name!r}, {score}epochs={self.epochs_run}{took})"

    @property
    def epochs_run(self) -> int:
        """Number of epochs actually run (early stopping may cut it short)."""
        return max((len(v) for v in self.history.values()), default=0)

    def best_epoch(self, metric: str = "val_accuracy") -> tuple[int | None, float | None]:
        """``(epoch index, value)`` of the best value of ``metric`` (min for losses)."""
        values = [v for v in self.history.get(metric, [])]
        valid = [(i, v) for i, v in enumerate(values) if not np.isnan(v)]
        if not valid:
            return None, None
        pick = min if metric_mode(metric) == "min" else max
        return pick(valid, key=lambda iv: iv[1])

    def to_dict(self) -> dict:
        """JSON-serialisable record (without per-image predictions)."""
        return {
            "name": self.name,
            "config": self.config,
            "history": self.history,
            "evaluation": (
                self.evaluation.to_dict(include_predictions=False) if self.evaluation else None
            ),
            "timings": self.timings,
            "artifacts": self.artifacts,
        }

    def save(self, directory: str | os.PathLike, *, save_model: bool = True) -> Path:
        """Write ``run.json``, ``predictions.npz`` and ``model.keras`` (atomically).

        Args:
            directory: Destination folder (created if missing).
            save_model: Also save :attr:`model` when it is set.

        Returns:
            The folder.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if save_model and self.model is not None:
            atomic_save_model(self.model, directory / MODEL_FILE)
            self.artifacts["model"] = MODEL_FILE
        if self.evaluation is not None and len(self.evaluation.y_true):
            ev = self.evaluation
            atomic_write(
                directory / PREDICTIONS_FILE,
                lambda tmp: _save_npz(
                    tmp, y_true=ev.y_true, y_pred=ev.y_pred, probabilities=ev.probabilities
                ),
            )
            self.artifacts["predictions"] = PREDICTIONS_FILE
        atomic_write_json(directory / RUN_FILE, self.to_dict())
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, *, load_model: bool = True) -> Run:
        """Load a run saved by :meth:`save` (or by :func:`train` with ``run_dir``).

        Args:
            directory: The run folder.
            load_model: Also load ``model.keras`` when present.

        Returns:
            The :class:`Run`.

        Raises:
            DataNotFoundError: If the folder holds no ``run.json``.
        """
        directory = Path(directory)
        path = directory / RUN_FILE
        if not path.exists():
            raise DataNotFoundError(f"{directory} holds no {RUN_FILE}: not a transferkit run.")
        d = json.loads(path.read_text(encoding="utf-8"))
        evaluation = None
        if d.get("evaluation"):
            ev = dict(d["evaluation"])
            preds = directory / PREDICTIONS_FILE
            if preds.exists():
                with np.load(preds) as z:
                    ev.update({k: z[k].tolist() for k in ("y_true", "y_pred", "probabilities")})
            evaluation = Evaluation.from_dict(ev)
        model = None
        if load_model and (directory / MODEL_FILE).exists():
            # Not keras.saving.load_model: in a fresh process (``transferkit report``) nothing
            # may have registered transferkit's classes yet; the builders' load_model does.
            model = load_keras_model(directory / MODEL_FILE)
        return cls(
            name=d["name"],
            config=d["config"],
            history=d["history"],
            evaluation=evaluation,
            timings=d["timings"],
            artifacts=d.get("artifacts", {}),
            model=model,
        )


def _save_npz(path: str, **arrays) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})


def run_config(model, data, *, optimizer, lr, epochs, batch_size, augment, cached, seed,
               schedule, patience, class_weight: dict | None = None) -> dict:
    """The configuration a :class:`Run` records: model, data, recipe, versions, machine.

    ``class_weight`` is how the classes were weighted (``{"given", "weights"}``,
    weights by class name), or None where every image counted the same.
    """
    try:
        base = find_backbone(model)
        layers = [x for x in base.layers if not isinstance(x, keras.layers.InputLayer)]
        trainable_layers = sum(1 for x in layers if x.trainable and x.weights) if base.trainable else 0
        backbone = {
            "name": base.name,
            "image_size": list(base.input_shape[1:3]),
            "layers": len(layers),
            "trainable_layers": trainable_layers,
            "frozen": not base.trainable_weights,
        }
    except ConfigurationError:
        backbone = None
    describe = getattr(model, "describe", None)
    classifier = describe() if callable(describe) else None
    if backbone is not None and classifier is not None:
        # What the model says about itself, not a guess from its layer names.
        backbone["weights"] = classifier.get("weights")
        backbone["pretrained"] = classifier.get("weights") is not None
    return {
        "model": model.name,
        "classifier": classifier and {"class": type(model).__name__, **classifier},
        "backbone": backbone,
        "params": parameter_counts(model),
        "input_shape": list(model.input_shape[1:]),
        "optimizer": type(optimizer).__name__ if optimizer is not None else None,
        "lr": lr,
        "schedule": schedule,
        "patience": patience,
        "epochs": epochs,
        "batch_size": batch_size,
        "augment": augment,
        "class_weight": class_weight,
        "cached_features": cached,
        "seed": seed,
        "data": {
            "source": data.source,
            "class_names": list(data.class_names),
            "sizes": {s: int(len(data.split(s)[1])) for s in ("train", "val", "test")},
            "image_shape": list(data.image_shape),
            "provenance": dict(data.provenance),
            "test_labels_sha1": hashlib.sha1(np.asarray(data.y_test, np.int64).tobytes()).hexdigest(),
        },
        "versions": _machine.versions(),
        "machine": _machine.describe_devices(),
        "cpu": _machine.cpu_description(),  # model and vector extensions: what times depend on
    }


def is_pretrained(run: Run) -> bool:
    """Whether a run's backbone started from trained weights (a transfer run).

    Reads what the model recorded about itself; runs saved before models did
    count as transfer when their backbone is a registered network.
    """
    backbone = run.config.get("backbone") or {}
    if "pretrained" in backbone:
        return bool(backbone["pretrained"])
    from transferkit.models.registry import BACKBONES

    return backbone.get("name") in BACKBONES


def metric_mode(name: str) -> str:
    """``"min"`` or ``"max"``: which way a metric improves, decided as Keras decides it.

    Keras' callbacks (``mode="auto"``) treat any name containing "loss" as
    lower-is-better and otherwise ask the metric object for its direction.
    Records read back from disk have no metric objects, so this asks
    ``keras.metrics.get`` for one of the same name (``val_`` stripped);
    names Keras does not know count as higher-is-better, like accuracy.

    Example:
        >>> metric_mode("val_loss"), metric_mode("val_accuracy"), metric_mode("mean_squared_error")
        ('min', 'max', 'min')
    """
    base = name[4:] if name.startswith("val_") else name
    if "loss" in base:
        return "min"
    try:
        metric = keras.metrics.get(base)
    except (ValueError, TypeError):
        return "max"
    direction = getattr(metric, "_direction", None)  # how Keras' own metrics declare it
    if direction is None and callable(metric):  # a function such as mean_squared_error
        fn = getattr(metric, "__name__", base)
        direction = "down" if any(k in fn for k in ("error", "crossentropy", "hinge")) else "up"
    return "min" if direction == "down" else "max"
