"""Transfer and baseline models, and freezing that keeps BatchNorm right.

Every model built here has the same shape::

    image (raw 0-255) -> [resize] -> [preprocess] -> backbone -> pool -> head -> predictions

The backbone is a nested ``keras.Model`` (the ImageNet network, or the
``features`` block of the baseline CNN), ``pool`` is GlobalAveragePooling, and
the head is Dense+ReLU layers, Dropout and a float32 softmax. That shape is
what lets :mod:`transferkit.training` cache frozen features and
:mod:`transferkit.features` reach inside the backbone.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import keras

from transferkit.backbones import (
    BackbonePreprocessing,
    build_backbone,
    get_backbone_spec,
    resize_target,
)
from transferkit.data import DataSplits
from transferkit.errors import ConfigurationError, DataError, DataNotFoundError, unknown_name

logger = logging.getLogger("transferkit")

POOL_LAYER = "pool"
"""Name of the GlobalAveragePooling layer between backbone and head."""
PREPROCESS_LAYER = "preprocess"
OUTPUT_LAYER = "predictions"

FreezeSpec = bool | int | str


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
) -> keras.Model:
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
        An uncompiled ``keras.Model``.

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
    _check_dropout(dropout)
    inputs = keras.Input(input_shape, name="image")
    if isinstance(backbone, keras.Model):
        base = _clone_backbone(backbone)
        x = _resize(inputs, input_shape, _backbone_input_size(base, input_shape, image_size))
        backbone_name = base.name
    else:
        spec = get_backbone_spec(backbone)
        if input_shape[-1] != 3:
            raise ConfigurationError(
                f"{spec.name} takes RGB images (3 channels); got input_shape {input_shape}."
            )
        size = resize_target(spec, min(input_shape[:2]), image_size)
        if image_size is None and size != min(input_shape[:2]):
            logger.info(
                "Upscaling %dx%d inputs to %dx%d inside the model: %s weights were trained "
                "at %s px (pass image_size= to choose).",
                input_shape[0], input_shape[1], size, size, spec.name,
                "/".join(map(str, spec.pretrained_sizes)),
            )
        base = build_backbone(spec.name, image_size=size, weights=weights)
        x = _resize(inputs, input_shape, (size, size))
        x = BackbonePreprocessing(spec.preprocessing, name=PREPROCESS_LAYER)(x)
        backbone_name = spec.name
    set_freeze(base, freeze)
    features = base(x, training=False)
    outputs = _classifier_head(features, num_classes, head, dropout)
    return keras.Model(inputs, outputs, name=name or f"transfer_{backbone_name}")


def build_baseline_cnn(
    num_classes: int | DataSplits = 10,
    *,
    input_shape: Sequence[int] | None = None,
    filters: Sequence[int] = (32, 64, 128),
    head: Sequence[int] = (128,),
    dropout: float = 0.3,
    residual: bool = False,
    name: str = "baseline_cnn",
) -> keras.Model:
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
        An uncompiled ``keras.Model``.

    Raises:
        ConfigurationError: For bad arguments, or an input too small for the
            number of pooling blocks.

    Example:
        >>> cnn = build_baseline_cnn(10)
        >>> cnn.get_layer("features").output_shape
        (None, 4, 4, 128)
    """
    num_classes, input_shape = _from_data(num_classes, input_shape)
    _check_dropout(dropout)
    if not filters:
        raise ConfigurationError("filters must name at least one block.")
    if min(input_shape[:2]) < 2 ** len(filters):
        raise ConfigurationError(
            f"{len(filters)} pooling blocks need inputs of at least {2 ** len(filters)} px, "
            f"got {input_shape}."
        )
    inner = keras.Input(input_shape, name="features_input")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inner)
    if residual:
        x = _conv_bn_relu(x, max(8, filters[0] // 2), "stem")
    for b, f in enumerate(filters, start=1):
        if residual:
            # ResNet-9 style: widen, halve the size, then a two-conv residual block.
            x = _conv_bn_relu(x, f, f"block{b}_conv1")
            x = keras.layers.MaxPooling2D(name=f"block{b}_pool")(x)
            r = _conv_bn_relu(x, f, f"block{b}_res1")
            r = _conv_bn_relu(r, f, f"block{b}_res2")
            x = keras.layers.Add(name=f"block{b}_add")([x, r])
            continue
        for c in (1, 2):
            x = _conv_bn_relu(x, f, f"block{b}_conv{c}", bn=f"block{b}_bn{c}", relu=f"block{b}_relu{c}")
        x = keras.layers.MaxPooling2D(name=f"block{b}_pool")(x)
        x = keras.layers.Dropout(0.1 * b, name=f"block{b}_dropout")(x)
    features = keras.Model(inner, x, name="features")
    inputs = keras.Input(input_shape, name="image")
    outputs = _classifier_head(features(inputs), num_classes, head, dropout)
    return keras.Model(inputs, outputs, name=name)


def _conv_bn_relu(x, filters: int, name: str, *, bn: str | None = None, relu: str | None = None):
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    # momentum 0.9 (Keras: 0.99): the moving statistics used at test time
    # settle in tens of steps, so short runs on small subsets evaluate sensibly.
    x = keras.layers.BatchNormalization(momentum=0.9, name=bn or f"{name}_bn")(x)
    return keras.layers.ReLU(name=relu or f"{name}_relu")(x)


def _classifier_head(features, num_classes: int, head: Sequence[int], dropout: float):
    x = keras.layers.GlobalAveragePooling2D(name=POOL_LAYER)(features)
    for i, units in enumerate(head, start=1):
        if int(units) < 1:
            raise ConfigurationError(f"head units must be positive, got {tuple(head)}.")
        x = keras.layers.Dense(int(units), activation="relu", name=f"head_dense_{i}")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    # float32 output keeps softmax and loss stable under mixed precision.
    return keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=OUTPUT_LAYER
    )(x)


def _resize(inputs, input_shape: tuple[int, int, int], size: tuple[int, int] | int | None):
    if size is None:
        return inputs
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(size) == tuple(input_shape[:2]):
        return inputs
    return keras.layers.Resizing(size[0], size[1], interpolation="bilinear", name="resize")(inputs)


def _backbone_input_size(base: keras.Model, input_shape, image_size) -> tuple[int, int] | None:
    expected = tuple(base.input_shape[1:3])
    if image_size is not None:
        if None not in expected and expected != (image_size, image_size):
            raise ConfigurationError(
                f"The given backbone takes {expected} inputs; image_size={image_size} does not fit."
            )
        return (image_size, image_size)
    if None in expected:
        return None
    if base.input_shape[-1] not in (None, input_shape[-1]):
        raise ConfigurationError(
            f"The given backbone takes {base.input_shape[-1]} channels; input_shape is {input_shape}."
        )
    return expected


def _clone_backbone(backbone: keras.Model) -> keras.Model:
    if len(backbone.output_shape) != 4:
        raise ConfigurationError(
            f"A backbone must output feature maps (batch, h, w, channels); {backbone.name!r} "
            f"outputs {backbone.output_shape}. Pass its convolutional part, e.g. "
            "model.get_layer('features')."
        )
    clone = keras.models.clone_model(backbone)
    clone.set_weights(backbone.get_weights())
    return clone


def _from_data(num_classes, input_shape) -> tuple[int, tuple[int, int, int]]:
    """``(num_classes, input_shape)``, read from a DataSplits where one is given."""
    if isinstance(num_classes, DataSplits):
        data, num_classes = num_classes, num_classes.num_classes
        input_shape = data.image_shape if input_shape is None else input_shape
    _check_classes(num_classes)
    return num_classes, _check_input_shape((32, 32, 3) if input_shape is None else input_shape)


def _check_classes(num_classes: int) -> None:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ConfigurationError(f"num_classes must be an int >= 2, got {num_classes!r}.")


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ConfigurationError(
            f"input_shape must be (height, width, channels) of positive ints, got {input_shape!r}."
        )
    if shape[-1] not in (1, 3):
        raise ConfigurationError(f"input_shape must have 1 or 3 channels last, got {shape}.")
    return shape  # type: ignore[return-value]


def _check_dropout(dropout: float) -> None:
    if not 0 <= dropout < 1:
        raise ConfigurationError(f"dropout must be in [0, 1), got {dropout!r}.")


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` model saved by transferkit (or any Keras model).

    ``keras.saving.load_model`` works too once ``transferkit.backbones`` is
    imported (it registers the preprocessing layer); this makes sure it is,
    and turns a missing file into a clear error.

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


# --------------------------------------------------------------------------- anatomy


def find_backbone(model: keras.Model) -> keras.Model:
    """Return the nested backbone model of a transfer or baseline model.

    Args:
        model: A model built by this module, or any model with exactly one
            nested ``keras.Model`` before its pooling layer.

    Returns:
        The backbone (a layer of ``model``; changes to it change ``model``).

    Raises:
        ConfigurationError: If the model has no nested backbone.
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ConfigurationError(
            f"Model {model.name!r} has {len(nested)} nested models; expected exactly one "
            "backbone (build it with build_transfer_model or build_baseline_cnn)."
        )
    return nested[0]


def backbone_input(model: keras.Model):
    """The symbolic tensor fed to the backbone (after resizing and preprocessing)."""
    base = find_backbone(model)
    node = base._inbound_nodes[-1]
    return node.input_tensors[0]


def head_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers after the pooling layer, in order (the trainable head)."""
    names = [layer.name for layer in model.layers]
    if POOL_LAYER not in names:
        raise ConfigurationError(
            f"Model {model.name!r} has no {POOL_LAYER!r} layer; it was not built by transferkit."
        )
    return model.layers[names.index(POOL_LAYER) + 1 :]


def split_at_pool(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Split a model into (feature extractor, head) sharing the same layers.

    The feature extractor maps raw images to pooled backbone features; the
    head maps those features to class probabilities. Both reuse ``model``'s
    layer objects, so training the head trains ``model``'s head.

    Args:
        model: A model built by :func:`build_transfer_model` or :func:`build_baseline_cnn`.

    Returns:
        ``(feature_model, head_model)``.

    Example:
        >>> feats, head = split_at_pool(model)  # doctest: +SKIP
        >>> head(feats(images))  # same as model(images)  # doctest: +SKIP
    """
    pooled = model.get_layer(POOL_LAYER).output
    feature_model = keras.Model(model.inputs, pooled, name=f"{model.name}_features")
    x = head_in = keras.Input(pooled.shape[1:], name="pooled_features")
    for layer in head_layers(model):
        x = layer(x)
    return feature_model, keras.Model(head_in, x, name=f"{model.name}_head")


# --------------------------------------------------------------------------- freezing


def _backbone_layers(base: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]


def set_freeze(base: keras.Model, freeze: FreezeSpec, *, train_batchnorm: bool = False) -> None:
    """Apply a ``freeze`` spec to a backbone in place (see :func:`build_transfer_model`)."""
    layers = _backbone_layers(base)
    if freeze is True:
        base.trainable = False
        return
    if freeze is False:
        n = len(layers)
    elif isinstance(freeze, int):
        if not 0 <= freeze <= len(layers):
            raise ConfigurationError(
                f"Cannot train the last {freeze} layers: {base.name!r} has {len(layers)} layers "
                f"(use 0..{len(layers)})."
            )
        n = freeze
    elif isinstance(freeze, str):
        names = [layer.name for layer in layers]
        if freeze not in names:
            raise unknown_name("layer", freeze, names)
        n = len(layers) - names.index(freeze) - 1
    else:
        raise ConfigurationError(
            f"freeze must be True, False, an int or a layer name, got {freeze!r}."
        )
    base.trainable = True  # the outer flag gates every inner one
    for i, layer in enumerate(layers):
        trainable = i >= len(layers) - n
        if isinstance(layer, keras.layers.BatchNormalization) and not train_batchnorm:
            trainable = False
        layer.trainable = trainable


def freeze(model: keras.Model | keras.layers.Layer, trainable: bool = False) -> keras.Model | keras.layers.Layer:
    """Set a model's or layer's trainability, recompiling a compiled model.

    Args:
        model: A model, or a layer (e.g. ``find_backbone(model)``).
        trainable: ``False`` to freeze (default), ``True`` to unfreeze.

    Returns:
        The same object.

    Example:
        >>> freeze(find_backbone(model))  # doctest: +SKIP
    """
    model.trainable = trainable
    if isinstance(model, keras.Model):
        recompile(model)
    return model


def unfreeze_last(model: keras.Model, n: int, *, train_batchnorm: bool = False) -> keras.Model:
    """Make the last ``n`` backbone layers trainable; freeze the rest.

    BatchNormalization layers stay frozen unless ``train_batchnorm=True``;
    even then their moving statistics never change, because the backbone runs
    with ``training=False``. Changing trainability needs a recompile: a
    compiled model is recompiled here (fresh optimizer of the same config,
    same loss and metrics) with a log line, so it cannot be forgotten;
    :func:`transferkit.training.fine_tune` recompiles with its own learning rate.

    Args:
        model: A transfer or baseline model (its backbone is found), or a backbone.
        n: Number of trailing backbone layers to train, ``0..len(layers)``.
        train_batchnorm: Also train BatchNorm scale and offset.

    Returns:
        The same model.

    Raises:
        ConfigurationError: If ``n`` is out of range.

    Example:
        >>> unfreeze_last(model, 20)  # doctest: +SKIP
        >>> model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy",
        ...               metrics=["accuracy"])  # doctest: +SKIP
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise ConfigurationError(f"n must be an int, got {n!r}.")
    base = _backbone_of(model)
    set_freeze(base, n, train_batchnorm=train_batchnorm)
    recompile(model)
    return model


def _backbone_of(model: keras.Model) -> keras.Model:
    try:
        return find_backbone(model)
    except ConfigurationError:
        return model  # the backbone itself was passed


def recompile(model: keras.Model) -> bool:
    """Recompile a compiled model after a trainability change (fresh optimizer state).

    Returns:
        True if the model was compiled and has been recompiled.
    """
    if not getattr(model, "compiled", False):
        return False
    config = model.get_compile_config()
    if not config:
        logger.warning(
            "Trainability of %r changed but its compile settings cannot be restored: "
            "call model.compile(...) again before training.",
            model.name,
        )
        model.compiled = False
        return False
    model.compile_from_config(config)
    logger.warning(
        "Trainability of %r changed: recompiled with a fresh optimizer of the same "
        "configuration (trainable weights now %d). Call model.compile(...) yourself to "
        "change the learning rate.",
        model.name,
        len(model.trainable_weights),
    )
    return True


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Trainable, non-trainable and total parameter counts.

    Example:
        >>> parameter_counts(build_baseline_cnn(10))["total"] > 0
        True
    """
    trainable = int(sum(keras.ops.size(w) for w in model.trainable_weights))
    total = int(sum(keras.ops.size(w) for w in model.weights))
    return {"trainable": trainable, "non_trainable": total - trainable, "total": total}


def check_model_input(model: keras.Model, images) -> None:
    """Check raw images against a model's expected input shape.

    Raises:
        DataError: If the image shape does not match the model input.
    """
    expected = tuple(model.input_shape[1:])
    got = tuple(images.shape[1:])
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
        raise DataError(
            f"Model {model.name!r} takes images of shape {expected}, got {got}. Build the "
            f"model for this data: build_transfer_model(backbone, data) reads the class "
            f"count and image shape from it (or pass input_shape={got})."
        )
