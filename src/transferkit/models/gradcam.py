"""Grad-CAM: where in the image a classifier found the evidence for a class.

Grad-CAM (Selvaraju et al., 2017) weighs each channel of a convolutional
layer's feature map by the mean gradient of the class score with respect to
it, sums the channels and keeps the positive part: a coarse map of the image
regions that raise that class's score. Here the layer is the last one with a
spatial (4-D) output inside the classifier's backbone, the score is the
class's logit (before the softmax, so a confident prediction still has
gradients), and the map is resized from the backbone's grid (3x3 for
MobileNetV2 fed 96 px) back to the raw input image.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from transferkit._gradients import value_and_input_gradient
from transferkit.data.splits import check_images
from transferkit.errors import ConfigurationError, unknown_name
from transferkit.models.anatomy import CONV_TYPES, check_model_input, require_classifier
from transferkit.models.parts import Classifier

ClassIndex = int | Sequence[int] | np.ndarray | None


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    class_index: ClassIndex = None,
    *,
    layer: str | None = None,
    batch_size: int = 32,
) -> np.ndarray:
    """Grad-CAM heat maps of raw images: where the model saw each class.

    Args:
        model: A transfer model or baseline CNN (raw 0-255 images in, as for
            :func:`~transferkit.runs.evaluation.predict`).
        images: Raw uint8 images ``(n, h, w, c)`` shaped like the model's input.
        class_index: The class explained: None for each image's predicted
            class, an int for the same class in every image, or one int per image.
        layer: The backbone layer whose feature maps are weighed; default
            :func:`target_layer` (the last with a spatial output).
        batch_size: Images per gradient computation (bounds the memory used).

    Returns:
        ``float32`` array ``(n, h, w)`` at the input images' size, each map
        scaled to ``[0, 1]`` (1 at its strongest point; all 0 where nothing
        raised the class score).

    Raises:
        ConfigurationError: For a model with no convolutional layer, one that
            is not a transferkit classifier, or a class index out of range.
        DataError: For images of the wrong dtype or shape.
        UnknownNameError: For a ``layer`` the backbone does not have.

    Example:
        >>> from transferkit import build_baseline_cnn
        >>> cnn = build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(8, 16))
        >>> maps = grad_cam(cnn, np.zeros((2, 16, 16, 3), np.uint8), class_index=[0, 2])
        >>> maps.shape, maps.dtype, bool(maps.min() >= 0 and maps.max() <= 1)
        ((2, 16, 16), dtype('float32'), True)
    """
    return grad_cam_and_probabilities(model, images, class_index, layer=layer,
                                      batch_size=batch_size)[0]


def grad_cam_and_probabilities(
    model: keras.Model,
    images: np.ndarray,
    class_index: ClassIndex = None,
    *,
    layer: str | None = None,
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`grad_cam`'s maps and the model's class probabilities ``(n, classes)``, in one pass.

    Arguments, errors: as for :func:`grad_cam`.
    """
    check_images(images)
    name = target_layer(model) if layer is None else _check_layer(model, layer)
    check_model_input(model, images)
    prefix, suffix = model.split_at(name, logits=True)
    classes = _class_indices(class_index, len(images), int(model.output_shape[-1]))
    maps = np.zeros(images.shape[:3], np.float32)
    probs = np.zeros((len(images), int(model.output_shape[-1])), np.float32)
    for start in range(0, len(images), batch_size):
        stop = min(start + batch_size, len(images))
        acts = np.asarray(prefix.predict_on_batch(images[start:stop].astype(np.float32)),
                          np.float32)
        grads, logits = value_and_input_gradient(
            _score(suffix, classes[start:stop]), acts)
        maps[start:stop] = _weigh(acts, grads, images.shape[1:3])
        probs[start:stop] = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    return maps, probs


def target_layer(model: keras.Model) -> str:
    """The backbone layer Grad-CAM weighs by default: the last one with a spatial (4-D) output.

    Raises:
        ConfigurationError: If the model has no convolutional layer, or is not
            a transferkit classifier.

    Example:
        >>> from transferkit import build_baseline_cnn
        >>> target_layer(build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(8, 16)))
        'block2_dropout'
    """
    model = _check_model(model)
    spatial = [x.name for x in model.backbone.layers if len(x.output.shape) == 4]
    return spatial[-1]


def _check_model(model: keras.Model) -> Classifier:
    """``model`` if it is a classifier with a convolutional backbone; else a clear error."""
    if not any(isinstance(x, CONV_TYPES) for x in _all_layers(model)):
        raise ConfigurationError(
            f"Grad-CAM needs a convolutional layer to explain, and {model.name!r} has none: "
            "it weighs a convolutional feature map by the class score's gradients. Use a "
            "model built with build_transfer_model or build_baseline_cnn.")
    return require_classifier(model, "Grad-CAM")


def _all_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of ``model``, nested models' layers included."""
    out = []
    for layer in model.layers:
        out += [layer, *(_all_layers(layer) if isinstance(layer, keras.Model) else [])]
    return out


def _check_layer(model: keras.Model, layer: str) -> str:
    base = _check_model(model).backbone
    names = [x.name for x in base.layers]
    if layer not in names:
        raise unknown_name("layer", layer, names[::-1])
    if len(base.get_layer(layer).output.shape) != 4:
        raise ConfigurationError(f"Layer {layer!r} outputs {base.get_layer(layer).output.shape}, "
                                 "not a feature map (batch, height, width, channels).")
    return layer


def _class_indices(class_index: ClassIndex, n: int, num_classes: int) -> np.ndarray:
    """One class per image; -1 stands for "the predicted one"."""
    if class_index is None:
        return np.full(n, -1, np.int32)
    given = np.asarray(class_index)
    if given.ndim == 0:
        given = np.full(n, given)
    if given.shape != (n,) or not np.issubdtype(given.dtype, np.integer):
        raise ConfigurationError(f"class_index must be None, an int or {n} ints (one per "
                                 f"image), got {class_index!r}.")
    if n and (given.min() < 0 or given.max() >= num_classes):
        raise ConfigurationError(f"class_index must be in 0..{num_classes - 1} (the model has "
                                 f"{num_classes} classes), got {given.min()}..{given.max()}.")
    return given.astype(np.int32)


def _score(suffix: keras.Model, classes: np.ndarray):
    """``fn(activations) -> (sum of the chosen classes' logits, logits)``, in ``keras.ops``."""
    def fn(acts):
        logits = keras.ops.cast(suffix(acts, training=False), "float32")
        predicted = keras.ops.cast(keras.ops.argmax(logits, axis=-1), "int32")
        chosen = keras.ops.where(classes >= 0, keras.ops.convert_to_tensor(classes), predicted)
        picked = keras.ops.take_along_axis(logits, chosen[:, None], axis=1)
        return keras.ops.sum(picked), logits

    return fn


def _weigh(acts: np.ndarray, grads: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Channel weights (mean gradient) times activations, ReLU, scaled to [0, 1], resized."""
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cam = np.maximum((weights * acts).sum(axis=-1, keepdims=True), 0)
    cam = keras.ops.convert_to_numpy(
        keras.ops.image.resize(cam, size, interpolation="bilinear"))[..., 0]
    peak = cam.max(axis=(1, 2), keepdims=True)  # scaled after resizing: 1 at the peak
    return np.clip(np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0), 0, 1)
