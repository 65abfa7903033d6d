"""Augmentation in NumPy and Pillow, outside the compiled training step.

Augmentation layers inside ``model.fit``'s compiled step made a training step
6-10x slower on a GPU with the torch and JAX backends, and a
``keras.Sequential`` inside a ``tf.data`` map only works on TensorFlow. Cropping
and flipping uint8 batches in NumPy costs about a millisecond per batch of 256
32x32 images, works on every backend, and is the augmentation of the measured
fine-tuning recipe (pad by 1/8 of the side with reflection, random crop back,
flip half the images): :func:`crop_flip`, ``augment=True``.

For photos, :func:`photo_augment` (``augment="photo"``) is the ImageNet-style
alternative: a random-resized crop (Pillow), a flip and a mild colour jitter
(one affine colour map per image in NumPy).
"""

from __future__ import annotations

import math

import keras
import numpy as np

from transferkit.errors import ConfigurationError, DataError

AUGMENTATIONS = {False: None, True: "crop+flip", "flip": "flip", "photo": "photo"}
"""Every value of ``augment=`` and the name a run records for it."""
PHOTO_SCALE = (0.35, 1.0)
"""Area of a random-resized crop, as a fraction of the image's."""
PHOTO_RATIO = (3 / 4, 4 / 3)
"""Aspect ratio (width / height) of a random-resized crop, drawn log-uniformly."""
PHOTO_JITTER = 0.2
"""Brightness, contrast and saturation each scale by a factor in ``[1 - j, 1 + j]``."""
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""ITU-R 601 luma weights: the grey of an RGB pixel, as Pillow and torchvision compute it."""


def check_augment(augment) -> bool | str:
    """``augment`` if it is one of :data:`AUGMENTATIONS`' keys.

    Raises:
        ConfigurationError: For any other value.

    Example:
        >>> check_augment("photo")
        'photo'
    """
    # bool first: 1 == True and 0 == False as dict keys, but 1 is no setting.
    if not (isinstance(augment, bool) or augment in ("flip", "photo")):
        raise ConfigurationError(f"augment must be True (crop + flip), 'flip', 'photo' or False, "
                                 f"got {augment!r}.")
    return augment


def crop_flip(
    images: np.ndarray,
    rng: np.random.Generator,
    *,
    pad: int | None = None,
    flip: bool = True,
) -> np.ndarray:
    """Randomly crop (after reflect padding) and horizontally flip a batch of images.

    Args:
        images: ``(n, h, w, c)`` array, any dtype (raw uint8 is typical).
        rng: NumPy random generator (each image draws its own offset and flip).
        pad: Pixels of reflect padding per side; default ``max(1, min(h, w) // 8)``
            (4 for CIFAR's 32 px).
        flip: Also flip half of the images left-right.

    Returns:
        A new array of the same shape and dtype.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> batch = np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)
        >>> crop_flip(batch, rng).shape
        (2, 8, 8, 3)
    """
    if images.ndim != 4:
        raise DataError(f"crop_flip takes (n, h, w, c) batches, got shape {images.shape}.")
    n, h, w, _ = images.shape
    rows, cols = crop_flip_indices(n, h, w, rng, pad=pad, flip=flip)
    return gather_crops(images, np.arange(n), rows, cols)


def crop_flip_indices(
    n: int,
    h: int,
    w: int,
    rng: np.random.Generator,
    *,
    pad: int | None = None,
    flip: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The source row and column of every output pixel of :func:`crop_flip`, drawn as it draws them.

    A crop of the reflect-padded image, flipped or not, is only a choice of
    source rows and columns: padding and flipping need no copy of the pixels,
    and :func:`gather_crops` then reads each pixel once, straight from the
    images (or from the rows of a whole split, skipping the batch's copy).

    Args:
        n, h, w: Images in the batch and their height and width.
        rng: NumPy random generator: the same draws, in the same order, as
            ``crop_flip`` (so a seed gives the same crops either way).
        pad: As in :func:`crop_flip`.
        flip: As in :func:`crop_flip`.

    Returns:
        ``rows`` ``(n, h)`` and ``cols`` ``(n, w)``: output pixel ``[k, i, j]``
        is source pixel ``[k, rows[k, i], cols[k, j]]``.

    Example:
        >>> rows, cols = crop_flip_indices(1, 4, 4, np.random.default_rng(0), pad=1, flip=False)
        >>> rows.tolist(), cols.tolist()
        ([[1, 2, 3, 2]], [[0, 1, 2, 3]])
    """
    pad = max(1, min(h, w) // 8) if pad is None else int(pad)
    if not 0 <= pad < min(h, w):
        raise ConfigurationError(f"pad must be in [0, {min(h, w)}), got {pad}.")
    if pad:
        # Offset o in [0, 2*pad] of the padded image: padded row o + i is source row o + i - pad,
        # mirrored at the edges without repeating them (np.pad's "reflect").
        rows = _reflect(rng.integers(0, 2 * pad + 1, n)[:, None] + np.arange(-pad, h - pad), h)
        cols = _reflect(rng.integers(0, 2 * pad + 1, n)[:, None] + np.arange(-pad, w - pad), w)
    else:
        rows, cols = np.tile(np.arange(h), (n, 1)), np.tile(np.arange(w), (n, 1))
    if flip:
        flipped = rng.random(n) < 0.5
        cols[flipped] = cols[flipped, ::-1]
    return rows, cols


def gather_crops(images: np.ndarray, index: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 ) -> np.ndarray:
    """``images[index[k], rows[k, i], cols[k, j]]`` for every ``k, i, j``: one read per pixel.

    Example:
        >>> images = np.arange(2 * 2 * 2, dtype=np.uint8).reshape(2, 2, 2, 1)
        >>> gather_crops(images, np.array([1]), np.array([[0, 1]]), np.array([[1, 0]]))[0, :, :, 0]
        array([[5, 4],
               [7, 6]], dtype=uint8)
    """
    return images[index[:, None, None], rows[:, :, None], cols[:, None, :]]


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """Mirror indices in ``(-size, 2 * size - 1)`` into ``[0, size)``, edges not repeated."""
    return (size - 1) - np.abs((size - 1) - np.abs(index))


def crop_boxes(n: int, height: int, width: int, rng: np.random.Generator, *,
               scale: tuple[float, float] = PHOTO_SCALE,
               ratio: tuple[float, float] = PHOTO_RATIO) -> np.ndarray:
    """Random crop boxes ``(left, top, right, bottom)`` in pixels, one row per image.

    The area is drawn uniformly from ``scale`` (a fraction of the image's), the
    aspect ratio log-uniformly from ``ratio``, the position uniformly. Sides the
    image cannot hold (a near-full area at a non-square ratio) are cut to the
    image's: one draw per image, where torchvision redraws up to 10 times, so the
    random stream does not depend on how often that happens.

    Example:
        >>> boxes = crop_boxes(4, 128, 128, np.random.default_rng(0))
        >>> boxes.shape, bool((boxes[:, 2:] <= 128).all() and (boxes[:, :2] >= 0).all())
        ((4, 4), True)
    """
    if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
        raise ConfigurationError(f"Need 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= "
                                 f"ratio[1]; got scale={scale}, ratio={ratio}.")
    area = height * width * rng.uniform(scale[0], scale[1], n)
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), n))
    w = np.minimum(np.sqrt(area * aspect), width)
    h = np.minimum(np.sqrt(area / aspect), height)
    left, top = rng.random(n) * (width - w), rng.random(n) * (height - h)
    return np.stack([left, top, left + w, top + h], axis=1)


def random_resized_crop(images: np.ndarray, rng: np.random.Generator, *,
                        scale: tuple[float, float] = PHOTO_SCALE,
                        ratio: tuple[float, float] = PHOTO_RATIO) -> np.ndarray:
    """Crop a random box of each image (:func:`crop_boxes`) and resize it back, bilinearly.

    Pillow resizes each box straight from the image at sub-pixel precision
    (``Image.resize(box=...)``, in C): 5x faster than the same bilinear
    interpolation vectorised in NumPy over the batch, with the same result to
    within rounding.

    Args:
        images: uint8 ``(n, h, w, c)`` batch, ``c`` 1 or 3.
        rng: NumPy random generator.
        scale: Range of the crop's area, as a fraction of the image's.
        ratio: Range of the crop's aspect ratio (width / height).

    Returns:
        A new uint8 array of the same shape.

    Example:
        >>> batch = np.zeros((2, 16, 16, 3), np.uint8)
        >>> random_resized_crop(batch, np.random.default_rng(0)).shape
        (2, 16, 16, 3)
    """
    from PIL import Image  # a dependency anyway; imported where used, like the loaders

    _check_photo_batch(images)
    n, h, w, c = images.shape
    boxes = crop_boxes(n, h, w, rng, scale=scale, ratio=ratio)
    out = np.empty_like(images)
    for i in range(n):
        image = Image.fromarray(images[i] if c == 3 else images[i, :, :, 0])
        resized = image.resize((w, h), Image.Resampling.BILINEAR, box=tuple(boxes[i]))
        out[i] = np.asarray(resized).reshape(h, w, c)
    return out


def colour_jitter(images: np.ndarray, rng: np.random.Generator, *,
                  strength: float = PHOTO_JITTER) -> np.ndarray:
    """Scale each image's brightness, contrast and saturation by random factors in ``1 +- strength``.

    Brightness multiplies the pixels by ``b``; contrast scales them by ``c``
    around the image's mean grey; saturation by ``s`` around each pixel's grey.
    All three are linear, so they compose into one affine map of the colour
    per image (``b*c*(s*x + (1-s)*grey(x)) + (1-c)*b*mean_grey``), applied at
    once and clipped once at the end (torchvision clips after every step
    and draws the order; for factors this mild that only differs at saturated
    pixels). The mean grey of an image therefore scales by exactly ``b``, its
    spread by ``b*c``. Single-channel images get brightness and contrast.

    Args:
        images: ``(n, h, w, c)`` batch (uint8 for photos), ``c`` 1 or 3.
        rng: NumPy random generator (each image draws its three factors).
        strength: Largest relative change of each factor, in ``[0, 1)``.

    Returns:
        A new array of the same shape and dtype (rounded and clipped to
        ``[0, 255]`` for uint8).

    Example:
        >>> grey = np.full((1, 4, 4, 3), 100, np.uint8)  # grey: only brightness acts
        >>> 80 <= int(colour_jitter(grey, np.random.default_rng(0))[0, 0, 0, 0]) <= 120
        True
    """
    if not 0 <= strength < 1:
        raise ConfigurationError(f"strength must be in [0, 1), got {strength}.")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"colour_jitter takes (n, h, w, 1 or 3) batches, got shape {images.shape}.")
    n = len(images)
    b, contrast, s = rng.uniform(1 - strength, 1 + strength, (3, n)).astype(np.float32)
    x = images.astype(np.float32)
    if images.shape[-1] == 3:
        grey = x @ LUMA
    else:  # nothing to saturate
        grey, s = x[..., 0], np.ones(n, np.float32)
    mean_grey = grey.mean(axis=(1, 2))
    # The composed map as x*b*c*s + grey*b*c*(1-s) + (1-c)*b*mean_grey: two
    # passes over the batch (a 3x3 matmul per pixel took 3x longer).
    shift = grey * (b * contrast * (1 - s))[:, None, None]
    shift += ((1 - contrast) * b * mean_grey)[:, None, None]
    x *= (b * contrast * s)[:, None, None, None]
    x += shift[..., None]
    if images.dtype == np.uint8:
        return np.rint(np.clip(x, 0, 255, out=x), out=x).astype(np.uint8)
    return x.astype(images.dtype)


def photo_augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random-resized crop, horizontal flip and mild colour jitter: ``augment="photo"``.

    The ImageNet-style augmentation for photos, mild: crops of 35-100 % of the
    area at aspect ratios 3/4 to 4/3 (:data:`PHOTO_SCALE`, :data:`PHOTO_RATIO`;
    ImageNet training uses 8-100 %, too much for 128-px photos of one flower),
    resized back to the image size, half the images mirrored, and brightness,
    contrast and saturation each scaled by 0.8-1.2 (:data:`PHOTO_JITTER`).
    About 12 ms per batch of 64 128-px images on one CPU core (docs/own-images.rst).

    Args:
        images: uint8 ``(n, h, w, c)`` batch, ``c`` 1 or 3.
        rng: NumPy random generator.

    Returns:
        A new uint8 array of the same shape.

    Example:
        >>> batch = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
        >>> out = photo_augment(batch, np.random.default_rng(0))
        >>> out.shape, out.dtype
        ((4, 32, 32, 3), dtype('uint8'))
    """
    out = random_resized_crop(images, rng)
    flipped = rng.random(len(out)) < 0.5
    out[flipped] = out[flipped][:, :, ::-1]
    return colour_jitter(out, rng)


def _check_photo_batch(images: np.ndarray) -> None:
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
        raise DataError(f"Photo augmentation takes uint8 (n, h, w, 1 or 3) batches, got "
                        f"{images.dtype} {images.shape}.")


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled training batches of raw images, cropped and flipped in NumPy.

    A ``keras.utils.PyDataset``: ``model.fit`` takes it on every backend. The
    order is reshuffled after every epoch; images stay uint8 until the model
    converts them, so no float copy of the split is ever made.

    Args:
        x: Raw images ``(n, h, w, c)``.
        y: Integer labels ``(n,)``.
        batch_size: Images per batch.
        augment: ``True``: crop and flip (:func:`crop_flip`); ``"flip"``: flip
            only; ``"photo"``: :func:`photo_augment`; ``False``: plain shuffled
            batches.
        seed: Seed of the order and of the augmentation.

    Example:
        >>> x = np.zeros((10, 8, 8, 3), np.uint8); y = np.arange(10) % 2
        >>> batches = AugmentedBatches(x, y, batch_size=4)
        >>> len(batches), batches[0][0].shape
        (3, (4, 8, 8, 3))
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, *,
                 augment: bool | str = True, seed: int = 0):
        super().__init__()
        if len(x) != len(y) or len(x) == 0:
            raise DataError(f"Need as many labels as images (and at least one); got {len(x)} "
                            f"images and {len(y)} labels.")
        self.x, self.y = x, np.asarray(y, np.int32)
        self.batch_size, self.augment = int(batch_size), check_augment(augment)
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(x))

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index: int):
        # Sorted indices read memory in order; the batch's content is what is random.
        idx = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        if self.augment == "photo":
            images = photo_augment(self.x[idx], self._rng)
        elif self.augment:  # crops read straight from the split: no copy of the batch first
            rows, cols = crop_flip_indices(len(idx), *self.x.shape[1:3], self._rng,
                                           pad=0 if self.augment == "flip" else None)
            # Streamed images (ImageFiles) index by image only: decode the batch, then crop.
            source, at = ((self.x, idx) if isinstance(self.x, np.ndarray)
                          else (self.x[idx], np.arange(len(idx))))
            images = gather_crops(source, at, rows, cols)
        else:
            images = self.x[idx]
        return images, self.y[idx]

    def on_epoch_end(self) -> None:
        self._order = self._rng.permutation(len(self.x))
