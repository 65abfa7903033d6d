"""Datasets as uint8 arrays: CIFAR-10, image folders, generated data, class subsets.

One module per source: :mod:`~transferkit.data.splits` (the
:class:`DataSplits` container, input checks, stratified splits),
:mod:`~transferkit.data.cifar`, :mod:`~transferkit.data.folder` (your own
images) and :mod:`~transferkit.data.synthetic`.
"""

from transferkit.data.cifar import CIFAR10_CLASSES, cifar10_search_paths, load_cifar10
from transferkit.data.folder import IMAGE_EXTENSIONS, RESIZE_MODES, load_image_folder
from transferkit.data.splits import (
    SPLITS,
    DataSplits,
    augmentation,
    check_images,
    check_labels,
    stratified_split,
)
from transferkit.data.synthetic import make_synthetic_dataset
from transferkit.registry import keras_home

__all__ = [
    "CIFAR10_CLASSES",
    "IMAGE_EXTENSIONS",
    "RESIZE_MODES",
    "SPLITS",
    "DataSplits",
    "augmentation",
    "check_images",
    "check_labels",
    "cifar10_search_paths",
    "keras_home",
    "load_cifar10",
    "load_image_folder",
    "make_synthetic_dataset",
    "stratified_split",
]
