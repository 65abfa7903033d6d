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

# Before anything imports TensorFlow: its C++ INFO and WARNING lines are noise here.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_EXPORTS = {
    # transferkit.augment
    "AugmentedBatches": "augment",
    "crop_flip": "augment",
    # transferkit.registry
    "BACKBONES": "registry",
    "BackboneSpec": "registry",
    "get_backbone_spec": "registry",
    "list_backbones": "registry",
    "register_backbone": "registry",
    # transferkit.backbones
    "BackbonePreprocessing": "backbones",
    "build_backbone": "backbones",
    # transferkit.callbacks
    "default_callbacks": "callbacks",
    "lr_callback": "callbacks",
    "read_history": "callbacks",
    "step_decay": "callbacks",
    "warmup_cosine": "callbacks",
    # transferkit.compare
    "Comparison": "compare",
    "compare_runs": "compare",
    # transferkit.data
    "CIFAR10_CLASSES": "data",
    "DataSplits": "data",
    "augmentation": "data",
    "load_cifar10": "data",
    "load_image_folder": "data",
    "make_synthetic_dataset": "data",
    # transferkit.errors
    "ConfigurationError": "errors",
    "CorruptDataError": "errors",
    "DataError": "errors",
    "DataNotFoundError": "errors",
    "RunDirectoryExistsError": "errors",
    "TransferkitError": "errors",
    "UnknownNameError": "errors",
    "WeightsNotFoundError": "errors",
    # transferkit.evaluation
    "Evaluation": "evaluation",
    "evaluate": "evaluation",
    # transferkit.features
    "extract_feature_maps": "features",
    "extract_features": "features",
    # transferkit.finetune
    "fine_tune": "finetune",
    "progressive_phases": "finetune",
    "resolution_view": "finetune",
    # transferkit.models
    "build_baseline_cnn": "models",
    "build_transfer_model": "models",
    "TransferClassifier": "classifier",
    "BaselineCNN": "classifier",
    "find_backbone": "anatomy",
    "load_model": "models",
    "freeze": "freezing",
    "parameter_counts": "anatomy",
    "unfreeze_last": "freezing",
    # transferkit.scratch
    "train_from_scratch": "scratch",
    # transferkit.training
    "Run": "runs",
    "TwoStageResult": "twostage",
    "make_deterministic": "training",
    "train": "training",
    "two_stage": "twostage",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'transferkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"transferkit.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if "keras" in sys.modules:
    # Keras is loaded already, so this costs nothing, and it registers the
    # custom layers that keras.saving.load_model needs for transferkit models.
    importlib.import_module("transferkit.classifier")


__all__ = [
    "AugmentedBatches",
    "BACKBONES",
    "BackbonePreprocessing",
    "BackboneSpec",
    "BaselineCNN",
    "CIFAR10_CLASSES",
    "Comparison",
    "ConfigurationError",
    "CorruptDataError",
    "DataError",
    "DataNotFoundError",
    "DataSplits",
    "Evaluation",
    "Run",
    "RunDirectoryExistsError",
    "TransferClassifier",
    "TransferkitError",
    "TwoStageResult",
    "UnknownNameError",
    "WeightsNotFoundError",
    "__version__",
    "augmentation",
    "build_backbone",
    "build_baseline_cnn",
    "build_transfer_model",
    "compare_runs",
    "crop_flip",
    "default_callbacks",
    "evaluate",
    "extract_feature_maps",
    "extract_features",
    "find_backbone",
    "fine_tune",
    "freeze",
    "get_backbone_spec",
    "list_backbones",
    "load_model",
    "load_cifar10",
    "load_image_folder",
    "lr_callback",
    "make_deterministic",
    "make_synthetic_dataset",
    "parameter_counts",
    "progressive_phases",
    "read_history",
    "register_backbone",
    "resolution_view",
    "step_decay",
    "train",
    "train_from_scratch",
    "two_stage",
    "unfreeze_last",
    "warmup_cosine",
]
