"""The backbone registry: what each pretrained network is, without building it.

One :class:`BackboneSpec` per architecture says which ``keras.applications``
constructor builds it, which preprocessing its ImageNet weights expect, which
input sizes the weights come in, its weights file name, and which
intermediate layer shows informative feature maps. :func:`register_backbone`
adds one. Nothing here imports Keras, so listing backbones (``transferkit
info``) is instant; :mod:`transferkit.models.backbones` builds them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace  # noqa: F401 (replace: doctest)
from pathlib import Path

from transferkit._backend import keras_home
from transferkit.errors import ConfigurationError, unknown_name


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
        fine_tune_freeze: Last layer :func:`~transferkit.training.recipes.fine_tune`
            keeps frozen by default (None: train the whole backbone). Chosen
            by measurement: see ``docs/results.md``.
        constructor_kwargs: Extra keyword arguments of the constructor, as
            ``(name, value)`` pairs (``(("alpha", 0.25),)`` for a narrow MobileNet).
        label: The name people read in reports and slides ("MobileNet v1 0.25");
            empty: the constructor's name ("MobileNetV2").
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
    constructor_kwargs: tuple[tuple[str, object], ...] = ()
    label: str = ""

    @property
    def display_name(self) -> str:
        """The name people read, :attr:`label` or else the constructor's ("ResNet50")."""
        return self.label or self.constructor

    @property
    def default_size(self) -> int:
        """The size the reference ImageNet weights were trained at."""
        return max(self.pretrained_sizes)

    @property
    def upscale_size(self) -> int:
        """The size small images are resized to by default, the smallest pretrained size."""
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
        "mobilenet_v1_025", "MobileNet", "tf", (128, 160, 192, 224), 32, "conv_pw_5_relu",
        "mobilenet_2_5_{size}_tf_no_top.h5",
        "The first depthwise-separable mobile network, here at width 0.25: "
        "0.2 M parameters (Howard et al., 2017).",
        constructor_kwargs=(("alpha", 0.25),), label="MobileNet v1 0.25",
    ),
    BackboneSpec(
        "mobilenet_v3_small", "MobileNetV3Small", "none", (224,), 32, "expanded_conv_2_add",
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "Low-latency mobile classification found by architecture search, with "
        "squeeze-excite and hard-swish (Howard et al., 2019).",
        label="MobileNetV3-Small",
    ),
    BackboneSpec(
        "mobilenet_v3_large", "MobileNetV3Large", "none", (224,), 32, "expanded_conv_5_add",
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        "Higher-accuracy MobileNetV3 variant for mobile classification and "
        "detection backbones (Howard et al., 2019).",
        label="MobileNetV3-Large",
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
        label="ConvNeXt-Tiny",
    ),
)
BACKBONES: dict[str, BackboneSpec] = {s.name: s for s in _SPECS}
"""The registry, name -> :class:`BackboneSpec`."""


def register_backbone(spec: BackboneSpec, *, overwrite: bool = False) -> BackboneSpec:
    """Add a backbone to the registry, so every function taking a name accepts it.

    Args:
        spec: How to build and feed it; ``spec.constructor`` must name a
            ``keras.applications`` function.
        overwrite: Replace an entry of the same name instead of refusing.

    Returns:
        The registered spec.

    Raises:
        ConfigurationError: If the name is taken (without ``overwrite``) or the
            spec is inconsistent.

    Example:
        >>> narrow = replace(get_backbone_spec("mobilenet_v1_025"), name="mobilenet_v1_050",
        ...                  constructor_kwargs=(("alpha", 0.5),),
        ...                  weights_file="mobilenet_5_0_{size}_tf_no_top.h5")
        >>> register_backbone(narrow).name
        'mobilenet_v1_050'
        >>> unregister_backbone("mobilenet_v1_050")
    """
    if not isinstance(spec, BackboneSpec):
        raise ConfigurationError(f"register_backbone takes a BackboneSpec, got {type(spec).__name__}.")
    if spec.name in BACKBONES and not overwrite:
        raise ConfigurationError(f"A backbone named {spec.name!r} is registered already; "
                                 "pass overwrite=True to replace it.")
    if not spec.pretrained_sizes or min(spec.pretrained_sizes) < spec.min_size:
        raise ConfigurationError(f"{spec.name}: pretrained_sizes must be >= min_size.")
    check_preprocessing_mode(spec.preprocessing)
    BACKBONES[spec.name] = spec
    return spec


def unregister_backbone(name: str) -> None:
    """Remove a registered backbone (the inverse of :func:`register_backbone`)."""
    BACKBONES.pop(get_backbone_spec(name).name)


PREPROCESSING_MODES = ("tf", "caffe", "torch", "none")
"""The ``BackboneSpec.preprocessing`` values :class:`~transferkit.models.backbones.BackbonePreprocessing` knows."""


def check_preprocessing_mode(mode: str) -> None:
    """Raise ConfigurationError unless ``mode`` is one of :data:`PREPROCESSING_MODES`."""
    if mode not in PREPROCESSING_MODES:
        raise ConfigurationError(
            f"Unknown preprocessing mode {mode!r}; use one of {PREPROCESSING_MODES}.")


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
        by_constructor = {s.constructor.lower(): s.name for s in BACKBONES.values()
                          if not s.constructor_kwargs}
        key = by_constructor.get(key, key)
    if key not in BACKBONES:
        raise unknown_name("backbone", name, BACKBONES)
    return BACKBONES[key]


def list_backbones() -> list[dict]:
    """Describe every registered backbone.

    Returns:
        One dict per backbone with its spec fields plus ``display_name``, ``default_size``,
        ``upscale_size`` and whether its ImageNet weights are in the Keras cache
        for the default upscale size (``weights_cached``).

    Example:
        >>> [b["name"] for b in list_backbones()][:2]
        ['mobilenet_v2', 'mobilenet_v1_025']
    """
    rows = []
    for spec in BACKBONES.values():
        row = asdict(spec)
        row["display_name"] = spec.display_name
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


def resize_target(spec: BackboneSpec, input_size: int, image_size: int | None) -> int:
    """The size a backbone is fed: ``image_size`` if given, else an upscale of small inputs.

    Inputs smaller than the smallest pretrained size are upscaled to it
    (32x32 into MobileNetV2 becomes 96x96); larger inputs keep their size.
    """
    if image_size is not None:
        return int(image_size)
    return max(input_size, spec.upscale_size)


def identify_weights_file(path: str | os.PathLike) -> str | None:
    """Which registered backbone a Keras ``.h5`` weights file belongs to, if any.

    Looks at the file name first (Keras' cache names, e.g.
    ``mobilenet_2_5_224_tf_no_top.h5``), then at the layer names stored in
    the file. Used to refuse a file meant for another network before training.

    Args:
        path: A weights file.

    Returns:
        The backbone's registry name, or ``None`` when no entry matches.

    Example:
        >>> identify_weights_file("mobilenet_2_5_224_tf_no_top.h5")
        'mobilenet_v1_025'
    """
    import re

    name = Path(path).name
    for spec in BACKBONES.values():
        pattern = re.escape(spec.weights_file).replace(re.escape("{size}"), r"\d+")
        if re.fullmatch(pattern, name):
            return spec.name
    layers = _h5_layer_names(Path(path))
    for spec in BACKBONES.values():
        if spec.feature_layer in layers:
            return spec.name
    return None


def _h5_layer_names(path: Path) -> set[str]:
    """Layer names a Keras h5 weights file stores (empty if it is not one)."""
    if not path.is_file():
        return set()
    try:
        import h5py

        with h5py.File(path, "r") as f:
            names = f.attrs.get("layer_names", [])
            return {n.decode() if isinstance(n, bytes) else str(n) for n in names}
    except (OSError, ImportError):
        return set()


__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "get_backbone_spec",
    "identify_weights_file",
    "list_backbones",
    "register_backbone",
    "unregister_backbone",
    "weights_cache_path",
]
