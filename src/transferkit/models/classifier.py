"""Classifiers that know their parts: :class:`TransferClassifier` and :class:`BaselineCNN`.

Both follow keras-hub's ``ImageClassifier`` pattern: a ``keras.Model``
subclass that builds a functional graph in ``__init__`` and whose
``get_config()`` returns its constructor arguments, so it round-trips through
``.keras`` files and can be rebuilt from its config. Every classifier has the
same layout::

    image (raw 0-255) -> [resize] -> [preprocess] -> backbone -> pool -> head -> predictions

and says where its parts are (``backbone``, ``backbone_input``, ``pool``,
``head_layers``), which feature caching, feature maps, run records and reports
read instead of guessing from layer names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras

from transferkit._validation import check_scalar
from transferkit.errors import ConfigurationError
from transferkit.models.backbones import BackbonePreprocessing, build_backbone
from transferkit.models.freezing import FreezeSpec, freeze_state, set_freeze
from transferkit.models.parts import (
    OUTPUT_LAYER,
    POOL_LAYER,
    PREPROCESS_LAYER,
    RESIZE_LAYER,
    Classifier,
)
from transferkit.models.registry import get_backbone_spec, resize_target

logger = logging.getLogger("transferkit")

TRANSFERRED = "transferred"
"""``weights`` recorded for a backbone given as a model: its weights were copied."""


class _Classifier(Classifier):
    """The constructors' shared last step: the head on top of the backbone's features."""

    def _finish(self, inputs, features, num_classes: int, head: Sequence[int], dropout: float,
                name: str, before_backbone: str | None, **kwargs) -> None:
        outputs = _classifier_head(features, num_classes, head, dropout)
        super().__init__(inputs, outputs, name=name, **kwargs)
        self._before_backbone = before_backbone


@keras.saving.register_keras_serializable(package="transferkit")
class TransferClassifier(_Classifier):
    """A pretrained backbone with a new classification head.

    Raw 0-255 images at their native size go in; the model resizes them
    (small inputs are upscaled to the backbone's smallest pretrained size,
    e.g. 32x32 -> 96x96 for MobileNetV2, with one log line), applies the
    backbone's own preprocessing, runs the backbone in inference mode
    (``training=False``, so BatchNorm statistics never drift), pools, and
    classifies with ``head`` Dense+ReLU layers, Dropout and a softmax.
    :func:`~transferkit.models.builders.build_transfer_model` is the friendly
    constructor (it also reads the class count and image shape from data).

    Args:
        backbone: A registry name (see :func:`~transferkit.models.registry.list_backbones`)
            or a ``keras.Model`` mapping raw images to feature maps, such as
            ``cnn.backbone`` of a model trained earlier (it is cloned with its
            weights, so the original is not affected).
        num_classes: Number of output classes (at least 2).
        input_shape: Shape of one raw input image, ``(height, width, channels)``.
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
        **kwargs: Passed to ``keras.Model``.

    Example:
        >>> model = TransferClassifier("mobilenet_v2", 10, weights=None)
        >>> model.backbone.name, model.output_shape
        ('mobilenet_v2', (None, 10))
        >>> model.get_config()["image_size"]
        96
        >>> TransferClassifier.from_config(model.get_config()).count_params() == model.count_params()
        True
    """

    def __init__(
        self,
        backbone: str | keras.Model = "mobilenet_v2",
        num_classes: int = 10,
        *,
        input_shape: Sequence[int] = (32, 32, 3),
        image_size: int | None = None,
        weights: str | None = "imagenet",
        freeze: FreezeSpec = True,
        head: Sequence[int] = (128,),
        dropout: float = 0.3,
        name: str | None = None,
        **kwargs,
    ):
        check_classes(num_classes)
        input_shape = check_input_shape(input_shape)
        check_dropout(dropout)
        if isinstance(backbone, dict):  # from_config: a backbone given as a model, serialised
            backbone = keras.saving.deserialize_keras_object(backbone)
            weights = TRANSFERRED
        inputs = keras.Input(input_shape, name="image")
        if isinstance(backbone, keras.Model):
            base = _clone_backbone(backbone)
            size = _backbone_input_size(base, input_shape, image_size)
            x = _resize(inputs, input_shape, size)
            before = None if x is inputs else RESIZE_LAYER
            source = TRANSFERRED
        else:
            spec = get_backbone_spec(backbone)
            if input_shape[-1] != 3:
                raise ConfigurationError(
                    f"{spec.name} takes RGB images (3 channels); got input_shape {input_shape}."
                )
            side = resize_target(spec, min(input_shape[:2]), image_size)
            base = build_backbone(spec.name, image_size=side, weights=weights)
            # Said once built: a build that fails on its weights and is retried
            # (the CLI's fallback to random weights) would say it twice.
            if image_size is None and side != min(input_shape[:2]):
                logger.info(
                    "Upscaling %dx%d inputs to %dx%d inside the model: %s weights were trained "
                    "at %s px (pass image_size= to choose).",
                    input_shape[0], input_shape[1], side, side, spec.name,
                    "/".join(map(str, spec.pretrained_sizes)),
                )
            size = (side, side)
            x = _resize(inputs, input_shape, size)
            x = BackbonePreprocessing(spec.preprocessing, name=PREPROCESS_LAYER)(x)
            before = PREPROCESS_LAYER
            source = weights
        set_freeze(base, freeze)
        features = base(x, training=False)
        self._finish(inputs, features, num_classes, head, dropout,
                     name or f"transfer_{base.name}", before, **kwargs)
        self._backbone_layer = base.name
        self._registry_name = backbone if isinstance(backbone, str) else None
        self.weights_source = source
        self._settings = {"num_classes": num_classes, "input_shape": list(input_shape),
                          "image_size": None if size is None else int(size[0]),
                          "head": [int(u) for u in head], "dropout": float(dropout)}

    def get_config(self) -> dict:
        """The constructor arguments; ``freeze`` is the backbone's trainability now."""
        if self._registry_name is not None:
            backbone = self._registry_name
        else:
            backbone = keras.saving.serialize_keras_object(self.backbone)
        return {"backbone": backbone, **_plain(self._settings), "weights": self.weights_source,
                "freeze": freeze_state(self.backbone), "name": self.name,
                "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict):
        """Rebuild from :meth:`get_config` without fetching weights (a ``.keras`` file holds them).

        The rebuilt model records the original ``weights`` source.
        """
        config = dict(config)
        source = config.pop("weights", None)
        model = cls(**config, weights=None)
        model.weights_source = source
        return model

    def describe(self) -> dict:
        """A JSON-ready summary for run records: the config, the backbone by name only."""
        config = self.get_config()
        config["backbone"] = self._registry_name or self.backbone.name
        return config


@keras.saving.register_keras_serializable(package="transferkit")
class BaselineCNN(_Classifier):
    """A strong small CNN to train from scratch, with the transfer models' layout.

    Raw 0-255 images in; a nested ``features`` backbone (rescaling, then per
    entry of ``filters`` two Conv-BatchNorm-ReLU layers, max-pooling and
    dropout); then the same pool/head/softmax as :class:`TransferClassifier`.
    ``cnn.backbone`` (``cnn.get_layer("features")``) is the part to transfer.

    Args:
        num_classes: Number of output classes (at least 2).
        input_shape: Shape of one raw input image.
        filters: Convolution filters of each block.
        head: Units of each Dense+ReLU layer before the output.
        dropout: Dropout rate before the output layer.
        residual: ResNet-9-style blocks instead: a stem convolution, then per
            entry of ``filters`` a convolution, max-pooling and a two-convolution
            residual block.
        freeze: Freeze spec of the ``features`` backbone (default: all of it
            trains; BatchNorm too, since it trains from scratch).
        name: Model name.
        **kwargs: Passed to ``keras.Model``.

    Example:
        >>> cnn = BaselineCNN(10)
        >>> cnn.backbone.output_shape, cnn.pretrained
        ((None, 4, 4, 128), False)
    """

    weights_source = None

    def __init__(
        self,
        num_classes: int = 10,
        *,
        input_shape: Sequence[int] = (32, 32, 3),
        filters: Sequence[int] = (32, 64, 128),
        head: Sequence[int] = (128,),
        dropout: float = 0.3,
        residual: bool = False,
        freeze: FreezeSpec = False,
        name: str = "baseline_cnn",
        **kwargs,
    ):
        check_classes(num_classes)
        input_shape = check_input_shape(input_shape)
        check_dropout(dropout)
        if not filters:
            raise ConfigurationError("filters must name at least one block.")
        if min(input_shape[:2]) < 2 ** len(filters):
            raise ConfigurationError(
                f"{len(filters)} pooling blocks need inputs of at least {2 ** len(filters)} px, "
                f"got {input_shape}."
            )
        features = _cnn_features(input_shape, filters, residual)
        if freeze is not False:
            set_freeze(features, freeze)
        inputs = keras.Input(input_shape, name="image")
        self._finish(inputs, features(inputs), num_classes, head, dropout, name, None, **kwargs)
        self._backbone_layer = features.name
        self._settings = {"num_classes": num_classes, "input_shape": list(input_shape),
                          "filters": [int(f) for f in filters], "head": [int(u) for u in head],
                          "dropout": float(dropout), "residual": bool(residual)}

    def get_config(self) -> dict:
        """The constructor arguments."""
        return {**_plain(self._settings), "freeze": freeze_state(self.backbone),
                "name": self.name, "trainable": self.trainable}

    def describe(self) -> dict:
        """A JSON-ready summary for run records."""
        return {"backbone": None, "weights": None, **self.get_config()}


def _plain(settings: dict) -> dict:
    # Keras wraps lists assigned to a layer in tracking types; configs hold plain ones.
    return {k: list(v) if isinstance(v, list) else v for k, v in settings.items()}


def _cnn_features(input_shape, filters: Sequence[int], residual: bool) -> keras.Model:
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
    return keras.Model(inner, x, name="features")


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


def _resize(inputs, input_shape: tuple[int, int, int], size: tuple[int, int] | None):
    if size is None or tuple(size) == tuple(input_shape[:2]):
        return inputs
    return keras.layers.Resizing(size[0], size[1], interpolation="bilinear",
                                 name=RESIZE_LAYER)(inputs)


def _backbone_input_size(base: keras.Model, input_shape, image_size) -> tuple[int, int] | None:
    expected = tuple(base.input_shape[1:3])
    if image_size is not None:
        if None not in expected and expected != (image_size, image_size):
            raise ConfigurationError(
                f"The given backbone takes {expected} inputs; image_size={image_size} does not fit."
            )
        return (image_size, image_size)
    if base.input_shape[-1] not in (None, input_shape[-1]):
        raise ConfigurationError(
            f"The given backbone takes {base.input_shape[-1]} channels; input_shape is {input_shape}."
        )
    return None if None in expected else expected


def _clone_backbone(backbone: keras.Model) -> keras.Model:
    if len(backbone.output_shape) != 4:
        raise ConfigurationError(
            f"A backbone must output feature maps (batch, h, w, channels); {backbone.name!r} "
            f"outputs {backbone.output_shape}. Pass its convolutional part, e.g. "
            "model.backbone or model.get_layer('features')."
        )
    clone = keras.models.clone_model(backbone)
    clone.set_weights(backbone.get_weights())
    return clone


def check_classes(num_classes: int) -> None:
    """Refuse a class count that is not an int of at least 2."""
    check_scalar(num_classes, "num_classes", int, min_val=2)


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``input_shape`` as a tuple, refused unless it is ``(height, width, 1 or 3)``."""
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ConfigurationError(
            f"input_shape must be (height, width, channels) of positive ints, got {input_shape!r}."
        )
    if shape[-1] not in (1, 3):
        raise ConfigurationError(f"input_shape must have 1 or 3 channels last, got {shape}.")
    return shape  # type: ignore[return-value]


def check_dropout(dropout: float) -> None:
    """Refuse a dropout rate outside ``[0, 1)``."""
    check_scalar(dropout, "dropout", min_val=0, max_val=1, include_max=False)
