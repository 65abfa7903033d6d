"""Each verb's cheap checks: run before TensorFlow is imported and before any image is decoded.

A typo in a number, a missing path, a file that is not a model or weights
file, a non-empty ``--out``, or ImageNet weights that cannot be had offline
costs well under a second this way instead of TensorFlow's start-up and a
full decode. ``cli.main`` calls a verb's check (its ``precheck``) first; what
the checks resolve (``--budget`` in seconds, train's weights, predict's image
files) is kept on ``args`` for the handler. Nothing here imports Keras.
"""

from __future__ import annotations

import math
from pathlib import Path

from transferkit.errors import ConfigurationError, DataError, DataNotFoundError


def check_train(args) -> None:
    """``train``: --config and --resume, numbers, IMAGES_DIR, --backbone, --weights (and
    ImageNet's), --budget, --tensorboard, --out.

    Sets ``args`` from ``--config`` and a resumed run's record under the flags
    given (:mod:`~transferkit.cli._resume`); keeps ``args.budget`` in seconds
    and ``args.resolved_weights`` (None, ``"imagenet"`` or the file's path).
    """
    from transferkit._validation import parse_duration
    from transferkit.cli._outdir import check_out_dir
    from transferkit.cli._resume import check_tensorboard, resolve_train_options
    from transferkit.models.registry import get_backbone_spec, resize_target

    if resolve_train_options(args):
        return  # --resume of a finished run: nothing to check, nothing to train
    check_positive(args, "head_epochs", "batch_size")
    args.class_weight = parse_class_weight(args.class_weight)  # the names: once data has loaded
    if args.image_size != "auto":
        check_positive(args, "image_size")
    if args.epochs is not None and args.epochs < 0:
        raise ConfigurationError(f"--epochs must be 0 or more, got {args.epochs}.")
    if args.budget is not None:
        args.budget = parse_duration(args.budget, "--budget")
    check_exists(args.images, "IMAGES_DIR")
    spec = get_backbone_spec(args.backbone)
    size = None if args.image_size == "auto" else resize_target(spec, args.image_size, None)
    args.resolved_weights = check_weights(args.weights, spec.name, size)
    check_tensorboard(args.tensorboard)
    if not args.resume:  # resolve_train_options found the run to continue
        check_out_dir(out_dir(args), overwrite=args.overwrite, inputs=(Path(args.images),))


def check_quickstart(args) -> None:
    """``quickstart``: numbers, --data, --weights (ImageNet's too with --strict), --out."""
    from transferkit.cli._outdir import check_out_dir

    check_positive(args, "per_class", "epochs")
    if args.data is not None:
        check_exists(args.data, "--data")
    if args.strict or args.weights.lower() not in ("imagenet", "none"):
        # 32-px CIFAR-10 is upscaled to MobileNetV2's smallest pretrained size, 96.
        check_weights(args.weights, "mobilenet_v2", 96)
    inputs = () if args.data is None else (Path(args.data),)
    check_out_dir(Path(args.out), overwrite=args.overwrite, inputs=inputs)


def check_predict(args) -> None:
    """``predict``: --top-k, MODEL (a Keras model file), every PATH; keeps ``args.files``."""
    from transferkit.data.images import IMAGE_EXTENSIONS
    from transferkit.models.files import check_model_file

    check_positive(args, "top_k")
    check_model_file(args.model)
    args.files = image_files(args.paths, IMAGE_EXTENSIONS)


def check_explain(args) -> None:
    """``explain``: MODEL (a Keras model file), every IMAGE, --out; keeps ``args.files``."""
    from transferkit.data.images import IMAGE_EXTENSIONS
    from transferkit.models.files import check_model_file

    check_model_file(args.model)
    args.files = image_files(args.paths, IMAGE_EXTENSIONS)
    if Path(args.out).expanduser().is_file():
        raise ConfigurationError(f"--out {args.out!r} is a file; give a folder for the PNG files.")


def check_evaluate(args) -> None:
    """``evaluate``: MODEL (a Keras model file) and DATA."""
    from transferkit.models.files import check_model_file

    check_model_file(args.model)
    check_exists(args.data, "DATA")


def check_report(args) -> None:
    """``report``: every FOLDER holds a run, --data exists, --image-size."""
    from transferkit.runs.layout import RUN_FILE

    check_positive(args, "image_size")
    for folder in map(Path, args.run_dirs):
        if not (folder / RUN_FILE).is_file() and not any(folder.glob(f"*/{RUN_FILE}")):
            raise DataNotFoundError(
                f"{folder} holds no {RUN_FILE}: not a transferkit run or experiment folder.")
    if args.data is not None:
        check_exists(args.data, "--data")


def check_weights(weights: str, backbone: str, size: int | None) -> str | None:
    """``--weights`` as the library takes it: None, ``"imagenet"`` (to be had) or a checked file.

    ``size``: the backbone's input size, None where it depends on images not read yet.
    """
    from transferkit.models.files import (
        check_imagenet_weights,
        check_weights_arg,
        check_weights_fit,
    )

    if weights.lower() == "none":
        return None
    if weights == "imagenet":
        check_imagenet_weights(backbone, size)
        return weights
    path = check_weights_arg(weights)
    check_weights_fit(path, backbone)
    return path


def parse_class_weight(text: str | dict | None) -> str | dict[str, float] | None:
    """``--class-weight``: ``balanced``, ``none`` or ``CLASS=WEIGHT,...`` as ``train`` takes it.

    A config file may give the weights as a table (``{cat = 2, dog = 1}``), read as a dict.

    Example:
        >>> parse_class_weight("balanced"), parse_class_weight("cat=2,dog=0.5")
        ('balanced', {'cat': 2.0, 'dog': 0.5})

    Raises:
        ConfigurationError: For anything else, or a negative weight.
    """
    if isinstance(text, dict):
        weights = {str(name).strip(): float(weight) for name, weight in text.items()}
        shown = ",".join(f"{name}={weight:g}" for name, weight in weights.items())
    elif text is None or text.strip().lower() in ("", "none"):
        return None
    elif text.strip().lower() == "balanced":
        return "balanced"
    else:
        weights, shown = _class_weight_items(text), text
    for name, weight in weights.items():
        if not 0 <= weight < math.inf:  # also refuses NaN
            raise ConfigurationError(f"--class-weight {name}={weight:g}: a weight must be a "
                                     "number >= 0 (0 leaves the class out of the loss).")
    if not any(weights.values()):
        raise ConfigurationError(f"--class-weight {shown}: every weight is 0, so nothing would "
                                 "train; give the classes to favour a weight above 0.")
    return weights


def _class_weight_items(text: str) -> dict[str, float]:
    weights = {}
    for item in text.split(","):
        name, sep, value = item.rpartition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ConfigurationError(f"--class-weight takes 'balanced' or CLASS=WEIGHT,... "
                                     f"(e.g. cat=2,dog=1), got {text!r}.")
    return weights


def check_exists(path: str, name: str) -> None:
    if not Path(path).expanduser().exists():
        raise DataNotFoundError(f"{name} {path!r} does not exist.")


def check_positive(args, *names: str) -> None:
    """Each option ``names`` (attributes of ``args``) is None or 1 or more."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be 1 or more, got {value}.")


def image_files(paths: list[str], extensions) -> list[Path]:
    """The image files among ``paths`` (folders searched recursively, hidden ones skipped)."""
    from transferkit.data.images import PHOTO_EXTENSIONS

    files = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in extensions
                            and not any(part.startswith(".") for part in p.parts))
        elif path.is_file():
            files.append(path)
        else:
            raise DataNotFoundError(f"{given!r} does not exist.")
    if not files:
        raise DataError(f"No images in {', '.join(paths)} (looked for photos: "
                        f"{', '.join(PHOTO_EXTENSIONS)}, and other picture formats Pillow reads).")
    return files


def out_dir(args) -> Path:
    """``train``'s output folder: --out, else runs/<IMAGES_DIR name>."""
    return Path(args.out or Path("runs") / stem(args.images))


def stem(path: str) -> str:
    """A folder's or archive's name without the archive suffix (``flowers.tar.gz``: flowers)."""
    from transferkit.data.folder import ARCHIVE_SUFFIXES

    name = Path(path).expanduser().resolve().name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
