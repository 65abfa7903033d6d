"""Handler of ``export``: a saved model as a SavedModel, a TFLite file (float or int8) or ONNX.

:func:`check` runs before TensorFlow loads (the parser's ``precheck``): a
missing MODEL, a file that is not a transferkit classifier, an unknown format,
a backend or package the format needs, and an output path that may not be
written all fail there, in a second, with one line and exit code 2.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from transferkit.cli import EXIT_OK
from transferkit.errors import ConfigurationError, DataError, DataNotFoundError

CALIBRATION_IMAGES = 200
"""Training images an int8 file is calibrated on (TensorFlow suggests a few hundred)."""


def check(args) -> None:
    """Everything about an ``export`` request that can be known without TensorFlow."""
    from transferkit.models.export import (
        check_export_path,
        check_export_request,
        default_export_path,
    )

    model = Path(args.model).expanduser()
    _check_model_file(model)
    check_export_request(args.format, quantize=args.quantize)
    args.out = Path(args.out).expanduser() if args.out else default_export_path(
        model, args.format, args.quantize)
    check_export_path(args.out, args.format)
    if args.out.exists() and not args.overwrite:
        raise ConfigurationError(f"--out {args.out} exists: pass --overwrite to replace it, or "
                                 "choose another --out.")
    if args.quantize and not args.data:
        raise ConfigurationError(
            f"--quantize {args.quantize} calibrates on training images and measures the "
            "accuracy it costs on test images: pass --data IMAGES_DIR, the class-per-folder "
            "images the model was trained on.")
    if args.data and not Path(args.data).expanduser().exists():
        raise DataNotFoundError(f"--data {args.data!r} does not exist.")


def _check_model_file(path: Path) -> None:
    """MODEL exists and is a ``.keras`` archive of a transferkit classifier (read from its
    config.json, without Keras; the library checks the loaded model again)."""
    if not path.is_file():
        raise DataNotFoundError(f"MODEL {str(path)!r} does not exist.")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise ConfigurationError(
            f"{path} is not a Keras model file: a .keras file is a zip archive holding the "
            "model's config.json and weights, as model.save() writes it.") from None
    name = str(config.get("registered_name") or config.get("class_name"))
    if not name.startswith("transferkit>"):
        raise ConfigurationError(
            f"{path} holds a {name} model, not a transferkit classifier (transferkit train, "
            "build_transfer_model or build_baseline_cnn): export needs one, whose input is raw "
            "images and whose output is class probabilities.")


def export(args) -> int:
    """Export MODEL; with --data, compare it with the model on the test images."""
    from transferkit._backend import native_stderr_hidden
    from transferkit._progress import format_size
    from transferkit.cli._images import _load
    from transferkit.models.anatomy import parameter_counts, require_classifier
    from transferkit.models.export import ATOL, CHECK_IMAGES, FORMATS, export_model
    from transferkit.models.exported import compare_exported

    model, names, resize = _load(args.model, None)
    require_classifier(model, "Export")  # before the data is decoded
    data = _data(args, model, names, resize) if args.data else None
    calibration = _calibration(data, seed=_recorded(args.model).get("seed") or 0)
    show = args.debug or args.verbosity == "verbose"
    with native_stderr_hidden(show=show):  # the converters' and interpreters' own notices
        exported = export_model(model, args.out, format=args.format, quantize=args.quantize,
                                calibration_images=calibration if args.quantize else None)
    label = FORMATS[args.format].label + (f" {args.quantize}" if args.quantize else "")
    shape = "x".join(map(str, model.input_shape[1:]))
    print(f"Wrote {args.out} ({label}, {_size(exported.size_bytes, format_size)}): takes uint8 "
          f"images (n x {shape}), gives the probabilities of {_classes(len(names))}.")
    if args.quantize:
        weights = parameter_counts(model)["total"] * 4
        print(f"Calibrated on {len(calibration)} training images; the model's float32 weights "
              f"are {_size(weights, format_size)}: {weights / exported.size_bytes:.1f}x smaller.")
    else:
        print(f"Checked: its probabilities are within {exported.max_abs_diff:.1e} of the model's "
              f"on {CHECK_IMAGES} images (the limit is {ATOL:g}).")
    if data is not None:
        with native_stderr_hidden(show=show):
            result = compare_exported(model, exported, data.x_test, data.y_test)
        print(f"On the {len(data.y_test):,} test images of {args.data}: accuracy "
              f"{result.accuracy_model:.4f} (the .keras model) -> {result.accuracy_exported:.4f} "
              f"({label}), {100 * result.accuracy_change:+.2f} points; the same top class for "
              f"{100 * result.agreement:.1f} %; largest probability difference "
              f"{result.max_abs_diff:.2g}.")
    return EXIT_OK


def _classes(n: int) -> str:
    from transferkit._text import plural

    return plural(n, "class", "classes")


def _size(nbytes: int, format_size) -> str:
    """Megabytes to one decimal (int8 against float differs by a few MB), else format_size."""
    return f"{nbytes / 2**20:.1f} MB" if nbytes >= 2**20 else format_size(nbytes)


def _recorded(model_path: str) -> dict:
    """The run record's config beside MODEL (``run.json``), or {}."""
    record = Path(model_path).expanduser().with_name("run.json")
    if not record.is_file():
        return {}
    return json.loads(record.read_text()).get("config", {})


def _data(args, model, names: list[str], resize: str):
    """--data at the model's input size, its classes in the model's order and its split seed."""
    from transferkit.data.folder import load_image_folder

    config = _recorded(args.model)
    known = config.get("data", {}).get("class_names")  # else the sorted folder names
    data = load_image_folder(args.data, image_size=tuple(model.input_shape[1:3]), resize=resize,
                             class_names=names if known else None, seed=config.get("seed") or 0)
    if data.num_classes != len(names):
        raise DataError(f"--data {args.data} has {data.num_classes} classes; the model has "
                        f"{len(names)}. Pass the images the model was trained on.")
    if not len(data.y_test):
        raise DataError(f"--data {args.data} has no test images to measure the export on.")
    return data


def _calibration(data, *, seed: int) -> np.ndarray | None:
    """Up to :data:`CALIBRATION_IMAGES` training images, drawn at random (seeded)."""
    if data is None:
        return None
    rng = np.random.default_rng(seed)
    count = min(CALIBRATION_IMAGES, len(data.x_train))
    return data.x_train[np.sort(rng.choice(len(data.x_train), count, replace=False))]
