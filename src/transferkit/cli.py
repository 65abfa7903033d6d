"""The ``transferkit`` command.

Exit codes: 0 success, 2 usage or input error (one line, no traceback unless
``--debug``), 1 anything unexpected.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide C++ chatter

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    _configure_logging(args.debug)
    from transferkit.errors import TransferkitError

    try:
        return args.func(args)
    except TransferkitError as exc:
        if args.debug:
            raise
        print(f"transferkit: error: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("transferkit: interrupted", file=sys.stderr)
        return 130


def _configure_logging(debug: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("transferkit: %(message)s"))
    log = logging.getLogger("transferkit")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False
    if not debug:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # retracing notices are noise for CLI users


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferkit",
        description="Transfer learning for image classification with Keras 3.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser(
        "quickstart",
        help="frozen MobileNetV2 vs a CNN from scratch on a small CIFAR-10 budget",
        description="Train a frozen ImageNet MobileNetV2 head and a baseline CNN on a "
        "class-balanced CIFAR-10 subset, print a comparison and write metrics and figures.",
    )
    q.add_argument("--data", help="CIFAR-10 file or folder (default: TRANSFERKIT_DATA, Keras cache, download)")
    q.add_argument("--weights", default="imagenet",
                   help="'imagenet' (Keras cache or download), 'none', or a weights file path")
    q.add_argument("--out", default="quickstart-out", help="output folder (default: quickstart-out)")
    q.add_argument("--per-class", type=int, default=300, help="images per class in train and test")
    q.add_argument("--epochs", type=int, default=10, help="epochs for each model")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--strict", action="store_true",
                   help="fail instead of falling back to generated data or random weights")
    q.set_defaults(func=_quickstart)

    from transferkit.experiments import EXPERIMENTS  # a table: does not load TensorFlow

    run = sub.add_parser(
        "run", help="run one of the documented experiments (see `transferkit run --help`)",
        description="Run a documented experiment on CIFAR-10. Each writes metrics.json, "
        "history CSVs, figures, model files and report.html under --out and prints a "
        "comparison table. --quick runs a small real subset for a few epochs.",
        epilog="experiments:\n" + "\n".join(f"  {k:<22}{v}" for k, v in EXPERIMENTS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("experiment", metavar="NAME", choices=list(EXPERIMENTS),
                     help="experiment to run (listed below)")
    run.add_argument("options", nargs=argparse.REMAINDER,
                     help="the experiment's options (transferkit run NAME --help)")
    run.set_defaults(func=_run_experiment)

    r = sub.add_parser("report", help="HTML report or slide deck from saved run folders")
    r.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders written by train(run_dir=...)")
    r.add_argument("-o", "--output", default="report.html", help="output HTML file")
    r.add_argument("--slides", action="store_true", help="write a 10-slide deck instead")
    r.add_argument("--title", default="transferkit report")
    r.add_argument("--data", help="dataset the runs were evaluated on (adds feature maps and predictions)")
    r.set_defaults(func=_report)

    i = sub.add_parser("info", help="versions, backbones, and where data and weights are looked up")
    i.set_defaults(func=_info)
    return parser


def _quickstart(args) -> int:
    from transferkit import (
        CIFAR10_CLASSES,
        build_baseline_cnn,
        build_transfer_model,
        compare_runs,
        load_cifar10,
        make_synthetic_dataset,
        train,
    )
    from transferkit._atomic import atomic_write_json
    from transferkit.errors import DataNotFoundError, WeightsNotFoundError
    from transferkit.plots import plot_confusion_matrix, plot_learning_curves

    started = time.perf_counter()
    out = Path(args.out)
    notes: list[str] = []
    try:
        data = load_cifar10(args.data, limit_per_class=args.per_class, seed=args.seed,
                            download=args.data is None)
    except DataNotFoundError as exc:
        if args.strict or args.data is not None:
            raise
        print("transferkit: CIFAR-10 not available offline: FALLBACK to generated images "
              f"(not CIFAR-10 figures). {str(exc).splitlines()[0]}", file=sys.stderr)
        data = make_synthetic_dataset(10, per_class=args.per_class, seed=args.seed,
                                      class_names=[f"synthetic_{c}" for c in CIFAR10_CLASSES])
        notes.append("data: generated images (fallback)")
    weights = None if args.weights.lower() == "none" else args.weights
    import keras

    keras.utils.set_random_seed(args.seed)  # weights are initialised at build time
    try:
        transfer = build_transfer_model("mobilenet_v2", data.num_classes,
                                        input_shape=data.image_shape, weights=weights)
    except WeightsNotFoundError as exc:
        if args.strict or weights not in ("imagenet",):
            raise
        print("transferkit: ImageNet weights not available: FALLBACK to random initialisation "
              f"(transfer figures are not meaningful). {str(exc).split(' Cause:')[0]}",
              file=sys.stderr)
        transfer = build_transfer_model("mobilenet_v2", data.num_classes,
                                        input_shape=data.image_shape, weights=None)
        weights = None
        notes.append("weights: random initialisation (fallback)")
    transfer_name = "mobilenet_v2_frozen" + ("" if weights else "_random_init")
    transfer_run = train(transfer, data, epochs=args.epochs, seed=args.seed, name=transfer_name,
                         run_dir=out / "transfer", overwrite=True, verbose=2)
    keras.utils.set_random_seed(args.seed)
    runs = [
        transfer_run,
        train(build_baseline_cnn(data.num_classes, input_shape=data.image_shape), data,
              epochs=args.epochs, seed=args.seed, name="baseline_cnn_scratch",
              run_dir=out / "baseline", overwrite=True, verbose=2),
    ]
    comparison = compare_runs(runs)
    plot_learning_curves(runs, path=out / "learning_curves.png")
    for run in runs:
        plot_confusion_matrix(run.evaluation, path=out / f"confusion_{run.name}.png")
    atomic_write_json(out / "metrics.json", {
        "data": repr(data), "weights": str(weights), "notes": notes,
        "comparison": comparison.to_dict(),
        "wall_time_s": round(time.perf_counter() - started, 1),
    })
    print()
    print(f"Data: {data!r}")
    if notes:
        print("NOTE: " + "; ".join(notes))
    print(comparison.to_markdown())
    print(f"\nWrote {out}/metrics.json, learning_curves.png, confusion_*.png and run folders "
          f"in {time.perf_counter() - started:.0f} s.")
    return EXIT_OK


def _run_experiment(args) -> int:
    from transferkit.experiments import load

    module = load(args.experiment)
    parser = argparse.ArgumentParser(prog=f"transferkit run {args.experiment}",
                                     description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    options = parser.parse_args(args.options)
    module.run(options)
    return EXIT_OK


def _report(args) -> int:
    from transferkit.data import load_cifar10
    from transferkit.report import write_report
    from transferkit.training import Run

    runs = [Run.load(d) for d in args.run_dirs]
    data = None
    if args.data:
        cfg = runs[0].config.get("data", {})
        data = load_cifar10(args.data, classes=cfg.get("class_names"))
        if len(data.y_test) != cfg.get("sizes", {}).get("test"):
            print("transferkit: --data test split differs from the runs' (subset or limit): "
                  "feature maps only, no per-image predictions.", file=sys.stderr)
    path = write_report(runs, args.output, title=args.title, data=data, slides=args.slides)
    print(f"Wrote {path}")
    return EXIT_OK


def _info(args) -> int:
    import keras
    import numpy as np
    import tensorflow as tf

    import transferkit
    from transferkit.backbones import list_backbones
    from transferkit.data import cifar10_search_paths, keras_home

    print(f"transferkit {transferkit.__version__}; tensorflow {tf.__version__}; "
          f"keras {keras.__version__}; numpy {np.__version__}")
    gpus = tf.config.list_physical_devices("GPU")
    print(f"devices: {os.cpu_count()} CPU cores, {len(gpus)} GPU")
    print(f"Keras cache (KERAS_HOME): {keras_home()}")
    print("CIFAR-10 is looked up in (first found wins):")
    for p in cifar10_search_paths():
        print(f"  [{'found' if p.exists() else 'absent'}] {p}")
    print("  then a download through keras.datasets.cifar10")
    print("Backbones (ImageNet weights file in the Keras cache at the default upscale size):")
    for b in list_backbones():
        state = "cached" if b["weights_cached"] else "absent"
        print(f"  {b['name']:<20} sizes {'/'.join(map(str, b['pretrained_sizes'])):<20} "
              f"[{state}] {b['weights_file'].format(size=b['upscale_size'])}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
