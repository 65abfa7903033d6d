"""Test-time augmentation: ``evaluate(..., tta=True)`` against plain ``evaluate``, and its cost.

    python benchmarks/tta.py [--datasets cifar10,flowers] [--seeds 0,1,2] [--augments flip,none]
        [--cifar ../shared/data/cifar10-jpeg.tar.gz] [--flowers ../shared/data/flowers-128.tar.gz]
        [--per-class 500] [--test-images 3000] [--epochs 10] [--out benchmarks/tta.json] [--quick]

What it measures: a frozen ImageNet MobileNetV2 (Keras cache, ``KERAS_HOME``) whose
head is trained with ``tk.train`` (``--epochs``, batch 64, on cached features;
``augment="flip"`` as ``transferkit train`` does, or ``"none"``: no augmentation),
then scored with :func:`transferkit.evaluate` twice on the same images: plain, and
with ``tta=True`` (each image's probabilities averaged with its mirror image's).

- ``cifar10``: ``load_cifar10(limit_per_class=N, seed=0)`` (N train + val images
  per class, 32 px, upscaled to 96 px inside the model); the test split is cut to
  ``--test-images`` images, the same number of each class.
- ``flowers``: ``load_image_folder`` on the flower photos (128 px, 5 classes, split
  80/10/10 with seed 0; fed at 160 px, the size it chooses); test and validation
  splits (430 each) are scored, the test split reported first.

The data split is fixed (seed 0); ``--seeds`` vary the head's initialisation and
shuffling, so every seed after the first reads the backbone's features back from the
on-disk feature cache (a temporary folder). Each row: accuracy without and with TTA,
the difference in points, the images TTA fixed and broke (right with TTA only, wrong
with TTA only), and the wall and CPU seconds (user + system, all threads) of each
``evaluate`` call on the test split after a warm-up, with their ratio. Prints the CPU
(model, vector extensions) and the table; writes everything to ``--out`` as JSON.
``--quick`` (20 images per class, 100 test images, 1 epoch, seed 0, flip) proves the
script works; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_CIFAR = SHARED / "data" / "cifar10-jpeg.tar.gz"
DEFAULT_FLOWERS = SHARED / "data" / "flowers-128.tar.gz"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(call):
    """``(result, wall seconds, CPU seconds)`` of ``call()``."""
    wall, cpu = time.perf_counter(), _cpu()
    result = call()
    return result, time.perf_counter() - wall, _cpu() - cpu


def load(name: str, args):
    """The dataset ``name`` and the splits to score (the first one is timed)."""
    import numpy as np

    import transferkit as tk

    if name == "cifar10":
        data = tk.load_cifar10(args.cifar, limit_per_class=args.per_class, seed=0, download=False)
        # The first test images of each class, as many of each (the split is ordered by class).
        per_class = max(1, args.test_images // data.num_classes)
        keep = np.concatenate([np.flatnonzero(data.y_test == c)[:per_class]
                               for c in range(data.num_classes)])
        data = dataclasses.replace(data, x_test=data.x_test[keep], y_test=data.y_test[keep])
        return data, ("test",)
    data = tk.load_image_folder(args.flowers, seed=0)
    if args.quick:
        data = data.limit(args.per_class, seed=0)
    return data, ("test", "val")


def compare(plain, tta) -> dict:
    """Accuracy without and with TTA on the same images, and which images changed."""
    right, right_tta = plain.y_pred == plain.y_true, tta.y_pred == tta.y_true
    return {"images": len(plain.y_true), "accuracy": round(plain.accuracy, 4),
            "accuracy_tta": round(tta.accuracy, 4),
            "gain_points": round(100 * (tta.accuracy - plain.accuracy), 2),
            "fixed": int((right_tta & ~right).sum()), "broken": int((right & ~right_tta).sum()),
            "loss": round(plain.loss, 4), "loss_tta": round(tta.loss, 4)}


def measure(data, splits: tuple[str, ...], *, augment: str, seed: int, epochs: int) -> dict:
    """One head trained, then each split scored plain and with TTA (the first split timed)."""
    import keras

    import transferkit as tk

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = tk.build_transfer_model("mobilenet_v2", data)
    _, train_wall, train_cpu = timed(lambda: tk.train(
        model, data, epochs=epochs, batch_size=64, seed=seed, verbose=0,
        augment="flip" if augment == "flip" else False))
    x = data.split(splits[0])[0][:64]
    tk.predict(model, x)  # warm-up: the predict function is traced before either timing
    tk.predict(model, x, tta=True)
    row = {"augment": augment, "seed": seed, "train_wall_s": round(train_wall, 1),
           "train_cpu_s": round(train_cpu, 1)}
    for i, split in enumerate(splits):
        plain, wall, cpu = timed(lambda s=split: tk.evaluate(model, data, s))
        tta, wall_tta, cpu_tta = timed(lambda s=split: tk.evaluate(model, data, s, tta=True))
        row[split] = compare(plain, tta)
        if i == 0:
            row["cost"] = {"split": split, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                           "wall_tta_s": round(wall_tta, 2), "cpu_tta_s": round(cpu_tta, 2),
                           "cpu_ratio": round(cpu_tta / max(cpu, 1e-9), 2)}
    print(json.dumps(row), flush=True)
    return row


def summarise(rows: list[dict], split: str) -> dict:
    """Mean accuracy without and with TTA over the rows, the mean gain, fixed and broken."""
    n = len(rows)
    mean = lambda key: sum(r[split][key] for r in rows) / n  # noqa: E731
    return {"rows": n, "accuracy": round(mean("accuracy"), 4),
            "accuracy_tta": round(mean("accuracy_tta"), 4),
            "gain_points": round(mean("gain_points"), 2),
            "gains": [r[split]["gain_points"] for r in rows],
            "fixed": sum(r[split]["fixed"] for r in rows),
            "broken": sum(r[split]["broken"] for r in rows)}


def markdown(result: dict) -> str:
    lines = [f"CPU: {result['cpu']}; measured {result['measured']}", "",
             "| data | head trained with | seed | split (images) | accuracy | with TTA | gain "
             "(points) | fixed / broken | evaluate CPU s: plain, TTA (ratio) |",
             "|---|---|---:|---|---:|---:|---:|---:|---|"]
    for name, block in result["datasets"].items():
        for r in block["rows"]:
            cost = r["cost"]
            for split in block["splits"]:
                s = r[split]
                timing = (f"{cost['cpu_s']:.1f}, {cost['cpu_tta_s']:.1f} ({cost['cpu_ratio']:.2f}x)"
                          if split == cost["split"] else "")
                lines.append(f"| {name} | {r['augment']} | {r['seed']} | {split} ({s['images']:,}) "
                             f"| {s['accuracy']:.4f} | {s['accuracy_tta']:.4f} | "
                             f"{s['gain_points']:+.2f} | {s['fixed']} / {s['broken']} | {timing} |")
    lines += ["", "Means over seeds:", ""]
    for name, block in result["datasets"].items():
        for key, m in block["means"].items():
            lines.append(f"- {name}, {key}: {m['accuracy']:.4f} -> {m['accuracy_tta']:.4f} "
                         f"({m['gain_points']:+.2f} points over {m['rows']} seed(s): "
                         f"{', '.join(f'{g:+.2f}' for g in m['gains'])}; fixed {m['fixed']}, "
                         f"broken {m['broken']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="cifar10,flowers")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--augments", default="flip,none", help="the head's training augmentation")
    parser.add_argument("--cifar", type=Path, default=DEFAULT_CIFAR)
    parser.add_argument("--flowers", type=Path, default=DEFAULT_FLOWERS)
    parser.add_argument("--per-class", type=int, default=500, help="CIFAR-10 images per class")
    parser.add_argument("--test-images", type=int, default=3000, help="CIFAR-10 test images scored")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "tta.json")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.per_class, args.test_images, args.epochs = 20, 100, 1
        args.seeds, args.augments = "0", "flip"
    from transferkit._machine import cpu_description

    cpu = cpu_description()
    print(f"CPU: {cpu}", flush=True)
    started, cpu_started = time.perf_counter(), _cpu()
    result = {"measured": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu,
              "mode": "quick" if args.quick else "full", "epochs": args.epochs, "datasets": {}}
    with tempfile.TemporaryDirectory(prefix="tk-tta-bench-") as cache:
        os.environ["TRANSFERKIT_CACHE"] = cache  # the seeds after the first read features back
        for name in args.datasets.split(","):
            data, splits = load(name, args)
            print(f"{name}: {data!r}", flush=True)
            rows = [measure(data, splits, augment=augment, seed=int(seed), epochs=args.epochs)
                    for augment in args.augments.split(",") for seed in args.seeds.split(",")]
            means = {f"{augment}, {split}": summarise([r for r in rows if r["augment"] == augment],
                                                      split)
                     for augment in args.augments.split(",") for split in splits}
            result["datasets"][name] = {
                "data": repr(data), "sizes": {s: len(data.split(s)[1]) for s in ("train", "val", "test")},
                "splits": list(splits), "rows": rows, "means": means}
    result.update(total_wall_s=round(time.perf_counter() - started),
                  total_cpu_s=round(_cpu() - cpu_started))
    print(markdown(result))
    print(f"Total: {result['total_wall_s']} s wall, {result['total_cpu_s']} s CPU")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
