"""Full-data results on this machine, in one command: frozen head, fine-tuning, plain fit, CNN.

    python benchmarks/results.py [--data ../shared/data/cifar10-jpeg.tar.gz] [--only CASES]
                                 [--rerun] [--quick] [--no-docs]

Every case runs the whole pipeline (data loading, model building, training,
test evaluation) in its own process on all 50,000 CIFAR-10 training images
and the 10,000 test images, and writes ``benchmarks/full/cases/CASE.json`` the
moment it ends. A rerun skips the cases already written, so an interrupted run
resumes where it stopped (``--rerun`` measures again). Then it writes
``benchmarks/full/results.json`` and rewrites the results table in
``docs/results.md`` and ``README.md`` (between their ``full-data`` markers),
each figure with its data, machine, wall time and budget. The on-disk feature cache is
off (``TRANSFERKIT_CACHE=off``): every case computes its features as a first run does.

Cases:
  frozen_head      frozen MobileNetV2 at 128 px, Dense(512)/Dropout(0.5) head on cached
                   features, cosine schedule, 10 epochs (the frozen recipe docs/results.md chose)
  fine_tune        ``fine_tune`` with its defaults on a fresh MobileNetV2 model with a linear
                   head (``head=()``, the head that fine-tunes best: docs/results.md)
                   (after block_5_add, AdamW, warm-up + cosine, the frozen prefix cached)
  plain_fit        plain ``model.fit`` of the same unfrozen 96-px model: images/s, for the ratio
  fine_tune_classic  the textbook recipe (and the old default): frozen head, then the last
                   20 layers with Adam at 1e-5 and augmentation, 3 epochs
  baseline_cnn     ``train_from_scratch`` of the residual ``build_baseline_cnn``, 10 epochs

``--quick`` runs every case on 50 images per class for 2 epochs into
``benchmarks/quick-results`` and leaves the docs alone: it checks the script.
The full run takes about 40 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
CASES = ("frozen_head", "fine_tune", "plain_fit", "fine_tune_classic", "baseline_cnn")
EXPECTED_MIN = {"frozen_head": 3, "fine_tune": 12, "plain_fit": 2, "fine_tune_classic": 8,
                "baseline_cnn": 13}
MARK = ("<!-- full-data:begin -->", "<!-- full-data:end -->")
FINE_TUNE_MODEL = {"head": []}
"""``build_transfer_model`` arguments of the fine_tune and plain_fit cases: a linear head
fine-tuned to 0.9028 where the default Dense(128) reached 0.8989 (docs/results.md)."""


# --------------------------------------------------------------------------- cases (child side)


def _data(cfg):
    from transferkit import load_cifar10

    return load_cifar10(cfg["data"], validation_split=0.0, limit_per_class=cfg["per_class"],
                        download=False)


def case_frozen_head(cfg) -> dict:
    import transferkit as tk

    data = _data(cfg)
    keras_seed(0)
    model = tk.build_transfer_model("mobilenet_v2", 10, weights="imagenet",
                                    image_size=cfg["frozen_size"], head=(512,), dropout=0.5)
    run = tk.train(model, data, epochs=cfg["epochs_head"], schedule="cosine", verbose=2)
    return {"test_accuracy": run.evaluation.accuracy, "epochs": run.epochs_run,
            "image_size": cfg["frozen_size"],
            "features_s": run.timings.get("features"), "fit_s": run.timings["fit"]}


def case_fine_tune(cfg) -> dict:
    import transferkit as tk

    data = _data(cfg)
    keras_seed(0)
    model_kwargs = _model_kwargs(cfg)
    model = tk.build_transfer_model("mobilenet_v2", 10, weights="imagenet", **model_kwargs)
    epochs = {} if cfg["epochs_ft"] is None else {"epochs": cfg["epochs_ft"]}  # None: the default
    run = tk.fine_tune(model, data, seed=0, verbose=2, **epochs, **cfg.get("ft_kwargs", {}))
    # A budget's last epoch may stop part-way: count its steps, not its epochs.
    steps = (run.config.get("budget") or {}).get("steps")
    images = len(data.y_train) * run.epochs_run if steps is None else steps * run.config["batch_size"]
    spent = run.timings["fit"] + run.timings.get("features", 0.0)  # caching counts as training
    return {"test_accuracy": run.evaluation.accuracy, "epochs": run.epochs_run,
            "fit_s": run.timings["fit"], "features_s": run.timings.get("features"),
            "train_img_s": images / spent, "recipe": run.config["recipe"],
            "budget": run.config.get("budget"), "model_kwargs": model_kwargs}


def _model_kwargs(cfg) -> dict:
    return {**FINE_TUNE_MODEL, **cfg.get("model_kwargs", {})}


def case_plain_fit(cfg) -> dict:
    """``model.fit`` of the same 96-px model, whole backbone trainable: images/s after warm-up."""
    import keras

    import transferkit as tk

    data = _data(cfg)
    keras_seed(0)
    model = tk.build_transfer_model("mobilenet_v2", 10, weights="imagenet", freeze=False,
                                    **_model_kwargs(cfg))
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batch, steps = cfg["plain_batch"], cfg["plain_steps"]
    x, y = data.x_train[: batch * (steps + 2)], data.y_train[: batch * (steps + 2)]
    model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, epochs=1, verbose=0)  # trace
    t = time.perf_counter()
    model.fit(x[2 * batch:], y[2 * batch:], batch_size=batch, epochs=1, verbose=0)
    return {"train_img_s": (len(x) - 2 * batch) / (time.perf_counter() - t), "steps": steps,
            "batch_size": batch}


def case_fine_tune_classic(cfg) -> dict:
    import transferkit as tk

    data = _data(cfg)
    keras_seed(0)
    model = tk.build_transfer_model("mobilenet_v2", 10, weights="imagenet")
    head = tk.train(model, data, epochs=cfg["epochs_head"], verbose=2)
    run = tk.fine_tune(model, data, unfreeze=20, lr=1e-5, optimizer="adam", weight_decay=0,
                       warmup=0, progressive=False, epochs=cfg["epochs_classic"], seed=0, verbose=2)
    return {"test_accuracy": run.evaluation.accuracy, "head_test_accuracy": head.evaluation.accuracy,
            "epochs": run.epochs_run, "fit_s": run.timings["fit"]}


def case_baseline_cnn(cfg) -> dict:
    import transferkit as tk

    data = _data(cfg)
    keras_seed(0)
    cnn = tk.build_baseline_cnn(10, residual=True, filters=(48, 96, 192), head=(), dropout=0.2)
    run = tk.train_from_scratch(cnn, data, epochs=cfg["epochs_cnn"], seed=0, verbose=2)
    return {"test_accuracy": run.evaluation.accuracy, "epochs": run.epochs_run,
            "fit_s": run.timings["fit"]}


def keras_seed(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)


# --------------------------------------------------------------------------- parent side


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR-10 file or folder")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="MobileNetV2 ImageNet weights")
    p.add_argument("--out", help="output folder (default benchmarks/full; quick-results with --quick)")
    p.add_argument("--only", help=f"comma-separated cases (default all: {','.join(CASES)})")
    p.add_argument("--rerun", action="store_true", help="measure cases that already have results")
    p.add_argument("--quick", action="store_true", help="50 images per class, 2 epochs: a check")
    p.add_argument("--no-docs", action="store_true", help="leave docs/results.md and README alone")
    p.add_argument("--fine-tune-args", default="{}", type=json.loads, metavar="JSON",
                   help='a candidate recipe for the fine_tune case, e.g. \'{"label_smoothing": 0.1}\' '
                        "(measure it into another --out folder)")
    p.add_argument("--model-args", default="{}", type=json.loads, metavar="JSON",
                   help="build_transfer_model arguments of the fine_tune and plain_fit cases "
                        f"(default {json.dumps(FINE_TUNE_MODEL)}), e.g. '{{\"head\": [128]}}'")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        case, cfg_path = args.child
        cfg = json.loads(Path(cfg_path).read_text())
        os.environ["KERAS_HOME"] = cfg["keras_home"]
        # Every case pays its own features and prefix activations, as a first run does: a
        # warm on-disk cache (an earlier case or run) made a fine_tune look 4 minutes faster.
        os.environ["TRANSFERKIT_CACHE"] = "off"
        started = time.perf_counter()
        result = globals()[f"case_{case}"](cfg)
        result["wall_s"] = time.perf_counter() - started
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    return _parent(args)


def _parent(args) -> int:
    out = Path(args.out or ROOT / "benchmarks" / ("quick-results" if args.quick else "full"))
    (out / "cases").mkdir(parents=True, exist_ok=True)
    chosen = args.only.split(",") if args.only else list(CASES)
    unknown = sorted(set(chosen) - set(CASES))
    if unknown:
        print(f"error: unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}",
              file=sys.stderr)
        return 2
    for path, what in ((Path(args.data), "--data"), (Path(args.weights), "--weights")):
        if not path.exists():
            print(f"error: {what} {path} does not exist", file=sys.stderr)
            return 2
    cfg = {"data": args.data, "per_class": 50 if args.quick else None,
           "epochs_head": 2 if args.quick else 10, "epochs_ft": 2 if args.quick else None,
           "frozen_size": 128,
           "plain_steps": 3 if args.quick else 30, "plain_batch": 64 if args.quick else 256,
           "epochs_cnn": 2 if args.quick else 10,
           "epochs_classic": 1 if args.quick else 3,
           "keras_home": str(_keras_home(Path(args.weights))),
           "ft_kwargs": args.fine_tune_args, "model_kwargs": args.model_args}
    started = time.perf_counter()
    for i, case in enumerate(chosen, 1):
        path = out / "cases" / f"{case}.json"
        if path.exists() and not args.rerun:
            print(f"[{i}/{len(chosen)}] {case}: done earlier ({path}); --rerun measures again")
            continue
        expect = "" if args.quick else f" (about {EXPECTED_MIN[case]} min)"
        print(f"[{i}/{len(chosen)}] {case}{expect}, {_clock(started)} so far", flush=True)
        result = _child(case, cfg)
        result.update(machine=_machine(), measured=time.strftime("%Y-%m-%d %H:%M"),
                      data=("the real CIFAR-10 copy, " + ("50 images per class (a check)"
                            if args.quick else "all 50,000 train / 10,000 test images")))
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"    {case}: {_summary(result)}", flush=True)
    results = {c: json.loads((out / "cases" / f"{c}.json").read_text())
               for c in CASES if (out / "cases" / f"{c}.json").exists()}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    print("\n" + table)
    if not args.quick and not args.no_docs:
        for doc in (ROOT / "docs" / "results.md", ROOT / "README.md"):
            _replace_marked(doc, table)
        print("Rewrote the tables in docs/results.md and README.md.")
    return 0


def _child(case: str, cfg: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(cfg, f)
    proc = subprocess.Popen([sys.executable, __file__, "--child", case, f.name],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    result, tail = None, []
    for line in proc.stdout:  # stream the epochs: this is the progress display
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        elif not re.match(r"^[WIE]\d{4} |WARNING: All log", line):
            print("    " + line.rstrip(), flush=True)
            tail = (tail + [line])[-40:]
    if proc.wait() != 0 or result is None:
        raise SystemExit(f"case {case} failed:\n{''.join(tail)}")
    return result


def _keras_home(weights: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="transferkit-results-"))
    (home / "models").mkdir()
    for size in (96, 128, 160, 192, 224):
        name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
        (home / "models" / name).symlink_to(weights.resolve())
    return home


def _machine() -> str:
    from transferkit._machine import cpu_description

    gpu = "no GPU" if not Path("/dev/nvidia0").exists() else "GPU"
    return f"{cpu_description()}, {gpu}"


def _clock(started: float) -> str:
    s = int(time.perf_counter() - started)
    return f"{s // 60} min {s % 60:02d} s"


def _summary(r: dict) -> str:
    parts = [f"wall {r['wall_s']:.0f} s"]
    if "test_accuracy" in r:
        parts.insert(0, f"test accuracy {r['test_accuracy']:.4f}")
    if "train_img_s" in r:
        parts.append(f"{r['train_img_s']:.0f} training images/s")
    return ", ".join(parts)


def markdown(r: dict) -> str:
    """The results table (rows only for measured cases)."""
    rows = ["| recipe (full CIFAR-10, MobileNetV2 ImageNet weights) | test accuracy | wall time, "
            "all included | budget |", "|---|---:|---:|---|"]
    if "frozen_head" in r:
        h = r["frozen_head"]
        rows.append(f"| frozen backbone at {h.get('image_size', 96)} px, Dense(512) head on cached "
                    f"features, cosine | {h['test_accuracy']:.4f} | {_min(h['wall_s'])} | "
                    f"{h['epochs']} epochs |")
    if "fine_tune" in r:
        f = r["fine_tune"]
        phases = ", ".join(f"{p[0]} px to epoch {p[1]}" for p in f["recipe"]["phases"] or [])
        trained = (f"after {f['recipe']['frozen_through']}" if f["recipe"].get("frozen_through")
                   else "whole backbone")
        size = f.get("model_kwargs", {}).get("image_size", 96)
        views = ("shifts of the image alone" if f["recipe"].get("cached_views") == 1
                 else "flip views + shifts")  # one view: a short budget's choice
        fast = (f"the frozen prefix cached, {size} px, {views}"
                if f["recipe"].get("cached_prefix") else phases or "one size")
        rows.append(f"| `fine_tune` defaults ({_head(f)}): backbone {trained}, AdamW, warm-up + "
                    f"cosine, crop + flip ({fast}) | {f['test_accuracy']:.4f} | {_min(f['wall_s'])} "
                    f"| {f['epochs']} epochs |")
    if "fine_tune_classic" in r:
        f = r["fine_tune_classic"]
        rows.append(f"| classic fine-tuning (the old default): frozen head "
                    f"({f['head_test_accuracy']:.4f}), then last 20 layers, Adam 1e-5 | "
                    f"{f['test_accuracy']:.4f} | {_min(f['wall_s'])} | head + {f['epochs']} epochs |")
    if "baseline_cnn" in r:
        c = r["baseline_cnn"]
        rows.append(f"| CNN from scratch: `train_from_scratch`, residual `build_baseline_cnn` "
                    f"(48, 96, 192) | {c['test_accuracy']:.4f} | {_min(c['wall_s'])} | "
                    f"{c['epochs']} epochs |")
    notes = []
    if "fine_tune" in r and "plain_fit" in r:
        ratio = r["fine_tune"]["train_img_s"] / r["plain_fit"]["train_img_s"]
        notes.append(f"Fine-tuning throughput: {r['fine_tune']['train_img_s']:.0f} training images/s "
                     f"vs {r['plain_fit']['train_img_s']:.0f} for plain `model.fit` of the same "
                     f"unfrozen 96-px model ({ratio:.2f}x).")
    any_case = next(iter(r.values()), None)
    if any_case:
        when = sorted(c["measured"] for c in r.values())
        span = when[0] if when[0] == when[-1] else f"{when[0]} to {when[-1]}"
        notes.append(f"Measured {span} (one case at a time) on {any_case['machine']} by "
                     f"`python benchmarks/results.py`; data: {any_case['data']}; each wall time "
                     "includes loading the data, building the model and scoring the test set.")
    return "\n".join(rows + [""] + notes) + "\n"


def _head(case: dict) -> str:
    head = case.get("model_kwargs", {}).get("head")
    if head is None:
        return "the default head"
    return "linear head" if not head else f"Dense{tuple(head)} head"


def _min(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _replace_marked(path: Path, table: str) -> None:
    text = path.read_text(encoding="utf-8")
    if MARK[0] not in text:
        return
    head, rest = text.split(MARK[0], 1)
    _, tail = rest.split(MARK[1], 1)
    path.write_text(f"{head}{MARK[0]}\n{table}{MARK[1]}{tail}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
