"""Experiment 5: a backbone study for a report.

Each chosen ImageNet backbone is trained frozen (head on cached features),
then fine-tuned as a whole with :func:`~transferkit.training.recipes.fine_tune`'s
measured recipe (BatchNorm frozen, AdamW, warm-up + cosine, crop + flip); a
CNN from scratch gets the same data and epochs. The
report (``report.html``) and the 10-slide deck (``slides.html``) cover the
dataset, transfer learning, each backbone's original purpose, the fine-tuning
steps, results transfer vs scratch, and limitations.

Backbones whose ImageNet weights are neither cached nor downloadable stop the
run with the weights error, unless ``--missing-weights skip`` (they are then
named, with the reason, in the report and the deck) or ``--weights none``;
when every backbone is skipped the run stops with the weights error. ``--weights`` takes files per
backbone (``mobilenet_v2=FILE,mobilenet_v1_025=FILE``); a single file is used
for the backbone it belongs to.

Run: ``transferkit run backbones --data cifar10.tar.gz --backbones mobilenet_v2,mobilenet_v1_025``
"""

from __future__ import annotations

import argparse
import logging
import time

from transferkit.errors import WeightsNotFoundError
from transferkit.experiments import _common as c
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.models.registry import get_backbone_spec
from transferkit.training.recipes import fine_tune
from transferkit.training.train import train

NAME = "backbones"
FULL, QUICK = c.Budget(per_class=300, epochs=8), c.Budget(per_class=30, epochs=3)
DEFAULT_BACKBONES = "mobilenet_v2,mobilenet_v1_025,resnet50,vgg16,efficientnet_b0"
logger = logging.getLogger("transferkit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    c.add_common_arguments(parser, NAME, full=FULL, quick=QUICK)
    parser.add_argument("--backbones", default=DEFAULT_BACKBONES,
                        help="comma-separated registry names (default "
                        f"{DEFAULT_BACKBONES.replace(',', ', ')}; see `transferkit info`)")
    parser.add_argument("--missing-weights", choices=("error", "skip"), default="error",
                        help="what to do when a backbone's ImageNet weights are unavailable")
    parser.add_argument("--image-size", type=int,
                        help="size fed to every backbone (default: each backbone's smallest "
                        "pretrained size, e.g. 96 for MobileNetV2, 224 for ResNet50)")
    parser.add_argument("--unfreeze", type=c.unfreeze_arg, default="auto",
                        help="backbone layers to fine-tune: 'auto' (default: the backbone's "
                        "measured choice), 'all', or a count")
    parser.add_argument("--fine-tune-epochs", type=int,
                        help="fine-tuning epochs (default 4; 1 with --quick)")


def _build_all(args: argparse.Namespace, names: list[str], data) -> tuple[dict, dict]:
    """Every backbone's model, built before any trains: a missing weights file stops the
    run (or is skipped) in seconds, not after the networks before it have trained."""
    models, skipped = {}, {}
    for name in names:
        c.seed(args)
        try:
            models[name] = build_transfer_model(
                name, data.num_classes, input_shape=data.image_shape, image_size=args.image_size,
                weights=c.weights(args, name), head=(128,), dropout=0.3)
        except WeightsNotFoundError as exc:
            if args.missing_weights == "error":
                raise WeightsNotFoundError(
                    f"{exc} Nothing was trained. Give this network's file as --weights "
                    f"{name}=FILE, or pass --missing-weights skip.") from exc
            skipped[name] = str(exc).split(" Cause:")[0]
            logger.warning("Skipping %s: ImageNet weights unavailable", name)
    return models, skipped


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    names = [get_backbone_spec(n.strip()).name for n in args.backbones.split(",") if n.strip()]
    data = c.load_data(args)
    epochs = c.budget(args).epochs
    ft_epochs = args.fine_tune_epochs or (1 if args.quick else 4)
    models, skipped = _build_all(args, names, data)  # every weights file found before training
    c.time_budget(args, runs=2 * len(models) + 1)
    runs, purposes = [], {}
    for name, model in models.items():
        purposes[name] = get_backbone_spec(name).purpose
        runs.append(train(model, data, epochs=epochs, **c.run_dir(args, f"{name}_frozen")))
        runs.append(fine_tune(model, data, unfreeze=c.clamp_unfreeze(args.unfreeze, model),
                              epochs=ft_epochs, **c.run_dir(args, f"{name}_finetuned")))
    if not runs:
        raise WeightsNotFoundError(
            "No backbone could be built, so there is nothing to compare with the CNN from "
            "scratch. Skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
            + ". Give weights files with --weights NAME=FILE, or run online once.")
    c.seed(args)
    scratch = build_baseline_cnn(data.num_classes, input_shape=data.image_shape)
    runs.append(train(scratch, data, epochs=epochs + ft_epochs, **c.run_dir(args, "baseline_cnn_scratch")))
    return c.finish(NAME, args, runs, started=started, data=data, slides=True, skipped=skipped,
                    title="Transfer learning on CIFAR-10: a backbone study",
                    extra={"backbones": names, "skipped": skipped, "purposes": purposes,
                           "fine_tune_epochs": ft_epochs})
