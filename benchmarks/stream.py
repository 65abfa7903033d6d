"""Image folders larger than memory: peak memory while streaming, and streaming's cost.

    python benchmarks/stream.py [--cap-mb 256] [--factor 4] [--image-size 160]
        [--fit-images 1000] [--epochs 3] [--out benchmarks/stream.json] [--quick]

What it measures, each case in its own process (so its memory is its own):

- **big**: a generated folder of JPEG photos (200x200 px, 10 colour classes)
  whose images, decoded at ``--image-size`` (160 px), take ``--factor`` (4) times
  the memory cap ``--cap-mb`` (256 MB): 1 GiB. ``load_image_folder(in_memory=False)``
  then ``train`` of the frozen ``--backbone`` head (``mobilenet_v1_025``, ImageNet
  weights: decoding weighs more against its cheap forward pass than against
  MobileNetV2's, so the streamed/in-memory ratio is a strict one; batch 64,
  ``--epochs``; the features cached on disk, memory-mapped, and written to an
  empty feature cache). Each process first loads and trains the same way on a
  400-image folder (the warm-up): what the backend keeps and the working memory
  it peaks at for these batch sizes are the same whatever the folder's size. The
  target: the process's peak RSS (``ru_maxrss``) grows by less than the cap
  over its peak after the warm-up. Also reported: the peak ``VmRSS`` above the
  resting RSS after the warm-up (sampled every 20 ms from ``/proc/self/status``,
  split into anonymous and file-backed pages), which includes the backend's
  transient working memory.
- **fits**: a folder of ``--fit-images`` (1,000) images of the same kind, loaded
  in memory and streamed, each trained two ways: the frozen head on cached
  features (the default ``train``), and ``cache_features=False`` (the images
  through the model every epoch, as fine-tuning without a cache feeds them).
  Throughput: the folder's images per second of load + train, and the training
  images per second of the fit alone; the streamed/in-memory ratio of each.

Prints the CPU (model, vector extensions) and a table, and writes the figures
as JSON to ``--out``. ``--quick`` (a 16 MB cap, 200 images, 1 epoch) proves the
script works; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
SOURCE_SIZE = 200  # px of the generated photos: decoding resizes (crops) them to --image-size
CLASSES = 10
WARM_IMAGES = 400  # the warm-up folder: its train split holds a full extraction batch (256)
FIT_MODES = {"head": "cache_features='auto' (frozen head on cached features)",
             "images": "cache_features=False (images every epoch)"}


def generate(folder: Path, count: int) -> float:
    """``count`` JPEG photos in ``CLASSES`` colour classes under ``folder``; seconds taken."""
    import numpy as np
    from PIL import Image

    started = time.perf_counter()
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, SOURCE_SIZE, dtype=np.float32)
    for c in range(CLASSES):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
    hues = rng.integers(40, 216, (CLASSES, 3))
    for i in range(count):
        c = i % CLASSES
        # A smooth gradient of the class's colour, a random tilt and some noise: JPEGs of
        # photo-like size (10-20 KB), each different.
        tilt = rng.uniform(-60, 60, 3)
        image = hues[c] + tilt * ramp[:, None, None] + rng.normal(0, 12, (SOURCE_SIZE, SOURCE_SIZE, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            folder / f"class{c}" / f"{i:06d}.jpg", quality=90)
    return time.perf_counter() - started


class Sampler(threading.Thread):
    """The peak of VmRSS, RssAnon and RssFile (MB) since :meth:`reset`, sampled every 20 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = {"VmRSS": 0.0, "RssAnon": 0.0, "RssFile": 0.0}
        self.start()

    @staticmethod
    def now() -> dict[str, float]:
        with open("/proc/self/status", encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile")}

    def reset(self) -> dict[str, float]:
        self.peak = self.now()
        return dict(self.peak)

    def run(self) -> None:
        while True:
            self.peak = {k: max(v, self.peak[k]) for k, v in self.now().items()}
            time.sleep(0.02)


def child(folder: str, stream: bool, mode: str, epochs: int, image_size: int,
          backbone: str) -> dict:
    """One load + ``train`` in this process, after a warm-up one, with its memory sampled."""
    sampler = Sampler()
    import keras

    from transferkit import build_transfer_model, load_image_folder, train
    from transferkit.data.stream import ImageFiles

    def build():
        keras.utils.set_random_seed(0)
        return build_transfer_model(backbone, CLASSES, input_shape=(image_size, image_size, 3))

    # The warm-up: the same load and train on a small folder. What the backend keeps after
    # it (compiled functions, its allocators' arenas) is the same whatever the folder's
    # size: the baseline. The cap bounds what grows with the folder.
    warm = load_image_folder(Path(folder).parent / "warm", image_size=image_size,
                             in_memory=not stream, seed=0)
    train(build(), warm, epochs=1, batch_size=64, seed=0, verbose=0,
          cache_features="auto" if mode == "head" else False)
    del warm
    model = build()
    warm_peak = {**sampler.peak, "ru_maxrss": _ru_maxrss_mb()}
    baseline = sampler.reset()
    t = time.perf_counter()
    data = load_image_folder(folder, image_size=image_size, in_memory=not stream, seed=0)
    load_s = time.perf_counter() - t
    assert isinstance(data.x_train, ImageFiles) == stream
    t = time.perf_counter()
    run = train(model, data, epochs=epochs, batch_size=64, seed=0, verbose=0,
                cache_features="auto" if mode == "head" else False)
    train_s = time.perf_counter() - t
    peak = {**sampler.peak, "ru_maxrss": _ru_maxrss_mb()}
    n = sum(len(data.split(s)[1]) for s in ("train", "val", "test"))
    fit_s = run.timings["fit"]
    return {
        "backbone": backbone, "images": n, "train_images": len(data.y_train), "streamed": stream, "mode": mode,
        "epochs": epochs, "decoded_mb": round(n * image_size * image_size * 3 / 2**20, 1),
        "load_s": round(load_s, 2), "train_s": round(train_s, 2),
        "features_s": round(run.timings.get("features", 0.0), 2), "fit_s": round(fit_s, 2),
        "folder_img_s": round(n / (load_s + train_s), 1),
        "fit_img_s": round(len(data.y_train) * epochs / fit_s, 1),
        "test_accuracy": round(run.evaluation.accuracy, 4),
        "warmup_peak_rss_mb": round(warm_peak["ru_maxrss"], 1),
        "ru_maxrss_mb": round(peak["ru_maxrss"], 1),
        "peak_above_warmup_peak_mb": round(peak["ru_maxrss"] - warm_peak["ru_maxrss"], 1),
        "resting_rss_mb": round(baseline["VmRSS"], 1), "peak_rss_mb": round(peak["VmRSS"], 1),
        "peak_above_resting_mb": round(peak["VmRSS"] - baseline["VmRSS"], 1),
        "anon_above_resting_mb": round(peak["RssAnon"] - baseline["RssAnon"], 1),
        "file_above_resting_mb": round(peak["RssFile"] - baseline["RssFile"], 1),
    }


def _ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def run_case(name: str, folder: Path, stream: bool, mode: str, args, cache: Path) -> dict:
    env = {**os.environ, "TRANSFERKIT_CACHE": str(cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                        os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, __file__, "--child", str(folder), "--mode", mode,
                           "--epochs", str(args.epochs), "--image-size", str(args.image_size),
                           "--backbone", args.backbone]
                          + (["--stream"] if stream else []), env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"case {name} failed:\n{done.stderr[-3000:]}")
    return {"case": name, **json.loads(done.stdout.strip().splitlines()[-1])}


def table(rows: list[dict]) -> str:
    lines = ["| case | images | decoded | streamed | train | load + train | images/s (folder) "
             "| images/s (fit) | peak RSS: growth over the warm-up's | above resting (anon + file) "
             "| test acc |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['images']:,} | {r['decoded_mb']:,.0f} MB | "
            f"{'yes' if r['streamed'] else 'no'} | {r['mode']}, {r['epochs']} ep | "
            f"{r['load_s']:.1f} + {r['train_s']:.1f} s | {r['folder_img_s']:.0f} | "
            f"{r['fit_img_s']:.0f} | {r['peak_above_warmup_peak_mb']:.0f} MB "
            f"({r['warmup_peak_rss_mb']:.0f} to {r['ru_maxrss_mb']:.0f}) | "
            f"{r['peak_above_resting_mb']:.0f} MB ({r['anon_above_resting_mb']:.0f} + "
            f"{r['file_above_resting_mb']:.0f}) | {r['test_accuracy']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap-mb", type=float, default=256)
    parser.add_argument("--factor", type=float, default=4)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--fit-images", type=int, default=1000)
    parser.add_argument("--backbone", default="mobilenet_v1_025")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "stream.json")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=FIT_MODES, default="head", help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.stream, args.mode, args.epochs, args.image_size,
                               args.backbone)))
        return 0
    if args.quick:
        args.cap_mb, args.fit_images, args.epochs = 16, 200, 1
    from transferkit._machine import cpu_description

    cpu = cpu_description()
    print(f"CPU: {cpu}")
    started = time.perf_counter()
    per_image = args.image_size ** 2 * 3
    big_count = math.ceil(args.factor * args.cap_mb * 2**20 / per_image)
    with tempfile.TemporaryDirectory(prefix="tk-stream-bench-") as tmp:
        big, fits, cache = Path(tmp, "big"), Path(tmp, "fits"), Path(tmp, "cache")
        gen_s = (generate(big, big_count) + generate(fits, args.fit_images)
                 + generate(Path(tmp, "warm"), WARM_IMAGES))
        print(f"Generated {big_count:,} + {args.fit_images:,} JPEGs ({SOURCE_SIZE} px) in "
              f"{gen_s:.0f} s; decoded at {args.image_size} px the big folder takes "
              f"{big_count * per_image / 2**20:,.0f} MB, {args.factor:g}x the {args.cap_mb:g} MB cap")
        rows = [run_case("big", big, True, "head", args, cache)]
        for mode in FIT_MODES:
            for stream in (False, True):
                name = f"fits, {'streamed' if stream else 'in memory'}"
                rows.append(run_case(name, fits, stream, mode, args,
                                     Path(tmp, f"cache-{mode}-{stream}")))
    by = {(r["case"], r["mode"]): r for r in rows}
    ratios = {mode: {"folder": round(by["fits, streamed", mode]["folder_img_s"]
                                     / by["fits, in memory", mode]["folder_img_s"], 2),
                     "fit": round(by["fits, streamed", mode]["fit_img_s"]
                                  / by["fits, in memory", mode]["fit_img_s"], 2)}
              for mode in FIT_MODES}
    peak = rows[0]["peak_above_warmup_peak_mb"]
    result = {
        "measured": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu,
        "mode": "quick" if args.quick else "full", "cap_mb": args.cap_mb, "factor": args.factor,
        "backbone": args.backbone, "image_size": args.image_size, "source_size": SOURCE_SIZE, "epochs": args.epochs,
        "rows": rows, "stream_vs_memory": ratios, "fit_modes": FIT_MODES,
        "met": peak < args.cap_mb, "total_s": round(time.perf_counter() - started),
    }
    print(table(rows))
    print(f"big folder: peak RSS {peak:.0f} MB above the warm-up run's, cap {args.cap_mb:g} MB: "
          f"{'met' if result['met'] else 'NOT met'}")
    for mode, ratio in ratios.items():
        print(f"streamed / in memory, {FIT_MODES[mode]}: {ratio['folder']:.2f}x images/s of load "
              f"+ train, {ratio['fit']:.2f}x of the fit")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
