"""Under a short budget: cache each image and its mirror image, or the image alone?

    python benchmarks/budget_views.py [--sizes 500] [--fractions 0.5,1.0] [--seeds 0,1,2]
                                      [--out benchmarks/budget_views] [--quick]

``fine_tune(budget=f * T)`` of a fresh MobileNetV2 on CIFAR-10 (N training and N
test images per class, no validation split), where ``T`` is the default run's
(10 epochs, no budget) own wall time on this machine, as in ``budget.py``; so the
budgets follow the machine's speed. Each budget runs with both views cached
(the image and its mirror image: two passes of the frozen layers before the
first step, flips as augmentation) and with the image alone (one pass; the
time saved buys more steps), the choice forced, for each seed. The table gives
each run's steps, wall time and test accuracy, and each budget's mean
difference (image alone minus both) with its standard error over the seeds;
it chose :data:`transferkit.training.budget.MIRROR_EPOCHS`. Rows land in
``OUT/rows/`` as they finish (a rerun skips them). The on-disk cache is off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from budget import DEFAULT_DATA, ROOT, _row, measure  # noqa: E402

VIEWS = {"both": 2, "image": 1}


def measure_views(data, *, budget: float, views: int, seed: int) -> dict:
    """``measure`` with the number of cached views forced (no feeding, no other choice)."""
    from transferkit.training import cached_prefix

    chosen = cached_prefix.views_that_pay
    cached_prefix.views_that_pay = lambda *args, **kwargs: views
    try:
        row = measure(data, budget=budget, seed=seed)
    finally:
        cached_prefix.views_that_pay = chosen
    plan = row.get("plan") or {}
    return row | {"views": views, "seed": seed, "steps": plan.get("steps")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="500", help="training images per class")
    parser.add_argument("--fractions", default="0.5,1.0", help="budgets, in default runs")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "budget_views")
    parser.add_argument("--rerun", action="store_true")
    parser.add_argument("--quick", action="store_true", help="20 images per class, one seed")
    args = parser.parse_args(argv)
    os.environ["TRANSFERKIT_CACHE"] = "off"  # each run pays its own caching
    from transferkit import _machine, load_cifar10

    sizes = [20] if args.quick else [int(s) for s in args.sizes.split(",")]
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    rows_dir = args.out / "rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    cpu = _machine.cpu_description()
    print(f"CPU: {cpu}", flush=True)
    for per_class in sizes:
        data = load_cifar10(args.data, limit_per_class=per_class, validation_split=0.0, seed=0)
        default = _row(rows_dir, per_class, "default", args.rerun,
                       lambda d=data: measure(d, budget=None))
        for fraction in fractions:
            for seed in seeds:  # interleaved: a machine that drifts touches both alike
                for name, views in VIEWS.items():
                    _row(rows_dir, per_class, f"budget_{fraction:g}_{name}_seed{seed}", args.rerun,
                         lambda d=data, f=fraction, t=default["wall_s"], v=views, s=seed:
                         measure_views(d, budget=f * t, views=v, seed=s)
                         | {"fraction": f})
    rows = [json.loads(p.read_text()) for p in sorted(rows_dir.glob("*.json"))]
    table = _table(rows, cpu)
    print(table)
    (args.out / "results.json").write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=1) + "\n")
    (args.out / "RESULTS.md").write_text(table + "\n")
    return 0


def _table(rows: list[dict], cpu: str) -> str:
    lines = [f"CPU: {cpu}", "",
             "| training images | budget | views cached | runs | steps (mean) | wall / budget "
             "| test accuracy (each seed) | image alone - both (mean ± s.e.) |",
             "|---:|---|---|---:|---:|---:|---|---|"]
    for n in sorted({r["train_images"] for r in rows}):
        default = next((r for r in rows if r["train_images"] == n and r["case"] == "default"), None)
        if default:
            lines.append(f"| {n:,} | none (10 epochs, {default['wall_s']:.0f} s) | both | 1 | - | - "
                         f"| {default['test_accuracy']:.4f} | - |")
        for fraction in sorted({r["fraction"] for r in rows if r.get("fraction")
                                and r["train_images"] == n}):
            group = [r for r in rows if r["train_images"] == n and r.get("fraction") == fraction
                     and "test_accuracy" in r]
            diff = _paired_difference(group)
            for name, views in VIEWS.items():
                runs = sorted((r for r in group if r["views"] == views), key=lambda r: r["seed"])
                if not runs:
                    continue
                accs = ", ".join(f"{r['test_accuracy']:.4f}" for r in runs)
                lines.append(
                    f"| {n:,} | {fraction:g} x default ({runs[0]['budget_s']:.0f} s) | {name} "
                    f"| {len(runs)} | {statistics.mean(r['steps'] for r in runs):.0f} "
                    f"| {statistics.mean(r['wall_share'] for r in runs):.2f} | {accs} "
                    f"| {diff if views == 1 else ''} |")
    return "\n".join(lines)


def _paired_difference(group: list[dict]) -> str:
    """Image alone minus both views, paired by seed: mean ± standard error (points)."""
    by_seed = {}
    for r in group:
        by_seed.setdefault(r["seed"], {})[r["views"]] = r["test_accuracy"]
    diffs = [100 * (v[1] - v[2]) for v in by_seed.values() if 1 in v and 2 in v]
    if len(diffs) < 2:
        return f"{diffs[0]:+.2f} points (one seed)" if diffs else "-"
    se = statistics.stdev(diffs) / len(diffs) ** 0.5
    return f"{statistics.mean(diffs):+.2f} ± {se:.2f} points"


if __name__ == "__main__":
    raise SystemExit(main())
