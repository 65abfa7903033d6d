"""transferkit vs the plain-Keras recipe: time, memory, throughput and accuracy.

    python benchmarks/run.py [--quick] [--data ../shared/data/cifar10-jpeg.tar.gz] [--out benchmarks]

Each case runs in its own process, so peak resident memory (``ru_maxrss``) is
the case's own. Writes ``results.json`` and ``RESULTS.md`` under ``--out``
and prints the table. ``--quick`` uses a small real subset and 2 epochs: it
proves the script works (CI runs it); its figures mean nothing.

Cases (issue 6):
 1+2  frozen MobileNetV2 head at 96x96, 10 epochs on the training set:
      transferkit (cached features, uint8 input) vs the plain recipe (float32
      array resized up front, fitted through the frozen backbone every epoch);
      wall time, median epoch time, test accuracy, peak RSS.
 3    feature extraction throughput: ``extract_features`` vs bare
      ``backbone.predict`` on pre-made preprocessed 96x96 tensors.
 4    input pipeline: loading all 60,000 images (image-folder tar.gz and the
      official pickle format), and decode+batch throughput of ``as_tf_dataset``.
 5    baseline CNN: training images/second and test accuracy within a fixed budget.
 6    accuracy at equal epochs: frozen 32x32 (the naive recipe) vs the default resize.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
DEFAULT_WEIGHTS = (ROOT.parent / "shared" / "weights"
                   / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")


# --------------------------------------------------------------------------- helpers


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _load_npz(path):
    import numpy as np

    from transferkit.data.cifar import CIFAR10_CLASSES
    from transferkit.data.splits import DataSplits

    a = np.load(path)
    empty_x, empty_y = a["x_train"][:0], a["y_train"][:0]
    return DataSplits(a["x_train"], a["y_train"], empty_x, empty_y, a["x_test"], a["y_test"],
                      CIFAR10_CLASSES, source=str(path))


def _epoch_timer():
    """A callback recording the wall seconds of each epoch in ``.times``.

    Built on call: Keras is imported only after the parent has set KERAS_HOME.
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._t)

    return EpochTimer()


# --------------------------------------------------------------------------- cases (child side)


def case_transferkit_head(cfg):
    import keras

    from transferkit import build_transfer_model, train

    data = _load_npz(cfg["npz"])
    keras.utils.set_random_seed(0)
    model = build_transfer_model("mobilenet_v2", 10, weights=cfg["weights"], head=(128,),
                                 dropout=0.3, image_size=cfg.get("image_size"))
    timer = _epoch_timer()
    t = time.perf_counter()
    run = train(model, data, epochs=cfg["epochs"], batch_size=64, seed=0, callbacks=[timer],
                verbose=0)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "features_s": run.timings.get("features"),
            "median_epoch_s": statistics.median(timer.times), "test_accuracy": run.evaluation.accuracy,
            "images_extracted": len(data.y_train) + len(data.y_test)}


def case_plain_head(cfg):
    import keras
    import numpy as np
    import tensorflow as tf

    data = _load_npz(cfg["npz"])
    t = time.perf_counter()
    # The recipe as written: float arrays of the whole set, resized up front.
    x_train = tf.image.resize(data.x_train.astype("float32"), (96, 96)).numpy()
    x_test = tf.image.resize(data.x_test.astype("float32"), (96, 96)).numpy()
    # MobileNetV2's own preprocessing (the usual "/ 255" would cost accuracy, not time).
    x_train = keras.applications.mobilenet_v2.preprocess_input(x_train)
    x_test = keras.applications.mobilenet_v2.preprocess_input(x_test)
    prep = time.perf_counter() - t
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False,
                                          weights=cfg["weights"])
    base.trainable = False
    model = keras.Sequential([
        base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.3), keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = _epoch_timer()
    model.fit(x_train, data.y_train, epochs=cfg["epochs"], batch_size=64, callbacks=[timer],
              verbose=0)
    probs = model.predict(x_test, batch_size=256, verbose=0)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "prepare_s": prep, "median_epoch_s": statistics.median(timer.times),
            "test_accuracy": float(np.mean(probs.argmax(1) == data.y_test)),
            "float_array_gb": (x_train.nbytes + x_test.nbytes) / 1e9}


def case_extraction(cfg):
    import keras
    import tensorflow as tf

    from transferkit import build_transfer_model, extract_features

    data = _load_npz(cfg["npz"])
    model = build_transfer_model("mobilenet_v2", 10, weights=cfg["weights"])
    extract_features(model, data, "test", verbose=0)  # warm-up: graph tracing
    n = len(data.y_train)
    tk_times = []
    for _ in range(cfg["repeats"]):
        t = time.perf_counter()
        extract_features(model, data, "train", verbose=0)
        tk_times.append(time.perf_counter() - t)
    # The machine's limit: the same backbone on tensors already resized and preprocessed.
    base = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False,
                                          weights=cfg["weights"], pooling="avg")
    chunk = data.x_train[: min(n, 10_000)]
    ready = keras.applications.mobilenet_v2.preprocess_input(
        tf.image.resize(chunk.astype("float32"), (96, 96)).numpy())
    base.predict(ready[:512], batch_size=256, verbose=0)
    bare_times = []
    for _ in range(cfg["repeats"]):
        t = time.perf_counter()
        base.predict(ready, batch_size=256, verbose=0)
        bare_times.append(time.perf_counter() - t)
    tk_ips = n / statistics.median(tk_times)
    bare_ips = len(ready) / statistics.median(bare_times)
    return {"transferkit_img_s": tk_ips, "bare_predict_img_s": bare_ips,
            "slowdown": bare_ips / tk_ips, "images": n, "repeats": cfg["repeats"]}


def case_input_pipeline(cfg):
    from transferkit import load_cifar10

    loads = []
    for _ in range(cfg["repeats"]):
        t = time.perf_counter()
        data = load_cifar10(cfg["data"], validation_split=0.0,
                            limit_per_class=cfg.get("limit_per_class"))
        loads.append(time.perf_counter() - t)
    n_all = len(data.y_train) + len(data.y_test)
    official = _official_format(data, Path(cfg["tmp"]))
    official_loads = []
    for _ in range(cfg["repeats"]):
        t = time.perf_counter()
        load_cifar10(official, validation_split=0.0)
        official_loads.append(time.perf_counter() - t)
    ds = data.as_tf_dataset("train", 256, shuffle=True)
    for _ in ds.take(2):
        pass
    t = time.perf_counter()
    seen = sum(int(b[0].shape[0]) for b in ds)
    batch_s = time.perf_counter() - t
    return {"images": n_all, "image_folder_load_s": statistics.median(loads),
            "official_format_load_s": statistics.median(official_loads),
            "as_tf_dataset_img_s": seen / batch_s}


def _official_format(data, folder: Path) -> Path:
    """The same images written as the official cifar-10-python.tar.gz (pickled batches)."""
    import pickle
    import tarfile

    import numpy as np

    src = folder / "cifar-10-batches-py"
    src.mkdir(parents=True, exist_ok=True)

    def dump(name, x, y):
        rows = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
        with open(src / name, "wb") as f:
            pickle.dump({b"data": rows, b"labels": [int(v) for v in y]}, f)

    for i, part in enumerate(np.array_split(np.arange(len(data.y_train)), 5), start=1):
        dump(f"data_batch_{i}", data.x_train[part], data.y_train[part])
    dump("test_batch", data.x_test, data.y_test)
    with open(src / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in data.class_names]}, f)
    archive = folder / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    return archive


def case_baseline_cnn(cfg):
    import keras

    from transferkit import build_baseline_cnn, train

    data = _load_npz(cfg["npz"])
    budget = cfg["budget_s"]

    class StopAtBudget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if time.perf_counter() - self.start > budget:
                self.model.stop_training = True

    keras.utils.set_random_seed(0)
    model = build_baseline_cnn(10)
    timer = _epoch_timer()
    run = train(model, data, epochs=1000, batch_size=64, seed=0, callbacks=[timer, StopAtBudget()],
                verbose=0)
    return {"budget_s": budget, "epochs": run.epochs_run,
            "train_img_s": len(data.y_train) / statistics.median(timer.times),
            "fit_s": run.timings["fit"], "test_accuracy": run.evaluation.accuracy}


CASES = {
    "transferkit_head": case_transferkit_head,
    "plain_head": case_plain_head,
    "naive_32px_head": case_transferkit_head,
    "extraction": case_extraction,
    "input_pipeline": case_input_pipeline,
    "baseline_cnn": case_baseline_cnn,
}


# --------------------------------------------------------------------------- parent side


def _child(case: str, cfg: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
    done = subprocess.run([sys.executable, __file__, "--child", case, f.name],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {case}: {', '.join(f'{k}={_fmt(v)}' for k, v in result.items())}", flush=True)
    return result


def _fmt(v):
    return f"{v:,.3f}" if isinstance(v, float) else str(v)


def _keras_home(weights_file: Path, folder: Path) -> Path:
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    for size in (96, 128, 160, 192, 224):
        link = models / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
        if not link.exists():
            link.symlink_to(weights_file.resolve())
    return folder


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS),
                   help="MobileNetV2 ImageNet weights file (served through a private Keras cache)")
    p.add_argument("--out", default=str(ROOT / "benchmarks"))
    p.add_argument("--epochs", type=int)
    p.add_argument("--cnn-budget-s", type=float, help="baseline CNN budget (default 600; 10 quick)")
    p.add_argument("--repeats", type=int, help="repeats of the cheap cases (default 3; 1 quick)")
    p.add_argument("--only", help="comma-separated cases to rerun, merged into --out/results.json")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        case, cfg_path = args.child
        result = CASES[case](json.loads(Path(cfg_path).read_text()))
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return 0
    return _parent(args)


def _parent(args) -> int:
    import numpy as np

    from transferkit import load_cifar10

    tmp = Path(tempfile.mkdtemp(prefix="transferkit-bench-"))
    os.environ["KERAS_HOME"] = str(_keras_home(Path(args.weights), tmp / "keras"))
    epochs = args.epochs or (2 if args.quick else 10)
    repeats = args.repeats or (1 if args.quick else 3)
    budget = args.cnn_budget_s or (10 if args.quick else 600)
    print(f"Loading {args.data} ...", flush=True)
    data = load_cifar10(args.data, validation_split=0.0, limit_per_class=50 if args.quick else None)
    npz = tmp / "data.npz"
    np.savez(npz, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
    base = {"npz": str(npz), "weights": "imagenet", "epochs": epochs, "repeats": repeats,
            "data": args.data, "tmp": str(tmp)}
    started = time.perf_counter()
    configs = {
        "transferkit_head": base,
        "plain_head": base,
        "naive_32px_head": {**base, "image_size": 32},
        "extraction": base,
        # --quick checks the script: 50 images per class, not all 60,000 twice (66 s of CI).
        "input_pipeline": {**base, "limit_per_class": 50 if args.quick else None},
        "baseline_cnn": {**base, "budget_s": budget},
    }
    out = Path(args.out)
    previous = out / "results.json"
    r = json.loads(previous.read_text())["cases"] if args.only and previous.exists() else {}
    chosen = args.only.split(",") if args.only else list(configs)
    print(f"{len(data.y_train)} train / {len(data.y_test)} test images; {epochs} epochs", flush=True)
    for case in chosen:
        r[case] = _child(case, configs[case])
    results = {
        "mode": "quick" if args.quick else "full",
        "machine": _machine(),
        "data": {"source": args.data, "train": len(data.y_train), "test": len(data.y_test)},
        "epochs": epochs,
        "cases": r,
        "ratios": _ratios(r),
        "total_s": round(time.perf_counter() - started, 1),
        "rerun": chosen if args.only else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = _markdown(results)
    (out / "RESULTS.md").write_text(table)
    print()
    print(table)
    return 0


def _ratios(r) -> dict:
    """Ratios between the cases present; a partial run (``--only``) gets those it can."""
    formulas = {
        "head_speedup_wall": (("transferkit_head", "plain_head"),
                              lambda tk, plain: plain["wall_s"] / tk["wall_s"]),
        "head_accuracy_diff_points": (("transferkit_head", "plain_head"),
                                      lambda tk, plain: 100 * (tk["test_accuracy"]
                                                               - plain["test_accuracy"])),
        "memory_ratio": (("transferkit_head", "plain_head"),
                         lambda tk, plain: plain["peak_rss_mb"] / tk["peak_rss_mb"]),
        "extraction_slowdown_vs_bare": (("extraction",), lambda ex: ex["slowdown"]),
        "resize_gain_points": (("transferkit_head", "naive_32px_head"),
                               lambda tk, naive: 100 * (tk["test_accuracy"]
                                                        - naive["test_accuracy"])),
    }
    return {name: fn(*(r[c] for c in cases)) for name, (cases, fn) in formulas.items()
            if all(c in r for c in cases)}


def _machine() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    from transferkit._machine import cpu_description

    return (f"{cpu_description()}, {len(gpus)} GPU; Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}")


def _rows(r, q) -> list[tuple[tuple[str, ...], str]]:
    """Each table row with the cases it needs, so a partial run prints what it measured."""
    tk, plain, naive = (r.get(k, {}) for k in ("transferkit_head", "plain_head", "naive_32px_head"))
    ex, io, cnn = (r.get(k, {}) for k in ("extraction", "input_pipeline", "baseline_cnn"))
    head, both = ("transferkit_head",), ("transferkit_head", "plain_head")
    return [
        (both, lambda: f"| 1. head training, MobileNetV2 96 px, wall time | {tk['wall_s']:.1f} s | "
         f"{plain['wall_s']:.1f} s | {q['head_speedup_wall']:.1f}x faster | >= 5x |"),
        (both, lambda: f"| 1. median epoch | {tk['median_epoch_s']:.2f} s (cached) | "
         f"{plain['median_epoch_s']:.1f} s | {plain['median_epoch_s'] / tk['median_epoch_s']:.0f}x | |"),
        (both, lambda: f"| 1. test accuracy | {tk['test_accuracy']:.4f} | {plain['test_accuracy']:.4f} | "
         f"{q['head_accuracy_diff_points']:+.2f} points | within 0.5 |"),
        (both, lambda: f"| 2. peak resident memory | {tk['peak_rss_mb'] / 1024:.2f} GiB | "
         f"{plain['peak_rss_mb'] / 1024:.2f} GiB (float arrays {plain['float_array_gb']:.1f} GB) | "
         f"{q['memory_ratio']:.1f}x less | <= 2.5 GB |"),
        (("extraction",), lambda: f"| 3. feature extraction | {ex['transferkit_img_s']:,.0f} img/s | "
         f"bare predict {ex['bare_predict_img_s']:,.0f} img/s | {ex['slowdown']:.2f}x | <= 1.2x |"),
        (("input_pipeline",), lambda: f"| 4. load {io['images']:,} images (image-folder tar.gz) | "
         f"{io['image_folder_load_s']:.1f} s | | | < 30 s |"),
        (("input_pipeline",), lambda: f"| 4. load (official pickle tar.gz) | "
         f"{io['official_format_load_s']:.1f} s | | | |"),
        (("input_pipeline",), lambda: f"| 4. as_tf_dataset decode+batch | "
         f"{io['as_tf_dataset_img_s']:,.0f} img/s | | | |"),
        (("baseline_cnn",), lambda: f"| 5. baseline CNN training | {cnn['train_img_s']:,.0f} img/s; "
         f"{cnn['epochs']} epochs in {cnn['budget_s']:.0f} s budget: test acc "
         f"{cnn['test_accuracy']:.4f} | | | |"),
        (("transferkit_head", "naive_32px_head"), lambda: "| 6. frozen MobileNetV2, default resize "
         f"vs naive 32 px | {tk['test_accuracy']:.4f} vs {naive['test_accuracy']:.4f} | | "
         f"{q['resize_gain_points']:+.1f} points | |"),
        ((*head, "baseline_cnn"), lambda: f"| 6. frozen transfer ({tk['wall_s']:.0f} s) vs CNN from "
         f"scratch ({cnn['fit_s']:.0f} s) | {tk['test_accuracy']:.4f} vs "
         f"{cnn['test_accuracy']:.4f} | | | |"),
    ]


def _markdown(res) -> str:
    r, q, d = res["cases"], res["ratios"], res["data"]
    lines = [
        f"# Benchmark results ({res['mode']})",
        "",
        f"Machine: {res['machine']}. Data: real CIFAR-10 copy, {d['train']:,} train / "
        f"{d['test']:,} test images. {res['epochs']} epochs. This run: {res['total_s']:.0f} s.",
        "",
        "| case | transferkit | plain Keras recipe | ratio | target |",
        "|---|---:|---:|---:|---|",
        *(row() for needs, row in _rows(r, q) if all(c in r for c in needs)),
        "",
        (f"Cases {', '.join(res['rerun'])} were rerun after a change and merged in "
         "(other rows: the earlier run).\n" if res.get("rerun") else ""),
        "Times are medians of repeated runs where cheap (cases 3, 4) and single runs with "
        "per-epoch medians otherwise; ratios are taken within one run of this script.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
