"""Class-per-folder image datasets (folders or archives), decoded with Pillow."""

from __future__ import annotations

import logging
import os
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from transferkit.data.checks import warn_about_counts
from transferkit.data.images import (
    IMAGE_EXTENSIONS,
    PHOTO_EXTENSIONS,
    RESIZE_MODES,
    decode_images,
    sample_sizes,
)
from transferkit.data.sizing import SizeChoice, choose_image_size
from transferkit.data.splits import _SPLIT_ALIASES, DataSplits
from transferkit.data.stratify import (
    SPLIT_METHOD,
    _check_fraction,
    _train_val,
    stratified_split,
    take,
)
from transferkit.data.stream import concatenate, file_tree, streams
from transferkit.errors import (
    ConfigurationError,
    CorruptDataError,
    DataError,
    DataNotFoundError,
    unknown_name,
)

logger = logging.getLogger("transferkit")

Entries = dict[tuple[str, ...], Callable[[], bytes]]
"""A folder's or archive's files, ``{relative path parts: read}``: ``read()`` returns the bytes."""


MIN_VALIDATION = 100
"""A validation split carved from a small folder holds at least this many images.

At 100 images the standard error of an accuracy near 0.85 is 3.6 points (7.3 at
the 24 images 10 % of a 245-image folder gives), so stages 5 points apart are told apart."""
MAX_VALIDATION_FRACTION = 0.25
"""... but never more than this fraction of the images it is carved from."""
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".zip")
"""File name endings read as archives of an image tree (compare them lower-cased)."""


def load_image_folder(
    path: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | str | None = "auto",
    resize: str = "crop",
    validation_split: float = 0.1,
    test_split: float = 0.1,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    strict: bool = False,
    in_memory: bool | None = None,
) -> DataSplits:
    """Load a class-per-folder image dataset (a folder or a ``.tar.gz``/``.zip``).

    Split folders named ``train``, ``val``/``valid``/``validation`` and ``test``
    are recognised (``train/<class>/img.jpg``); a tree without them
    (``<class>/img.jpg``) is split by the loader (stratified and seeded).
    A ``train/`` + ``val/`` tree, the common tutorial layout, is scored on
    ``val/`` (a test split carved from a small train folder would be a handful
    of images: each would move the accuracy by points), and its validation
    split for early stopping is carved from ``train/``; a log line says so.
    Every picture format Pillow reads is accepted (:data:`IMAGE_EXTENSIONS`), photos are
    turned upright from their EXIF orientation, and transparency is laid on white.

    Args:
        path: Folder or archive.
        image_size: ``"auto"`` (default: chosen from the images' own sizes by
            :func:`~transferkit.data.sizing.choose_image_size`, recorded in
            ``provenance["size_choice"]``; a model built from the data is fed the
            size chosen for the backbone), an int or ``(height, width)`` to resize
            every image to, or None to keep the sizes (they must then agree).
        resize: How images of another aspect ratio fit ``image_size``: ``"crop"``
            (default: keep the aspect ratio, cut the centre, as ImageNet models are
            evaluated), ``"pad"`` (keep everything, black borders) or ``"squash"``.
        validation_split: Fraction held out for validation when the tree has
            no validation folder; raised for small sets to hold at least
            :data:`MIN_VALIDATION` images (at most :data:`MAX_VALIDATION_FRACTION`
            of the pool), enough to choose a stage or an epoch with.
        test_split: Fraction held out for testing when the tree has no test folder.
        class_names: Label order; defaults to the sorted folder names.
        seed: Seed for the splits.
        strict: Raise on an unreadable image instead of skipping it with a warning.
        in_memory: True decodes every image into memory now; False streams them
            from the folder (each split an :class:`~transferkit.data.stream.ImageFiles`
            decoded batch by batch, for folders larger than memory); None (default)
            streams when the decoded images, estimated from the headers, would take
            more than :data:`~transferkit.data.stream.MEMORY_SHARE` of the available
            memory. Splits, seeds and class order are the same either way.
            Archives are always read into memory.

    Returns:
        A :class:`DataSplits` of uint8 images (or of streamed image files).

    Raises:
        DataNotFoundError: If ``path`` does not exist.
        DataError: For an empty or classless tree, differing image sizes
            without ``image_size``, or a class with no images in the train or
            test split (in the validation split too with ``strict=True``;
            otherwise that only warns).
        CorruptDataError: For an unreadable archive, or an unreadable image with
            ``strict=True`` (streamed: an image whose header is unreadable).
        ConfigurationError: For ``in_memory=False`` on an archive.
        UnknownNameError: If ``class_names`` names a folder that does not exist.

    Every argument, the folder's existence and ``class_names`` are checked
    before an image is decoded.

    Example:
        >>> flowers = load_image_folder("flowers/", image_size=96)  # doctest: +SKIP
        >>> model = build_transfer_model(num_classes=flowers.num_classes,
        ...                              input_shape=flowers.image_shape)  # doctest: +SKIP
    """
    _check_fraction(validation_split)
    _check_fraction(test_split)
    if validation_split + test_split >= 1:
        raise ConfigurationError("validation_split + test_split must be below 1.")
    if resize not in RESIZE_MODES:
        raise ConfigurationError(f"resize must be one of {RESIZE_MODES}, got {resize!r}.")
    size = None if image_size == "auto" else _as_size(image_size)
    root = Path(path).expanduser()
    if not root.exists():
        raise DataNotFoundError(f"Image folder {str(root)!r} does not exist.")
    entries = list_entries(root)
    if class_names is not None:  # a typo fails before any image is decoded
        _check_class_names(class_names, entries)
    choice = _size_choice(entries) if image_size == "auto" else None
    size = _as_size(choice.image_size) if choice else size
    if _streams(in_memory, root, entries, size):
        tree = file_tree(image_groups(entries, root), root, image_size=size, resize=resize,
                         strict=strict)
    else:
        tree = read_image_tree(entries, root, image_size=size, resize=resize, strict=strict)
    if "val" in tree and "test" not in tree:
        # Score on val/; early stopping gets a slice of train/ instead.
        tree["test"] = tree.pop("val")
        logger.info("%s has no test/ folder: its val/ folder is the test split; the "
                    "validation split is %.0f%% of train/.", root, 100 * validation_split)
    found = sorted({c for split in tree.values() for c in split})
    names = tuple(class_names) if class_names is not None else tuple(found)
    for c in found:
        if c not in names:
            raise DataError(f"{root}: folder class {c!r} is missing from class_names {names}.")
    for c in names:
        if c not in found:
            raise unknown_name("class", c, found)

    splits = _split_tree(tree, names, validation_split, test_split, seed)
    data = DataSplits(*splits, names, source=str(root))
    data.provenance = {"loader": "image_folder", "path": str(root), "resize": resize,
                       "image_size": list(data.image_shape[:2]), "seed": seed,
                       "validation_split": validation_split, "test_split": test_split,
                       "class_names": list(names), "split_method": SPLIT_METHOD}
    if choice is not None:
        data.provenance["size_choice"] = choice.to_dict()
        logger.info("Image size %d: %s.", choice.image_size, choice.reason)
    _check_missing_classes(data, strict=strict)
    warn_about_counts(data.y_train, names)
    logger.info("Loaded %r", data)
    return data


def _streams(in_memory: bool | None, root: Path, entries: Entries,
             size: tuple[int, int] | None) -> bool:
    """Whether to stream: asked for, or (None) the decoded images would not fit in memory."""
    if in_memory not in (None, True, False):
        raise ConfigurationError(f"in_memory must be True, False or None, got {in_memory!r}.")
    if in_memory is not None or _is_archive(root):
        if in_memory is False and _is_archive(root):
            raise ConfigurationError(
                f"{root} is an archive: only folders stream from disk. Extract it, then load "
                "the folder (or pass in_memory=True).")
        return in_memory is False
    images = [read for parts, read in sorted(entries.items()) if is_image(parts)]
    return streams(images, size)


def _check_class_names(class_names: Sequence[str], entries: Entries) -> None:
    """Every name in ``class_names`` is a class folder holding images (read from names only)."""
    if isinstance(class_names, str):
        raise ConfigurationError(f"class_names must be a list of folder names, got the string "
                                 f"{class_names!r}.")
    folders = sorted({c for _, c in classify_entries(entries)[0]})
    for c in class_names:
        if c not in folders:
            raise unknown_name("class", c, folders)


def _split_tree(tree, names, validation_split, test_split, seed) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_val, y_val, x_test, y_test)``; missing splits are carved."""
    x_pool, y_pool = _labelled(tree, "all" if "all" in tree else "train", names)
    if "test" in tree:
        x_te, y_te = _labelled(tree, "test", names)
    else:
        keep, held = stratified_split(y_pool, test_split, seed=seed + 1)
        x_te, y_te = take(x_pool, held), y_pool[held]
        x_pool, y_pool = take(x_pool, keep), y_pool[keep]
    if "val" in tree:
        x_tr, y_tr = x_pool, y_pool
        x_val, y_val = _labelled(tree, "val", names)
    else:
        frac = validation_split / (1 - (0 if "test" in tree else test_split))  # of the pool
        # 24 images cannot choose between two stages (one image = 4 points): hold
        # at least MIN_VALIDATION where the pool allows it.
        if frac > 0:
            frac = max(frac, min(MAX_VALIDATION_FRACTION, MIN_VALIDATION / max(1, len(y_pool))))
        x_tr, y_tr, x_val, y_val = _train_val(x_pool, y_pool, min(frac, 0.99), seed)
    return x_tr, y_tr, x_val, y_val, x_te, y_te


def _labelled(tree, split: str, names) -> tuple[np.ndarray, np.ndarray]:
    """One split's images and labels (each class's index in ``names``)."""
    classes = tree.get(split, {})
    present = [(label, classes[name]) for label, name in enumerate(names) if name in classes]
    return (concatenate([x for _, x in present]),
            np.concatenate([np.full(len(x), label, np.int64) for label, x in present]))


def _check_missing_classes(data: DataSplits, *, strict: bool) -> None:
    """A class absent from train cannot be learned, one absent from test cannot be scored."""
    for split, counts in data.counts().items():
        missing = [data.class_names[i] for i, n in enumerate(counts) if n == 0]
        if not missing or not sum(counts):
            continue
        message = (
            f"The {split!r} split has no images of classes {missing}. Add images of these "
            "classes to that split's folders, or pass class_names=[...] without them."
        )
        if split == "val" and not strict:
            warnings.warn(message, stacklevel=3)  # a thin validation split still trains
        else:
            raise DataError(message)


def _size_choice(entries: Entries) -> SizeChoice | None:
    """The size chosen from a sample of the images' headers (None: no readable image)."""
    images = [read for parts, read in sorted(entries.items()) if is_image(parts)]
    sizes = sample_sizes(images)
    return choose_image_size(sizes, n_images=len(images)) if sizes else None


def _as_size(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise ConfigurationError(f"image_size must be a positive int or (h, w), got {image_size!r}.")
    return int(size[0]), int(size[1])


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def list_entries(path: Path) -> Entries:
    """Every file of a folder or archive (:data:`ARCHIVE_SUFFIXES`), unread: :data:`Entries`.

    Raises :class:`DataError` for a path that is neither, :class:`CorruptDataError`
    for an unreadable archive.
    """
    if path.is_dir():
        entries = {}
        for dirpath, _, files in os.walk(path):
            for f in files:
                full = Path(dirpath, f)
                entries[full.relative_to(path).parts] = full.read_bytes
        return entries
    if not _is_archive(path):
        raise DataError(
            f"{path} is neither a folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)}).")
    try:
        if path.name.lower().endswith(".zip"):
            return _zip_entries(path)
        return _tar_entries(path)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise CorruptDataError(f"Archive {path} could not be read ({exc}).") from exc


def _tar_entries(path: Path) -> Entries:
    entries = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile():
                data = tar.extractfile(member).read()
                entries[tuple(Path(member.name).parts)] = lambda d=data: d
    return entries


def _zip_entries(path: Path) -> Entries:
    entries = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                data = zf.read(info)
                entries[tuple(Path(info.filename).parts)] = lambda d=data: d
    return entries


def classify_entries(entries: Entries) -> tuple[dict[tuple[str, str], list], list[str]]:
    """Group image files by (split, class); return the groups and skipped non-images."""
    groups: dict[tuple[str, str], list] = {}
    skipped = []
    has_splits = any(len(p) >= 3 and p[-3].lower() in _SPLIT_ALIASES
                     for p in entries if is_image(p))
    for parts in sorted(entries):
        if any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue
        if not is_image(parts) or len(parts) < 2:
            skipped.append("/".join(parts))
            continue
        if has_splits:
            if len(parts) < 3 or parts[-3].lower() not in _SPLIT_ALIASES:
                skipped.append("/".join(parts))
                continue
            split = _SPLIT_ALIASES[parts[-3].lower()]
        else:
            split = "all"
        groups.setdefault((split, parts[-2]), []).append(("/".join(parts), entries[parts]))
    return groups, skipped


def is_image(parts: tuple[str, ...]) -> bool:
    """Whether an entry's path names an image file (by its extension)."""
    return Path(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS


def image_groups(entries: Entries, root: Path) -> dict[tuple[str, str], list]:
    """:func:`classify_entries`, warning about skipped files; DataError if no image is left."""
    groups, skipped = classify_entries(entries)
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        warnings.warn(f"{root}: skipped {len(skipped)} file(s) that are not images in a "
                      f"<class>/ folder: {shown}", stacklevel=4)
    if not groups:
        raise DataError(
            f"{root} holds no images in class folders. Expected <class>/<image> or "
            f"train/<class>/<image>, images being photos ({', '.join(PHOTO_EXTENSIONS)}) "
            "or another picture format Pillow reads."
        )
    return groups


def read_image_tree(entries: Entries, root: Path, *, image_size: tuple[int, int] | None,
                    strict: bool, resize: str = "crop") -> dict[str, dict[str, np.ndarray]]:
    """Decode :func:`list_entries` of ``root`` into ``{split: {class: uint8 array}}``.

    Splits are ``train``/``val``/``test`` (split folders) or else ``all``. Files that
    are not images in a class folder are skipped with a warning, and so are unreadable
    images unless ``strict`` (then :class:`CorruptDataError`).
    """
    groups = image_groups(entries, root)
    flat = [(key, name, read) for key, files in groups.items() for name, read in files]
    images, bad = decode_images([read for _, _, read in flat], image_size, resize)
    if bad:
        names = [flat[i][1] for i in bad]
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        if strict:
            raise CorruptDataError(f"{root}: {len(bad)} unreadable image(s): {shown}")
        warnings.warn(f"{root}: skipped {len(bad)} unreadable image(s): {shown}", stacklevel=3)
    shapes = {im.shape for im in images if im is not None}
    if len(shapes) > 1:
        raise DataError(
            f"{root}: images differ in size ({sorted(shapes)[:4]} ...). "
            "Pass image_size= to resize them to one size."
        )
    tree: dict[str, dict[str, list[np.ndarray]]] = {}
    for (key, _, _), im in zip(flat, images):
        if im is not None:
            tree.setdefault(key[0], {}).setdefault(key[1], []).append(im)
    if not tree:
        raise DataError(f"{root}: no readable images.")
    return {s: {c: np.stack(v) for c, v in classes.items()} for s, classes in tree.items()}
