"""Experiment 1: ImageNet MobileNetV2, frozen and fine-tuned, vs a CNN trained from scratch.

Both models see the same CIFAR-10 images, epochs and seed. The transfer model
is MobileNetV2 (frozen, ImageNet weights, inputs upscaled 32 -> 96 inside the
model) with GlobalAveragePooling, Dropout and a Dense softmax; its head trains
on cached backbone features. A copy of it is then fine-tuned as a whole with
:func:`~transferkit.training.recipes.fine_tune`'s measured recipe, to show what
transfer learning buys beyond frozen features. Writes learning curves, feature
maps of an intermediate backbone layer for one test image (ImageNet features,
before fine-tuning), and the comparison table.

Run: ``transferkit run transfer_vs_baseline --data cifar10.tar.gz``
"""

from __future__ import annotations

import argparse
import time

import keras

from transferkit.experiments import _common as c
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.models.features import default_feature_layers, extract_feature_maps
from transferkit.reporting.image_plots import plot_feature_maps
from transferkit.training.recipes import fine_tune
from transferkit.training.train import train

NAME = "transfer_vs_baseline"
FULL, QUICK = c.Budget(per_class=1000, epochs=10), c.Budget(per_class=40, epochs=3)
FT_EPOCHS, QUICK_FT_EPOCHS = 6, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    c.add_common_arguments(parser, NAME, full=FULL, quick=QUICK)
    parser.add_argument("--fine-tune-epochs", type=int,
                        help=f"fine-tuning epochs (default {FT_EPOCHS}; {QUICK_FT_EPOCHS} with "
                        "--quick; 0 skips fine-tuning)")


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    data = c.load_data(args)
    epochs = c.budget(args).epochs
    out = c.output_dir(args)
    ft_epochs = QUICK_FT_EPOCHS if args.quick else FT_EPOCHS
    ft_epochs = ft_epochs if args.fine_tune_epochs is None else args.fine_tune_epochs
    c.time_budget(args, runs=3 if ft_epochs else 2)

    c.seed(args)
    transfer = build_transfer_model("mobilenet_v2", data.num_classes, input_shape=data.image_shape,
                                    weights=c.weights(args), head=(), dropout=0.2)
    transfer_run = train(transfer, data, epochs=epochs, **c.run_dir(args, "mobilenet_v2_frozen"))

    layer = default_feature_layers(transfer)[0]  # a middle block: past edges, before object parts
    image = data.x_test[:1]
    maps = extract_feature_maps(transfer, image, layer)
    plot_feature_maps(image[0], maps[layer][0], layer=layer, path=out / "feature_maps.png")

    runs = [transfer_run]
    if ft_epochs:
        # A copy from disk, so the frozen run keeps its own model.
        tuned = keras.saving.load_model(out / "mobilenet_v2_frozen" / "model.keras")
        runs.append(fine_tune(tuned, data, epochs=ft_epochs,
                              **c.run_dir(args, "mobilenet_v2_finetuned")))

    c.seed(args)
    baseline = build_baseline_cnn(data.num_classes, input_shape=data.image_shape)
    runs.append(train(baseline, data, epochs=epochs, **c.run_dir(args, "baseline_cnn_scratch")))

    return c.finish(NAME, args, runs, started=started, data=data,
                    extra={"feature_map_layer": layer,
                           "reported": {"transfer_val_accuracy": 0.33, "baseline_test_accuracy": 0.63}})
