"""Fine-tuning with the recipe that measured best, and its CPU fast paths.

The default recipe trains the backbone (BatchNorm frozen; MobileNetV2's stem
and first five blocks stay frozen too, which doubles its speed) with AdamW
(learning rate 1e-3 at batch 256, decoupled weight decay 0.05), a linear
warm-up over the first 5 % of steps then cosine decay to 0, and random crop +
horizontal flip made in NumPy outside the compiled step. The textbook recipe
(frozen head, then the last 20 layers with Adam at 1e-5) reached 0.742 on
full CIFAR-10; this one about 0.90 (docs/results.md has the comparison).

Two fast paths, chosen automatically with one log line each: where a prefix of
the backbone stays frozen, its activations are computed once and the rest
trains on them (:mod:`transferkit.prefix`); where the whole backbone trains
and the model upscales its inputs inside, most epochs run through a *view* at
a lower resolution (progressive resizing). Both share every layer, and so
every weight, with the model: the model ends up holding the trained weights.
"""

from __future__ import annotations

import logging
import math

import keras

from transferkit import _backend
from transferkit._validation import check_scalar
from transferkit.backbones import BACKBONES
from transferkit.callbacks import warmup_cosine
from transferkit.data import DataSplits
from transferkit.errors import ConfigurationError
from transferkit.losses import recipe_loss
from transferkit.models import FreezeSpec, find_backbone, set_freeze
from transferkit.runs import Run
from transferkit.training import (
    check_recipe_kwargs,
    make_optimizer,
    train_with_recipe,
)

logger = logging.getLogger("transferkit")

RESIZE_LAYER = "resize"
LOW_RES_FACTOR = 2 / 3
"""Progressive resizing trains early epochs at this fraction of the full size (96 -> 64 px)."""
FULL_RES_FRACTION = 0.3
"""...and this fraction of the epochs (at least one) at the full size."""
MIN_PROGRESSIVE_EPOCHS = 4
MIN_PROGRESSIVE_IMAGES = 10_000
"""Below this many training images ``"auto"`` keeps one size: an epoch costs seconds
there, and the few full-size steps left cost accuracy (900 CIFAR-10 images, 4
epochs: 0.613 with progressive resizing, 0.707 without)."""
BASE_LR, BASE_BATCH = 1e-3, 256


def fine_tune(
    model: keras.Model,
    data: DataSplits,
    *,
    unfreeze: FreezeSpec = "auto",
    lr: float | None = None,
    weight_decay: float = 0.05,
    epochs: int = 10,
    warmup: float = 0.05,
    batch_size: int | None = None,
    augment: bool = True,
    optimizer: str = "adamw",
    train_batchnorm: bool = False,
    progressive: bool | str | list[tuple[int, int]] = "auto",
    cache_prefix: bool | str = "auto",
    label_smoothing: float = 0.0,
    **train_kwargs,
) -> Run:
    """Train the backbone with the measured recipe (or the classic one, on request).

    Unfreezes the backbone (BatchNorm stays frozen unless ``train_batchnorm``),
    compiles a fresh ``optimizer`` whose learning rate warms up linearly over
    the first ``warmup`` fraction of steps and then decays to 0 on a cosine,
    and trains with random crop + flip. It works on a fresh model too: the
    warm-up protects the pretrained weights from the new head's first
    gradients. Where the backbone's first layers stay frozen (``unfreeze="auto"``
    for MobileNetV2), their activations are computed once and the rest trains
    on them (``cache_prefix``, :mod:`transferkit.prefix`); otherwise, where the
    model upscales its inputs inside, most epochs run at a lower resolution
    (``progressive``). One log line says which fast path runs.

    Args:
        model: A transfer model (after :func:`~transferkit.training.train`
            or fresh from :func:`~transferkit.models.build_transfer_model`).
        data: The dataset.
        unfreeze: ``"auto"`` (default: the backbone's measured choice, e.g.
            MobileNetV2 from ``block_6`` on, else all of it), ``"all"`` (the
            whole backbone), an int ``n`` (the classic recipe: only the last
            ``n`` layers) or a layer name (train everything after it).
        lr: Peak learning rate; default ``1e-3 * batch_size / 256``: the
            measured recipe's 1e-3 at batch 256, scaled linearly (at batch 64,
            1e-3 wrecked the pretrained features of a 540-image subset).
        weight_decay: Decoupled weight decay (0 for none).
        epochs: Epochs in all (10: about 10 minutes on all 50,000 CIFAR-10
            images on 2 CPU cores with the cached prefix; see docs/results.md).
        warmup: Fraction of the steps spent warming up (0 for a plain cosine).
        batch_size: Images per batch; default 256 with 10,000 training images
            or more, else 64 (small sets then still get enough steps).
        augment: Random crop (reflect-padded by 1/8 of the side) + horizontal flip.
        optimizer: Optimizer name, e.g. ``"adamw"`` or ``"adam"``.
        train_batchnorm: Also train BatchNorm scale and offset.
        progressive: ``"auto"`` (progressive resizing where the model upscales
            inside and there are at least 4 epochs), ``False`` (every epoch at
            the model's size), ``True`` (require it), or explicit
            ``[(image_size, epochs), ...]`` phases summing to ``epochs``.
            Used only where the prefix is not cached.
        cache_prefix: ``"auto"`` (cache the frozen prefix's activations of each
            training image and its mirror image, float16, when a prefix is frozen,
            ``augment`` is on and they fit in a quarter of the memory), ``True``
            (require it) or ``False`` (feed images every epoch).
        label_smoothing: Smooth the one-hot targets by this much
            (:class:`~transferkit.losses.SparseSmoothedCrossentropy`); 0: plain
            cross-entropy.
        **train_kwargs: Passed to :func:`~transferkit.training.train`
            (``run_dir``, ``patience``, ``seed``, ``name``, ``verbose`` ...).

    Returns:
        The fine-tuning :class:`~transferkit.training.Run`; its config has a
        ``recipe`` entry with every choice made here.

    Raises:
        ConfigurationError: For bad arguments, or ``progressive=True`` where
            the model does not resize inside.

    Example:
        >>> head_run = train(model, data, epochs=3)  # doctest: +SKIP
        >>> ft_run = fine_tune(model, data)  # doctest: +SKIP
        >>> classic = fine_tune(model, data, unfreeze=20, lr=1e-5, weight_decay=0,
        ...                     optimizer="adam", warmup=0, progressive=False)  # doctest: +SKIP
    """
    _check_recipe(epochs, warmup, train_kwargs)
    base = find_backbone(model)
    frozen = _freeze_spec(base, unfreeze)
    set_freeze(base, frozen, train_batchnorm=train_batchnorm)
    cut = _prefix_plan(model, data, frozen, augment, cache_prefix, progressive)
    phases = None if cut else progressive_phases(model, epochs, progressive,
                                                 train_images=len(data.y_train))
    recipe = compile_recipe(model, data, epochs=epochs, batch_size=batch_size, lr=lr,
                            base_lr=BASE_LR, base_batch=BASE_BATCH, warmup=warmup,
                            weight_decay=weight_decay, optimizer=optimizer, augment=augment,
                            label_smoothing=label_smoothing)
    views = None
    if phases is not None:
        with _backend.distribution_scope(model):
            views = _compiled_views(model, phases)
    recipe |= {"unfreeze": unfreeze, "phases": phases, "cached_prefix": cut,
               "frozen_through": frozen if isinstance(frozen, str) else None}
    train_kwargs.setdefault("name", f"{model.name}_finetuned")
    return train_with_recipe(model, data, epochs=epochs, batch_size=recipe["batch_size"],
                             lr=recipe["lr"], augment=augment, recipe=recipe, phases=views,
                             **train_kwargs)


def _prefix_plan(model, data, frozen, augment, cache_prefix, progressive) -> str | None:
    """The frozen layer whose activations are cached, or None (see :mod:`transferkit.prefix`)."""
    from transferkit.prefix import cache_bytes, fits_in_memory

    if cache_prefix not in (True, False, "auto"):
        raise ConfigurationError(f"cache_prefix must be True, False or 'auto', got {cache_prefix!r}.")
    if cache_prefix is False:
        return None
    reason = None
    if progressive is True or isinstance(progressive, (list, tuple)):
        reason = "progressive resizing was asked for"
    elif not isinstance(frozen, str):
        reason = "no part of the backbone stays frozen"
    elif augment is not True:
        reason = "it stands in for crop + flip augmentation (augment=True)"
    else:
        # The backbone was built at the size the model feeds it: its layer's
        # output shape is the prefix's.
        shape = find_backbone(model).get_layer(frozen).output.shape[1:]
        need = cache_bytes(shape, len(data.y_train))
        if not fits_in_memory(need):
            reason = f"its activations ({need / 2**30:.1f} GiB) would not fit in memory"
    if reason is None:
        return frozen
    if cache_prefix is True:
        raise ConfigurationError(f"Cannot cache the frozen prefix: {reason}.")
    return None


def _compiled_views(model: keras.Model, phases: list[tuple[int, int]]):
    views = [(resolution_view(model, size), end) for size, end in phases]
    for view, _ in views:
        if view is not model:  # one optimizer: one schedule across the phases
            view.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
    return views


def compile_recipe(model: keras.Model, data: DataSplits, *, epochs: int, batch_size: int | None,
                   lr: float | None, base_lr: float, base_batch: int, warmup: float,
                   weight_decay: float, optimizer: str, augment: bool,
                   label_smoothing: float = 0.0) -> dict:
    """Compile ``model`` with a recipe's optimizer and return the recipe's choices.

    ``batch_size`` defaults to ``base_batch`` with 10,000 training images or
    more (else 64) and ``lr`` to ``base_lr`` scaled linearly by the batch size.
    """
    batch_size = batch_size or (base_batch if len(data.y_train) >= 10_000 else 64)
    lr = base_lr * batch_size / base_batch if lr is None else lr
    steps = math.ceil(len(data.y_train) / batch_size) * epochs
    with _backend.distribution_scope(model):
        model.compile(optimizer=recipe_optimizer(optimizer, lr, steps, warmup=warmup,
                                                 weight_decay=weight_decay),
                      loss=recipe_loss(label_smoothing), metrics=["accuracy"])
    return {"lr": lr, "weight_decay": weight_decay, "warmup": warmup, "optimizer": optimizer,
            "label_smoothing": label_smoothing,
            "batch_size": batch_size, "augment": "crop+flip" if augment else None,
            "schedule": "warmup+cosine"}


def recipe_optimizer(optimizer: str, lr: float, total_steps: int, *, warmup: float = 0.05,
                     weight_decay: float = 0.05) -> keras.optimizers.Optimizer:
    """An optimizer whose learning rate warms up over ``warmup`` of the steps, then decays to 0.

    Example:
        >>> opt = recipe_optimizer("adamw", 1e-3, 100, warmup=0.1)
        >>> type(opt).__name__, round(float(opt.learning_rate), 6)  # step 0 of the warm-up
        ('AdamW', 9.1e-05)
    """
    check_scalar(lr, "lr", min_val=0, include_min=False)
    schedule = warmup_cosine(lr, total_steps, warmup_steps=round(warmup * total_steps),
                             final_lr_ratio=0.0)
    return make_optimizer(optimizer, schedule, weight_decay=weight_decay)


def _freeze_spec(base: keras.Model, unfreeze: FreezeSpec) -> FreezeSpec:
    """``unfreeze`` as a :func:`~transferkit.models.set_freeze` spec (what stays frozen)."""
    if unfreeze == "all":
        return False
    if unfreeze != "auto":
        return unfreeze
    spec = BACKBONES.get(base.name)
    last_frozen = spec.fine_tune_freeze if spec is not None else None
    if last_frozen and last_frozen in {layer.name for layer in base.layers}:
        logger.info("Fine-tuning %s after %s (BatchNorm frozen); unfreeze='all' trains all of it.",
                    base.name, last_frozen)
        return last_frozen
    return False


def progressive_phases(model: keras.Model, epochs: int,
                       progressive: bool | str | list[tuple[int, int]] = "auto",
                       *, train_images: int | None = None) -> list[tuple[int, int]] | None:
    """The ``[(image_size, last epoch), ...]`` plan of a fine-tuning run, or None for one size.

    ``"auto"`` plans ``LOW_RES_FACTOR`` of the model's size (rounded to a
    multiple of 16, at least the backbone's smallest size) for all but the last
    ``FULL_RES_FRACTION`` of the epochs, when the model upscales its inputs
    inside, ``epochs >= 4`` and (when ``train_images`` is given) the training
    set holds at least ``MIN_PROGRESSIVE_IMAGES`` images.

    Example:
        >>> from transferkit import build_transfer_model
        >>> m = build_transfer_model("mobilenet_v2", 10, weights=None)
        >>> progressive_phases(m, 8)
        [(64, 6), (96, 8)]
    """
    if progressive is False:
        return None
    full = _resize_size(model)
    if isinstance(progressive, (list, tuple)):
        return _explicit_phases(progressive, epochs, full)
    reason = None
    if full is None:
        reason = "the model does not upscale its inputs inside"
    elif epochs < MIN_PROGRESSIVE_EPOCHS:
        reason = f"fewer than {MIN_PROGRESSIVE_EPOCHS} epochs"
    elif progressive == "auto" and train_images is not None and train_images < MIN_PROGRESSIVE_IMAGES:
        reason = f"fewer than {MIN_PROGRESSIVE_IMAGES} training images"
    low = None if full is None else max(_min_size(model), int(round(full * LOW_RES_FACTOR / 16)) * 16)
    if reason is None and low >= full:
        reason = "the backbone's smallest size is the model's size"
    if reason is not None:
        if progressive is True:
            raise ConfigurationError(f"Cannot resize progressively: {reason}.")
        return None
    high_epochs = max(1, round(epochs * FULL_RES_FRACTION))
    plan = [(low, epochs - high_epochs), (full, epochs)]
    logger.info("Fine-tuning fast path: progressive resizing, epochs 1-%d at %d px, %d-%d at %d px "
                "(same weights; pass progressive=False for %d px throughout).",
                plan[0][1], low, plan[0][1] + 1, epochs, full, full)
    return plan


def resolution_view(model: keras.Model, image_size: int) -> keras.Model:
    """A model sharing every layer of ``model`` whose inner resize goes to ``image_size``.

    Training the view trains ``model``. Returns ``model`` itself for its own size.

    transferkit's models are chains (image, resize, preprocess, backbone,
    pool, head), which is what the view re-wires.

    Raises:
        ConfigurationError: If the model has no inner resize layer.
    """
    if _resize_size(model) == image_size:
        return model
    resize = _resize_layer(model)
    if resize is None:
        raise ConfigurationError(f"Model {model.name!r} has no {RESIZE_LAYER!r} layer to resize with.")
    base = find_backbone(model)
    inputs = keras.Input(model.input_shape[1:], name="image")
    x = inputs
    for layer in model.layers[1:]:
        if layer is resize:
            cfg = resize.get_config() | {"height": image_size, "width": image_size,
                                         "name": f"resize_{image_size}"}
            x = keras.layers.Resizing.from_config(cfg)(x)
        elif layer is base:
            # The backbone's graph re-run on a smaller input with the same layer objects.
            shape = (image_size, image_size, base.input_shape[-1])
            inner = keras.models.clone_model(base, input_tensors=keras.Input(shape),
                                             clone_function=lambda layer: layer)
            x = inner(x, training=False)
        else:
            x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_{image_size}px")


def _resize_layer(model: keras.Model):
    names = [layer.name for layer in model.layers]
    return model.get_layer(RESIZE_LAYER) if RESIZE_LAYER in names else None


def _resize_size(model: keras.Model) -> int | None:
    """The size the model upscales to inside, if it upscales square inputs."""
    layer = _resize_layer(model)
    if layer is None:
        return None
    height, width = layer.get_config()["height"], layer.get_config()["width"]
    if height != width or height <= min(model.input_shape[1:3]):
        return None
    return int(height)


def _min_size(model: keras.Model) -> int:
    spec = BACKBONES.get(find_backbone(model).name)
    return getattr(spec, "min_size", 32) if spec is not None else 32


def _explicit_phases(phases, epochs: int, full: int | None) -> list[tuple[int, int]]:
    plan, end = [], 0
    for item in phases:
        size, n = item
        if not (isinstance(size, int) and isinstance(n, int) and size > 0 and n > 0):
            raise ConfigurationError(f"progressive phases are (image_size, epochs) of positive "
                                     f"ints, got {item!r}.")
        end += n
        plan.append((size, end))
    if end != epochs:
        raise ConfigurationError(f"progressive phases add up to {end} epochs, not epochs={epochs}.")
    if full is None and any(size != plan[-1][0] for size, _ in plan):
        raise ConfigurationError("progressive phases need a model that resizes its inputs inside.")
    return plan


def _check_recipe(epochs, warmup, train_kwargs) -> None:
    check_recipe_kwargs(train_kwargs)
    check_scalar(epochs, "epochs", int, min_val=1)
    check_scalar(warmup, "warmup", min_val=0, max_val=1, include_max=False)
