"""The training image size, chosen from the source images' own sizes.

``load_image_folder(image_size="auto")`` (and ``transferkit train``'s default)
reads the headers of a sample of the images, takes the median short side and
picks two sizes with :func:`choose_image_size`: the size the images are
decoded to and kept at in memory (never larger than the sources or than the
backbone's native size, so memory stays bounded), and the size the backbone
is fed (the model upscales inside where that measured better). The choice and
its reason are recorded in the data's provenance and the run record.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

NATIVE_SIZE = 224
"""The size ImageNet backbones were trained at; photos at least this large are decoded to it."""
UPSCALE_SIZE = 96
"""Below this short side images are small, CIFAR-like; they are kept as they are, upscaled inside."""
SMALL_SET, SMALL_SET_SIZE = 10_000, 128
"""Small images in sets under ``SMALL_SET`` images are decoded to ``SMALL_SET_SIZE`` px.

Measured on CIFAR-10 folders (docs/own-images.rst): on 1,000 images the model kept
scored 0.692 fed at 96 px (upscaled inside, seed 0); over seeds 0-2, 0.736 on average
at 128 px upscaled inside and 0.747 decoded to 128 px; on 5,000 images 0.840, 0.850 and
0.845 (seed 0).
A small set stays small in memory at 128 px (10,000 images: 0.5 GB) and its 1.8x cost
per image is minutes. Full CIFAR-10 keeps 32 px upscaled to 96 inside, the recipe
measured for accuracy per minute on 50,000 images.
"""
PHOTO_UPSCALE = 1.25
"""Mid-sized photos (96 to 223 px) are fed this much larger, rounded up to 32 px, at most 224.

Measured on the flower photos (128 px, 5 classes, MobileNetV2; docs/own-images.rst):
fed at 160 px the frozen head scored 2-3 points higher on validation and test than at
128 px, and the fine-tuned model the same within noise, for 1.36x the CPU time; fed at
224 px neither was better than at 160, for 2.6x the CPU time of 128.
"""
TINY_SIDE, HUGE_SIDE = 24, 1600
"""Short sides below / above which :func:`choose_image_size` warns (upscaling or decoding dominates)."""


@dataclass(frozen=True)
class SizeChoice:
    """The sizes chosen for a dataset, and why.

    Attributes:
        image_size: Side the images are decoded to and kept at (square).
        model_size: Side the backbone is fed (the model resizes inside), or
            None for the model's own rule (upscale small inputs to the
            backbone's smallest pretrained size).
        source_side: Median short side of the sampled source images.
        reason: One sentence for logs and the run record.
    """

    image_size: int
    model_size: int | None
    source_side: int
    reason: str

    def to_dict(self) -> dict:
        """The choice as JSON-ready values (for provenance and ``run.json``)."""
        return asdict(self)


def choose_image_size(sizes: Sequence[tuple[int, int]], n_images: int | None = None) -> SizeChoice:
    """The decode size and the backbone's input size for images of these ``(h, w)`` sizes.

    - Small images (median short side under 96 px, CIFAR-10's 32 px): kept at
      their size and upscaled inside the model to the backbone's smallest
      pretrained size (96 for MobileNetV2), as the full CIFAR-10 recipe measured;
      in sets under :data:`SMALL_SET` images, decoded to :data:`SMALL_SET_SIZE` (128) px.
    - Photos of 96 to 223 px: kept at their size, fed :data:`PHOTO_UPSCALE` times
      larger (128 px photos at 160 px), upscaled inside the model.
    - Photos of 224 px or more: decoded to 224 px, the backbone's native size.

    Args:
        sizes: ``(height, width)`` of a sample of the images (at least one).
        n_images: How many images the dataset holds (None: unknown, a large set).

    Returns:
        The :class:`SizeChoice`.

    Example:
        >>> choose_image_size([(32, 32)] * 3).image_size
        32
        >>> choose_image_size([(32, 32)] * 3, n_images=1000).image_size
        128
        >>> c = choose_image_size([(3000, 4000), (480, 640), (375, 500)])
        >>> c.image_size, c.model_size, c.source_side
        (224, None, 480)
    """
    if not sizes:
        raise ValueError("choose_image_size needs the size of at least one image.")
    side = int(statistics.median(min(h, w) for h, w in sizes))
    _warn_extreme(side)
    if side < UPSCALE_SIZE:
        if n_images is not None and n_images < SMALL_SET:
            return SizeChoice(SMALL_SET_SIZE, None, side, f"small images (median short side "
                              f"{side} px) in a small set ({n_images} images): decoded to "
                              f"{SMALL_SET_SIZE} px, which measured better than upscaling inside")
        return SizeChoice(side, None, side, f"small images (median short side {side} px): "
                          "kept at their size, upscaled inside the model")
    if side < NATIVE_SIZE:
        fed = min(NATIVE_SIZE, 32 * math.ceil(side * PHOTO_UPSCALE / 32))
        return SizeChoice(side, fed, side,
                          f"photos of median short side {side} px: kept at {side} px and "
                          f"upscaled to {fed} inside the model, where the frozen head measured "
                          "better than at their own size")
    return SizeChoice(NATIVE_SIZE, None, side, f"photos of median short side {side} px: decoded "
                      f"to {NATIVE_SIZE} px, the backbone's native size")


def _warn_extreme(side: int) -> None:
    if side < TINY_SIDE:
        warnings.warn(
            f"The images are tiny (median short side {side} px): upscaled {UPSCALE_SIZE // side}x "
            "for the backbone, which then sees mostly interpolation. Expect lower accuracy than "
            "on photos; compare with build_baseline_cnn trained from scratch.", stacklevel=5)
    elif side > HUGE_SIDE:
        warnings.warn(
            f"The images are large (median short side {side} px) and are decoded down to "
            f"{NATIVE_SIZE} px on every load: decoding can take longer than training. Shrink a "
            "copy of the folder once (e.g. to 512 px) to make every later run start faster.",
            stacklevel=5)
