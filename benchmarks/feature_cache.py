"""The on-disk feature cache: the frozen head with a cold cache against a warm one.

    python benchmarks/feature_cache.py [--data ../shared/data/cifar10-jpeg.tar.gz]
        [--per-class 500] [--epochs 10] [--out benchmarks/feature_cache.json] [--quick]

What it measures: ``train(build_transfer_model("mobilenet_v2", data), data)``
(ImageNet weights from the Keras cache, 96 px, 10 epochs, batch 64) on a real
CIFAR-10 subset (``--per-class`` images per class in train + validation and in
test, seed 0), three times, each in its own process: with the cache off
(``TRANSFERKIT_CACHE=off``: what every call cost before), with an empty cache
folder (cold: the features are computed and written) and with that folder
again (warm: they are read back). For each: the whole ``train`` call's wall
and CPU seconds (user + system, every thread), the feature step
(``run.timings["features"]``), the test accuracy and the cache's size after.

The target (the issue): warm at least 3x faster than cold, with the same test
accuracy. Prints the CPU (model, vector extensions) and a table, and writes
the figures as JSON to ``--out``. ``--quick`` (20 images per class, 2 epochs)
proves the script works; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
CASES = ("off", "cold", "warm")
TARGET = 3.0  # warm at least this many times faster than cold (wall time of the call)


def child(case: str, npz: str, epochs: int) -> dict:
    """One ``train`` call in this process; the cache is what ``TRANSFERKIT_CACHE`` says."""
    import keras
    import numpy as np

    from transferkit import build_transfer_model, train
    from transferkit._cache import FeatureStore
    from transferkit.data.cifar import CIFAR10_CLASSES
    from transferkit.data.splits import DataSplits

    a = np.load(npz)
    data = DataSplits(*(a[k] for k in ("x_train", "y_train", "x_val", "y_val", "x_test",
                                       "y_test")), CIFAR10_CLASSES, source=npz)
    keras.utils.set_random_seed(0)
    model = build_transfer_model("mobilenet_v2", data)
    wall, cpu = time.perf_counter(), time.process_time()
    run = train(model, data, epochs=epochs, batch_size=64, seed=0, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    store = FeatureStore.from_environment()
    return {"case": case, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "features_s": round(run.timings["features"], 2),
            "test_accuracy": run.evaluation.accuracy,
            "cache_mb": None if store is None else round(store.info().total_bytes / 2**20, 1)}


def run_case(case: str, npz: Path, cache: Path, epochs: int) -> dict:
    env = {**os.environ, "TRANSFERKIT_CACHE": "off" if case == "off" else str(cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, __file__, "--child", case, "--npz", str(npz),
                           "--epochs", str(epochs)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(data_path: Path, per_class: int, folder: Path) -> tuple[Path, dict]:
    """The subset, saved once for the children; its split sizes."""
    import numpy as np

    from transferkit import load_cifar10

    data = load_cifar10(data_path, limit_per_class=per_class, seed=0, download=False)
    npz = folder / "subset.npz"
    np.savez(npz, **{f"{p}_{s}": getattr(data, f"{p}_{s}") for p in ("x", "y")
                     for s in ("train", "val", "test")})
    return npz, {s: len(data.split(s)[1]) for s in ("train", "val", "test")}


def table(rows: list[dict]) -> str:
    lines = ["| cache | train() wall | train() CPU | features | test accuracy | cache size |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        size = "-" if r["cache_mb"] is None else f"{r['cache_mb']:.1f} MB"
        lines.append(f"| {r['case']} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | "
                     f"{r['features_s']:.1f} s | {r['test_accuracy']:.4f} | {size} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "feature_cache.json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--npz", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.npz, args.epochs)))
        return 0
    if args.quick:
        args.per_class, args.epochs = 20, 2
    from transferkit._machine import cpu_description

    cpu = cpu_description()
    print(f"CPU: {cpu}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tk-feature-cache-bench-") as tmp:
        npz, sizes = prepare(args.data, args.per_class, Path(tmp))
        print(f"Data: CIFAR-10, {args.per_class} per class: {sizes}; {args.epochs} epochs")
        rows = [run_case(case, npz, Path(tmp) / "cache", args.epochs) for case in CASES]
    by = {r["case"]: r for r in rows}
    speedup = by["cold"]["wall_s"] / by["warm"]["wall_s"]
    result = {
        "measured": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu, "mode": "quick" if args.quick
        else "full", "data": {"per_class": args.per_class, **sizes}, "epochs": args.epochs,
        "rows": rows, "warm_speedup_wall": round(speedup, 2),
        "warm_speedup_cpu": round(by["cold"]["cpu_s"] / by["warm"]["cpu_s"], 2),
        "same_accuracy": by["cold"]["test_accuracy"] == by["warm"]["test_accuracy"],
        "target": TARGET, "met": speedup >= TARGET, "total_s": round(time.perf_counter() - started),
    }
    print(table(rows))
    print(f"warm vs cold: {speedup:.2f}x wall, {result['warm_speedup_cpu']:.2f}x CPU "
          f"(target {TARGET:.0f}x: {'met' if result['met'] else 'NOT met'}); same accuracy: "
          f"{result['same_accuracy']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
