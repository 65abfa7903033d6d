"""Friendly constructors and loading for transferkit's classifiers.

:func:`build_transfer_model` and :func:`build_baseline_cnn` build a
:class:`~transferkit.classifier.TransferClassifier` or
:class:`~transferkit.classifier.BaselineCNN`, reading the class count and
image shape from a :class:`~transferkit.data.DataSplits` when given one.
:func:`load_model` loads any ``.keras`` file with transferkit's classes
registered. The model's anatomy (:mod:`transferkit.anatomy`) and freezing
(:mod:`transferkit.freezing`) are re-exported here, where they used to live.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import keras

from transferkit.anatomy import (  # noqa: F401 - re-exported: they used to live here
    OUTPUT_LAYER,
    POOL_LAYER,
    PREPROCESS_LAYER,
    backbone_input,
    check_model_input,
    find_backbone,
    head_layers,
    parameter_counts,
    split_at_pool,
)
from transferkit.classifier import BaselineCNN, TransferClassifier, check_input_shape
from transferkit.data import DataSplits
from transferkit.errors import ConfigurationError, DataNotFoundError
from transferkit.freezing import FreezeSpec, recompile, set_freeze, unfreeze_last  # noqa: F401
from transferkit.freezing import freeze as _freeze


def build_transfer_model(
    backbone: str | keras.Model = "mobilenet_v2",
    num_classes: int | DataSplits = 10,
    *,
    input_shape: Sequence[int] | None = None,
    image_size: int | None = None,
    weights: str | None = "imagenet",
    freeze: FreezeSpec = True,
    head: Sequence[int] = (128,),
    dropout: float = 0.3,
    name: str | None = None,
) -> TransferClassifier:
    """Build a pretrained backbone with a new classification head.

    Raw 0-255 images at their native size go in; the model resizes them
    (small inputs are upscaled to the backbone's smallest pretrained size,
    e.g. 32x32 -> 96x96 for MobileNetV2, with one log line), applies the
    backbone's own preprocessing, runs the backbone in inference mode
    (``training=False``, so BatchNorm statistics never drift), pools, and
    classifies with ``head`` Dense+ReLU layers, Dropout and a softmax.

    Args:
        backbone: A registry name (see :func:`~transferkit.backbones.list_backbones`)
            or a ``keras.Model`` mapping raw images to feature maps, such as
            ``cnn.get_layer("features")`` of a model trained earlier (it is
            cloned with its weights, so the original is not affected).
        num_classes: Number of output classes (at least 2), or the
            :class:`~transferkit.data.DataSplits` to train on: its class count
            and image shape are then used.
        input_shape: Shape of one raw input image, ``(height, width, 3)``;
            default: the data's, else CIFAR's ``(32, 32, 3)``.
        image_size: Size the backbone is fed; default: upscale small inputs
            (see above), keep larger ones.
        weights: ``"imagenet"``, ``None`` or a path to a weights file
            (registry backbones only).
        freeze: ``True`` (freeze the backbone), ``False`` (train it all), an
            int ``n`` (train only its last ``n`` layers) or a layer name (freeze
            up to and including it). BatchNorm layers stay frozen either way.
        head: Units of each Dense+ReLU layer before the output; ``()`` for none.
        dropout: Dropout rate before the output layer.
        name: Model name; default ``transfer_<backbone>``.

    Returns:
        An uncompiled :class:`~transferkit.classifier.TransferClassifier`.

    Raises:
        ConfigurationError: For a bad ``num_classes``, ``input_shape``,
            ``dropout`` or ``freeze``.
        UnknownNameError: For an unknown backbone or ``freeze`` layer name.
        WeightsNotFoundError: If ImageNet weights can be neither found nor downloaded.

    Example:
        >>> model = build_transfer_model("mobilenet_v2", 10, weights=None)
        >>> model.input_shape, model.output_shape
        ((None, 32, 32, 3), (None, 10))
    """
    num_classes, input_shape = _from_data(num_classes, input_shape)
    return TransferClassifier(backbone, num_classes, input_shape=input_shape,
                              image_size=image_size, weights=weights, freeze=freeze, head=head,
                              dropout=dropout, name=name)


def build_baseline_cnn(
    num_classes: int | DataSplits = 10,
    *,
    input_shape: Sequence[int] | None = None,
    filters: Sequence[int] = (32, 64, 128),
    head: Sequence[int] = (128,),
    dropout: float = 0.3,
    residual: bool = False,
    name: str = "baseline_cnn",
) -> BaselineCNN:
    """Build a strong small CNN to train from scratch, with the transfer models' conventions.

    Raw 0-255 images in; a nested ``features`` model (rescaling, then per
    entry of ``filters`` two Conv-BatchNorm-ReLU layers, max-pooling and
    dropout); then the same pool/head/softmax as :func:`build_transfer_model`.
    ``model.get_layer("features")`` is the convolutional part to transfer.

    Args:
        num_classes: Number of output classes (at least 2), or the
            :class:`~transferkit.data.DataSplits` to train on.
        input_shape: Shape of one raw input image; default: the data's, else ``(32, 32, 3)``.
        filters: Convolution filters of each block.
        head: Units of each Dense+ReLU layer before the output.
        dropout: Dropout rate before the output layer.
        residual: ResNet-9-style blocks instead: a stem convolution, then per
            entry of ``filters`` a convolution, max-pooling and a two-convolution
            residual block.
        name: Model name.

    Returns:
        An uncompiled :class:`~transferkit.classifier.BaselineCNN`.

    Raises:
        ConfigurationError: For bad arguments, or an input too small for the
            number of pooling blocks.

    Example:
        >>> cnn = build_baseline_cnn(10)
        >>> cnn.get_layer("features").output_shape
        (None, 4, 4, 128)
    """
    num_classes, input_shape = _from_data(num_classes, input_shape)
    return BaselineCNN(num_classes, input_shape=input_shape, filters=filters, head=head,
                       dropout=dropout, residual=residual, name=name)


def _from_data(num_classes, input_shape) -> tuple[int, tuple[int, int, int]]:
    """``(num_classes, input_shape)``, read from a DataSplits where one is given."""
    if isinstance(num_classes, DataSplits):
        data, num_classes = num_classes, num_classes.num_classes
        input_shape = data.image_shape if input_shape is None else input_shape
    return num_classes, check_input_shape((32, 32, 3) if input_shape is None else input_shape)


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` model saved by transferkit (or any Keras model).

    ``keras.saving.load_model`` works too once ``transferkit.classifier`` is
    imported (it registers the classifier classes and the preprocessing
    layer); this makes sure it is, and turns a missing file into a clear error.

    Args:
        path: A ``.keras`` file.

    Returns:
        The model, compiled if it was saved compiled.

    Raises:
        DataNotFoundError: If the file does not exist.
        ConfigurationError: If it is not a ``.keras`` model file.

    Example:
        >>> model = build_baseline_cnn(3, input_shape=(16, 16, 3))
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.keras"
        >>> model.save(path)
        >>> load_model(path).output_shape
        (None, 3)
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"Model file {str(path)!r} does not exist.")
    try:
        return keras.saving.load_model(path)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ConfigurationError(f"{path} is not a loadable .keras model ({exc}).") from exc


freeze = _freeze  # re-exported after the builders, whose ``freeze=`` argument shadows it
