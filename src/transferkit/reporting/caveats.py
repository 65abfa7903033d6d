"""Benefits, limitations, pitfalls and ethics of *these* runs on *this* data and budget.

Each function takes the runs and the dataset (a
:class:`~transferkit.data.splits.DataSplits`, or None when only the run
records are at hand) and returns sentences for a slide or the report. They
name numbers where the records hold them (training images per class, the
image size against the backbone's pretrained size, training time, class
imbalance, the test split's margin of error, the dataset's provenance) and
fall back to the general point only where they do not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from transferkit.models.registry import BACKBONES
from transferkit.reporting._parts import pct, seconds, trained_share
from transferkit.reporting.naming import (
    backbone_label,
    best_run,
    class_label,
    continuations,
    dataset_label,
    fine_tuned,
    pretrained_backbone,
)
from transferkit.reporting.timing import cumulative_seconds, training_seconds

CIFAR_PROVENANCE = (
    "CIFAR-10 was drawn from 80 Million Tiny Images, which MIT withdrew in 2020 over offensive "
    "labels; CIFAR-10's own 10 classes were checked by hand.")


def _per_class(runs: Sequence, data) -> dict[str, int]:
    """Training images per class: counted from the data, else spread evenly from the record."""
    if data is not None:
        import numpy as np

        counts = np.bincount(np.asarray(data.y_train).ravel(), minlength=len(data.class_names))
        return {str(n): int(c) for n, c in zip(data.class_names, counts)}
    cfg = (runs[0].config.get("data") or {}) if runs else {}
    names, train = cfg.get("class_names") or [], (cfg.get("sizes") or {}).get("train")
    if not names or not isinstance(train, int):
        return {}
    return {str(n): train // len(names) for n in names}


def _image_side(runs: Sequence, data) -> int | None:
    shape = (list(data.image_shape) if data is not None
             else ((runs[0].config.get("data") or {}).get("image_shape") if runs else None)
             or (runs[0].config.get("input_shape") if runs else None))
    return int(min(shape[:2])) if shape else None


def _best(runs: Sequence, transfer: bool):
    return best_run([r for r in runs if bool(pretrained_backbone(r)) == transfer])


def benefits(runs: Sequence, data=None) -> list[str]:
    """What transfer bought here: accuracy over scratch, parameters and time it did not train."""
    counts, cont = _per_class(runs, data), continuations(runs)
    t, s = _best(runs, True), _best(runs, False)
    per_class = f" with about {min(counts.values()):,} training images per class" if counts else ""
    out = []
    if t is not None and s is not None and t.evaluation.accuracy > s.evaluation.accuracy:
        out.append(f"Pretrained features reached {pct(t.evaluation.accuracy)} test accuracy"
                   f"{per_class}, against {pct(s.evaluation.accuracy)} from scratch.")
    elif t is not None and s is not None:  # said plainly: here the usual claim did not hold
        out.append(f"Not here in accuracy: from scratch reached {pct(s.evaluation.accuracy)}, "
                   f"transfer {pct(t.evaluation.accuracy)}{per_class}.")
    frozen = [r for r in runs if pretrained_backbone(r) and not fine_tuned(r, cont) and trained_share(r)]
    if frozen:
        r = min(frozen, key=lambda r: trained_share(r))
        took = training_seconds(r)
        out.append(f"A frozen {backbone_label(pretrained_backbone(r))} trains only {pct(trained_share(r))} "
                   "of its parameters" + (f" ({seconds(took)} of training here)" if took else "")
                   + ": cheap enough to compare several backbones.")
    fastest = min((cumulative_seconds(r, cont) for r in runs if r.evaluation and training_seconds(r)),
                  default=None)
    if fastest is not None and not frozen:
        out.append(f"The quickest run trained in {seconds(fastest)}: transfer needs little compute.")
    out.append("ImageNet's 1.28 M labelled photos did the expensive learning; this task "
               "only had to label its own images.")
    return out


def limitations(runs: Sequence, data=None) -> list[str]:
    """How far the numbers carry: sample size, test margin, image size, budget, imbalance."""
    counts, out = _per_class(runs, data), []
    if counts:
        low, high = min(counts.values()), max(counts.values())
        span = f"{low:,}" if low == high else f"{low:,} to {high:,}"
        out.append(f"Small data: {span} training images per class; transfer's advantage "
                   "shrinks as data grows.")
    best = best_run(runs)
    margin = accuracy_margin(best)
    if margin is not None:
        n = len(best.evaluation.y_true)
        out.append(f"One seed, {n:,} test images: accuracy is known to about ±{margin:.1f} points, "
                   "so closer runs are not told apart.")
    else:
        out.append("One seed per run: repeat with several seeds before trusting small differences.")
    out += filter(None, [_size_limitation(runs, data), _imbalance(counts), _budget(runs)])
    return out


def accuracy_margin(run) -> float | None:
    """How far chance alone moves ``run``'s test accuracy, in points (a 95 % margin, 1.96 SE).

    The variance has a floor of 1 / (4n): 100 % on 20 test images is not certain.
    None for a run without test predictions.

    Example:
        >>> from transferkit.runs.evaluation import evaluate_predictions
        >>> from transferkit.runs.record import Run
        >>> ev = evaluate_predictions([0] * 50 + [1] * 50, [[0.9, 0.1]] * 50 + [[0.2, 0.8]] * 40
        ...                           + [[0.6, 0.4]] * 10, ["a", "b"])
        >>> round(accuracy_margin(Run("r", {}, {}, ev, {})), 1)  # 90 % of 100 images
        5.9
    """
    n = len(run.evaluation.y_true) if run is not None and run.evaluation is not None else 0
    if not n:
        return None
    p = run.evaluation.accuracy
    return 100 * 1.96 * math.sqrt(max(p * (1 - p), 0.25 / n) / n)


def _size_limitation(runs: Sequence, data) -> str | None:
    side, name = _image_side(runs, data), next(filter(None, map(pretrained_backbone, runs)), None)
    spec = BACKBONES.get(name) if name else None
    if side is None or spec is None or side >= min(spec.pretrained_sizes):
        return None
    fed = next((r.config.get("backbone", {}).get("image_size") for r in runs
                if pretrained_backbone(r) == name), None)
    fed = min(fed) if isinstance(fed, list) and fed else None
    upscaled = f"; they are upscaled to {fed} px" if fed and fed > side else ""
    return (f"The images are {side} px; {spec.display_name} was pretrained on "
            f"{min(spec.pretrained_sizes)} px photos{upscaled}, so its features fit them loosely.")


def _imbalance(counts: dict[str, int]) -> str | None:
    if len(counts) < 2 or min(counts.values()) * 1.5 > max(counts.values()):
        return None
    big, small = max(counts, key=counts.get), min(counts, key=counts.get)
    return (f"Unbalanced classes: {class_label(big)} has {counts[big]:,} training images, "
            f"{class_label(small)} {counts[small]:,}; read balanced accuracy, not accuracy.")


def _budget(runs: Sequence) -> str | None:
    cont = continuations(runs)
    times = [t for t in (cumulative_seconds(r, cont) for r in runs) if t]
    if not times:
        return None
    config = next((r.config for r in runs if r.config.get("machine") or r.config.get("cpu")), {})
    machine, cpu = config.get("machine"), config.get("cpu")
    if cpu:  # the CPU kind decides the minutes: "AMD EPYC, 2 CPUs, AVX-512, no GPU"
        gpu = machine.rsplit(", ", 1)[-1] if machine and ", " in machine else ""
        where = f" ({', '.join(filter(None, [cpu_words(cpu), gpu]))})"
    else:  # records before the CPU was kept: "x86_64 2 CPU cores, no GPU"
        where = f" ({machine.replace('_', '-')})" if machine else ""
    return (f"Budget: each run trained {seconds(min(times))} to {seconds(max(times))}{where}; "
            "more epochs or larger inputs may change the ranking.")


def cpu_words(cpu: str) -> str:
    """A recorded CPU line in words, its widest vector extension named.

    Example:
        >>> cpu_words("AMD EPYC, 2 CPUs, avx avx2 avx512f avx512_vnni")
        'AMD EPYC, 2 CPUs, AVX-512'
    """
    parts = cpu.split(", ")
    if len(parts) < 3:
        return cpu.replace("_", "-")
    flags = parts[-1].split()
    widest = ("AVX-512" if any(f.startswith("avx512") for f in flags)
              else "AVX2" if "avx2" in flags else "no AVX2")
    return ", ".join([*parts[:-1], widest])


def pitfalls(runs: Sequence, data=None) -> list[str]:
    """The mistakes that would have spoiled these runs, with their numbers where recorded."""
    cont = continuations(runs)
    head = next((cont[r.name] for r in runs if r.name in cont), None)
    epochs = f" (here {head.epochs_run} epochs)" if head is not None else ""
    val = ((runs[0].config.get("data") or {}).get("sizes") or {}).get("val") if runs else None
    if data is not None:
        val = len(data.y_val)
    return [
        f"Train the head first on a frozen backbone{epochs}: a random head sends large "
        "gradients into the pretrained layers.",
        "Keep BatchNorm in inference mode when fine-tuning; small batches corrupt its statistics.",
        "Feed each backbone its own preprocessing (it is inside the model here).",
        "Choose epochs and runs on validation images"
        + (f" ({val:,} here)" if isinstance(val, int) else "") + ", never on the test split.",
    ]


def ethics(runs: Sequence, data=None) -> list[str]:
    """Where the data came from, whom the model fails, and what the training cost."""
    label = dataset_label(runs, data)
    source = str(((runs[0].config.get("data") or {}).get("source") if runs else "")
                 or getattr(data, "source", "") or "")
    out = []
    if label == "CIFAR-10":
        out.append(CIFAR_PROVENANCE)
    elif label != "Synthetic images" and source not in ("", "arrays"):
        out.append("Own photos: ask the people in them for consent, strip location data, and "
                   "keep faces and number plates out of shared sets.")
    out.append("ImageNet's photos and labels carry the biases of who took and labelled them; "
               "a pretrained backbone inherits them.")
    out.append(_worst_class(runs) or "Accuracy hides per-class failures: check the confusion "
               "matrix before any use.")
    total = sum(t for t in (training_seconds(r) for r in runs) if t)
    if total:
        out.append(f"All runs together trained {seconds(total)}; frozen features and small inputs "
                   "cut energy several-fold.")
    return out


def _worst_class(runs: Sequence) -> str | None:
    best = best_run([r for r in runs if r.evaluation and r.evaluation.per_class])
    recall = best.evaluation.recall_per_class if best is not None else {}
    if len(recall) < 2:
        return None
    low, high = min(recall, key=recall.get), max(recall, key=recall.get)
    return (f"Accuracy hides per-class failures: the best run finds {pct(recall[high])} of "
            f"{class_label(high)} but {pct(recall[low])} of {class_label(low)}.")
