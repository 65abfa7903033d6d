"""Friendly constructors and loading for transferkit's classifiers.

:func:`build_transfer_model` and :func:`build_baseline_cnn` build a
:class:`~transferkit.models.classifier.TransferClassifier` or
:class:`~transferkit.models.classifier.BaselineCNN`, reading the class count and
image shape from a :class:`~transferkit.data.splits.DataSplits` when given one.
:func:`load_model` loads any ``.keras`` file with transferkit's classes
registered.
"""

from __future__ import annotations

import importlib
import os
import zipfile
from collections.abc import Sequence

import keras

from transferkit.data.splits import DataSplits
from transferkit.errors import ConfigurationError
from transferkit.models.classifier import BaselineCNN, TransferClassifier, check_input_shape
from transferkit.models.files import check_model_file
from transferkit.models.freezing import FreezeSpec


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
    """Build a pretrained backbone with a new classification head: a TransferClassifier.

    The friendly constructor of :class:`~transferkit.models.classifier.TransferClassifier`,
    whose docstring describes the model and every argument. What it adds: the
    class count and image shape may come from the data.

    Args:
        backbone: A registry name or a ``keras.Model`` giving feature maps.
        num_classes: Number of output classes (at least 2), or the
            :class:`~transferkit.data.splits.DataSplits` to train on: its class count
            and image shape are then used, and the size its loader chose to feed the
            backbone (``provenance["size_choice"]``) unless ``image_size`` is given.
        input_shape: Shape of one raw input image; default: the data's, else
            CIFAR's ``(32, 32, 3)``.
        image_size, weights, freeze, head, dropout, name: As for
            :class:`~transferkit.models.classifier.TransferClassifier`.

    Returns:
        An uncompiled :class:`~transferkit.models.classifier.TransferClassifier`.

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
    if image_size is None and isinstance(num_classes, DataSplits):
        # load_image_folder(image_size="auto") chose the size the backbone is fed
        image_size = num_classes.provenance.get("size_choice", {}).get("model_size")
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
    """Build a strong small CNN to train from scratch: a BaselineCNN.

    The friendly constructor of :class:`~transferkit.models.classifier.BaselineCNN`,
    whose docstring describes the model and every argument; the class count
    and image shape may come from the data.

    Args:
        num_classes: Number of output classes (at least 2), or the
            :class:`~transferkit.data.splits.DataSplits` to train on.
        input_shape: Shape of one raw input image; default: the data's, else ``(32, 32, 3)``.
        filters, head, dropout, residual, name: As for
            :class:`~transferkit.models.classifier.BaselineCNN`.

    Returns:
        An uncompiled :class:`~transferkit.models.classifier.BaselineCNN`.

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

    ``keras.saving.load_model`` works too once ``transferkit.models.classifier`` and
    ``transferkit.training.optim`` are imported (they register the classifier
    classes, the preprocessing layer and the time budget's learning-rate
    schedule); this makes sure they are, and tells a missing file from one that is not
    a model (Keras says "File not found" for both).

    Args:
        path: A ``.keras`` file.

    Returns:
        The model, compiled if it was saved compiled.

    Raises:
        DataNotFoundError: If the file does not exist.
        ConfigurationError: If it is not a Keras model file.

    Example:
        >>> model = build_baseline_cnn(3, input_shape=(16, 16, 3))
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.keras"
        >>> model.save(path)
        >>> load_model(path).output_shape
        (None, 3)
    """
    path = check_model_file(path)
    # Registers WarmupCosine, which a budgeted run's optimizer holds. Imported here,
    # not at the top: models sit below training, and only loading needs it.
    importlib.import_module("transferkit.training.optim")
    try:
        return keras.saving.load_model(path)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ConfigurationError(f"{path} is not a Keras model file Keras can load ({exc}).") from exc
