"""Handlers of ``quickstart``, ``run``, ``report``, ``info`` and ``cache`` (imported when called)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from transferkit.cli import EXIT_OK


def quickstart(args) -> int:
    """MobileNetV2 transfer vs a CNN from scratch on CIFAR-10; report, slides, metrics.json."""
    import keras

    from transferkit import build_baseline_cnn, compare_runs, train
    from transferkit._atomic import atomic_write_json
    from transferkit.cli._outdir import clear_out_dir
    from transferkit.reporting.naming import display_names
    from transferkit.reporting.plots import plot_confusion_matrix, plot_learning_curves
    from transferkit.reporting.report import write_report

    started = time.perf_counter()
    out = Path(args.out)
    notes: list[str] = []
    data = _quickstart_data(args, notes)
    keras.utils.set_random_seed(args.seed)  # weights are initialised at build time
    transfer, weights = _quickstart_transfer(args, data, notes)
    clear_out_dir(out)  # the inputs loaded: now the previous run (if --overwrite) may go
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
    labels = display_names(runs)
    for run in runs:
        plot_confusion_matrix(run.evaluation, name=labels[run.name], path=out / f"confusion_{run.name}.png")
    # No title: the report names the data (CIFAR-10 or the synthetic fallback) and what the
    # runs compare, which says "from scratch" too when ImageNet weights were unavailable.
    write_report(runs, out / "report.html", data=data, notes=notes)
    write_report(runs, out / "slides.html", data=data, notes=notes, slides=True)
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
    print(f"\nWrote {out}/report.html, slides.html, metrics.json, figures and run folders "
          f"in {time.perf_counter() - started:.0f} s.")
    return EXIT_OK


def _quickstart_data(args, notes: list[str]):
    """CIFAR-10 as asked; offline, without --data or --strict, generated images (with a note)."""
    from transferkit import CIFAR10_CLASSES, load_cifar10, make_synthetic_dataset
    from transferkit.cli import cli_terms
    from transferkit.errors import DataNotFoundError

    try:
        return load_cifar10(args.data, limit_per_class=args.per_class, seed=args.seed,
                            download=args.data is None)
    except DataNotFoundError as exc:
        if args.strict or args.data is not None:
            raise
        print("transferkit: CIFAR-10 not available offline: FALLBACK to generated images "
              f"(not CIFAR-10 figures). {cli_terms(str(exc), args.flags)}", file=sys.stderr)
        notes.append("data: generated images (fallback)")
        return make_synthetic_dataset(10, per_class=args.per_class, seed=args.seed,
                                      class_names=[f"synthetic_{c}" for c in CIFAR10_CLASSES])


def _quickstart_transfer(args, data, notes: list[str]):
    """``(MobileNetV2 transfer model, the weights it got)``.

    Without ImageNet weights, and unless --strict, it falls back to random
    initialisation, with a note.
    """
    from transferkit import build_transfer_model
    from transferkit.cli import cli_terms
    from transferkit.errors import WeightsNotFoundError

    weights = None if args.weights.lower() == "none" else args.weights
    try:
        return build_transfer_model("mobilenet_v2", data.num_classes,
                                    input_shape=data.image_shape, weights=weights), weights
    except WeightsNotFoundError as exc:
        if args.strict or weights not in ("imagenet",):
            raise
        print("transferkit: ImageNet weights not available: FALLBACK to random initialisation "
              "(transfer figures are not meaningful). "
              f"{cli_terms(str(exc).split(' Cause:')[0], args.flags)}",
              file=sys.stderr)
        notes.append("weights: random initialisation (fallback)")
        return build_transfer_model("mobilenet_v2", data.num_classes,
                                    input_shape=data.image_shape, weights=None), None


def run_experiment(args) -> int:
    from transferkit.cli import import_tensorflow
    from transferkit.cli._parser import experiment_parser
    from transferkit.experiments import load
    from transferkit.experiments._options import check_options

    # --help, bad options and missing files answer before the experiment's module imports Keras.
    started = time.monotonic()  # --budget's clock: reading the data counts
    options = experiment_parser(args.experiment).parse_args(args.options)
    check_options(options)
    options.started = started
    if getattr(args, "worker_out", None) is not None:  # a non-chief worker: --out is the chief's
        from transferkit.cli._distribute import out_for

        options.out = str(out_for(args, options.out))
    import_tensorflow(args)
    load(args.experiment).run(options)
    return EXIT_OK


def report(args) -> int:
    from transferkit.reporting.report import (
        load_report_inputs,
        rebuild_test_data,
        same_test_split,
        write_report,
    )

    runs, ctx = load_report_inputs(args.run_dirs)
    data = None
    if args.data:
        data = rebuild_test_data(runs, args.data, image_size=args.image_size)
        if not any(same_test_split(r, data) for r in runs):
            print("transferkit: --data does not rebuild the test split these runs were scored on "
                  "(other subset, limit or seed): feature maps only, no per-image predictions.",
                  file=sys.stderr)
    # No --title: the report names the dataset and what the runs compare.
    path = write_report(runs, args.output, title=args.title, data=data, slides=args.slides,
                        quick=ctx["quick"], skipped=ctx["skipped"], figures=ctx["figures"])
    print(f"Wrote {path}")
    return EXIT_OK


def info(args) -> int:
    import platform

    import transferkit
    from transferkit import _backend, _machine
    from transferkit._backend import keras_home
    from transferkit.data.cifar import cifar10_search_paths
    from transferkit.models.registry import list_backbones

    version = _machine.installed_version
    backend = _backend.configured()  # without importing Keras
    print(f"transferkit {transferkit.__version__}; Keras backend {backend}; "
          f"tensorflow {version('tensorflow')}; torch {version('torch')}; jax {version('jax')}; "
          f"keras {version('keras')}; numpy {version('numpy')}; "
          f"python {platform.python_version()}")
    print(f"devices: {_machine.cpu_description()}; {_gpus(args)}")
    print(f"Keras cache (KERAS_HOME): {keras_home()}")
    print(f"Feature cache (TRANSFERKIT_CACHE): {_cache_summary()}")
    print("CIFAR-10 is looked up in (first found wins):")
    for p in cifar10_search_paths():
        print(f"  [{'found' if p.exists() else 'absent'}] {p}")
    print("  then a download through keras.datasets.cifar10")
    print("Backbones (ImageNet weights file in the Keras cache at the default upscale size):")
    for b in list_backbones():
        state = "cached" if b["weights_cached"] else "absent"
        size = b["upscale_size"]
        print(f"  {b['name']:<20} sizes {'/'.join(map(str, b['pretrained_sizes'])):<20} "
              f"[{state}] {b['weights_file'].format(size=size)}")
    # The README passes a 224-px file with --weights: say why this list may not show it.
    print("  (only the Keras cache is listed: a file given with --weights is used as it is, "
          "whichever of the backbone's pretrained sizes it was saved at)")
    return EXIT_OK


def _gpus(args) -> str:
    if not args.devices:
        return "GPUs: `transferkit info --devices` asks the Keras backend (slower)"
    from transferkit import _backend, _machine

    gpus = _machine.accelerators()
    return f"{len(gpus)} GPU visible to Keras' {_backend.name()} backend"


def cache_info(args) -> int:
    """``transferkit cache info``: the folder, entries, total size and cap (no TensorFlow)."""
    from transferkit._cache import ENV_LOCATION, ENV_MAX, FeatureStore

    store = FeatureStore.from_environment()
    if store is None:
        print(f"Feature cache: off ({ENV_LOCATION}={_env(ENV_LOCATION)}).")
        return EXIT_OK
    print(f"Feature cache: {store.root}" + ("" if _env(ENV_LOCATION) else
                                            f" (the default; set {ENV_LOCATION} to move it)"))
    print(f"Holds {_cache_summary(store)}" + ("" if _env(ENV_MAX) else
                                              f" (set {ENV_MAX} to change the cap)"))
    return EXIT_OK


def cache_clear(args) -> int:
    """``transferkit cache clear``: remove every entry and say how much was freed."""
    from transferkit._cache import ENV_LOCATION, FeatureStore
    from transferkit._progress import format_size
    from transferkit._text import plural

    store = FeatureStore.from_environment()
    if store is None:
        print(f"Feature cache: off ({ENV_LOCATION}={_env(ENV_LOCATION)}); nothing to clear.")
        return EXIT_OK
    removed, freed = store.clear()
    print(f"Cleared the feature cache at {store.root}: {plural(removed, 'entry', 'entries')} removed, "
          f"{format_size(freed)} freed.")
    return EXIT_OK


def _cache_summary(store=None) -> str:
    """``N entries, SIZE of a CAP cap`` (``info``: where it is too, or ``off``)."""
    from transferkit._cache import FeatureStore
    from transferkit._progress import format_size
    from transferkit._text import plural

    where = store is None
    store = store or FeatureStore.from_environment()
    if store is None:
        return "off"
    info = store.info()
    summary = (f"{plural(info.entries, 'entry', 'entries')}, {format_size(info.total_bytes)} "
               f"of a {format_size(info.max_bytes)} cap")
    return f"{store.root} ({summary})" if where else summary


def _env(name: str) -> str:
    import os

    return os.environ.get(name, "")
