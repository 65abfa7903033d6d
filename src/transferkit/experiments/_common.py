"""Plumbing shared by the example experiments: arguments, data, seeding and outputs.

Every experiment takes the same core options (``--data --out --epochs
--per-class --seed --quick --weights``) and leaves the same artefacts under
``--out``: ``metrics.json``, one folder per run (``history.csv``,
``best.keras``, ``model.keras``, ``run.json``), figures, and ``report.html``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import keras

from transferkit import _machine
from transferkit._atomic import atomic_write_json, atomic_write_text
from transferkit.data.cifar import load_cifar10
from transferkit.data.splits import DataSplits
from transferkit.experiments._options import Budget, add_common_arguments, budget, unfreeze_arg  # noqa: F401 - the experiments' one import
from transferkit.models.files import check_weights_arg
from transferkit.models.registry import get_backbone_spec, identify_weights_file
from transferkit.reporting.compare import compare_runs
from transferkit.reporting.naming import display_names
from transferkit.reporting.plots import (
    plot_accuracy_vs_time,
    plot_confusion_matrix,
    plot_learning_curves,
)
from transferkit.reporting.report import write_report
from transferkit.runs.record import Run
from transferkit.training.budget import BudgetShares


def clamp_unfreeze(unfreeze: str | int, model) -> str | int:
    """A layer count no larger than the model's backbone (VGG16 has 18 layers in all)."""
    from transferkit.models.anatomy import find_backbone
    from transferkit.models.freezing import backbone_layers

    if unfreeze in ("auto", "all"):
        return unfreeze
    return min(unfreeze, len(backbone_layers(find_backbone(model))))


def weights(args: argparse.Namespace, backbone: str = "mobilenet_v2") -> str | None:
    """``--weights`` for one backbone, as :func:`~transferkit.models.builders.build_transfer_model` takes it.

    ``imagenet`` and ``none`` apply to every backbone. ``NAME=FILE[,NAME=FILE]``
    gives files per backbone (the others use ImageNet weights). A bare file is
    used for the backbone it belongs to (recognised by name or content), and
    the others use ImageNet weights; a file that cannot be recognised is used
    for every backbone.

    Raises:
        WeightsNotFoundError: If it names a file that does not exist.
        UnknownNameError: If ``NAME=`` is not a registered backbone.
    """
    value = args.weights
    if value.lower() == "none":
        return None
    if "=" in value:
        files = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, _, path = item.partition("=")
            files[get_backbone_spec(name.strip()).name] = check_weights_arg(path.strip())
        return files.get(get_backbone_spec(backbone).name, "imagenet")
    path = check_weights_arg(value)
    if path == "imagenet":
        return path
    owner = identify_weights_file(path)
    return path if owner in (None, get_backbone_spec(backbone).name) else "imagenet"


def load_data(args: argparse.Namespace) -> DataSplits:
    """CIFAR-10 from ``--data`` (or the usual places), limited to the mode's budget."""
    weights(args)  # a wrong weights path or name fails before minutes of data loading
    return load_cifar10(args.data, limit_per_class=budget(args).per_class, seed=args.seed,
                        download=args.data is None)


def seed(args: argparse.Namespace) -> None:
    """Seed before building a model: its initial weights come from this state."""
    keras.utils.set_random_seed(args.seed)


def output_dir(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return out


REPORTS_S = 20.0
"""Seconds ``--budget`` keeps back for the figures and reports written after the last run."""


def time_budget(args: argparse.Namespace, runs: int) -> BudgetShares | None:
    """Share ``--budget`` between the experiment's ``runs`` training calls.

    The clock started with the command (``args.started``, set by ``transferkit
    run``), so reading the data counts. :func:`run_dir` hands the shares to each
    call; pass ``budget=args.shares`` to calls that take no ``run_dir``.
    """
    seconds = getattr(args, "budget", None)
    started = getattr(args, "started", None) or time.monotonic()
    args.shares = None if seconds is None else BudgetShares(
        float(seconds), runs, reserve=REPORTS_S, started=started)
    return args.shares


def run_dir(args: argparse.Namespace, name: str) -> dict:
    """``train`` keywords that put a run in ``--out/name``, replacing an older one
    (and give it its share of ``--budget``, see :func:`time_budget`)."""
    options = {"run_dir": Path(args.out) / name, "overwrite": True, "name": name, "seed": args.seed}
    if getattr(args, "shares", None) is not None:
        options["budget"] = args.shares
    return options


def finish(
    experiment: str,
    args: argparse.Namespace,
    runs: list[Run],
    *,
    started: float,
    data: DataSplits | None = None,
    extra: dict | None = None,
    title: str | None = None,
    slides: bool = False,
    skipped: dict[str, str] | None = None,
    figures: dict[str, Path] | None = None,
) -> dict:
    """Write the shared artefacts, print the comparison table and return the metrics.

    Writes ``learning_curves.png``, ``accuracy_vs_time.png``,
    ``confusion_<run>.png``, ``classification_report_<run>.txt``,
    ``report.html`` (and ``slides.html`` with ``slides``) and ``metrics.json``
    under ``--out``. ``skipped`` names backbones left out (with the reason)
    and ``figures`` more PNGs to embed in the report (``{caption: path}``);
    a ``--quick`` run is marked as such on every page.
    """
    out = output_dir(args)
    comparison = compare_runs(runs)
    plot_learning_curves(runs, path=out / "learning_curves.png")
    plot_accuracy_vs_time(runs, path=out / "accuracy_vs_time.png")
    labels = display_names(runs)  # figures say what a run is; file names keep its identifier
    for run in runs:
        if run.evaluation is not None:
            plot_confusion_matrix(run.evaluation, name=labels[run.name], path=out / f"confusion_{run.name}.png")
            atomic_write_text(out / f"classification_report_{run.name}.txt", run.evaluation.report)
    options = {"title": title, "data": data, "quick": bool(args.quick), "skipped": skipped,
               "figures": figures}
    write_report(runs, out / "report.html", **options)
    if slides:
        write_report(runs, out / "slides.html", slides=True, **options)
    b = budget(args)
    metrics = {
        "experiment": experiment,
        "mode": "quick" if args.quick else "full",
        "per_class": b.per_class,
        "epochs": b.epochs,
        "seed": args.seed,
        "weights": args.weights,
        "budget": None if getattr(args, "shares", None) is None else args.shares.record(),
        "data": repr(data) if data is not None else None,
        "comparison": comparison.to_dict(),
        "runs": {run.name: _run_summary(run) for run in runs},
        **(extra or {}),
        "wall_time_s": round(time.perf_counter() - started, 1),
        "machine": _machine.describe_devices(),
        "cpu": _machine.cpu_description(),
    }
    atomic_write_json(out / "metrics.json", metrics)
    shares = getattr(args, "shares", None)
    if shares is not None and metrics["wall_time_s"] > shares.seconds:
        print(f"transferkit: warning: the experiment took {metrics['wall_time_s']:.0f} s, more "
              f"than --budget {shares.seconds:.0f}: the runs' shares were too short for one epoch "
              "each on this machine (the log says which).", file=sys.stderr)
    print()
    print(comparison.to_markdown())
    print(f"\nWrote {out}/metrics.json, report.html, figures and run folders "
          f"in {metrics['wall_time_s']:.0f} s.")
    return metrics


def _run_summary(run: Run) -> dict:
    ev = run.evaluation
    scores = {} if ev is None else {
        "accuracy": ev.accuracy, "balanced_accuracy": ev.balanced_accuracy,
        "precision": ev.precision, "recall": ev.recall, "f1": ev.f1, "loss": ev.loss,
        "recall_per_class": ev.recall_per_class,
    }
    return {**scores, "epochs_run": run.epochs_run, "timings": run.timings,
            "classes": ev.class_names if ev else None}
