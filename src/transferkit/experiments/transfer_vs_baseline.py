"""Experiment 1: frozen ImageNet MobileNetV2 vs a CNN trained from scratch.

Both models see the same CIFAR-10 images, epochs and seed. The transfer model
is MobileNetV2 (frozen, ImageNet weights, inputs upscaled 32 -> 96 inside the
model) with GlobalAveragePooling, Dropout and a Dense softmax; its head trains
on cached backbone features. Writes learning curves of both, feature maps of
an intermediate backbone layer for one test image, and the comparison table.

Run: ``transferkit run transfer_vs_baseline --data cifar10.tar.gz``
"""

from __future__ import annotations

import argparse
import time

from transferkit.experiments import _common as c
from transferkit.features import default_feature_layers, extract_feature_maps
from transferkit.models import build_baseline_cnn, build_transfer_model
from transferkit.plots import plot_feature_maps
from transferkit.training import train

NAME = "transfer_vs_baseline"
FULL, QUICK = c.Budget(per_class=1000, epochs=10), c.Budget(per_class=40, epochs=3)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    c.add_common_arguments(parser, NAME, full=FULL, quick=QUICK)


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    data = c.load_data(args)
    epochs = c.budget(args).epochs
    out = c.output_dir(args)

    c.seed(args)
    transfer = build_transfer_model("mobilenet_v2", data.num_classes, input_shape=data.image_shape,
                                    weights=c.weights(args), head=(), dropout=0.2)
    transfer_run = train(transfer, data, epochs=epochs, **c.run_dir(args, "mobilenet_v2_frozen"))

    c.seed(args)
    baseline = build_baseline_cnn(data.num_classes, input_shape=data.image_shape)
    baseline_run = train(baseline, data, epochs=epochs, **c.run_dir(args, "baseline_cnn_scratch"))

    layer = default_feature_layers(transfer)[0]  # a middle block: past edges, before object parts
    image = data.x_test[:1]
    maps = extract_feature_maps(transfer, image, layer)
    plot_feature_maps(image[0], maps[layer][0], layer=layer, path=out / "feature_maps.png")

    return c.finish(NAME, args, [transfer_run, baseline_run], started=started, data=data,
                    extra={"feature_map_layer": layer,
                           "reported": {"transfer_val_accuracy": 0.33, "baseline_test_accuracy": 0.63}})


def main(argv: list[str] | None = None) -> int:
    return c.main(NAME, argv)
