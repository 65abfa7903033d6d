"""Cross-entropy on integer labels with label smoothing, saved and loaded with the model.

Keras' ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; the
recipes (:func:`~transferkit.training.recipes.fine_tune`,
:func:`~transferkit.training.recipes.train_from_scratch`) keep integer labels
everywhere (data, cached activations, evaluation), so the one-hot encoding
happens inside the loss.
"""

from __future__ import annotations

import keras

from transferkit._validation import check_scalar

LOSS = "sparse_categorical_crossentropy"


@keras.saving.register_keras_serializable(package="transferkit")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of integer labels smoothed towards the uniform distribution.

    With smoothing ``s`` and ``k`` classes the target of the true class is
    ``1 - s + s / k`` and every other class gets ``s / k``, which keeps the
    network from driving its logits to extremes on a training set it already
    fits.

    Args:
        label_smoothing: ``s`` in ``[0, 1)``.
        name: Loss name.

    Example:
        >>> import numpy as np
        >>> loss = SparseSmoothedCrossentropy(0.1)
        >>> probs = np.array([[0.9, 0.05, 0.05]], "float32")
        >>> round(float(loss(np.array([0]), probs)), 4)
        0.2981
    """

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_crossentropy",
                 **kwargs):
        check_scalar(label_smoothing, "label_smoothing", min_val=0, max_val=1, include_max=False)
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        onehot = keras.ops.one_hot(labels, classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(onehot, y_pred,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def recipe_loss(label_smoothing: float):
    """The loss a recipe compiles with: plain sparse cross-entropy, or the smoothed one."""
    return SparseSmoothedCrossentropy(label_smoothing) if label_smoothing else LOSS
