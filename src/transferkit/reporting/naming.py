"""Names people read: runs, backbones, classes and titles, made from what runs record.

Run names are identifiers (``mobilenet_v2_finetuned``, ``baseline_cnn_scratch``)
chosen for folders and the command line. Reports and slides say what a run
*is* instead, read from its record: the backbone's display name from the
registry and whether it was pretrained, frozen or fine-tuned
("MobileNetV2, fine-tuned", "CNN from scratch"). Only a run that records
none of this is named by turning its identifier into words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from transferkit.models.registry import BACKBONES
from transferkit.runs.record import is_pretrained

_WORDS = {"cnn": "CNN", "finetuned": "fine-tuned", "finetune": "fine-tune", "ft": "fine-tuned",
          "lr": "learning rate", "imagenet": "ImageNet", "cifar10": "CIFAR-10"}
"""Words of identifiers that people spell otherwise."""


def humanize(identifier: str) -> str:
    """An identifier as words: ``"mobilenet_v2_finetuned"`` -> ``"MobileNetV2, fine-tuned"``.

    Registered backbones read as their display name, ``fine_tuned`` as
    "fine-tuned", ``cnn`` as "CNN"; underscores become spaces.

    Example:
        >>> humanize("frozen_head"), humanize("baseline_cnn_scratch"), humanize("transfer_resnet50")
        ('Frozen head', 'Baseline CNN from scratch', 'Transfer ResNet50')
    """
    text = re.sub(r"fine[_-]tun(ed|e)", r"finetun\1", str(identifier), flags=re.I)
    tokens = [t for t in re.split(r"[_\s]+", text) if t]
    words, i = [], 0
    while i < len(tokens):
        # The longest run of tokens that names a backbone: mobilenet_v3_small, not mobilenet.
        for j in range(len(tokens), i, -1):
            spec = BACKBONES.get("_".join(tokens[i:j]).lower())
            if spec is not None:
                # Said first, it is what the rest describes: "MobileNetV2, fine-tuned".
                words.append(spec.display_name + ("," if i == 0 and j < len(tokens) else ""))
                i = j
                break
        else:
            last = i == len(tokens) - 1 and i > 0 and tokens[i - 1].lower() != "from"
            words.append("from scratch" if last and tokens[i].lower() == "scratch"
                         else _WORDS.get(tokens[i].lower(), tokens[i]))
            i += 1
    out = " ".join(words)
    return out[:1].upper() + out[1:]


def backbone_label(name: str) -> str:
    """A backbone's display name: the registry's ("MobileNet v1 0.25"), else its name as words."""
    spec = BACKBONES.get(name)
    return spec.display_name if spec else humanize(name)


def backbone_words(text: str) -> str:
    """``text`` with each registered backbone's identifier as its display name.

    For messages written for the command line ("ImageNet weights for
    mobilenet_v3_small at 96px ...") shown on a slide; file names in them
    (``mobilenet_v2_weights_..._no_top.h5``) stay as they are, to be typed.

    Example:
        >>> backbone_words("weights for mobilenet_v3_small at 96px: put resnet50_notop.h5 there")
        'weights for MobileNetV3-Small at 96px: put resnet50_notop.h5 there'
    """
    for name in sorted(BACKBONES, key=len, reverse=True):  # mobilenet_v3_small before shorter ones
        text = re.sub(rf"(?<![\w.]){re.escape(name)}(?![\w.])", BACKBONES[name].display_name, text)
    return text


def class_label(name: object) -> str:
    """A class name as read on a slide: folder names like ``golden_retriever`` with spaces."""
    return str(name).replace("_", " ")


def pretrained_backbone(run) -> str | None:
    """The backbone of a transfer run (pretrained weights); None for a run from scratch."""
    return (run.config.get("backbone") or {}).get("name") if is_pretrained(run) else None


def best_run(runs: Sequence):
    """The evaluated run with the highest test accuracy (the first of a tie); None if none was evaluated."""
    return max((r for r in runs if r.evaluation), key=lambda r: r.evaluation.accuracy, default=None)


def fine_tuned(run, cont: Mapping) -> bool:
    """Whether a transfer run trained part of its backbone (or continues a frozen run)."""
    return run.name in cont or not (run.config.get("backbone") or {}).get("frozen")


def continuations(runs: Sequence) -> dict[str, object]:
    """``{fine-tuning run name: the frozen run it continues}`` among ``runs``.

    A run continues an earlier one when both trained the same model (same
    ``config["model"]``), the earlier one with its backbone frozen and the
    later one with part of it trainable, as :func:`~transferkit.training.recipes.fine_tune`
    after :func:`~transferkit.training.train` does.
    """
    found: dict[str, object] = {}
    for i, run in enumerate(runs):
        bb = run.config.get("backbone") or {}
        if bb.get("frozen", True) or not run.config.get("model"):
            continue
        for prev in reversed(runs[:i]):
            pbb = prev.config.get("backbone") or {}
            if prev.config.get("model") == run.config["model"] and pbb.get("frozen"):
                found[run.name] = prev
                break
    return found


def run_kind(run, cont: Mapping) -> str:
    """``"from scratch"``, ``"fine-tuned"`` or ``"frozen backbone"``; ``cont``: the continuations."""
    if pretrained_backbone(run) is None:
        return "from scratch"
    return "fine-tuned" if fine_tuned(run, cont) else "frozen backbone"


def run_label(run, cont: Mapping) -> str:
    """What a run is, from its record: "MobileNetV2, frozen head", "CNN from scratch".

    Args:
        run: A :class:`~transferkit.runs.record.Run`.
        cont: ``{fine-tuning run name: frozen run}``
            (:func:`continuations`).

    Returns:
        The label; a run that records no model is named from its identifier
        (:func:`humanize`).
    """
    bb = run.config.get("backbone") or {}
    name = pretrained_backbone(run)
    if name:
        return f"{backbone_label(name)}, {'fine-tuned' if fine_tuned(run, cont) else 'frozen head'}"
    if bb.get("name") in BACKBONES:  # a registered architecture from random weights
        return _random_backbone_label(run, bb, cont)
    if bb or run.config.get("model"):
        return "CNN from scratch"
    return humanize(run.name)


def _random_backbone_label(run, bb: Mapping, cont: Mapping) -> str:
    """A registered network without pretrained weights: frozen, partly trained, or from scratch."""
    label = backbone_label(bb["name"])
    if bb.get("frozen"):
        return f"{label} (random weights), frozen head"
    if run.name in cont or bb.get("trainable_layers", bb.get("layers")) != bb.get("layers"):
        return f"{label} (random weights), fine-tuned"
    return f"{label} from scratch"


def display_names(runs: Sequence) -> dict[str, str]:
    """``{run name: label}``, each label unique among ``runs``.

    Runs the record alone cannot tell apart (two CNNs from scratch) keep
    their identifier, as words, in parentheses: "CNN from scratch (Stage1 CNN)".
    """
    cont = continuations(runs)
    labels = {r.name: run_label(r, cont) for r in runs}
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    for name, label in labels.items():
        if seen[label] > 1 and humanize(name) != label:
            labels[name] = f"{label} ({humanize(name)})"
    return labels


def dataset_label(runs: Sequence, data=None) -> str:
    """The dataset as people name it: "CIFAR-10", an image folder's name, "Synthetic images"."""
    cfg = (runs[0].config.get("data") or {}) if runs else {}
    prov = cfg.get("provenance") or getattr(data, "provenance", None) or {}
    # A subset says so after the source ("synthetic [subset ['cat', 'dog']]"): the slides say it.
    source = str(cfg.get("source") or getattr(data, "source", "") or "").split(" [subset ")[0]
    if prov.get("loader") == "cifar10" or "cifar" in source.lower():
        return "CIFAR-10"
    if source == "synthetic":
        return "Synthetic images"
    path = prov.get("path") or ("" if source == "arrays" else source)  # "arrays": given in Python
    folder = Path(path).name if path else ""
    return re.sub(r"[_\s]+", " ", folder).strip() or "Your images"


def report_title(runs: Sequence, data=None) -> str:
    """A title from the dataset and what the runs compare.

    Example: "CIFAR-10: transfer learning vs training from scratch";
    "flowers: MobileNetV2, frozen head vs fine-tuned" for a photo folder.
    """
    cont = continuations(runs)
    transfer = [r for r in runs if pretrained_backbone(r)]
    backbones = list(dict.fromkeys(backbone_label(pretrained_backbone(r)) for r in transfer))
    if transfer and len(transfer) < len(runs):
        subject = "transfer learning vs training from scratch"
    elif len(backbones) > 1:
        subject = f"{len(backbones)} pretrained backbones compared"
    elif backbones and len({fine_tuned(r, cont) for r in transfer}) == 2:
        subject = f"{backbones[0]}, frozen head vs fine-tuned"
    elif backbones:
        subject = f"transfer learning with {backbones[0]}"
    else:
        subject = "training from scratch"
    return f"{dataset_label(runs, data)}: {subject}"
