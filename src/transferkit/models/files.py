"""The files a model is made from, checked without Keras: in milliseconds, before any decoding.

A weights argument (``None``, ``"imagenet"`` or a file), a weights file meant
for another network, a ``.keras`` model file, and ImageNet weights that are
neither in Keras' cache nor downloadable are all refused here, from file
names, the first bytes of a file and one connection attempt. The command line
runs these checks before TensorFlow loads and before an image is decoded;
:func:`~transferkit.models.backbones.build_backbone` runs them too, so a
Python user offline gets one clear error instead of Keras' download traceback.
"""

from __future__ import annotations

import os
import socket
import urllib.request
import zipfile
from pathlib import Path

from transferkit.errors import ConfigurationError, DataNotFoundError, WeightsNotFoundError
from transferkit.models.registry import get_backbone_spec, identify_weights_file, weights_cache_path

WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".hdf5", ".keras")
"""File name endings ``Model.load_weights`` reads (Keras 3: others are refused by name)."""
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
"""File name endings ``keras.saving.load_model`` reads models from."""
WEIGHTS_HOST = "storage.googleapis.com"
"""Where ``keras.applications`` downloads ImageNet weights from (``https://``)."""
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_HDF5_OFFSETS = (0, 512, 1024, 2048)  # the superblock follows a user block of 2^n bytes
_ZIP_SIGNATURE = b"PK\x03\x04"
_PASS_WEIGHTS = "pass weights=None, or weights=<path to a weights file>"


def check_weights_arg(weights: str | os.PathLike | None) -> str | None:
    """Validate a ``weights`` argument: ``None``, ``"imagenet"`` or a Keras weights file.

    Args:
        weights: The argument as given.

    Returns:
        ``None``, ``"imagenet"``, or the file's path as a string (``~`` expanded).

    Raises:
        WeightsNotFoundError: If a path is given and no such file exists.
        ConfigurationError: If the file is not a weights file Keras reads: its
            name does not end in one of :data:`WEIGHTS_SUFFIXES`, or its first
            bytes are not those of an HDF5 file (``.h5``) or a zip (``.keras``).

    Example:
        >>> check_weights_arg("imagenet")
        'imagenet'
    """
    if weights is None or weights == "imagenet":
        return weights
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"Weights file {str(path)!r} does not exist.")
    if not path.name.lower().endswith(WEIGHTS_SUFFIXES):
        raise ConfigurationError(
            f"{path} is not a Keras weights file: Keras reads weights from "
            f"{', '.join(WEIGHTS_SUFFIXES)} files.")
    zipped = path.name.lower().endswith(".keras")
    if not (_is_zip(path) if zipped else _is_hdf5(path)):
        raise ConfigurationError(
            f"{path} is not a Keras weights file: it does not hold "
            f"{'a zip archive' if zipped else 'HDF5 data'}, as a {path.suffix} file must.")
    return str(path)


def check_weights_fit(weights: str | os.PathLike, backbone: str) -> None:
    """Refuse a weights file that belongs to another registered network, naming both.

    Args:
        weights: Path of a weights file.
        backbone: Registry name of the network it is meant for.

    Raises:
        ConfigurationError: If the file is recognised as another backbone's.

    Example:
        >>> check_weights_fit("mobilenet_2_5_224_tf_no_top.h5", "mobilenet_v2")
        Traceback (most recent call last):
        ...
        transferkit.errors.ConfigurationError: The weights file mobilenet_2_5_224_tf_no_top.h5 holds mobilenet_v1_025 weights, not mobilenet_v2 weights. ...
    """
    owner = identify_weights_file(weights)
    target = get_backbone_spec(backbone).name
    if owner is not None and owner != target:
        raise ConfigurationError(
            f"The weights file {Path(weights).name} holds {owner} weights, not {target} "
            f"weights. Use it with the {owner} backbone, or pass {target}'s own file."
        )


def check_imagenet_weights(backbone: str, image_size: int | None = None, *,
                           timeout: float = 3.0) -> None:
    """Refuse, at once, ImageNet weights that are neither in Keras' cache nor downloadable.

    Keras names a backbone's weights file by input size for some networks
    (MobileNetV2: ``..._1.0_96_no_top.h5`` for 96 px). Where the file is in
    Keras' cache (``$KERAS_HOME/models/``), nothing else is checked. Where it
    is not, one connection to :data:`WEIGHTS_HOST` tells whether Keras can
    download it (behind an HTTPS proxy, Keras is left to try).

    Args:
        backbone: Registry name.
        image_size: The size the backbone is built for; None where it is not
            known yet (the file for any of the backbone's pretrained sizes will do).
        timeout: Seconds the connection attempt may take.

    Raises:
        UnknownNameError: For an unknown backbone.
        WeightsNotFoundError: If the file is not cached and cannot be
            downloaded, naming the file, the folder to put it in and the
            ``weights=`` to pass instead.

    Example:
        >>> check_imagenet_weights("mobilenet_v2", 96)  # doctest: +SKIP
    """
    spec = get_backbone_spec(backbone)
    sizes = spec.pretrained_sizes if image_size is None else (image_size,)
    if any(weights_cache_path(spec.name, size).is_file() for size in sizes):
        return
    if can_download(timeout=timeout):
        return
    target = weights_cache_path(spec.name, image_size or spec.default_size)
    per_size = ""
    if image_size is None and "{size}" in spec.weights_file:
        per_size = (" (Keras names the file by input size: "
                    f"{', '.join(map(str, spec.pretrained_sizes))} px)")
    at = "" if image_size is None else f" at {image_size}px"
    raise WeightsNotFoundError(
        f"ImageNet weights for {spec.name}{at} are not in Keras' cache and cannot be "
        f"downloaded ({WEIGHTS_HOST} cannot be reached). Put the file {target.name} into "
        f"{target.parent}/{per_size}, or {_PASS_WEIGHTS}.")


def can_download(host: str = WEIGHTS_HOST, *, timeout: float = 3.0) -> bool:
    """Whether an HTTPS connection to ``host`` opens (True behind an HTTPS proxy: not tried)."""
    if urllib.request.getproxies().get("https"):
        return True
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:  # no name resolution, no route, refused or timed out
        return False


def check_model_file(path: str | os.PathLike) -> Path:
    """A saved model's path, checked: it exists, is named and begins as a Keras model file.

    Args:
        path: The model file (``~`` is expanded).

    Returns:
        The path.

    Raises:
        DataNotFoundError: If the file does not exist.
        ConfigurationError: If its name does not end in one of :data:`MODEL_SUFFIXES`,
            a ``.keras`` file is not a zip archive holding a ``config.json`` (as
            ``model.save()`` writes it), or an ``.h5`` file does not hold HDF5 data.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"Model file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ConfigurationError(
            f"{path} is not a Keras model file: Keras loads models from .keras files "
            "(model.save() writes them), or legacy .h5 files.")
    if suffix == ".keras" and not _is_keras_archive(path):
        raise ConfigurationError(
            f"{path} is not a Keras model file: a .keras file is a zip archive holding the "
            "model's config.json and weights, as model.save() writes it."
        )
    if suffix != ".keras" and not _is_hdf5(path):
        raise ConfigurationError(f"{path} is not a Keras model file: it does not hold HDF5 "
                                 f"data, as a {suffix} file must.")
    return path


def _is_keras_archive(path: Path) -> bool:
    """Whether ``path`` is a zip archive with a ``config.json``, as ``model.save`` writes."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            for offset in _HDF5_OFFSETS:
                f.seek(offset)
                if f.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
                    return True
    except OSError:
        return False
    return False


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(_ZIP_SIGNATURE)) == _ZIP_SIGNATURE
    except OSError:
        return False


__all__ = [
    "MODEL_SUFFIXES",
    "WEIGHTS_HOST",
    "WEIGHTS_SUFFIXES",
    "can_download",
    "check_imagenet_weights",
    "check_model_file",
    "check_weights_arg",
    "check_weights_fit",
]
