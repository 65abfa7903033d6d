"""Experiment 4: "lilTinyNet": train, fine-tune, evaluate, as three separate steps.

1. Base model: frozen ImageNet MobileNetV2 (its own preprocessing inside the
   model), a small head, warm-up + cosine learning-rate schedule, early
   stopping and a best-model checkpoint (``base/best.keras``).
2. Fine-tuner: loads the saved base model from disk and fine-tunes it with
   :func:`~transferkit.training.recipes.fine_tune`'s measured recipe: the whole
   backbone (BatchNorm frozen), AdamW, warm-up + cosine, crop + flip,
   progressive resizing (``finetuned/best.keras``). ``--unfreeze 20
   --fine-tune-lr 1e-5`` gives the classic recipe for comparison.
3. Evaluator: loads both saved models, evaluates them on the test set, draws
   both architectures, the metrics side by side and sample predictions.

Run: ``transferkit run liltinynet --data cifar10.tar.gz``
"""

from __future__ import annotations

import argparse
import time

import keras

from transferkit.experiments import _common as c
from transferkit.models.anatomy import parameter_counts
from transferkit.models.builders import build_transfer_model
from transferkit.reporting.image_plots import plot_predictions
from transferkit.reporting.plots import plot_model_summary
from transferkit.runs.evaluation import evaluate
from transferkit.runs.record import Run
from transferkit.training.recipes import fine_tune
from transferkit.training.train import train

NAME = "liltinynet"
FULL, QUICK = c.Budget(per_class=500, epochs=10), c.Budget(per_class=30, epochs=3)
FT_EPOCHS, QUICK_FT_EPOCHS = 6, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    c.add_common_arguments(parser, NAME, full=FULL, quick=QUICK)
    parser.add_argument("--unfreeze", type=c.unfreeze_arg, default="auto",
                        help="backbone layers to fine-tune: 'auto' (default: the backbone's "
                        "measured choice), 'all', or a count")
    parser.add_argument("--fine-tune-epochs", type=int,
                        help=f"fine-tuning epochs (default {FT_EPOCHS}; {QUICK_FT_EPOCHS} with --quick)")
    parser.add_argument("--fine-tune-lr", type=float,
                        help="peak fine-tuning learning rate (default: fine_tune's, 2.5e-4 at batch 64)")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience")


def train_base(args: argparse.Namespace, data) -> None:
    c.seed(args)
    model = build_transfer_model("mobilenet_v2", data.num_classes, input_shape=data.image_shape,
                                 weights=c.weights(args), head=(128,), dropout=0.3, name="liltinynet")
    train(model, data, epochs=c.budget(args).epochs, lr=1e-3, schedule="cosine",
          patience=args.patience, **c.run_dir(args, "base"))


def fine_tune_base(args: argparse.Namespace, data) -> None:
    model = keras.saving.load_model(c.output_dir(args) / "base" / "best.keras")
    epochs = args.fine_tune_epochs or (QUICK_FT_EPOCHS if args.quick else FT_EPOCHS)
    fine_tune(model, data, unfreeze=args.unfreeze, lr=args.fine_tune_lr, epochs=epochs,
              patience=args.patience, **c.run_dir(args, "finetuned"))


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    data = c.load_data(args)
    out = c.output_dir(args)
    c.time_budget(args, runs=2)
    train_base(args, data)
    fine_tune_base(args, data)

    # The evaluator works from the files alone, as a separate script would.
    runs, models = [], {}
    for name in ("base", "finetuned"):
        run = Run.load(out / name, load_model=False)  # the checkpoint is loaded below
        models[name] = keras.saving.load_model(out / name / "best.keras")
        run.evaluation = evaluate(models[name], data)  # the checkpoint, not the last epoch
        run.model = models[name]  # the report draws its feature maps
        runs.append(run)
        plot_model_summary(models[name], path=out / f"architecture_{name}.png")
        plot_predictions(data.x_test, run.evaluation, count=16, name=name,
                         path=out / f"predictions_{name}.png")
    side_by_side = {name: {"test_accuracy": r.evaluation.accuracy, "test_loss": r.evaluation.loss,
                           "params": parameter_counts(models[name])}
                    for name, r in zip(models, runs)}
    for name, row in side_by_side.items():
        print(f"{name:<10} accuracy {row['test_accuracy']:.4f}  loss {row['test_loss']:.4f}  "
              f"trainable {row['params']['trainable']:,}")
    figures = {f"Architecture of the {'base' if n == 'base' else 'fine-tuned'} model ({n}/best.keras)":
               out / f"architecture_{n}.png" for n in models}
    return c.finish(NAME, args, runs, started=started, data=data, figures=figures,
                    extra={"evaluator": side_by_side, "unfreeze": args.unfreeze,
                           "fine_tune_lr": args.fine_tune_lr})
