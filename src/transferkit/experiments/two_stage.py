"""Experiment 3: class-split transfer between two CIFAR-10 tasks.

Stage 1 trains a CNN (the residual :func:`~transferkit.models.builders.build_baseline_cnn`,
with :func:`~transferkit.training.recipes.train_from_scratch`'s recipe) on airplane,
automobile, bird, cat, deer, dog, frog. Stage 2 freezes that CNN's
convolutional block and trains a new head on horse, ship, truck. Then the
transfer is done the way that pays: stage 1's network gets a new head and
trains whole, BatchNorm included, with :func:`~transferkit.training.recipes.train_from_scratch`'s
recipe (:func:`~transferkit.twostage.warm_start`). A fourth model, the same
CNN, learns the 3 classes from scratch with the same epochs and recipe,
because 3 classes are easier than 7 and the per-stage figures alone would
flatter the transfer: the fine-tuned and scratch runs differ only in their
starting weights. Reports accuracy, precision, recall and F1 (macro) for each.

Run: ``transferkit run two_stage --data cifar10.tar.gz``
"""

from __future__ import annotations

import argparse
import time

from transferkit.data.cifar import CIFAR10_CLASSES
from transferkit.experiments import _common as c
from transferkit.models.builders import build_baseline_cnn
from transferkit.training.recipes import train_from_scratch
from transferkit.twostage import two_stage

NAME = "two_stage"
FULL, QUICK = c.Budget(per_class=1000, epochs=10), c.Budget(per_class=150, epochs=4)
FIRST, SECOND = CIFAR10_CLASSES[:7], CIFAR10_CLASSES[7:]
REPORTED = {
    "stage1": {"accuracy": 0.7310, "precision": 0.7756, "recall": 0.6806, "f1": 0.7217},
    "stage2": {"accuracy": 0.8383, "precision": 0.8688, "recall": 0.7943, "f1": 0.8374},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    c.add_common_arguments(parser, NAME, full=FULL, quick=QUICK)


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    data = c.load_data(args)
    epochs = c.budget(args).epochs
    shares = c.time_budget(args, runs=4)  # stage 1, stage 2, stage 2 fine-tuned, scratch
    c.seed(args)
    cnn = build_baseline_cnn(len(FIRST), input_shape=data.image_shape, residual=True,
                             name="stage1_cnn")
    result = two_stage(data, FIRST, SECOND, epochs=epochs, seed=args.seed,
                       run_dir=c.output_dir(args), overwrite=True, cnn=cnn, first_recipe=True,
                       fine_tune=True, budget=shares)
    target = data.subset(SECOND)
    runs = [result.first, result.second, result.fine_tuned]
    c.seed(args)
    scratch = build_baseline_cnn(target.num_classes, input_shape=data.image_shape,
                                 residual=True, name="stage2_scratch_cnn")
    # The same recipe as the fine-tuned transfer: only the starting weights differ.
    runs.append(train_from_scratch(scratch, target, epochs=epochs,
                                   **c.run_dir(args, "stage2_scratch")))
    stages = {run.name: {k: getattr(run.evaluation, k) for k in ("accuracy", "precision", "recall", "f1")}
              for run in runs}
    for name, scores in stages.items():
        print(f"{name:<16} " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return c.finish(NAME, args, runs, started=started,
                    extra={"stages": stages, "reported": REPORTED,
                           "classes": {"stage1": list(FIRST), "stage2": list(SECOND)}})
