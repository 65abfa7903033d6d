"""Experiment 2: the minimal recipe, as people type it, done right.

Frozen ImageNet MobileNetV2, GlobalAveragePooling, Dense(128, relu),
Dropout(0.3), Dense softmax; Adam, sparse categorical cross-entropy, 5 epochs,
validation, test evaluation; confusion matrix, classification report, loss
curves; the saved ``.keras`` model reloaded and re-evaluated (same accuracy).

Unlike the usual notebook it validates on a held-out part of the training set
(not on the test set), and the model upscales 32x32 images to 96x96 before the
backbone. ``--native-32px`` also trains the naive variant that feeds 32x32
images straight in, so the gain from the resize shows side by side.

Run: ``transferkit run mobilenetv2_frozen --data cifar10.tar.gz --native-32px``
"""

from __future__ import annotations

import argparse
import time

import keras

from transferkit.experiments import _common as c
from transferkit.models.builders import build_transfer_model
from transferkit.reporting.plots import plot_per_class_metrics
from transferkit.runs.evaluation import evaluate
from transferkit.training.train import train

NAME = "mobilenetv2_frozen"
FULL, QUICK = c.Budget(per_class=1000, epochs=5), c.Budget(per_class=40, epochs=3)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    c.add_common_arguments(parser, NAME, full=FULL, quick=QUICK)
    parser.add_argument("--native-32px", action="store_true",
                        help="also train the naive recipe that feeds 32x32 images to MobileNetV2")


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    data = c.load_data(args)
    epochs = c.budget(args).epochs
    out = c.output_dir(args)
    variants = {"mobilenet_v2_frozen": None}  # None: the library's default upscale (96 px)
    if args.native_32px:
        variants["mobilenet_v2_frozen_32px"] = data.image_shape[0]
    c.time_budget(args, runs=len(variants))

    runs = []
    for name, image_size in variants.items():
        c.seed(args)
        model = build_transfer_model("mobilenet_v2", data.num_classes, input_shape=data.image_shape,
                                     image_size=image_size, weights=c.weights(args),
                                     head=(128,), dropout=0.3)
        runs.append(train(model, data, epochs=epochs, optimizer="adam", lr=1e-3,
                          **c.run_dir(args, name)))

    main_run = runs[0]
    plot_per_class_metrics(main_run.evaluation, path=out / "per_class_metrics.png")
    model_file = out / "mobilenet_v2_frozen" / "model.keras"
    reloaded = evaluate(keras.saving.load_model(model_file), data)  # no custom objects needed
    extra = {
        "model_file": str(model_file),
        "reloaded_test_accuracy": reloaded.accuracy,
        "reload_matches": abs(reloaded.accuracy - main_run.evaluation.accuracy) < 1e-9,
    }
    if args.native_32px:
        extra["resize_gain_points"] = round(
            100 * (main_run.evaluation.accuracy - runs[1].evaluation.accuracy), 2)
    print(main_run.evaluation.report)
    return c.finish(NAME, args, runs, started=started, data=data, extra=extra)
