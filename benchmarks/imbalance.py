"""Class imbalance: a frozen MobileNetV2 head on an unbalanced CIFAR-10 subset, with and without class weights.

    python benchmarks/imbalance.py [--data ../shared/data/cifar10-jpeg.tar.gz]
        [--per-class 500] [--minority cat,deer,truck] [--ratio 10] [--seeds 0,1,2]
        [--epochs 10] [--out benchmarks/imbalance.json] [--quick]

What it measures: a real CIFAR-10 subset made unbalanced the way image folders
are: ``--per-class`` training images of seven classes and a ``--ratio``-th of
that for the ``--minority`` classes (500 and 50 by default, a seeded choice), no
validation split, and a balanced test split (``--per-class`` test images of
every class). For each seed, ``train(build_transfer_model("mobilenet_v2", data),
data)`` (ImageNet weights from the Keras cache, 96 px, the head on cached
features, ``--epochs`` epochs, batch 64) runs twice from the same initial weights:
without class weights, and with ``class_weight="balanced"``. Each row: the
minority classes' test recall (each, and their mean), the majority classes'
mean recall, balanced accuracy and accuracy (equal here: the test split is
balanced), the accuracy a test split with the training split's class shares
would give (each class's recall weighted by its share of the training images),
and the call's wall and CPU seconds (user + system of every thread). The features are computed once, by the first
call, and read back from a temporary on-disk cache by the others.

Prints the CPU (model, vector extensions) and the table and writes the figures as
JSON to ``--out``. ``--quick`` (20 images per class, 2 epochs, seed 0) proves the
script works; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
WEIGHTINGS = (None, "balanced")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def unbalanced_subset(data_path: Path, per_class: int, minority: list[str], ratio: int):
    """CIFAR-10, ``per_class`` per class in train and test; the minority classes' training
    images cut to ``per_class // ratio`` (a seeded choice); no validation split."""
    import numpy as np

    from transferkit import DataSplits, load_cifar10

    data = load_cifar10(data_path, limit_per_class=per_class, validation_split=0.0, seed=0,
                        download=False)
    rng = np.random.default_rng(0)
    small = [data.class_names.index(c) for c in minority]
    keep = np.concatenate([
        idx if c not in small else rng.choice(idx, max(1, len(idx) // ratio), replace=False)
        for c in range(data.num_classes) for idx in [np.flatnonzero(data.y_train == c)]])
    keep.sort()
    return DataSplits(data.x_train[keep], data.y_train[keep], data.x_val, data.y_val,
                      data.x_test, data.y_test, data.class_names, source=data.source)


def measure(data, minority: list[str], *, seed: int, epochs: int, class_weight) -> dict:
    """One frozen head trained from the seed's initial weights; its recalls and times."""
    import keras
    import numpy as np

    import transferkit as tk

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = tk.build_transfer_model("mobilenet_v2", data)
    wall, cpu = time.perf_counter(), _cpu()
    run = tk.train(model, data, epochs=epochs, batch_size=64, seed=seed, verbose=0,
                   class_weight=class_weight)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    ev = run.evaluation
    recall = ev.recall_per_class
    majority = [r for name, r in recall.items() if name not in minority]
    # The accuracy a test split shaped like the training split would give: each class's
    # recall weighted by its share of the training images (the test split is balanced).
    shares = np.bincount(data.y_train, minlength=data.num_classes) / len(data.y_train)
    train_mix = float(np.dot(shares, [recall[name] for name in data.class_names]))
    return {"seed": seed, "class_weight": class_weight,
            "minority_recall": {c: round(recall[c], 4) for c in minority},
            "minority_recall_mean": round(sum(recall[c] for c in minority) / len(minority), 4),
            "majority_recall_mean": round(sum(majority) / len(majority), 4),
            "balanced_accuracy": round(ev.balanced_accuracy, 4),
            "accuracy": round(ev.accuracy, 4), "accuracy_train_mix": round(train_mix, 4),
            "recall_per_class": {c: round(r, 4) for c, r in recall.items()},
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "features_s": round(run.timings.get("features", 0.0), 1),
            "weights": (run.config["class_weight"] or {}).get("weights")}


def table(rows: list[dict], minority: list[str]) -> str:
    """The rows, then the mean over seeds of each weighting."""
    head = " | ".join(f"{c} recall" for c in minority)
    lines = [f"| seed | class_weight | {head} | minority mean | majority mean | balanced "
             "accuracy | accuracy | accuracy, training mix | wall | CPU |",
             "|---:|---|" + "---:|" * (len(minority) + 7)]
    for r in rows:
        cells = " | ".join(f"{r['minority_recall'][c]:.3f}" for c in minority)
        lines.append(f"| {r['seed']} | {r['class_weight'] or 'none'} | {cells} | "
                     f"{r['minority_recall_mean']:.3f} | {r['majority_recall_mean']:.3f} | "
                     f"{r['balanced_accuracy']:.3f} | {r['accuracy']:.3f} | "
                     f"{r['accuracy_train_mix']:.3f} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s |")
    for weighting in WEIGHTINGS:
        mine = [r for r in rows if r["class_weight"] == weighting]
        if len(mine) < 2:
            continue
        mean = {k: sum(r[k] for r in mine) / len(mine) for k in (
            "minority_recall_mean", "majority_recall_mean", "balanced_accuracy", "accuracy",
            "accuracy_train_mix")}
        cells = " | ".join(f"{sum(r['minority_recall'][c] for r in mine) / len(mine):.3f}"
                           for c in minority)
        lines.append(f"| mean | {weighting or 'none'} | {cells} | "
                     f"{mean['minority_recall_mean']:.3f} | {mean['majority_recall_mean']:.3f} | "
                     f"{mean['balanced_accuracy']:.3f} | {mean['accuracy']:.3f} | "
                     f"{mean['accuracy_train_mix']:.3f} | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--minority", default="cat,deer,truck")
    parser.add_argument("--ratio", type=int, default=10)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "imbalance.json")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.per_class, args.epochs, args.seeds = 20, 2, "0"
    minority = args.minority.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    from transferkit._machine import cpu_description

    cpu = cpu_description()
    print(f"CPU: {cpu}", flush=True)
    started, cpu_started = time.perf_counter(), _cpu()
    with tempfile.TemporaryDirectory(prefix="tk-imbalance-bench-") as cache:
        os.environ["TRANSFERKIT_CACHE"] = cache  # read when caching starts: features once
        data = unbalanced_subset(args.data, args.per_class, minority, args.ratio)
        counts = data.counts()
        print(f"Data: CIFAR-10 train {dict(zip(data.class_names, counts['train']))}, test "
              f"{counts['test'][0]} per class; {args.epochs} epochs, seeds {seeds}", flush=True)
        rows = []
        for seed in seeds:
            for weighting in WEIGHTINGS:
                rows.append(measure(data, minority, seed=seed, epochs=args.epochs,
                                    class_weight=weighting))
                print(json.dumps(rows[-1]), flush=True)
    text = table(rows, minority)
    print(text)
    result = {"measured": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu,
              "mode": "quick" if args.quick else "full",
              "data": {"source": "CIFAR-10 (cifar10-jpeg.tar.gz)", "per_class": args.per_class,
                       "minority": minority, "ratio": args.ratio,
                       "train_counts": dict(zip(data.class_names, counts["train"])),
                       "test_per_class": counts["test"][0]},
              "model": "mobilenet_v2, ImageNet weights, frozen, head (128,), 96 px",
              "epochs": args.epochs, "batch_size": 64, "rows": rows, "table": text,
              "total_wall_s": round(time.perf_counter() - started, 1),
              "total_cpu_s": round(_cpu() - cpu_started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"Wrote {args.out} ({result['total_wall_s']:.0f} s wall, "
          f"{result['total_cpu_s']:.0f} s CPU in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
