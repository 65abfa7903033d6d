"""A classifier's anatomy: where its backbone, pooled features and head are.

:class:`~transferkit.classifier.TransferClassifier` and
:class:`~transferkit.classifier.BaselineCNN` say where their parts are
(``model.backbone``, ``model.backbone_input``). These helpers ask them, and
fall back to the layout every transferkit model has for plain functional
models (older ``.keras`` files)::

    image (raw 0-255) -> [resize] -> [preprocess] -> backbone -> pool -> head -> predictions
"""

from __future__ import annotations

import keras

from transferkit.errors import ConfigurationError, DataError

POOL_LAYER = "pool"
"""Name of the GlobalAveragePooling layer between backbone and head."""
PREPROCESS_LAYER = "preprocess"
RESIZE_LAYER = "resize"
OUTPUT_LAYER = "predictions"


def find_backbone(model: keras.Model) -> keras.Model:
    """Return the nested backbone model of a transfer or baseline model.

    Args:
        model: A transferkit classifier, or any model with exactly one
            nested ``keras.Model`` before its pooling layer.

    Returns:
        The backbone (a layer of ``model``; changes to it change ``model``).

    Raises:
        ConfigurationError: If the model has no nested backbone.
    """
    known = getattr(model, "backbone", None)
    if isinstance(known, keras.Model):
        return known
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ConfigurationError(
            f"Model {model.name!r} has {len(nested)} nested models; expected exactly one "
            "backbone (build it with transferkit.build_transfer_model or build_baseline_cnn)."
        )
    return nested[0]


def backbone_input(model: keras.Model):
    """The symbolic tensor fed to the backbone (after resizing and preprocessing)."""
    known = getattr(model, "backbone_input", None)
    if known is not None:
        return known
    # A plain functional model (saved before TransferClassifier): the tensor the
    # backbone was called on, which Keras exposes only through its node.
    return find_backbone(model)._inbound_nodes[-1].input_tensors[0]


def head_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers after the pooling layer, in order (the trainable head)."""
    names = [layer.name for layer in model.layers]  # graph order
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
        model: A :class:`~transferkit.classifier.TransferClassifier` or
            :class:`~transferkit.classifier.BaselineCNN` (or a functional model
            with their layout).

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


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Trainable, non-trainable and total parameter counts.

    Example:
        >>> from transferkit.classifier import BaselineCNN
        >>> parameter_counts(BaselineCNN(10))["total"] > 0
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
