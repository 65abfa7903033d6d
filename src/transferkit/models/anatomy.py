"""Questions asked of any Keras model: its backbone, its parameter counts, its input.

A transferkit classifier answers them itself
(:class:`~transferkit.models.parts.Classifier`: ``model.backbone`` and its
surgery methods); these functions also serve other models, such as a plain
functional model with one nested backbone.
"""

from __future__ import annotations

import keras

from transferkit.errors import ConfigurationError, DataError
from transferkit.models.parts import Classifier

CONV_TYPES = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
              keras.layers.Conv2DTranspose)
"""The 2-D convolution layer types (what makes a layer's output a spatial feature map)."""


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


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Trainable, non-trainable and total parameter counts.

    Example:
        >>> from transferkit.models.classifier import BaselineCNN
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


def require_classifier(model: keras.Model, purpose: str) -> Classifier:
    """``model`` if it is a transferkit classifier, which knows its parts; else a clear error.

    Raises:
        ConfigurationError: For any other model.
    """
    if not isinstance(model, Classifier):
        raise ConfigurationError(
            f"{purpose} needs a transferkit classifier (build_transfer_model or "
            f"build_baseline_cnn); {model.name!r} is a {type(model).__name__}."
        )
    return model
