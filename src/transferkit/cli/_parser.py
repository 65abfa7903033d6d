"""The ``transferkit`` argument parser: verbs, their options, and help that says what they do."""

from __future__ import annotations

import argparse
import sys

from transferkit.cli._help import HelpFormatter, definition_list
from transferkit.experiments import EXPERIMENTS, describe

_WEIGHTS_HELP = ("'imagenet' (the Keras cache, else a download; the default), 'none' "
                 "(random initialisation) or a weights file path")
_SEED_HELP = "seed of the data split, weights, shuffling and dropout (default %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The full parser; every verb also takes ``-q/-v/--debug``."""
    parser = argparse.ArgumentParser(
        prog="transferkit",
        description="Transfer learning for image classification with Keras 3.",
        epilog="Start with `transferkit train IMAGES_DIR` for your own images, or "
        "`transferkit quickstart` for CIFAR-10. Each command has --help.",
        formatter_class=HelpFormatter,
    )
    _add_verbosity(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_quickstart(sub)
    _add_train(sub)
    _add_predict(sub)
    _add_evaluate(sub)
    _add_explain(sub)
    _add_export(sub)
    _add_run(sub)
    _add_report(sub)
    _add_cache(sub)
    i = _sub(sub, "info", "versions, backbones, and where data and weights are looked up")
    i.add_argument("--devices", action="store_true", help="also ask TensorFlow for GPUs (slower)")
    i.set_defaults(func=_lazy("info"), needs_tensorflow=False)
    return parser


def common_options_first(argv: list[str]) -> list[str]:
    """``run --quick NAME`` means ``run NAME --quick``: move options given before NAME after it."""
    if not argv or argv[0] != "run" or any(a in ("-h", "--help") for a in argv[1:2]):
        return argv
    for i, token in enumerate(argv[1:], start=1):
        if token in EXPERIMENTS:
            return ["run", token, *argv[1:i], *argv[i + 1:]]
    # No experiment named: a first word ("list", or a typo argparse names) goes on;
    # options alone get the error that asks for a name, not "unrecognized arguments".
    named = len(argv) > 1 and not argv[1].startswith("-")
    return argv if named or {"-h", "--help"} & set(argv) else ["run"]


def list_experiments(asked: bool) -> int:
    """``transferkit run list`` (exit 0), or the usage error of ``run`` without NAME (exit 2)."""
    if asked:
        print(definition_list(EXPERIMENTS))
        return 0
    print("transferkit run: error: name an experiment: " + ", ".join(EXPERIMENTS)
          + " (`transferkit run list` says what each does).", file=sys.stderr)
    return 2


def command_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> frozenset[str]:
    """The option strings of the command ``args`` ran (of the experiment, for ``run``)."""
    if args.command == "run":
        command = experiment_parser(args.experiment)
    else:
        command = verb_parser(parser, args.command)
    return frozenset(s for action in command._actions for s in action.option_strings)


def verb_parser(parser: argparse.ArgumentParser, verb: str) -> argparse.ArgumentParser:
    """The parser of one verb (``train``) of the full parser."""
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return verbs.choices[verb]


def given_options(argv: list[str], verb: str) -> frozenset[str]:
    """The destinations of ``verb``'s options given in ``argv``, not left to their defaults.

    ``argv`` is parsed again with every default of the verb suppressed, so
    whatever spelling argparse took (``--epochs=3``, an abbreviation) counts.
    """
    parser = build_parser()
    command = verb_parser(parser, verb)
    for action in command._actions:
        action.default = argparse.SUPPRESS
    dests = {action.dest for action in command._actions}
    return frozenset(dests & set(vars(parser.parse_args(argv))))


def experiment_parser(name: str) -> argparse.ArgumentParser:
    """The parser of ``transferkit run NAME``, built without importing the experiment.

    The experiment's module imports Keras; its docstring (the description) and
    its options are read from its source (:func:`~transferkit.experiments.describe`),
    so ``--help`` and bad options answer at once.
    """
    doc, add_arguments = describe(name)
    parser = argparse.ArgumentParser(prog=f"transferkit run {name}", description=doc,
                                     formatter_class=HelpFormatter)
    add_arguments(parser)
    return parser


def _lazy(name: str, module: str = "_commands"):
    """The handler ``name`` of ``transferkit.cli.<module>``, imported when called."""
    def call(args):
        import importlib

        return getattr(importlib.import_module(f"transferkit.cli.{module}"), name)(args)

    return call


def _add_verbosity(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # On the verbs, SUPPRESS keeps a flag given before the verb from being reset.
    default = {} if top else {"default": argparse.SUPPRESS}
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const="quiet",
                       help="warnings and results only", **default)
    group.add_argument("-v", "--verbose", dest="verbosity", action="store_const",
                       const="verbose", help="also TensorFlow's own messages", **default)
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs",
                        **default)
    if top:
        parser.set_defaults(verbosity="normal")


def _sub(sub, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
    kwargs.setdefault("description", help[0].upper() + help[1:] + ".")
    parser = sub.add_parser(name, help=help, formatter_class=HelpFormatter, **kwargs)
    _add_verbosity(parser)
    return parser


def _add_quickstart(sub) -> None:
    q = _sub(sub, "quickstart", "frozen MobileNetV2 vs a CNN from scratch on a small CIFAR-10 budget",
             description="Train a frozen ImageNet MobileNetV2 head and a baseline CNN on a "
             "class-balanced CIFAR-10 subset, print a comparison and write metrics and figures.")
    q.add_argument("--data", help="CIFAR-10 file or folder (default: TRANSFERKIT_DATA, "
                   "the Keras cache, then a download)")
    q.add_argument("--weights", default="imagenet", help=_WEIGHTS_HELP)
    q.add_argument("--out", default="quickstart-out", help="output folder (default %(default)s)")
    _add_overwrite(q)
    q.add_argument("--per-class", type=int, default=300,
                   help="images per class in train and test (default %(default)s)")
    q.add_argument("--epochs", type=int, default=10,
                   help="epochs for each model (default %(default)s)")
    q.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    q.add_argument("--strict", action="store_true",
                   help="fail instead of falling back to generated data or random weights")
    q.set_defaults(func=_lazy("quickstart"), precheck=_lazy("check_quickstart", "_checks"))


def _add_train(sub) -> None:
    t = _sub(sub, "train", "train a classifier on your own class-per-folder images",
             description="Train on IMAGES_DIR (a folder or .zip/.tar.gz with one folder per "
             "class, optionally under train/, val/ and test/). The best measured recipe: the "
             "head on the frozen ImageNet backbone first, then fine-tuning (AdamW, warm-up + "
             "cosine, crop + flip). Writes model.keras, metrics, figures and report.html to "
             "--out and prints where they are.",
             epilog="Splits: train/ val/ test/ folders are used as they are; with train/ and "
             "val/ only, val/ is the test split; a flat tree is split 80/10/10 (stratified); "
             "a carved validation split holds at least 100 images where the folder allows. "
             "The stage better on validation is kept.")
    t.add_argument("images", metavar="IMAGES_DIR", nargs="?",
                   help="class-per-folder images (may come from --config or, with --resume, "
                   "from the run's config.toml)")
    t.add_argument("--config", metavar="FILE.toml",
                   help="options from a TOML file, keys named as the flags (images = \"DIR\", "
                   "head-epochs = 3, ...); flags given here override it. Every run writes its "
                   "own to --out/config.toml: --config RUN/config.toml --out NEW repeats it")
    t.add_argument("--backbone", default="mobilenet_v2",
                   help="registry name (default mobilenet_v2; `transferkit info` lists them)")
    t.add_argument("--image-size", type=_image_size, default="auto",
                   help="square size images are resized to (default auto: from the images' "
                   "own sizes; photos of 224 px or more are decoded to 224, smaller ones kept "
                   "and upscaled inside the model)")
    t.add_argument("--resize", choices=("crop", "pad", "squash"), default="crop",
                   help="how other aspect ratios fit: crop the centre (default), pad, or squash")
    _add_stream(t)
    t.add_argument("--head-epochs", type=int, default=5,
                   help="epochs of the head on the frozen backbone (default 5)")
    t.add_argument("--epochs", type=int,
                   help="fine-tuning epochs after that (default 10; 0 keeps the backbone frozen; "
                   "with --budget, the most to run: default 30)")
    t.add_argument("--budget", metavar="TIME",
                   help="time for the whole command, e.g. 600, 90s, 10m, 1h: after the head, "
                   "fine-tuning runs as many steps as fit, its schedule ending on time (a few "
                   "timed steps make the plan, printed before it starts)")
    t.add_argument("--batch-size", type=int, help="images per step (default: by data size)")
    t.add_argument("--class-weight", metavar="WEIGHTS",
                   help="'balanced': each class's loss weighed by the inverse of its share of "
                   "the training images, for folders where some classes have many more images "
                   "than others; or CLASS=WEIGHT,... (unnamed classes weigh 1); default: none")
    t.add_argument("--weights", default="imagenet", help=_WEIGHTS_HELP)
    t.add_argument("--out", help="output folder (default: runs/<IMAGES_DIR name>)")
    _add_overwrite(t)
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out that was stopped (Ctrl-C, a kill, a crash) "
                   "from its last completed epoch; a finished head stage is not trained again. "
                   "Options not given are the run's own (its config.toml); a different one is "
                   "refused")
    t.add_argument("--tensorboard", metavar="DIR",
                   help="also write TensorBoard logs, one subfolder per stage (DIR/frozen_head, "
                   "DIR/fine_tuned); needs TensorFlow installed, whatever the backend")
    t.add_argument("--seed", type=int, default=0, help=_SEED_HELP)
    _add_distribute(t)
    t.set_defaults(func=_lazy("train", "_images"), precheck=_lazy("check_train", "_checks"))


def _add_distribute(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--distribute", action="store_true",
                        help="run as one worker of a multi-worker TensorFlow job described by "
                        "TF_CONFIG (implied when TF_CONFIG names 2 or more workers): the batch "
                        "size is global, only the chief (worker 0) writes --out; see "
                        "docs/scaling.rst")


def _add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the transferkit run in a non-empty --out (its files are "
                        "deleted first; a folder that is not a transferkit output is refused)")


def _image_size(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number of pixels, got {text!r}") from None


def _add_predict(sub) -> None:
    p = _sub(sub, "predict", "classify images with a saved model",
             description="Classify image files or folders (searched recursively) with a "
             "model.keras; class names come from the run.json beside it.")
    p.add_argument("model", metavar="MODEL", help="a .keras file written by transferkit")
    p.add_argument("paths", metavar="PATH", nargs="+", help="image files or folders")
    p.add_argument("--top-k", type=int, default=1, help="classes shown per image (default 1)")
    p.add_argument("--csv", metavar="FILE", help="also write the predictions to a CSV file")
    p.add_argument("--resize", choices=("crop", "pad", "squash"),
                   help="how images fit the model input (default: as in training, else crop)")
    _add_tta(p)
    p.set_defaults(func=_lazy("predict", "_images"), precheck=_lazy("check_predict", "_checks"))


def _add_evaluate(sub) -> None:
    e = _sub(sub, "evaluate", "score a saved model on labelled images",
             description="Evaluate a model.keras on DATA, a class-per-folder tree (its test/ "
             "folder if it has one, else every image). Prints accuracy, macro precision, "
             "recall and F1 and the per-class report.")
    e.add_argument("model", metavar="MODEL", help="a .keras file written by transferkit")
    e.add_argument("data", metavar="DATA", help="class-per-folder images (folder or archive)")
    e.add_argument("--resize", choices=("crop", "pad", "squash"),
                   help="how images fit the model input (default: as in training, else crop)")
    e.add_argument("--out", help="folder for confusion_matrix.png and metrics.json")
    _add_stream(e)
    _add_tta(e)
    e.set_defaults(func=_lazy("evaluate", "_images"),
                   precheck=_lazy("check_evaluate", "_checks"))


def _add_stream(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream", action="store_true",
                        help="read the images from disk batch by batch instead of decoding them "
                        "all into memory first, for folders larger than memory (default: "
                        "chosen by the images' decoded size); same splits and pixels")


def _add_explain(sub) -> None:
    x = _sub(sub, "explain", "show where a saved model looks in images (Grad-CAM)",
             description="Grad-CAM of image files or folders (searched recursively) with a "
             "model.keras: for each image, a PNG of the image and its heat map for the "
             "predicted class (bright = where the model found the evidence), and one grid "
             "of them all. Class names come from the run.json beside the model.")
    x.add_argument("model", metavar="MODEL", help="a .keras file written by transferkit")
    x.add_argument("paths", metavar="IMAGE", nargs="+", help="image files or folders")
    x.add_argument("--out", default="gradcam", metavar="DIR",
                   help="folder for the PNG files (default %(default)s)")
    x.add_argument("--resize", choices=("crop", "pad", "squash"),
                   help="how images fit the model input (default: as in training, else crop)")
    x.set_defaults(func=_lazy("explain", "_images"), precheck=_lazy("check_explain", "_checks"))


def _add_tta(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average each image's probabilities with "
                        "its mirror image's (twice the prediction time)")


def _add_export(sub) -> None:
    # Format and quantization are checked in the precheck, not by argparse's choices:
    # a typo then gets one line with the close match, like every other input error.
    from transferkit.cli._export import CALIBRATION_IMAGES
    from transferkit.models.export import FORMATS, QUANTIZE_MODES

    x = _sub(sub, "export", "write a saved model as a SavedModel, TFLite or ONNX file",
             description="Export a model.keras for serving: a TensorFlow SavedModel folder, a "
             "TFLite file (float32, or int8 with --quantize int8) or an ONNX file. Each takes "
             "raw uint8 images (n, height, width, 3), as the .keras model does, and gives the "
             "class probabilities. The file is run by its own runtime before it is put in "
             "place; a float export must match the model within 1e-4.",
             epilog="ONNX needs onnx, tf2onnx and onnxruntime (pip install onnx tf2onnx onnxruntime; "
             'in a transferkit checkout, the export extra: pip install ".[export]"). SavedModel '
             "and TFLite need the TensorFlow backend, ONNX TensorFlow or PyTorch.")
    x.add_argument("model", metavar="MODEL", help="a .keras file written by transferkit")
    x.add_argument("--format", required=True, metavar="|".join(FORMATS),
                   help="savedmodel (a folder), tflite or onnx (one file)")
    x.add_argument("--out", metavar="PATH",
                   help="where to write it (default: beside MODEL, e.g. model.tflite, "
                   "model_int8.tflite, model.onnx, model_savedmodel)")
    x.add_argument("--quantize", metavar="|".join(QUANTIZE_MODES),
                   help=f"int8: a full-integer TFLite file, calibrated on {CALIBRATION_IMAGES} "
                   "training images of --data (needs --format tflite and --data)")
    x.add_argument("--data", metavar="IMAGES_DIR",
                   help="the class-per-folder images the model was trained on: int8 calibrates "
                   "on its training images, and the export is compared with the model on its "
                   "test images (accuracy of both, agreement)")
    x.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    x.set_defaults(func=_lazy("export", "_export"), precheck=_lazy("check", "_export"))


def _add_run(sub) -> None:
    from transferkit.experiments import common_options_help

    run = _sub(
        sub, "run", "run one of the documented CIFAR-10 experiments (`transferkit run --help`)",
        description="Run a documented experiment on CIFAR-10. Each writes metrics.json, "
        "history CSVs, figures, model files and report.html under --out and prints a "
        "comparison table. Options may come before or after NAME.",
        epilog="experiments:\n" + definition_list(EXPERIMENTS)
        + "\n\noptions every experiment takes (NAME --help lists its own too):\n"
        + common_options_help(HelpFormatter),
    )
    run.add_argument("experiment", metavar="NAME", nargs="?", choices=[*EXPERIMENTS, "list"],
                     help="experiment to run (listed below; `list` lists them)")
    run.add_argument("options", nargs=argparse.REMAINDER,
                     help="the experiment's options (transferkit run NAME --help)")
    # It imports TensorFlow itself once NAME's options parse: NAME --help stays quick.
    run.set_defaults(func=_lazy("run_experiment"), needs_tensorflow=False)


def _add_report(sub) -> None:
    r = _sub(sub, "report", "HTML report or 10-slide deck from run or experiment folders",
             description="Write one self-contained HTML report (or, with --slides, a 10-slide "
             "16:9 deck that prints as 10 landscape pages) about saved runs. FOLDER is a run "
             "folder (holding run.json) or an experiment's --out folder (all its runs, its "
             "quick/full mode, skipped backbones and architecture figures).")
    r.add_argument("run_dirs", nargs="+", metavar="FOLDER",
                   help="run folders (train(run_dir=...)) or experiment --out folders")
    r.add_argument("-o", "--output", default="report.html", help="output HTML file")
    r.add_argument("--slides", action="store_true", help="write the 10-slide deck instead")
    r.add_argument("--title", help="page title (default: the dataset and what the runs compare, e.g. "
                   "'CIFAR-10: transfer learning vs training from scratch')")
    r.add_argument("--data", help="the dataset the runs used: it is reloaded as the runs record "
                   "(subset, per-class limit, seed, image size) to add feature maps and, when the "
                   "test split matches, per-image predictions")
    r.add_argument("--image-size", type=int,
                   help="square size images of a --data folder are resized to (default: as recorded)")
    r.set_defaults(func=_lazy("report"), precheck=_lazy("check_report", "_checks"))


def _add_cache(sub) -> None:
    c = _sub(sub, "cache", "where the on-disk cache of frozen features is, its size; clear it",
             description="Frozen features and frozen-prefix activations are kept on disk, so "
             "training the same frozen backbone on the same images again skips computing them. "
             "The cache lives in TRANSFERKIT_CACHE (default: the user's cache folder, e.g. "
             "~/.cache/transferkit; 'off' turns it off) and keeps at most TRANSFERKIT_CACHE_MAX "
             "(default 10GB), dropping the entries used longest ago.")
    # The metavar names the actions, so `transferkit cache` alone says what it can do.
    actions = c.add_subparsers(dest="cache_action", metavar="{info,clear}", required=True,
                               help="what to do (below)")
    i = _sub(actions, "info", "the cache's folder, entries, total size and cap")
    i.set_defaults(func=_lazy("cache_info"), needs_tensorflow=False)
    k = _sub(actions, "clear", "remove every entry and say how much was freed")
    k.set_defaults(func=_lazy("cache_clear"), needs_tensorflow=False)
