"""The documented experiments, runnable as ``transferkit run NAME`` or ``examples/NAME.py``.

Each module is a complete, readable recipe built from the public API, with
``add_arguments(parser)`` and a ``run(args)`` that returns the metrics it
writes to ``--out/metrics.json``. Modules load on demand, so listing them
does not start TensorFlow.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from transferkit.errors import unknown_name
from transferkit.experiments._options import common_options_help  # argparse only: no Keras

#: Experiment name -> one-line summary, in the order of EXPERIMENTS.md.
EXPERIMENTS: dict[str, str] = {
    "transfer_vs_baseline": "frozen MobileNetV2 vs a CNN from scratch; learning curves, feature maps",
    "mobilenetv2_frozen": "the minimal recipe: frozen MobileNetV2 + Dense(128)/Dropout(0.3), "
                          "report, saved model (--native-32px: the naive 32x32 input beside it)",
    "two_stage": "CNN on 7 classes, its frozen conv block transferred to the other 3, vs scratch",
    "liltinynet": "MobileNetV2 base with LR schedule, early stopping, checkpoints; "
                  "fine-tuner; evaluator",
    "backbones": "several pretrained backbones, frozen and fine-tuned, vs scratch; report and slides",
}


def load(name: str) -> ModuleType:
    """The module of experiment ``name``.

    Raises:
        UnknownNameError: For an unknown name, listing the valid ones.
    """
    if name not in EXPERIMENTS:
        raise unknown_name("experiment", name, EXPERIMENTS)
    return importlib.import_module(f"transferkit.experiments.{name}")


__all__ = ["EXPERIMENTS", "common_options_help", "load"]
