"""Freezing: which backbone layers train, with BatchNorm kept right.

A freeze spec is ``True`` (the whole backbone frozen), ``False`` (all of it
trains), an int ``n`` (only its last ``n`` layers train) or a layer name
(frozen up to and including it). BatchNormalization layers stay frozen
either way: the backbone runs with ``training=False``, so their statistics
never drift, and training their scale and offset on small batches hurts.
"""

from __future__ import annotations

import logging

import keras

from transferkit import _backend
from transferkit.errors import ConfigurationError, unknown_name
from transferkit.models.anatomy import find_backbone

logger = logging.getLogger("transferkit")

FreezeSpec = bool | int | str


def backbone_layers(base: keras.Model) -> list[keras.layers.Layer]:
    """The layers a freeze spec counts: every layer of ``base`` but its input.

    Example:
        >>> from transferkit.models.classifier import BaselineCNN
        >>> cnn = BaselineCNN(10)
        >>> len(backbone_layers(cnn.backbone)) == len(cnn.backbone.layers) - 1
        True
    """
    return [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]


def set_freeze(base: keras.Model, freeze: FreezeSpec, *, train_batchnorm: bool = False) -> None:
    """Apply a ``freeze`` spec to a backbone in place (see the module docstring)."""
    layers = backbone_layers(base)
    if freeze is True:
        base.trainable = False
        return
    if freeze is False:
        n = len(layers)
    elif isinstance(freeze, int):
        if not 0 <= freeze <= len(layers):
            raise ConfigurationError(
                f"Cannot train the last {freeze} layers: {base.name!r} has {len(layers)} layers "
                f"(use 0..{len(layers)})."
            )
        n = freeze
    elif isinstance(freeze, str):
        names = [layer.name for layer in layers]
        if freeze not in names:
            raise unknown_name("layer", freeze, names)
        n = len(layers) - names.index(freeze) - 1
    else:
        raise ConfigurationError(
            f"freeze must be True, False, an int or a layer name, got {freeze!r}."
        )
    base.trainable = True  # the outer flag gates every inner one
    for i, layer in enumerate(layers):
        trainable = i >= len(layers) - n
        if isinstance(layer, keras.layers.BatchNormalization) and not train_batchnorm:
            trainable = False
        layer.trainable = trainable


def freeze(model: keras.Model | keras.layers.Layer, trainable: bool = False) -> keras.Model | keras.layers.Layer:
    """Set a model's or layer's trainability, recompiling a compiled model.

    Args:
        model: A model, or a layer (e.g. ``find_backbone(model)``).
        trainable: ``False`` to freeze (default), ``True`` to unfreeze.

    Returns:
        The same object.

    Example:
        >>> freeze(find_backbone(model))  # doctest: +SKIP
    """
    model.trainable = trainable
    if isinstance(model, keras.Model):
        recompile(model)
    return model


def unfreeze_last(model: keras.Model, n: int, *, train_batchnorm: bool = False) -> keras.Model:
    """Make the last ``n`` backbone layers trainable; freeze the rest.

    BatchNormalization layers stay frozen unless ``train_batchnorm=True``;
    even then their moving statistics never change, because the backbone runs
    with ``training=False``. Changing trainability needs a recompile: a
    compiled model is recompiled here (fresh optimizer of the same config,
    same loss and metrics) with a log line, so it cannot be forgotten;
    :func:`transferkit.training.recipes.fine_tune` recompiles with its own learning rate.

    Args:
        model: A transfer or baseline model (its backbone is found), or a backbone.
        n: Number of trailing backbone layers to train, ``0..len(layers)``.
        train_batchnorm: Also train BatchNorm scale and offset.

    Returns:
        The same model.

    Raises:
        ConfigurationError: If ``n`` is out of range.

    Example:
        >>> unfreeze_last(model, 20)  # doctest: +SKIP
        >>> model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy",
        ...               metrics=["accuracy"])  # doctest: +SKIP
    """
    if not isinstance(n, int) or isinstance(n, bool):
        raise ConfigurationError(f"n must be an int, got {n!r}.")
    base = _backbone_of(model)
    set_freeze(base, n, train_batchnorm=train_batchnorm)
    recompile(model)
    return model


def _backbone_of(model: keras.Model) -> keras.Model:
    try:
        return find_backbone(model)
    except ConfigurationError:
        return model  # the backbone itself was passed


def recompile(model: keras.Model) -> bool:
    """Recompile a compiled model after a trainability change (fresh optimizer state).

    Returns:
        True if the model was compiled and has been recompiled.
    """
    if not getattr(model, "compiled", False):
        return False
    config = model.get_compile_config()
    if not config:
        logger.warning(
            "Trainability of %r changed but its compile settings cannot be restored: "
            "call model.compile(...) again before training.",
            model.name,
        )
        model.compiled = False
        return False
    with _backend.distribution_scope(model):  # the fresh optimizer on the model's devices
        model.compile_from_config(config)
    logger.warning(
        "Trainability of %r changed: recompiled with a fresh optimizer of the same "
        "configuration (trainable weights now %d). Call model.compile(...) yourself to "
        "change the learning rate.",
        model.name,
        len(model.trainable_weights),
    )
    return True


def freeze_state(base: keras.Model) -> FreezeSpec:
    """The freeze spec that describes a backbone's trainability now.

    The inverse of :func:`set_freeze`: ``True`` when nothing trains, ``False``
    when every layer but BatchNorm does, else the number of trailing layers
    that train. A classifier's ``get_config`` records this, so a saved model
    reloads with the trainability it was saved with.

    Example:
        >>> from transferkit.models.classifier import BaselineCNN
        >>> cnn = BaselineCNN(10)
        >>> set_freeze(cnn.backbone, 3)
        >>> freeze_state(cnn.backbone)
        3
    """
    if not base.trainable:
        return True
    layers = backbone_layers(base)
    free = [i for i, layer in enumerate(layers)
            if layer.trainable and not isinstance(layer, keras.layers.BatchNormalization)]
    if not free:
        return True
    if len(free) == len(layers) - sum(isinstance(x, keras.layers.BatchNormalization) for x in layers):
        return False
    return len(layers) - free[0]
