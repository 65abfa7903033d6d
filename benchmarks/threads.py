"""TensorFlow's intra-/inter-op thread settings on a small CPU: is the default right?

    python benchmarks/threads.py [--cifar ../shared/data/cifar10-jpeg.tar.gz] [--per-class 100]
        [--batches 10] [--epochs 2] [--reps 3] [--settings 0/0,1/1,1/2,2/1,2/2]
        [--out benchmarks/threads.json] [--merge] [--quick]

TensorFlow runs one op on up to ``intra`` threads (a convolution split over
cores) and up to ``inter`` independent ops at once; ``0`` lets it choose (the
number of cores for both). They can only be set before TensorFlow initialises
its context, so every measurement is a fresh process that calls
``tf.config.threading.set_intra_op_parallelism_threads`` and
``set_inter_op_parallelism_threads`` first (and checks that they took).

- ``plain_fit``: ``model.fit`` of the unfrozen 96-px MobileNetV2 (random init,
  random 96-px float images, batch 64, ``--batches`` batches, one epoch after a
  compiling warm-up).
- ``fine_tune``: ``tk.fine_tune`` with its defaults (cached prefix, crop + flip) on
  real CIFAR-10 (``--per-class`` images per class, ``--epochs`` epochs, seed 0,
  determinism on), computing the frozen prefix's activations included: the
  on-disk cache is off (``TRANSFERKIT_CACHE=off``), so every run does what a
  first ``fine_tune`` does, whatever ran before.

The machine is shared, so the runs are interleaved: each repetition runs every
case and setting once, in an order rotated per repetition, and the table gives
medians over ``--reps`` repetitions of images/s and CPU seconds (user +
system), and each setting's img/s relative to the default's in the same
repetition (median of those per-repetition ratios). Prints the CPU (model,
vector extensions), the load average and a table; writes JSON to ``--out``.
``--merge`` keeps the other cases' rows of an earlier ``--out``. ``--quick`` (2 batches, 10 images per class, 1 epoch, two settings, one
repetition) proves the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
DEFAULT_SETTINGS = "0/0,1/1,1/2,2/1,2/2"
"""``intra/inter`` pairs; ``0/0`` is TensorFlow's default (its own choice)."""

CASE = r'''
import json, resource, sys, time
case, cifar, per_class, batches, epochs, intra, inter = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8])
import tensorflow as tf
# Before anything initialises TensorFlow's context: afterwards the calls raise.
tf.config.threading.set_intra_op_parallelism_threads(intra)
tf.config.threading.set_inter_op_parallelism_threads(inter)
import numpy as np
import transferkit as tk
import keras

def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime

result = {}
if case == "plain_fit":
    keras.utils.set_random_seed(0)
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
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    after = usage()
    result["images"] = len(x)
else:
    tk.make_deterministic(0)
    data = tk.load_cifar10(cifar, limit_per_class=per_class, seed=0)
    model = tk.build_transfer_model("mobilenet_v2", data, head=())
    before = usage()
    run = tk.fine_tune(model, data, epochs=epochs, seed=0, verbose=0)
    after = usage()
    result["images"] = len(data.y_train) * epochs
    result["test_accuracy"] = run.evaluation.accuracy
wall, cpu = (b - a for a, b in zip(before, after))
result.update(wall_s=wall, cpu_s=cpu,
              took=[tf.config.threading.get_intra_op_parallelism_threads(),
                    tf.config.threading.get_inter_op_parallelism_threads()])
print("RESULT " + json.dumps(result))
'''


def parse_settings(text: str) -> list[tuple[int, int]]:
    """``"0/0,2/1"`` -> ``[(0, 0), (2, 1)]`` (intra, inter); the first must be the default 0/0."""
    settings = [tuple(int(n) for n in part.split("/")) for part in text.split(",")]
    if settings[0] != (0, 0):
        raise SystemExit("--settings must start with 0/0, the default the others are compared to")
    return settings


def run_case(case: str, setting: tuple[int, int], args) -> dict:
    # 0/0 must mean TensorFlow's own default, whatever this shell (or the test suite) set.
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", TRANSFERKIT_CACHE="off")
    proc = subprocess.run([sys.executable, "-c", CASE, case, str(args.cifar), str(args.per_class),
                           str(args.batches), str(args.epochs), *map(str, setting)],
                          env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{case} {setting} failed:\n{proc.stderr[-3000:]}")
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    row = json.loads(line[len("RESULT "):])
    if row["took"] != list(setting):
        raise RuntimeError(f"{case}: asked for intra/inter {setting}, TensorFlow has {row['took']}")
    row.update(case=case, intra=setting[0], inter=setting[1], img_s=row["images"] / row["wall_s"])
    return row


def schedule(cases: list[str], settings: list[tuple[int, int]], reps: int) -> list[tuple]:
    """``(rep, case, setting)`` in run order: every pair once per repetition, rotated each time.

    Rotating puts each setting early and late in a repetition alike, so a change
    of the machine's load during one does not favour a fixed setting.
    """
    pairs = [(case, s) for s in settings for case in cases]
    return [(rep, *pairs[(i + rep) % len(pairs)]) for rep in range(reps) for i in range(len(pairs))]


def summarise(rows: list[dict]) -> list[dict]:
    """Per case and setting: median img/s, CPU s, and the median per-repetition ratio to 0/0."""
    default = {(r["case"], r["rep"]): r["img_s"] for r in rows if (r["intra"], r["inter"]) == (0, 0)}
    out = []
    for key in dict.fromkeys((r["case"], r["intra"], r["inter"]) for r in rows):
        mine = [r for r in rows if (r["case"], r["intra"], r["inter"]) == key]
        ratios = [r["img_s"] / default[(r["case"], r["rep"])] for r in mine
                  if (r["case"], r["rep"]) in default]
        accuracies = sorted({r["test_accuracy"] for r in mine if "test_accuracy" in r})
        out.append({"case": key[0], "intra": key[1], "inter": key[2], "reps": len(mine),
                    "img_s": statistics.median(r["img_s"] for r in mine),
                    "img_s_all": [round(r["img_s"], 1) for r in mine],
                    "cpu_s": statistics.median(r["cpu_s"] for r in mine),
                    "vs_default": statistics.median(ratios) if ratios else None,
                    "vs_default_all": [round(x, 3) for x in ratios],
                    "test_accuracy": accuracies})
    return out


def markdown(result: dict) -> str:
    lines = ["| case | intra/inter | reps | img/s (median) | img/s (each) | CPU s (median) "
             "| vs 0/0 (median ratio) | ratios | test accuracy |",
             "|---|---|---:|---:|---|---:|---:|---|---|"]
    for s in result["summary"]:
        setting = "0/0 (default)" if (s["intra"], s["inter"]) == (0, 0) else f"{s['intra']}/{s['inter']}"
        ratio = "" if s["vs_default"] is None else f"{s['vs_default']:.3f}"
        accuracy = ", ".join(f"{a:.4f}" for a in s["test_accuracy"])
        lines.append(f"| {s['case']} | {setting} | {s['reps']} | {s['img_s']:.1f} "
                     f"| {', '.join(map(str, s['img_s_all']))} | {s['cpu_s']:.1f} | {ratio} "
                     f"| {', '.join(map(str, s['vs_default_all']))} | {accuracy} |")
    lines.append(f"\nCPU: {result['cpu']}; load average {result['load']} at the start, "
                 f"{result['load_end']} at the end.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cifar", default=DEFAULT_CIFAR)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--settings", default=DEFAULT_SETTINGS, help="intra/inter pairs, 0/0 first")
    p.add_argument("--cases", default="plain_fit,fine_tune")
    p.add_argument("--out", default=ROOT / "benchmarks" / "threads.json")
    p.add_argument("--merge", action="store_true", help="keep other cases' rows of --out")
    p.add_argument("--quick", action="store_true",
                   help="2 batches, 10 per class, 1 epoch, 0/0 and 1/1, one repetition: a check")
    args = p.parse_args(argv)
    if args.quick:
        args.batches, args.per_class, args.epochs, args.reps = 2, 10, 1, 1
        args.settings = "0/0,1/1"
    sys.path.insert(0, str(ROOT / "src"))
    from transferkit._machine import cpu_description

    result = {"cpu": cpu_description(), "load": round(os.getloadavg()[0], 1), "quick": args.quick,
              "per_class": args.per_class, "batches": args.batches, "epochs": args.epochs,
              "reps": args.reps, "cases": args.cases, "rows": []}
    for rep, case, setting in schedule(args.cases.split(","), parse_settings(args.settings), args.reps):
        row = run_case(case, setting, args)
        result["rows"].append({**row, "rep": rep})
        print(f"rep {rep} {case} {setting[0]}/{setting[1]}: {row['img_s']:.1f} img/s, "
              f"{row['cpu_s']:.1f} CPU s", flush=True)
    result["load_end"] = round(os.getloadavg()[0], 1)
    if args.merge and Path(args.out).exists():
        earlier = json.loads(Path(args.out).read_text())
        kept = [r for r in earlier["rows"] if r["case"] not in args.cases.split(",")]
        result["rows"] = kept + result["rows"]
        result["earlier"] = [*earlier.get("earlier", []),  # the runs whose rows were kept
                             {k: earlier[k] for k in ("cpu", "load", "load_end", "reps", "cases")
                              if k in earlier}]
    result["summary"] = summarise(result["rows"])
    print(markdown(result))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
