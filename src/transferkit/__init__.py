"""transferkit: correct, fast transfer learning for image classification with Keras 3."""

__version__ = "0.1.0"

from transferkit.augment import AugmentedBatches, crop_flip  # noqa: E402
from transferkit.backbones import (  # noqa: E402
    BACKBONES,
    BackbonePreprocessing,
    build_backbone,
    get_backbone_spec,
    list_backbones,
)
from transferkit.callbacks import (  # noqa: E402
    default_callbacks,
    lr_callback,
    read_history,
    step_decay,
    warmup_cosine,
)
from transferkit.compare import Comparison, compare_runs  # noqa: E402
from transferkit.data import (  # noqa: E402
    CIFAR10_CLASSES,
    DataSplits,
    augmentation,
    load_cifar10,
    load_image_folder,
    make_synthetic_dataset,
)
from transferkit.errors import (  # noqa: E402
    ConfigurationError,
    CorruptDataError,
    DataError,
    DataNotFoundError,
    RunDirectoryExistsError,
    TransferkitError,
    UnknownNameError,
    WeightsNotFoundError,
)
from transferkit.evaluation import Evaluation, evaluate  # noqa: E402
from transferkit.features import extract_feature_maps, extract_features  # noqa: E402
from transferkit.finetune import fine_tune, progressive_phases, resolution_view  # noqa: E402
from transferkit.models import (  # noqa: E402
    build_baseline_cnn,
    build_transfer_model,
    find_backbone,
    freeze,
    parameter_counts,
    unfreeze_last,
)
from transferkit.scratch import train_from_scratch  # noqa: E402
from transferkit.training import (  # noqa: E402
    Run,
    TwoStageResult,
    make_deterministic,
    train,
    two_stage,
)  # noqa: E402

__all__ = [
    "AugmentedBatches",
    "BACKBONES",
    "CIFAR10_CLASSES",
    "BackbonePreprocessing",
    "Comparison",
    "ConfigurationError",
    "CorruptDataError",
    "DataError",
    "DataNotFoundError",
    "DataSplits",
    "Evaluation",
    "Run",
    "RunDirectoryExistsError",
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
    "fine_tune",
    "find_backbone",
    "freeze",
    "get_backbone_spec",
    "list_backbones",
    "load_cifar10",
    "load_image_folder",
    "make_deterministic",
    "lr_callback",
    "make_synthetic_dataset",
    "parameter_counts",
    "progressive_phases",
    "read_history",
    "resolution_view",
    "step_decay",
    "train",
    "train_from_scratch",
    "two_stage",
    "unfreeze_last",
    "warmup_cosine",
]
