"""Time budgets: ``fine_tune(budget=B)`` against the fixed default (10 epochs), on this machine.

    python benchmarks/budget.py [--sizes 500,5000] [--fractions 0.25,0.5,1.0]
        [--image-sizes 96] [--data ../shared/data/cifar10-jpeg.tar.gz]
        [--out benchmarks/budget] [--rerun] [--quick]

What it measures: for each data size (CIFAR-10 training images per class; 5000 is
all 50,000), a fresh MobileNetV2 (ImageNet weights, seed 0) fine-tuned with the
defaults for 10 epochs, then one fine-tuned with ``budget=f * T`` for each
fraction ``f``, where ``T`` is the default run's own wall time on this machine
(the method is machine-independent: the budgets follow the machine's speed).
``--image-sizes 96,128`` runs each budget again with the model resizing its
input to 128 px inside instead of 96 (the default's size, and ``T``'s): what
a budget buys spent on resolution rather than on epochs.
Each row: test accuracy, wall and CPU seconds of the whole ``fine_tune`` call
(head trained first, caching, training, test evaluation), the wall time as a
share of the budget (the target: 0.9-1.1), and the plan (epochs, steps).

"The fixed default at the same time" is the 10-epoch run's accuracy where it
fits the budget; where it does not, a user without a budget would have had to
guess an epoch count: the table says so rather than inventing a figure.

The on-disk feature cache is off (``TRANSFERKIT_CACHE=off``): every run pays
its own caching, as a first run on new data does.

Each finished run is written to ``OUT/rows/<size>__<case>.json`` at once; a rerun
skips those (``--rerun`` repeats them). ``--quick`` (20 images per class for
training and for the test) proves the script works; its figures mean nothing.
Data: ``load_cifar10(limit_per_class=N, validation_split=0)``, the first N
training and N test images per class (at most 1,000 test images per class).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
TARGET = (0.9, 1.1)
DEFAULT_SIZE = 96  # MobileNetV2's upscale target for 32-px CIFAR-10; rows without a size have it


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sys() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def measure(data, *, budget: float | None, seed: int = 0, image_size: int = DEFAULT_SIZE) -> dict:
    """One fresh model fine-tuned with the defaults (or within ``budget`` seconds)."""
    import keras

    import transferkit as tk

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = tk.build_transfer_model("mobilenet_v2", data, image_size=image_size)
    wall, cpu, system = time.perf_counter(), _cpu(), _sys()
    try:
        run = tk.fine_tune(model, data, budget=budget, seed=seed, verbose=0)
    except tk.BudgetTooShortError as exc:  # a row too: what this machine would need
        return {"too_short": str(exc), "budget_s": round(budget, 1),
                "wall_s": round(time.perf_counter() - wall, 1)}
    wall, cpu, system = time.perf_counter() - wall, _cpu() - cpu, _sys() - system
    return {"test_accuracy": round(run.evaluation.accuracy, 4), "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1), "system_share": round(system / max(cpu, 1e-9), 3),
            "epochs": run.epochs_run, "budget_s": budget and round(budget, 1),
            "wall_share": budget and round(wall / budget, 3), "plan": run.config.get("budget"),
            "head_first": run.config["recipe"].get("head_first")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="500,5000", help="training images per class")
    parser.add_argument("--fractions", default="0.25,0.5,1.0", help="budgets, in default runs")
    parser.add_argument("--image-sizes", default=str(DEFAULT_SIZE), help="the model's input sizes")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "budget")
    parser.add_argument("--rerun", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    os.environ["TRANSFERKIT_CACHE"] = "off"  # read when caching starts: each run pays its own
    from transferkit import _machine, load_cifar10

    sizes = [20] if args.quick else [int(s) for s in args.sizes.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    image_sizes = [int(s) for s in args.image_sizes.split(",")]
    rows_dir = args.out / "rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    cpu = _machine.cpu_description()
    print(f"CPU: {cpu}", flush=True)
    rows = []
    for per_class in sizes:
        # All training images train, as in benchmarks/results.py (the test set is the measure).
        data = load_cifar10(args.data, limit_per_class=per_class, validation_split=0.0, seed=0)
        default = _row(rows_dir, per_class, "default", args.rerun, lambda d=data: measure(d, budget=None))
        rows.append(default)
        for fraction in fractions:
            budget = fraction * default["wall_s"]
            for px in image_sizes:  # the default size: the case names of rows measured before sizes
                case = f"budget_{fraction:g}" + ("" if px == DEFAULT_SIZE else f"_{px}px")
                rows.append(_row(rows_dir, per_class, case, args.rerun,
                                 lambda d=data, b=budget, f=fraction, s=px:
                                 measure(d, budget=b, image_size=s) | {"fraction": f, "image_size": s}))
    # Every row measured into OUT so far (other --sizes/--fractions runs too), in order.
    rows = sorted((json.loads(p.read_text()) for p in rows_dir.glob("*.json")),
                  key=lambda r: (r["train_images"], r.get("fraction", 0), r.get("image_size", DEFAULT_SIZE)))
    table = _table(rows, cpu)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=1) + "\n")
    (args.out / "RESULTS.md").write_text(table + "\n")
    return 0


def _row(rows_dir: Path, per_class: int, case: str, rerun: bool, measure_row) -> dict:
    path = rows_dir / f"{per_class}__{case}.json"
    if path.exists() and not rerun:
        return json.loads(path.read_text())
    started = time.strftime("%Y-%m-%d %H:%M")
    row = {"train_images": per_class * 10, "case": case, "started": started} | measure_row()
    path.write_text(json.dumps(row, indent=1) + "\n")
    print(json.dumps(row), flush=True)
    return row


def _table(rows: list[dict], cpu: str) -> str:
    lines = [f"CPU: {cpu}", "",
             "| training images | run | input | budget | wall (share of budget) | test accuracy "
             "| plan | fixed default (10 epochs) within the budget? |",
             "|---:|---|---:|---:|---:|---:|---|---|"]
    defaults = {r["train_images"]: r for r in rows if r["case"] == "default"}
    for r in rows:
        d = defaults[r["train_images"]]
        px = r.get("image_size", DEFAULT_SIZE)
        if r["case"] == "default":
            lines.append(f"| {r['train_images']:,} | default, 10 epochs | {px} px | - | {r['wall_s']:.0f} s "
                         f"| {r['test_accuracy']:.4f} | 10 epochs | - |")
            continue
        if r.get("too_short"):
            needs = r["too_short"].split("Give at least ")[1].split(" (")[0]
            lines.append(f"| {r['train_images']:,} | budget {r['fraction']:g} x default | "
                         f"{px} px | {r['budget_s']:.0f} s | stopped after {r['wall_s']:.0f} s | - | too "
                         f"short for one epoch: needs {needs} | - |")
            continue
        plan = r["plan"] or {}
        fits = (f"yes: {d['test_accuracy']:.4f}" if d["wall_s"] <= r["budget_s"] * TARGET[1]
                else f"no: it takes {d['wall_s']:.0f} s")
        lines.append(f"| {r['train_images']:,} | budget {r['fraction']:g} x default | "
                     f"{px} px | {r['budget_s']:.0f} s | {r['wall_s']:.0f} s ({r['wall_share']:.2f}) | "
                     f"{r['test_accuracy']:.4f} | {plan.get('planned_epochs')} epochs, "
                     f"{plan.get('steps')} steps | {fits} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
