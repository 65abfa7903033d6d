"""Building registered backbones: ``keras.applications`` networks with their weights.

The registry itself (:class:`~transferkit.models.registry.BackboneSpec`, names,
sizes, weights files) lives in :mod:`transferkit.models.registry`; this module turns
a spec into a Keras model and carries its preprocessing as a serialisable
layer, so saved models take raw images.
"""

from __future__ import annotations

import logging
import os
import socket

import keras

from transferkit.errors import ConfigurationError, WeightsNotFoundError
from transferkit.models.files import (  # noqa: F401 - check_weights_arg: also public here
    check_imagenet_weights,
    check_weights_arg,
    check_weights_fit,
)
from transferkit.models.registry import (
    PREPROCESSING_MODES,
    check_preprocessing_mode,
    get_backbone_spec,
    weights_cache_path,
)

logger = logging.getLogger("transferkit")


@keras.saving.register_keras_serializable(package="transferkit")
class BackbonePreprocessing(keras.layers.Layer):
    """A backbone's ImageNet input preprocessing as a layer (raw 0-255 RGB in).

    Runs Keras' own ``keras.applications.imagenet_utils.preprocess_input`` (what
    the ``keras.applications.*.preprocess_input`` functions call) inside the
    model, so a saved model takes raw images.

    Args:
        mode: ``"tf"``, ``"caffe"``, ``"torch"`` or ``"none"`` (see :class:`BackboneSpec`).
        **kwargs: Passed to ``keras.layers.Layer``.

    Example:
        >>> layer = BackbonePreprocessing("tf")
        >>> float(layer(keras.ops.full((1, 1, 1, 3), 255.0))[0, 0, 0, 0])
        1.0
    """

    MODES = PREPROCESSING_MODES

    def __init__(self, mode: str = "tf", **kwargs) -> None:
        super().__init__(**kwargs)
        check_preprocessing_mode(mode)
        self.mode = mode

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.mode == "none":
            return x
        if x is inputs:
            # preprocess_input divides in place (x /= 127.5): on PyTorch that would
            # overwrite the caller's float tensor, which cast hands back uncopied.
            x = keras.ops.copy(x)
        # Channels last whatever keras.config.image_data_format() says: transferkit's
        # models take NHWC images. "caffe" also flips RGB to BGR.
        return keras.applications.imagenet_utils.preprocess_input(
            x, data_format="channels_last", mode=self.mode)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


def build_backbone(
    name: str,
    *,
    image_size: int,
    weights: str | os.PathLike | None = "imagenet",
    download_timeout: float = 30.0,
) -> keras.Model:
    """Build a registered backbone without its classifier.

    Args:
        name: Registry name (see :func:`list_backbones`).
        image_size: Square input size the network is built for.
        weights: ``"imagenet"`` (through Keras' cache, downloaded if absent),
            ``None`` (random initialisation) or a path to a weights file.
        download_timeout: Seconds a stalled download connection may hang
            before failing.

    Returns:
        The ``keras.applications`` model, input ``(image_size, image_size, 3)``,
        expecting input already preprocessed for it.

    Raises:
        UnknownNameError: For an unknown backbone.
        ConfigurationError: For an image size below the backbone's minimum.
        WeightsNotFoundError: If ImageNet weights are neither cached nor
            downloadable, naming the file and the folder to put it in; or if a
            weights path does not exist.

    Example:
        >>> base = build_backbone("mobilenet_v2", image_size=96, weights=None)
        >>> base.output_shape
        (None, 3, 3, 1280)
    """
    spec = get_backbone_spec(name)
    if image_size < spec.min_size:
        raise ConfigurationError(
            f"{spec.name} needs inputs of at least {spec.min_size}x{spec.min_size}, "
            f"got {image_size}. Pass a larger image_size."
        )
    weights = check_weights_arg(weights)
    constructor = getattr(keras.applications, spec.constructor)
    kwargs = dict(include_top=False, weights=weights, input_shape=(image_size, image_size, 3),
                  name=spec.name, **dict(spec.constructor_kwargs))
    if weights is None:
        return constructor(**kwargs)
    if weights != "imagenet":
        check_weights_fit(weights, spec.name)
        try:
            return constructor(**kwargs)
        except ValueError as exc:  # Keras: "Layer count mismatch", shape mismatches
            raise ConfigurationError(
                f"The weights file {weights} does not fit {spec.name}: {exc}"
            ) from exc
    check_imagenet_weights(spec.name, image_size)  # offline: one clear error, no download attempt
    target = weights_cache_path(spec.name, image_size)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(download_timeout)  # a stalled connection fails instead of hanging
    try:
        return constructor(**kwargs)
    except Exception as exc:  # Keras raises bare Exception for URL failures
        if target.exists() and not _looks_like_download_error(exc):
            raise
        raise WeightsNotFoundError(
            f"ImageNet weights for {spec.name} at {image_size}px could not be loaded or "
            f"downloaded. Put the file {target.name} into {target.parent}/ "
            f"(or pass weights=None, or weights=<path to a weights file>). Cause: {exc}"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)


def _looks_like_download_error(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(k in text for k in ("url", "fetch", "connect", "timed out", "resolve", "http"))
