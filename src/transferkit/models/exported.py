"""An exported classifier read back: each format run by its own runtime, and compared.

What :func:`~transferkit.models.export.export_model` writes is checked by
running the written file itself, not the Keras model: TensorFlow loads a
SavedModel, TensorFlow's TFLite interpreter runs a ``.tflite`` file and
onnxruntime an ``.onnx`` file. Each takes raw ``uint8`` images, as the
``.keras`` model does, and gives class probabilities.

Nothing here imports Keras; a runtime is imported when a file of its format is
first run, so reading an ONNX file needs neither TensorFlow nor Keras.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from transferkit.errors import (
    ConfigurationError,
    DataError,
    DataNotFoundError,
    MissingDependencyError,
)

EXPORT_EXTRA = 'pip install ".[export]"'
"""Installs every optional package export needs from a transferkit checkout (the ``export`` extra)."""

SAVED_MODEL_FILE = "saved_model.pb"
"""The file that makes a folder a SavedModel."""

Runner = Callable[[np.ndarray], np.ndarray]


def format_of(path: str | os.PathLike) -> str:
    """The export format of ``path``: ``"savedmodel"`` (a folder), ``"tflite"`` or ``"onnx"``.

    Raises:
        ConfigurationError: If ``path`` is none of them.

    Example:
        >>> format_of("model.tflite"), format_of("model.onnx")
        ('tflite', 'onnx')
    """
    path = Path(path)
    if path.suffix.lower() in (".tflite", ".onnx"):
        return path.suffix.lower()[1:]
    if (path / SAVED_MODEL_FILE).is_file():
        return "savedmodel"
    raise ConfigurationError(
        f"{path} is not an exported model: expected a .tflite or .onnx file or a SavedModel "
        f"folder (holding {SAVED_MODEL_FILE}).")


def require_packages(what: str, packages: tuple[str, ...], *, extra: bool = True) -> None:
    """Unless every package in ``packages`` imports, raise
    :class:`~transferkit.errors.MissingDependencyError` naming those missing and the
    pip command that installs them (and, where ``extra``, the ``export`` extra).

    Example:
        >>> require_packages("Counting", ("json",))
        >>> require_packages("Export", ("json", "no_such_package"))
        Traceback (most recent call last):
        ...
        transferkit.errors.MissingDependencyError: Export needs no_such_package, not installed here. Install with: pip install json no_such_package (or, in a transferkit checkout, the export extra: pip install ".[export]")
    """
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise MissingDependencyError(
            f"{what} needs {', '.join(missing)}, not installed here. Install with: pip install "
            f"{' '.join(packages)}"
            + (f" (or, in a transferkit checkout, the export extra: {EXPORT_EXTRA})" if extra
               else ""))


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    """A classifier exported to a file (or a SavedModel folder), run by its format's runtime.

    Attributes:
        path: The ``.tflite`` or ``.onnx`` file, or the SavedModel folder.
        format: ``"savedmodel"``, ``"tflite"`` or ``"onnx"``.
        quantize: ``"int8"`` for an int8 TFLite file, else None.
        max_abs_diff: Largest difference from the Keras model's probabilities on
            the images export checked it on (None where it was not checked).

    Example:
        >>> model = build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(4,))
        >>> import tempfile, pathlib
        >>> exported = export_model(model, pathlib.Path(tempfile.mkdtemp()) / "cnn.tflite",
        ...                         format="tflite")  # doctest: +SKIP
        >>> images = np.zeros((2, 16, 16, 3), np.uint8)
        >>> ExportedModel.load(exported.path).predict(images).shape  # doctest: +SKIP
        (2, 3)
    """

    path: Path
    format: str
    quantize: str | None = None
    max_abs_diff: float | None = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> ExportedModel:
        """The exported model at ``path`` (its format from the name; int8 read from a TFLite file).

        Raises:
            DataNotFoundError: If ``path`` does not exist.
            ConfigurationError: If it is not an exported model.
        """
        path = Path(path).expanduser()
        if not path.exists():
            raise DataNotFoundError(f"Exported model {str(path)!r} does not exist.")
        exported = cls(path, format_of(path))
        if exported.format == "tflite" and _is_int8(exported._interpreter):
            exported = dataclasses.replace(exported, quantize="int8")
        return exported

    @property
    def size_bytes(self) -> int:
        """Bytes on disk (every file of a SavedModel folder)."""
        if self.path.is_dir():
            return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return self.path.stat().st_size

    def predict(self, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Class probabilities of raw ``uint8`` images ``(n, height, width, 3)``.

        Raises:
            DataError: If ``images`` are not a 4-d ``uint8`` array.
        """
        if (not isinstance(images, np.ndarray) or images.ndim != 4 or images.dtype != np.uint8
                or not len(images)):
            raise DataError("An exported model takes raw images: a non-empty uint8 NumPy array "
                            f"(n, height, width, channels), got {_describe(images)}.")
        run = self._runner
        return np.concatenate([run(images[i:i + batch_size])
                               for i in range(0, len(images), batch_size)])

    @functools.cached_property
    def _runner(self) -> Runner:
        return {"savedmodel": _saved_model_runner, "tflite": self._tflite_runner,
                "onnx": _onnx_runner}[self.format](self.path)

    @functools.cached_property
    def _interpreter(self):
        require_packages("Reading a TFLite file", ("tensorflow",), extra=False)
        import tensorflow as tf

        with warnings.catch_warnings():
            # TF 2.21 still ships tf.lite.Interpreter and warns that LiteRT's
            # (ai_edge_litert) replaces it; it reads the file as LiteRT does.
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=str(self.path))

    def _tflite_runner(self, path: Path) -> Runner:
        interpreter = self._interpreter
        given, = interpreter.get_input_details()
        output = interpreter.get_output_details()[0]["index"]
        shape = [None]

        def run(batch: np.ndarray) -> np.ndarray:
            if shape[0] != batch.shape:  # the file's batch size is 1 until resized
                interpreter.resize_tensor_input(given["index"], batch.shape)
                interpreter.allocate_tensors()
                shape[0] = batch.shape
            interpreter.set_tensor(given["index"], batch)
            interpreter.invoke()
            return interpreter.get_tensor(output).copy()

        return run


def _saved_model_runner(path: Path) -> Runner:
    require_packages("Reading a SavedModel", ("tensorflow",), extra=False)
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept: .serve alone lets its variables be freed
    return lambda batch: loaded.serve(tf.constant(batch)).numpy()


def _onnx_runner(path: Path) -> Runner:
    require_packages("Reading an ONNX file", ("onnxruntime",))
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def _is_int8(interpreter) -> bool:
    return any(d["dtype"] == np.int8 for d in interpreter.get_tensor_details())


def _describe(images) -> str:
    if isinstance(images, np.ndarray):
        return f"a {images.dtype} array of shape {images.shape}"
    return f"a {type(images).__name__}"


@dataclasses.dataclass(frozen=True)
class ExportCheck:
    """An exported model's predictions against its Keras model's, on the same images.

    Attributes:
        images: How many images were compared.
        max_abs_diff: Largest difference between the two models' probabilities.
        agreement: Fraction of images given the same top class by both.
        accuracy_model: The Keras model's accuracy (None without labels).
        accuracy_exported: The exported model's accuracy (None without labels).
    """

    images: int
    max_abs_diff: float
    agreement: float
    accuracy_model: float | None = None
    accuracy_exported: float | None = None

    @property
    def accuracy_change(self) -> float | None:
        """``accuracy_exported - accuracy_model`` (None without labels)."""
        if self.accuracy_model is None or self.accuracy_exported is None:
            return None
        return self.accuracy_exported - self.accuracy_model


def compare_exported(model, exported: ExportedModel, images: np.ndarray,
                     labels: np.ndarray | None = None, *, batch_size: int = 64) -> ExportCheck:
    """Run ``model`` (Keras) and ``exported`` (its own runtime) on ``images`` and compare.

    Args:
        model: The Keras model that was exported.
        exported: The exported file.
        images: Raw ``uint8`` images the model takes.
        labels: Their integer labels, to compare accuracies too.
        batch_size: Images per call of either model.

    Returns:
        An :class:`ExportCheck`.

    Example:
        >>> model = build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(4,))
        >>> exported = export_model(model, "cnn.onnx", format="onnx")  # doctest: +SKIP
        >>> images = np.zeros((4, 16, 16, 3), np.uint8)
        >>> compare_exported(model, exported, images).max_abs_diff < 1e-4  # doctest: +SKIP
        True
    """
    got = exported.predict(images, batch_size=batch_size)
    expected = np.asarray(model.predict(images, batch_size=batch_size, verbose=0))
    if got.shape != expected.shape:
        raise DataError(f"{exported.path} gives outputs of shape {got.shape}; the model gives "
                        f"{expected.shape}: it is not an export of this model.")
    accuracies = (None, None)
    if labels is not None:
        labels = np.asarray(labels)
        accuracies = (float(np.mean(expected.argmax(1) == labels)),
                      float(np.mean(got.argmax(1) == labels)))
    return ExportCheck(len(images), float(np.abs(got - expected).max(initial=0.0)),
                       float(np.mean(got.argmax(1) == expected.argmax(1))), *accuracies)
