"""Looking inside models: pooled backbone features and intermediate feature maps."""

from __future__ import annotations

import keras
import numpy as np

from transferkit._diskarray import disk_array, release
from transferkit._progress import Progress, progress_verbose
from transferkit.data.batches import StreamBatches
from transferkit.data.splits import DataSplits, check_images
from transferkit.data.stream import ImageFiles
from transferkit.errors import unknown_name
from transferkit.models.anatomy import (
    CONV_TYPES,
    check_model_input,
    find_backbone,
    require_classifier,
)
from transferkit.models.registry import BACKBONES


def extract_features(
    model: keras.Model,
    data: DataSplits,
    split: str = "train",
    *,
    batch_size: int = 256,
    verbose: int | str = "auto",
    flip: bool = False,
) -> np.ndarray:
    """Pooled backbone features of a split (what cached training trains the head on).

    Args:
        model: A transfer or baseline model.
        data: The dataset.
        split: ``"train"``, ``"val"`` or ``"test"``.
        batch_size: Images per forward pass.
        verbose: Keras progress bar setting (0 silences it).
        flip: Features of the horizontally mirrored images instead.

    Returns:
        ``float32`` array of shape ``(n, feature_dim)``, in the split's order.

    Example:
        >>> feats = extract_features(model, data, "test")  # doctest: +SKIP
        >>> feats.shape  # doctest: +SKIP
        (10000, 1280)
    """
    feature_model, _ = require_classifier(model, "Extracting features").split_at_pool()
    x, _ = data.split(split)
    check_model_input(model, x)
    if len(x) == 0:
        return np.zeros((0, feature_model.output_shape[-1]), np.float32)
    if verbose == "auto":  # a bar for long extractions on a terminal, one line otherwise
        verbose = progress_verbose("auto") if len(x) > 10 * batch_size else 0
    label = f"Extracting features ({split} split{', mirrored' if flip else ''})"
    return predict_in_chunks(feature_model, x, flip=flip, batch_size=batch_size, verbose=verbose,
                             label=label)


def predict_in_chunks(model: keras.Model, images: np.ndarray | ImageFiles, *,
                      flip: bool = False, batch_size: int = 256, dtype=np.float32,
                      verbose: int = 0, label: str = "Predicting") -> np.ndarray:
    """``model.predict`` of raw images (or their mirror images) into one preallocated array.

    One ``model.predict`` call over everything would keep every batch's output
    and then concatenate them (twice the output's memory); here each chunk of
    ``16 * batch_size`` images is converted to float, predicted and written in place.
    With ``verbose``, progress is shown as ``label: done/total images ...``.

    Streamed images (:class:`~transferkit.data.stream.ImageFiles`) reach the
    model a uint8 batch at a time (:class:`~transferkit.data.batches.StreamBatches`,
    no float copy of a chunk), and the outputs go to a memory-mapped file
    (:func:`~transferkit._diskarray.disk_array`), not to memory.

    Example:
        >>> m = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.GlobalAveragePooling2D()])
        >>> predict_in_chunks(m, np.ones((3, 4, 4, 3), np.uint8), dtype=np.float16).dtype
        dtype('float16')
    """
    shape = (len(images), *model.output_shape[1:])
    streamed = isinstance(images, ImageFiles)
    out = disk_array(shape, dtype) if streamed else np.empty(shape, dtype)
    progress = Progress(label, len(images), "image", verbose=verbose) if verbose else None
    chunk = 16 * batch_size
    for start in range(0, len(images), chunk):
        if streamed:
            part = images.take(np.arange(start, min(start + chunk, len(images))))
            result = model.predict(StreamBatches(part, None, batch_size, flip=flip), verbose=0)
        else:
            part = images[start:start + chunk].astype(np.float32)
            if flip:
                part = part[:, :, ::-1]
            result = model.predict(part, batch_size=batch_size, verbose=0)
        out[start:start + len(part)] = result
        release(out)  # written: on disk (a no-op in memory)
        if progress is not None:
            progress.update(start + len(part))
    return out


def default_feature_layers(model: keras.Model, count: int = 3) -> list[str]:
    """The backbone's registered feature layer, or ``count`` evenly spaced conv layers."""
    base = find_backbone(model)
    spec = BACKBONES.get(base.name)
    if spec is not None and spec.feature_layer in {layer.name for layer in base.layers}:
        return [spec.feature_layer]
    convs = [layer.name for layer in base.layers if isinstance(layer, CONV_TYPES)]
    if len(convs) <= count:
        return convs
    picks = np.linspace(0, len(convs) - 1, count).round().astype(int)
    return [convs[i] for i in dict.fromkeys(picks)]


def extract_feature_maps(
    model: keras.Model,
    images: np.ndarray,
    layers: list[str] | str | None = None,
    *,
    batch_size: int = 64,
) -> dict[str, np.ndarray]:
    """Activations of named layers for raw images, reaching inside the backbone.

    Args:
        model: A transfer or baseline model.
        images: Raw uint8 images shaped like the model's input, ``(n, h, w, c)``.
        layers: Layer names inside the backbone or in the outer model; default
            :func:`default_feature_layers`.
        batch_size: Images per forward pass.

    Returns:
        ``{layer name: activations}``, each ``(n, h', w', channels)``.

    Raises:
        DataError: For images of the wrong dtype or shape.
        UnknownNameError: For an unknown layer, listing close matches.

    Example:
        >>> maps = extract_feature_maps(model, data.x_test[:4])  # doctest: +SKIP
        >>> {k: v.shape for k, v in maps.items()}  # doctest: +SKIP
        {'block_6_expand_relu': (4, 12, 12, 192)}
    """
    check_images(images)
    check_model_input(model, images)
    names = [layers] if isinstance(layers, str) else list(layers or default_feature_layers(model))
    probe = feature_map_model(model, names)
    outputs = probe.predict(images, batch_size=batch_size, verbose=0)
    if len(names) == 1:
        outputs = [outputs]
    return {n: np.asarray(o) for n, o in zip(names, outputs)}


def feature_map_model(model: keras.Model, layers: list[str]) -> keras.Model:
    """A model from raw images to the outputs of ``layers`` (backbone or outer layers)."""
    model = require_classifier(model, "Feature maps")
    base = model.backbone
    inner_names = {layer.name for layer in base.layers}
    outer_names = {layer.name for layer in model.layers}
    inner = [n for n in layers if n in inner_names and n not in outer_names]
    for n in layers:
        if n not in inner_names and n not in outer_names:
            raise unknown_name("layer", n, [*outer_names, *inner_names])
    inner_out = {}
    if inner:
        probe = keras.Model(base.inputs, [base.get_layer(n).output for n in inner])
        result = probe(model.backbone_input, training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        inner_out = dict(zip(inner, result))
    outputs = [inner_out[n] if n in inner_out else model.get_layer(n).output for n in layers]
    return keras.Model(model.inputs, outputs, name=f"{model.name}_feature_maps")
