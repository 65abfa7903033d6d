"""Exporting a classifier for serving: a SavedModel, a TFLite file (float or int8), or ONNX.

Keras writes each format (``model.export``); what this module adds is what
makes the file a drop-in for the ``.keras`` model: its input is raw ``uint8``
images ``(n, height, width, 3)`` (the model keeps its resizing and
preprocessing inside), the request is checked before anything heavy loads,
the file is written atomically (nothing half-written, even on failure), and
the written file is run by its own runtime on sample images and must give the
model's probabilities within :data:`ATOL`.

Which backend writes which format (Keras' own exporters, each tested here):

* ``savedmodel`` and ``tflite`` (and ``--quantize int8``): TensorFlow.
* ``onnx``: TensorFlow (through ``tf2onnx``) or PyTorch (``torch.onnx``).
  JAX's ONNX path (``jax2onnx``) brings about 1 GB of packages and wrote files
  onnxruntime could not run, so it is refused: a ``.keras`` file loads on any
  backend, so export under ``KERAS_BACKEND=tensorflow``.

Keras is imported inside :func:`export_model` only: the command line checks
a request with :func:`check_export_request` before TensorFlow starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from transferkit._atomic import atomic_write, atomic_write_dir
from transferkit.errors import ConfigurationError, DataError, unknown_name
from transferkit.models.exported import (
    SAVED_MODEL_FILE,
    ExportedModel,
    compare_exported,
    require_packages,
)

ATOL = 1e-4
"""Largest difference from the model's probabilities a float export may show on the check images."""

CHECK_IMAGES = 8
"""Images the written file is checked on (random ``uint8`` images, seeded)."""

QUANTIZE_MODES = ("int8",)
"""What ``quantize=`` takes: ``"int8"`` (TFLite only)."""


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One export format: what Keras calls it, what writes and what reads it."""

    name: str
    keras_format: str
    suffix: str  # "" for a folder
    label: str
    writers: dict[str, tuple[str, ...]]  # Keras backend -> packages it needs to write
    readers: tuple[str, ...]  # packages the check needs to run the file


FORMATS: dict[str, ExportFormat] = {
    "savedmodel": ExportFormat("savedmodel", "tf_saved_model", "", "SavedModel",
                               {"tensorflow": ()}, ("tensorflow",)),
    "tflite": ExportFormat("tflite", "litert", ".tflite", "TFLite", {"tensorflow": ()},
                           ("tensorflow",)),
    "onnx": ExportFormat("onnx", "onnx", ".onnx", "ONNX",
                         {"tensorflow": ("onnx", "tf2onnx"), "torch": ("onnx",)},
                         ("onnxruntime",)),
}
"""The export formats by name."""


def check_export_request(format: str, *, quantize: str | None = None, check: bool = True,
                         backend: str | None = None) -> ExportFormat:
    """Check an export request without importing Keras; returns the format.

    Args:
        format: ``"savedmodel"``, ``"tflite"`` or ``"onnx"``.
        quantize: None, or ``"int8"`` (TFLite only).
        check: Whether the written file will be run (its runtime must be installed).
        backend: The Keras backend; default: the configured one (``KERAS_BACKEND``).

    Raises:
        UnknownNameError: For an unknown format or quantization.
        ConfigurationError: For int8 outside TFLite, or a backend that cannot write the format.
        MissingDependencyError: If a package it needs is not installed (the
            message gives the pip command).

    Example:
        >>> check_export_request("tflite", quantize="int8", check=False, backend="tensorflow").suffix
        '.tflite'
    """
    from transferkit import _backend

    spec = FORMATS.get(format)
    if spec is None:
        raise unknown_name("export format", format, FORMATS)
    if quantize is not None:
        if quantize not in QUANTIZE_MODES:
            raise unknown_name("quantization", quantize, QUANTIZE_MODES)
        if format != "tflite":
            raise ConfigurationError(f"{quantize} quantization is for TFLite files, not "
                                     f"{spec.label}.")
    backend = backend or _backend.configured()
    if backend not in spec.writers:
        can = " or ".join(spec.writers)
        raise ConfigurationError(
            f"{spec.label} export needs the {can} Keras backend; this one is {backend}. Run "
            f"with KERAS_BACKEND={next(iter(spec.writers))}: a .keras file loads on any backend.")
    needed = spec.writers[backend] + (spec.readers if check else ())
    require_packages(f"{spec.label} export", tuple(dict.fromkeys(needed)))
    return spec


def default_export_path(model_path: str | os.PathLike, format: str,
                        quantize: str | None = None) -> Path:
    """Where an export of ``model_path`` goes by default: beside it, named after it.

    Example:
        >>> default_export_path("run/model.keras", "tflite", "int8").as_posix()
        'run/model_int8.tflite'
        >>> default_export_path("run/model.keras", "savedmodel").as_posix()
        'run/model_savedmodel'
    """
    path = Path(model_path)
    stem = path.stem + (f"_{quantize}" if quantize else "")
    suffix = FORMATS[format].suffix
    return path.with_name(stem + (suffix or "_savedmodel"))


def check_export_path(path: str | os.PathLike, format: str) -> Path:
    """``path`` if an export of ``format`` may be written there; else a clear error.

    A file format needs its suffix (``.tflite``, ``.onnx``) and a path that is
    not a folder; a SavedModel needs a path that is new, an empty folder or an
    earlier SavedModel (which is replaced), never another folder or a file.

    Raises:
        ConfigurationError: If it may not.
    """
    path = Path(path).expanduser()
    spec = FORMATS[format]
    if spec.suffix:
        if path.suffix.lower() != spec.suffix:
            raise ConfigurationError(f"{spec.label} exports are files named *{spec.suffix}: "
                                     f"use {path.with_suffix(spec.suffix)}, not {path}.")
        if path.is_dir():
            raise ConfigurationError(f"{path} is a folder; a {spec.label} export is one file.")
    elif path.exists() and not _replaceable_saved_model(path):
        raise ConfigurationError(
            f"{path} exists and is not a SavedModel folder: it is not replaced. Choose a new "
            "path for the SavedModel (a folder).")
    return path


def _replaceable_saved_model(path: Path) -> bool:
    return path.is_dir() and ((path / SAVED_MODEL_FILE).is_file() or not any(path.iterdir()))


def export_model(model, path: str | os.PathLike, *, format: str = "savedmodel",
                 quantize: str | None = None, calibration_images: np.ndarray | None = None,
                 check: bool = True) -> ExportedModel:
    """Export a transferkit classifier for serving; the file takes raw ``uint8`` images.

    Keras writes the file (``model.export``) with the input set to ``uint8``
    images of the model's input shape, any batch size; the output is the
    class probabilities. The file is written to a temporary name, checked, and
    renamed into place, so ``path`` never holds a half-written export.

    Args:
        model: A transferkit classifier, or the path of its ``.keras`` file.
        path: A ``.tflite`` or ``.onnx`` file, or the SavedModel's folder.
        format: ``"savedmodel"``, ``"tflite"`` or ``"onnx"``.
        quantize: ``"int8"``: full-integer TFLite (weights and activations int8,
            input ``uint8``, output float probabilities), calibrated on
            ``calibration_images``. Measure what it costs with
            :func:`~transferkit.models.exported.compare_exported` on labelled images.
        calibration_images: Raw ``uint8`` training images (a few hundred) the
            int8 ranges are calibrated on.
        check: Run the written file on :data:`CHECK_IMAGES` images with its own
            runtime and require the model's probabilities within :data:`ATOL`
            (float formats; an int8 file is only run).

    Returns:
        The :class:`~transferkit.models.exported.ExportedModel`, with the
        check's largest difference.

    Raises:
        ConfigurationError: If ``model`` is not a transferkit classifier, or
            the path or request does not fit (see :func:`check_export_request`,
            :func:`check_export_path`).
        MissingDependencyError: If a package the format needs is missing.
        DataError: If ``calibration_images`` do not fit the model.
        RuntimeError: If the written file's probabilities differ by more than
            :data:`ATOL` (nothing is left at ``path``).

    Example:
        >>> model = build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(4,))
        >>> exported = export_model(model, "cnn.tflite", format="tflite")  # doctest: +SKIP
        >>> exported.max_abs_diff < 1e-4  # doctest: +SKIP
        True
    """
    import keras

    from transferkit.models.anatomy import require_classifier

    if isinstance(model, (str, os.PathLike)):
        from transferkit.models.builders import load_model

        model = load_model(model)
    model = require_classifier(model, "Export")
    spec = check_export_request(format, quantize=quantize, check=check,
                                backend=keras.backend.backend())
    path = check_export_path(path, format)
    shape = tuple(model.input_shape[1:])
    if quantize:
        calibration_images = _check_calibration(calibration_images, shape)
    diffs: list[float] = []

    def write(tmp: str) -> None:
        _write(model, tmp, spec, quantize, calibration_images)
        if check:
            diffs.append(_check_written(model, ExportedModel(Path(tmp), format, quantize),
                                        shape, calibration_images))

    if spec.suffix:
        atomic_write(path, write, suffix=spec.suffix)
    else:
        atomic_write_dir(path, write, replaceable=_replaceable_saved_model)
    return ExportedModel(path, format, quantize, diffs[0] if diffs else None)


def _write(model, path: str, spec: ExportFormat, quantize: str | None,
           calibration: np.ndarray | None) -> None:
    import keras

    signature = [keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="uint8",
                                 name="image")]
    options = _litert_options(quantize, calibration) if spec.name == "tflite" else {}
    with warnings.catch_warnings(), _quiet_logger("tf2onnx"):
        warnings.simplefilter("ignore")  # converters' deprecation notices, not the user's concern
        model.export(path, format=spec.keras_format, input_signature=signature, verbose=False,
                     **options)


def _litert_options(quantize: str | None, calibration: np.ndarray | None) -> dict:
    """TensorFlow Lite converter settings: built-in ops only, so any LiteRT runtime runs
    the file without the Flex (TensorFlow ops) delegate; int8 adds the calibration."""
    import tensorflow as tf

    if not quantize:
        return {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}

    def representative_dataset():
        for image in calibration:
            yield [image[None]]

    return {"optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": representative_dataset,
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]}}


def _check_calibration(images, shape: tuple) -> np.ndarray:
    if images is None:
        raise ConfigurationError("int8 quantization calibrates on training images: pass "
                                 "calibration_images (a few hundred uint8 training images).")
    if (not isinstance(images, np.ndarray) or images.dtype != np.uint8
            or tuple(images.shape[1:]) != shape or not len(images)):
        got = images.shape if isinstance(images, np.ndarray) else type(images).__name__
        raise DataError(f"calibration_images must be uint8 images of the model's input shape "
                        f"{shape}, at least one; got {getattr(images, 'dtype', '')} {got}.")
    return images


def _check_written(model, exported: ExportedModel, shape: tuple,
                   calibration: np.ndarray | None) -> float:
    """Run the written file; a float export must match the model within :data:`ATOL`."""
    images = np.random.default_rng(0).integers(0, 256, (CHECK_IMAGES, *shape), dtype=np.uint8)
    if calibration is not None:
        images = np.concatenate([calibration[:CHECK_IMAGES], images])[:CHECK_IMAGES]
    result = compare_exported(model, exported, images)
    if exported.quantize is None and not result.max_abs_diff <= ATOL:
        raise RuntimeError(
            f"The {FORMATS[exported.format].label} export's probabilities differ from the "
            f"model's by {result.max_abs_diff:.2g} (more than {ATOL:g}) on {len(images)} images; "
            "nothing was written.")
    return result.max_abs_diff


@contextlib.contextmanager
def _quiet_logger(name: str):
    """A library's Python logger at WARNING for a block (tf2onnx logs every step at INFO)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
