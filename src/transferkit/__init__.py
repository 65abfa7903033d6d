"""transferkit: correct, fast transfer learning for image classification with Keras 3.

The public API is importable from here (``from transferkit import train``).
Names load on first use, so ``import transferkit`` and the ``transferkit``
command start without TensorFlow; the first model, dataset or training call
imports it.
"""

from __future__ import annotations

import importlib
import os
import sys

__version__ = "0.1.0"

# Before anything imports TensorFlow: its C++ INFO and WARNING lines are noise here,
# and so are the lines it prints before its log level applies (unless the user chose one).
_HIDE_STARTUP = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's default CPU allocator gives each large buffer (a batch's activations,
# hundreds of MB for MobileNetV2) back to the kernel when freed, and the next step
# faults every page of it in again. Its BFC allocator keeps and reuses them: 114x fewer
# page faults in `fit` of MobileNetV2, system time from 12 % to 3 % of CPU time
# (benchmarks/cpu_time.py). Read when TensorFlow creates its allocator: importing
# transferkit first is enough; a value the user set stays.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

# The public API, listed once: each name and the module that defines it. Names load
# on first use (module __getattr__), so `import transferkit` needs no TensorFlow.
_EXPORTS = {
    # transferkit.data.augment
    "AugmentedBatches": "data.augment",
    "crop_flip": "data.augment",
    "photo_augment": "data.augment",
    # transferkit.data.cifar
    "CIFAR10_CLASSES": "data.cifar",
    "load_cifar10": "data.cifar",
    # transferkit.data.folder
    "load_image_folder": "data.folder",
    # transferkit.data.stream, transferkit.data.batches
    "ImageFiles": "data.stream",
    "StreamBatches": "data.batches",
    # transferkit.data.splits
    "DataSplits": "data.splits",
    "augmentation": "data.splits",
    # transferkit.data.synthetic
    "make_synthetic_dataset": "data.synthetic",
    # transferkit.models.registry
    "BACKBONES": "models.registry",
    "BackboneSpec": "models.registry",
    "get_backbone_spec": "models.registry",
    "list_backbones": "models.registry",
    "register_backbone": "models.registry",
    # transferkit.models.backbones
    "BackbonePreprocessing": "models.backbones",
    "build_backbone": "models.backbones",
    # transferkit.models.files
    "check_imagenet_weights": "models.files",
    # transferkit.models.classifier
    "BaselineCNN": "models.classifier",
    "TransferClassifier": "models.classifier",
    # transferkit.models.builders
    "build_baseline_cnn": "models.builders",
    "build_transfer_model": "models.builders",
    "load_model": "models.builders",
    # transferkit.models.anatomy
    "find_backbone": "models.anatomy",
    "parameter_counts": "models.anatomy",
    # transferkit.models.freezing
    "freeze": "models.freezing",
    "unfreeze_last": "models.freezing",
    # transferkit.models.features
    "extract_feature_maps": "models.features",
    "extract_features": "models.features",
    # transferkit.models.gradcam
    "grad_cam": "models.gradcam",
    # transferkit.models.export
    "export_model": "models.export",
    # transferkit.models.exported
    "ExportCheck": "models.exported",
    "ExportedModel": "models.exported",
    "compare_exported": "models.exported",
    # transferkit.training.train
    "make_deterministic": "training.train",
    "train": "training.train",
    # transferkit.training.class_weight
    "resolve_class_weight": "training.class_weight",
    # transferkit.training.recipes
    "fine_tune": "training.recipes",
    "train_from_scratch": "training.recipes",
    # transferkit.training.progressive
    "progressive_phases": "training.progressive",
    # transferkit.training.callbacks
    "default_callbacks": "training.callbacks",
    "lr_callback": "training.callbacks",
    "step_decay": "training.callbacks",
    "warmup_cosine": "training.callbacks",
    # transferkit.twostage
    "TwoStageResult": "twostage",
    "two_stage": "twostage",
    # transferkit.runs.record
    "Run": "runs.record",
    # transferkit.runs.layout
    "read_history": "runs.layout",
    # transferkit.runs.selection
    "select_run": "runs.selection",
    # transferkit.runs.evaluation
    "Evaluation": "runs.evaluation",
    "evaluate": "runs.evaluation",
    "predict": "runs.evaluation",
    # transferkit.reporting.compare
    "Comparison": "reporting.compare",
    "compare_runs": "reporting.compare",
    # transferkit.errors
    "BudgetTooShortError": "errors",
    "ConfigurationError": "errors",
    "CorruptDataError": "errors",
    "DataChangedError": "errors",
    "DataError": "errors",
    "DataNotFoundError": "errors",
    "MissingDependencyError": "errors",
    "RunDirectoryExistsError": "errors",
    "RunDirectoryBusyError": "errors",
    "TransferkitError": "errors",
    "UnknownNameError": "errors",
    "WeightsNotFoundError": "errors",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'transferkit' has no attribute {name!r}")
    if _HIDE_STARTUP and "tensorflow" not in sys.modules:
        from transferkit import _backend

        with _backend.hidden_tensorflow_startup():  # where this first use imports TensorFlow
            value = getattr(importlib.import_module(f"transferkit.{module}"), name)
    else:
        value = getattr(importlib.import_module(f"transferkit.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if "keras" in sys.modules:
    # Keras is loaded already, so this costs nothing, and it registers the
    # custom layers (and the budget's schedule) that keras.saving.load_model
    # needs for transferkit models.
    importlib.import_module("transferkit.models.classifier")
    importlib.import_module("transferkit.training.optim")


__all__ = ["__version__", *_EXPORTS]
