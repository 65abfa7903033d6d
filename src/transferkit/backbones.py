"""Registry of pretrained backbones: constructor, preprocessing, sizes, weight files.

Each entry says how to build a ``keras.applications`` network without its
classifier, which preprocessing its ImageNet weights expect (as a serialisable
layer, so saved models carry it), which input sizes its pretrained weights
come in, and which intermediate layer shows informative feature maps.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import keras

from transferkit.data import keras_home
from transferkit.errors import ConfigurationError, WeightsNotFoundError, unknown_name

logger = logging.getLogger("transferkit")


@dataclass(frozen=True)
class BackboneSpec:
    """How to build and feed one pretrained architecture.

    Attributes:
        name: Registry name, e.g. ``"mobilenet_v2"``.
        constructor: Attribute of ``keras.applications`` that builds it.
        preprocessing: Mode of :class:`BackbonePreprocessing` (``"tf"``:
            scale to [-1, 1]; ``"caffe"``: BGR minus ImageNet means;
            ``"torch"``: scale to [0, 1] then ImageNet standardisation;
            ``"none"``: the network rescales 0-255 input itself).
        pretrained_sizes: Input sizes the ImageNet weights were trained at.
        min_size: Smallest input Keras accepts for this network.
        feature_layer: A good intermediate layer for feature-map figures.
        weights_file: Keras' cache file name of the no-top ImageNet weights;
            ``{size}`` stands for the input size where it matters.
        purpose: What the architecture was designed for (for reports).
        fine_tune_freeze: Last layer :func:`~transferkit.finetune.fine_tune`
            keeps frozen by default (None: train the whole backbone). Chosen
            by measurement: see ``docs/results.md``.
    """

    name: str
    constructor: str
    preprocessing: str
    pretrained_sizes: tuple[int, ...]
    min_size: int
    feature_layer: str
    weights_file: str
    purpose: str
    fine_tune_freeze: str | None = None

    @property
    def default_size(self) -> int:
        """The size the reference ImageNet weights were trained at."""
        return max(self.pretrained_sizes)

    @property
    def upscale_size(self) -> int:
        """The size small images are resized to by default: the smallest pretrained size."""
        return min(self.pretrained_sizes)

    def weights_filename(self, size: int) -> str:
        """Keras' cache file name of the ImageNet no-top weights for an input size."""
        if "{size}" in self.weights_file:
            size = size if size in self.pretrained_sizes else self.default_size
        return self.weights_file.format(size=size)


_SPECS = (
    BackboneSpec(
        "mobilenet_v2", "MobileNetV2", "tf", (96, 128, 160, 192, 224), 32, "block_6_expand_relu",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
        "Efficient ImageNet classification on mobile devices: inverted residual "
        "blocks with linear bottlenecks (Sandler et al., 2018).",
        # The stem and blocks 1-5 run at the highest resolutions: keeping them
        # frozen doubled training speed on 2 CPU cores for -0.5 points at equal
        # epochs (full CIFAR-10), so it wins at equal time.
        fine_tune_freeze="block_5_add",
    ),
    BackboneSpec(
        "mobilenet_v3_small", "MobileNetV3Small", "none", (224,), 32, "expanded_conv_2_add",
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "Low-latency mobile classification found by architecture search, with "
        "squeeze-excite and hard-swish (Howard et al., 2019).",
    ),
    BackboneSpec(
        "mobilenet_v3_large", "MobileNetV3Large", "none", (224,), 32, "expanded_conv_5_add",
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        "Higher-accuracy MobileNetV3 variant for mobile classification and "
        "detection backbones (Howard et al., 2019).",
    ),
    BackboneSpec(
        "resnet50", "ResNet50", "caffe", (224,), 32, "conv3_block4_out",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "Very deep ImageNet classification made trainable by residual "
        "connections (He et al., 2015).",
    ),
    BackboneSpec(
        "vgg16", "VGG16", "caffe", (224,), 32, "block3_conv3",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "Showing that depth with small 3x3 convolutions improves ImageNet "
        "accuracy (Simonyan & Zisserman, 2014).",
    ),
    BackboneSpec(
        "inception_v3", "InceptionV3", "tf", (299,), 75, "mixed2",
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "Accurate ImageNet classification at moderate cost with factorised "
        "multi-branch Inception modules (Szegedy et al., 2015).",
    ),
    BackboneSpec(
        "efficientnet_b0", "EfficientNetB0", "none", (224,), 32, "block3b_add",
        "efficientnetb0_notop.h5",
        "Accuracy per FLOP: depth, width and resolution scaled together from "
        "a searched base network (Tan & Le, 2019).",
    ),
    BackboneSpec(
        "densenet121", "DenseNet121", "torch", (224,), 32, "pool3_conv",
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "Feature reuse through dense connections between all layers of a "
        "block, with few parameters (Huang et al., 2017).",
    ),
    BackboneSpec(
        "convnext_tiny", "ConvNeXtTiny", "none", (224,), 32, "convnext_tiny_stage_1_block_2_identity",
        "convnext_tiny_notop.h5",
        "A pure ConvNet modernised with Transformer design choices to match "
        "Swin Transformers on ImageNet (Liu et al., 2022).",
    ),
)
BACKBONES: dict[str, BackboneSpec] = {s.name: s for s in _SPECS}
"""The registry: name -> :class:`BackboneSpec`."""


def get_backbone_spec(name: str) -> BackboneSpec:
    """Look a backbone up by name.

    Args:
        name: A registry name, case-insensitive (``"MobileNetV2"`` and
            ``"mobilenet-v2"`` work too).

    Returns:
        Its :class:`BackboneSpec`.

    Raises:
        UnknownNameError: Listing valid names and close matches.

    Example:
        >>> get_backbone_spec("MobileNetV2").upscale_size
        96
    """
    key = str(name).lower().replace("-", "_")
    if key not in BACKBONES:
        by_constructor = {s.constructor.lower(): s.name for s in _SPECS}
        key = by_constructor.get(key, key)
    if key not in BACKBONES:
        raise unknown_name("backbone", name, BACKBONES)
    return BACKBONES[key]


def list_backbones() -> list[dict]:
    """Describe every registered backbone.

    Returns:
        One dict per backbone with its spec fields plus ``default_size``,
        ``upscale_size`` and whether its ImageNet weights are in the Keras cache
        for the default upscale size (``weights_cached``).

    Example:
        >>> [b["name"] for b in list_backbones()][:2]
        ['mobilenet_v2', 'mobilenet_v3_small']
    """
    rows = []
    for spec in _SPECS:
        row = asdict(spec)
        row["default_size"] = spec.default_size
        row["upscale_size"] = spec.upscale_size
        row["weights_cached"] = weights_cache_path(spec.name, spec.upscale_size).exists()
        rows.append(row)
    return rows


def weights_cache_path(name: str, size: int) -> Path:
    """Where Keras looks for (and caches) a backbone's ImageNet no-top weights.

    Args:
        name: Registry name.
        size: Input size (matters for MobileNetV2, whose files are per size).

    Returns:
        ``$KERAS_HOME/models/<file>``.
    """
    return keras_home() / "models" / get_backbone_spec(name).weights_filename(size)


@keras.saving.register_keras_serializable(package="transferkit")
class BackbonePreprocessing(keras.layers.Layer):
    """A backbone's ImageNet input preprocessing as a layer (raw 0-255 RGB in).

    Equivalent to the matching ``keras.applications.*.preprocess_input``, but
    part of the model, so a saved model takes raw images.

    Args:
        mode: ``"tf"``, ``"caffe"``, ``"torch"`` or ``"none"`` (see :class:`BackboneSpec`).
        **kwargs: Passed to ``keras.layers.Layer``.

    Example:
        >>> layer = BackbonePreprocessing("tf")
        >>> float(layer(keras.ops.full((1, 1, 1, 3), 255.0))[0, 0, 0, 0])
        1.0
    """

    _MEAN = {"caffe": (123.68, 116.779, 103.939), "torch": (0.485, 0.456, 0.406)}
    _STD = (0.229, 0.224, 0.225)
    MODES = ("tf", "caffe", "torch", "none")

    def __init__(self, mode: str = "tf", **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ConfigurationError(f"Unknown preprocessing mode {mode!r}; use one of {self.MODES}.")
        self.mode = mode

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            x = x - keras.ops.convert_to_tensor(self._MEAN["caffe"], self.compute_dtype)
            return keras.ops.flip(x, axis=-1)  # RGB -> BGR, as the Caffe weights expect
        if self.mode == "torch":
            mean = keras.ops.convert_to_tensor(self._MEAN["torch"], self.compute_dtype)
            std = keras.ops.convert_to_tensor(self._STD, self.compute_dtype)
            return (x / 255.0 - mean) / std
        return x

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
    kwargs = dict(
        include_top=False, weights=weights, input_shape=(image_size, image_size, 3), name=spec.name
    )
    if weights != "imagenet":
        return constructor(**kwargs)
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


def check_weights_arg(weights: str | os.PathLike | None) -> str | None:
    """Validate a ``weights`` argument: ``None``, ``"imagenet"`` or an existing file.

    Args:
        weights: The argument as given.

    Returns:
        ``None``, ``"imagenet"``, or the file's path as a string (``~`` expanded).

    Raises:
        WeightsNotFoundError: If a path is given and no such file exists.

    Example:
        >>> check_weights_arg("imagenet")
        'imagenet'
    """
    if weights is None or weights == "imagenet":
        return weights
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"Weights file {str(path)!r} does not exist.")
    return str(path)


def _looks_like_download_error(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(k in text for k in ("url", "fetch", "connect", "timed out", "resolve", "http"))


def resize_target(spec: BackboneSpec, input_size: int, image_size: int | None) -> int:
    """The size a backbone is fed: ``image_size`` if given, else an upscale of small inputs.

    Inputs smaller than the smallest pretrained size are upscaled to it
    (32x32 into MobileNetV2 becomes 96x96); larger inputs keep their size.
    """
    if image_size is not None:
        return int(image_size)
    return max(input_size, spec.upscale_size)


def describe(name: str) -> str:
    """One line describing a backbone, for logs and reports."""
    spec = get_backbone_spec(name)
    return (
        f"{spec.name} (keras.applications.{spec.constructor}; pretrained at "
        f"{'/'.join(map(str, spec.pretrained_sizes))}px; preprocessing {spec.preprocessing!r})"
    )


__all__ = [
    "BACKBONES",
    "BackbonePreprocessing",
    "BackboneSpec",
    "build_backbone",
    "get_backbone_spec",
    "list_backbones",
    "weights_cache_path",
]
