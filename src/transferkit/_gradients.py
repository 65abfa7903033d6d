"""Gradients of a function with respect to its input tensor, on each Keras backend.

Keras 3 has no backend-neutral ``gradient`` op: TensorFlow records with
``tf.GradientTape``, PyTorch with autograd, JAX transforms the function with
``jax.grad``. :func:`value_and_input_gradient` hides which, so the rest of the
library (Grad-CAM, :mod:`transferkit.models.gradcam`) writes its function once
with ``keras.ops``. Like :mod:`transferkit._backend`, nothing here imports a
backend other than the active one, and nothing imports Keras before it is called.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ScoreFunction = Callable[[object], tuple[object, object]]
"""``fn(x) -> (scalar to differentiate, auxiliary output)``, written with ``keras.ops``."""


def value_and_input_gradient(fn: ScoreFunction, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(gradient of fn(x)[0] with respect to x, fn(x)[1])``, both as NumPy arrays.

    Args:
        fn: Maps a tensor shaped like ``x`` to ``(scalar, aux)``; the scalar is
            differentiated, ``aux`` (e.g. the class scores) comes back as it is.
        x: The input, a float32 array.

    Returns:
        ``(gradient, aux)``; the gradient has the shape of ``x``.

    Example:
        >>> import keras
        >>> grad, aux = value_and_input_gradient(
        ...     lambda t: (keras.ops.sum(t * t), keras.ops.sum(t)), np.array([1.0, 2.0], "float32"))
        >>> grad.tolist(), float(aux)
        ([2.0, 4.0], 3.0)
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        grad, aux = _tensorflow(fn, x)
    elif backend == "torch":
        grad, aux = _torch(fn, x)
    elif backend == "jax":
        grad, aux = _jax(fn, x)
    else:  # pragma: no cover - Keras 3 has no other backend that trains
        raise NotImplementedError(f"No gradients on the Keras backend {backend!r}.")
    return keras.ops.convert_to_numpy(grad), keras.ops.convert_to_numpy(aux)


def _tensorflow(fn: ScoreFunction, x: np.ndarray):
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)  # an input, not a variable: the tape records it only when told
        value, aux = fn(x)
    return tape.gradient(value, x), aux


def _torch(fn: ScoreFunction, x: np.ndarray):
    import keras
    import torch

    x = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)  # on Keras' device
    with torch.enable_grad():
        value, aux = fn(x)
        (grad,) = torch.autograd.grad(value, x)
    return grad, aux.detach()


def _jax(fn: ScoreFunction, x: np.ndarray):
    import jax

    return jax.grad(fn, has_aux=True)(jax.numpy.asarray(x))
