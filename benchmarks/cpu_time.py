"""System time and page faults: TensorFlow's default CPU allocator against its BFC allocator.

    python benchmarks/cpu_time.py [--cifar ../shared/data/cifar10-jpeg.tar.gz] [--per-class 100]
        [--batches 12] [--out benchmarks/cpu_time.json] [--quick]

``import transferkit`` sets ``TF_CPU_ALLOCATOR_USE_BFC=true`` before TensorFlow loads
(unless the variable is set). TensorFlow's default CPU allocator hands each large
buffer (a batch's activations, hundreds of MB for MobileNetV2) back to the kernel when
freed, and the next step faults every page of it in again: system time, not
training. The BFC allocator keeps its buffers and reuses them.

Each case runs in a fresh process, once with ``TF_CPU_ALLOCATOR_USE_BFC=false`` (the
default TensorFlow had) and once with ``true``; the variable is set explicitly, so
``import transferkit`` changes neither. Measured inside the process after a warm-up
(compiling is left out): wall seconds, user and system CPU seconds (all threads),
minor page faults and peak RSS.

- ``plain_fit``: ``model.fit`` of the unfrozen 96-px MobileNetV2 (random init,
  random 96-px float images, batch 64, ``--batches`` batches, 2 epochs): the
  plain-Keras reference.
- ``fine_tune``: ``tk.fine_tune`` with its defaults (cached prefix, crop + flip) on
  real CIFAR-10 (``--per-class`` images per class, 2 epochs, seed 0), with
  determinism on, so both allocators must give the same test accuracy.

Prints the CPU (model, vector extensions) and a table; writes JSON to ``--out``.
``--quick`` (4 batches, 10 images per class, 1 epoch) proves the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"

CASE = r'''
import json, os, resource, sys, time
import numpy as np
import transferkit as tk
import keras

case, cifar, per_class, batches, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt

result = {}
if case == "plain_fit":
    backbone = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False,
                                              weights=None, pooling="avg")
    inp = keras.Input((96, 96, 3))
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(backbone(inp)))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((64 * batches, 96, 96, 3), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=0)  # compiles
    before = usage()
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    after = usage()
    result["images"] = len(x) * epochs
else:
    tk.make_deterministic(0)
    data = tk.load_cifar10(cifar, limit_per_class=per_class, seed=0)
    model = tk.build_transfer_model("mobilenet_v2", data, head=())
    before = usage()
    run = tk.fine_tune(model, data, epochs=epochs, seed=0, verbose=0)
    after = usage()
    result["images"] = len(data.y_train) * epochs
    result["test_accuracy"] = run.evaluation.accuracy
wall, user, system, faults = (b - a for a, b in zip(before, after))
result.update(wall_s=wall, user_s=user, sys_s=system, minor_faults=faults,
              peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print("RESULT " + json.dumps(result))
'''


def run_case(case: str, bfc: bool, args) -> dict:
    env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true" if bfc else "false",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", CASE, case, str(args.cifar), str(args.per_class),
                           str(args.batches), str(args.epochs)],
                          env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{case} (BFC {bfc}) failed:\n{proc.stderr[-3000:]}")
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    row = json.loads(line[len("RESULT "):])
    cpu = row["user_s"] + row["sys_s"]
    row.update(case=case, bfc=bfc, sys_share=row["sys_s"] / cpu if cpu else 0.0,
               img_s=row["images"] / row["wall_s"])
    return row


def markdown(result: dict) -> str:
    lines = ["| case | allocator | img/s | user s | system s | system share | minor faults "
             "| peak RSS MB | test accuracy |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        accuracy = f"{row['test_accuracy']:.4f}" if "test_accuracy" in row else ""
        lines.append(f"| {row['case']} | {'BFC' if row['bfc'] else 'default'} | {row['img_s']:.1f} "
                     f"| {row['user_s']:.1f} | {row['sys_s']:.1f} | {100 * row['sys_share']:.1f} % "
                     f"| {row['minor_faults']:,} | {row['peak_rss_mb']:.0f} | {accuracy} |")
    lines.append(f"\nCPU: {result['cpu']}; load average at the start {result['load']}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cifar", default=DEFAULT_CIFAR)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--batches", type=int, default=12)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--cases", default="plain_fit,fine_tune")
    p.add_argument("--out", default=ROOT / "benchmarks" / "cpu_time.json")
    p.add_argument("--quick", action="store_true", help="4 batches, 10 per class, 1 epoch: a check")
    args = p.parse_args(argv)
    if args.quick:
        args.batches, args.per_class, args.epochs = 4, 10, 1
    sys.path.insert(0, str(ROOT / "src"))
    from transferkit._machine import cpu_description

    result = {"cpu": cpu_description(), "load": round(os.getloadavg()[0], 1), "quick": args.quick,
              "rows": [run_case(case, bfc, args) for case in args.cases.split(",")
                       for bfc in (False, True)]}
    print(markdown(result))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
