"""The NumPy batch streams: gathering crops straight from the source against pad-then-crop copies.

    python benchmarks/batch_streams.py [--steps 200] [--pairs 7] [--fit-pairs 4]
        [--cifar ../shared/data/cifar10-jpeg.tar.gz] [--per-class 200] [--epochs 3]
        [--out benchmarks/batch_streams.json] [--quick]

``ShiftedViews`` (fine_tune's cached prefix) and ``AugmentedBatches`` (crop +
flip of raw images) now read each pixel of a batch once from their source:
:func:`~transferkit.data.augment.crop_flip_indices` turns the random crop of
the reflect-padded image and the flip into source rows and columns. Before,
they copied the batch, padded the copy, cropped it and flipped a copy of that
(kept here as ``before``, the reference the tests compare against bit for bit).

1. ``stream``: time per batch of the stream alone (``--steps`` batches of 256):
   ``ShiftedViews`` on two float16 views of shape (2000, 12, 12, 32) (the
   MobileNetV2 cut at 96 px) into float32, and ``AugmentedBatches`` on 2000
   uint8 32x32x3 images with crop + flip. ``after+ring3`` also reuses a ring of
   three preallocated float32 batches (not adopted: see benchmarks/README.md).
2. ``fit``: ``tk.fine_tune`` (defaults, determinism on, seed 0) on real CIFAR-10
   (``--per-class`` images per class, ``--epochs`` epochs), its ``ShiftedViews``
   switched between ``before`` and ``after`` in one process: median epoch
   seconds after the first epoch (which compiles), and the test accuracy.

The machine is shared: the variants alternate (order rotated per pair), and
the table gives medians and the median per-pair ratio before / after. Prints
the CPU and a table, writes JSON to ``--out``. ``--quick`` proves the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def before_crop_flip(images, rng, *, pad=None, flip=True):
    """crop_flip as it was: pad a copy, crop it, flip a copy of the flipped images."""
    n, h, w, _ = images.shape
    pad = max(1, min(h, w) // 8) if pad is None else int(pad)
    if pad:
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        rows = rng.integers(0, 2 * pad + 1, n)[:, None] + np.arange(h)[None]
        cols = rng.integers(0, 2 * pad + 1, n)[:, None] + np.arange(w)[None]
        out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    else:
        out = images.copy()
    if flip:
        flipped = rng.random(n) < 0.5
        out[flipped] = out[flipped][:, :, ::-1]
    return out


def before_shifted(self, index):
    """ShiftedViews.__getitem__ as it was."""
    idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
    pick = self.rng.integers(0, len(self.views), len(idx))
    batch = np.empty((len(idx), *self.views[0].shape[1:]), np.float32)
    for v, view in enumerate(self.views):
        batch[pick == v] = view[idx[pick == v]]
    if self.shift:
        batch = before_crop_flip(batch, self.rng, pad=self.shift, flip=False)
    return batch, self.labels[idx]


def before_augmented(self, index):
    """AugmentedBatches.__getitem__ (crop + flip) as it was."""
    idx = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
    return before_crop_flip(self.x[idx], self._rng), self.y[idx]


def ring_shifted(self, index):
    """The new ShiftedViews.__getitem__ writing into a ring of three preallocated batches."""
    from transferkit.data.augment import crop_flip_indices, gather_crops

    idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
    pick = self.rng.integers(0, len(self.views), len(idx))
    rows, cols = crop_flip_indices(len(idx), *self.views[0].shape[1:3], self.rng,
                                   pad=self.shift, flip=False)
    ring = self.__dict__.setdefault("_ring", [np.empty((self.batch_size, *self.views[0].shape[1:]),
                                                        np.float32) for _ in range(3)])
    batch = ring[index % 3][:len(idx)]
    for v, view in enumerate(self.views):
        at = np.flatnonzero(pick == v)
        batch[at] = gather_crops(view, idx[at], rows[at], cols[at])
    return batch, self.labels[idx]


def pairs_of(variants: dict, pairs: int, measure) -> dict[str, list[float]]:
    """``measure(variant)`` for every variant, ``pairs`` times, the order rotated each time."""
    names, out = list(variants), {name: [] for name in variants}
    for p in range(pairs):
        for name in names[p % len(names):] + names[:p % len(names)]:
            out[name].append(measure(variants[name]))
    return out


def stream_rows(steps: int, pairs: int) -> list[dict]:
    from transferkit.data.augment import AugmentedBatches
    from transferkit.training.cached_prefix import ShiftedViews

    g = np.random.default_rng(0)
    views = [g.standard_normal((2000, 12, 12, 32)).astype(np.float16) for _ in range(2)]
    images = g.integers(0, 256, (2000, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(2000) % 10
    cases = {
        "ShiftedViews (256, 12, 12, 32) float16 -> float32": (
            lambda: ShiftedViews(views, labels, 256, seed=1),
            {"before": before_shifted, "after": ShiftedViews.__getitem__,
             "after+ring3": ring_shifted}),
        "AugmentedBatches (256, 32, 32, 3) uint8 crop + flip": (
            lambda: AugmentedBatches(images, labels, 256, seed=1),
            {"before": before_augmented, "after": AugmentedBatches.__getitem__}),
    }
    rows = []
    for case, (make, variants) in cases.items():
        def measure(getitem, make=make):
            stream = make()
            t = time.perf_counter()
            for step in range(steps):
                getitem(stream, step % len(stream))
            return 1e3 * (time.perf_counter() - t) / steps

        pairs_of(variants, 1, measure)  # warm-up
        rows.append(_row(case, "ms/batch", pairs_of(variants, pairs, measure)))
    return rows


def fit_row(cifar: str, per_class: int, epochs: int, pairs: int, warm_up: bool = True) -> dict:
    import keras

    import transferkit as tk
    from transferkit.training.cached_prefix import ShiftedViews

    after = ShiftedViews.__getitem__
    data = tk.load_cifar10(cifar, limit_per_class=per_class, seed=0)
    accuracies: dict[str, set] = {}

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    def measure(name):
        ShiftedViews.__getitem__ = {"before": before_shifted, "after": after}[name]
        try:
            tk.make_deterministic(0)
            model = tk.build_transfer_model("mobilenet_v2", data, head=())
            timer = EpochTimes()
            timer.seconds = []
            run = tk.fine_tune(model, data, epochs=epochs, seed=0, verbose=0, callbacks=[timer])
        finally:
            ShiftedViews.__getitem__ = after
        accuracies.setdefault(name, set()).add(run.evaluation.accuracy)
        return statistics.median(timer.seconds[1:] or timer.seconds)

    if warm_up:  # the prefix's activations go to the disk cache (--quick times nothing)
        measure("after")
    row = _row(f"fine_tune epoch, {len(data.y_train)} CIFAR-10 images", "s/epoch",
               pairs_of({"before": "before", "after": "after"}, pairs, measure))
    row["test_accuracy"] = {name: sorted(a) for name, a in accuracies.items()}
    return row


def _row(case: str, unit: str, times: dict[str, list[float]]) -> dict:
    ratios = {name: statistics.median(b / a for b, a in zip(times["before"], values))
              for name, values in times.items() if name != "before"}
    return {"case": case, "unit": unit, "times": times, "ratio_before_over": ratios,
            "median": {name: statistics.median(values) for name, values in times.items()}}


def markdown(result: dict) -> str:
    lines = ["| case | variant | median | each | before / variant (median of pairs) |",
             "|---|---|---:|---|---:|"]
    for row in result["rows"]:
        for name, values in row["times"].items():
            ratio = row["ratio_before_over"].get(name)
            lines.append(f"| {row['case']} | {name} | {row['median'][name]:.2f} {row['unit']} "
                         f"| {', '.join(f'{v:.2f}' for v in values)} "
                         f"| {'' if ratio is None else f'{ratio:.2f}'} |")
        if "test_accuracy" in row:
            lines.append(f"\nTest accuracy: {row['test_accuracy']}.")
    lines.append(f"\nCPU: {result['cpu']}; load average {result['load']} at the start, "
                 f"{result['load_end']} at the end.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--pairs", type=int, default=7)
    p.add_argument("--fit-pairs", type=int, default=4, help="0: the stream alone")
    p.add_argument("--cifar", default=DEFAULT_CIFAR)
    p.add_argument("--per-class", type=int, default=200)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default=ROOT / "benchmarks" / "batch_streams.json")
    p.add_argument("--quick", action="store_true", help="few steps, 10 per class: a check")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.pairs, args.fit_pairs, args.per_class, args.epochs = 5, 1, 1, 10, 2
    sys.path.insert(0, str(ROOT / "src"))
    from transferkit._machine import cpu_description

    result = {"cpu": cpu_description(), "load": round(os.getloadavg()[0], 1), "quick": args.quick,
              "steps": args.steps, "pairs": args.pairs,
              "rows": stream_rows(args.steps, args.pairs)}
    if args.fit_pairs:
        result["rows"].append(fit_row(args.cifar, args.per_class, args.epochs, args.fit_pairs,
                                      warm_up=not args.quick))
    result["load_end"] = round(os.getloadavg()[0], 1)
    print(markdown(result))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
