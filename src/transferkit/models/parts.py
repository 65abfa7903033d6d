"""What every transferkit classifier knows about itself: its parts, and the surgery on them.

Every classifier (:class:`~transferkit.models.classifier.TransferClassifier`,
:class:`~transferkit.models.classifier.BaselineCNN`) is a chain::

    image (raw 0-255) -> [resize] -> [preprocess] -> backbone -> pool -> head -> predictions

:class:`Classifier` says where each part is and builds the models the fast
paths train on: the feature model and head (cached features), the frozen
prefix and trainable suffix at a backbone layer (cached prefix), and a view
at another resolution (progressive resizing). Each shares its layers, and so
its weights, with the classifier: training it trains the classifier. Nothing
outside this class walks a classifier's layers.
"""

from __future__ import annotations

import keras

from transferkit.errors import ConfigurationError

POOL_LAYER = "pool"
"""Name of the GlobalAveragePooling layer between backbone and head."""
PREPROCESS_LAYER = "preprocess"
RESIZE_LAYER = "resize"
OUTPUT_LAYER = "predictions"


class Classifier(keras.Model):
    """The parts every transferkit classifier exposes (a functional model underneath)."""

    _backbone_layer: str
    _before_backbone: str | None = None

    @property
    def backbone(self) -> keras.Model:
        """The nested backbone model, a layer of this model (changes to it change the model)."""
        return self.get_layer(self._backbone_layer)

    @property
    def backbone_input(self):
        """The symbolic tensor the backbone is called on (after resizing and preprocessing)."""
        before = self._before_backbone
        return self.inputs[0] if before is None else self.get_layer(before).output

    @property
    def pool(self) -> keras.layers.Layer:
        """The global-average-pooling layer between backbone and head."""
        return self.get_layer(POOL_LAYER)

    @property
    def head_layers(self) -> list[keras.layers.Layer]:
        """The layers after the pooling layer, in order."""
        names = [layer.name for layer in self.layers]
        return self.layers[names.index(POOL_LAYER) + 1 :]

    @property
    def pretrained(self) -> bool:
        """Whether the backbone started from trained weights (ImageNet, a file, another model)."""
        return getattr(self, "weights_source", None) is not None

    @property
    def resize_size(self) -> int | None:
        """The side this model upscales its square inputs to inside, or None."""
        resize = self._resize_layer
        if resize is None:
            return None
        config = resize.get_config()
        height, width = config["height"], config["width"]
        if height != width or height <= min(self.input_shape[1:3]):
            return None
        return int(height)

    @property
    def _resize_layer(self) -> keras.layers.Layer | None:
        """The inner resize layer, or None where the model feeds its inputs as they are."""
        return next((layer for layer in self.layers if layer.name == RESIZE_LAYER), None)

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    # ---------------------------------------------------------------- surgery

    def split_at_pool(self) -> tuple[keras.Model, keras.Model]:
        """``(feature model, head model)``: raw images to pooled features, and features to classes.

        Example:
            >>> from transferkit.models.classifier import BaselineCNN
            >>> features, head = BaselineCNN(3, input_shape=(16, 16, 3)).split_at_pool()
            >>> features.output_shape, head.output_shape
            ((None, 128), (None, 3))
        """
        pooled = self.pool.output
        features = keras.Model(self.inputs, pooled, name=f"{self.name}_features")
        head_in = keras.Input(pooled.shape[1:], name="pooled_features")
        head = keras.Model(head_in, self._head(head_in, pooled=True), name=f"{self.name}_head")
        return features, head

    def split_at(self, layer_name: str, *, logits: bool = False) -> tuple[keras.Model, keras.Model]:
        """``(prefix, suffix)`` at a backbone layer: images to its activations, and those to classes.

        The backbone runs in inference mode in both, as in the classifier. The
        layer may be the backbone's last (the suffix is then pooling and head).

        Args:
            layer_name: A layer of the backbone.
            logits: The suffix ends at the class scores before the softmax
                (what Grad-CAM differentiates: they do not saturate).

        Example:
            >>> from transferkit.models.classifier import TransferClassifier
            >>> m = TransferClassifier("mobilenet_v2", 10, weights=None)
            >>> prefix, suffix = m.split_at("block_5_add")
            >>> prefix.output_shape, suffix.output_shape
            ((None, 12, 12, 32), (None, 10))
        """
        base = self.backbone
        cut = base.get_layer(layer_name).output
        last = cut is base.outputs[0]  # Keras refuses a model whose output is its input
        inner_prefix = base if last else keras.Model(base.input, cut)
        prefix = keras.Model(self.inputs, inner_prefix(self.backbone_input, training=False),
                             name=f"{self.name}_prefix")
        activations = keras.Input(cut.shape[1:], name="prefix_activations")
        x = activations if last else keras.Model(cut, base.output)(activations, training=False)
        outputs = self._head(x, logits=logits)
        return prefix, keras.Model(activations, outputs, name=f"{self.name}_suffix")

    def resolution_view(self, image_size: int) -> keras.Model:
        """This model with its inner resize going to ``image_size``; itself at its own size.

        Raises:
            ConfigurationError: If the model has no inner resize layer.

        Example:
            >>> from transferkit.models.classifier import TransferClassifier
            >>> m = TransferClassifier("mobilenet_v2", 10, weights=None)
            >>> m.resolution_view(64).count_params() == m.count_params()
            True
        """
        if self.resize_size == image_size:
            return self
        resize = self._resize_layer
        if resize is None:
            raise ConfigurationError(
                f"Model {self.name!r} has no {RESIZE_LAYER!r} layer to resize with.")
        inputs = keras.Input(self.input_shape[1:], name="image")
        cfg = resize.get_config() | {"height": image_size, "width": image_size,
                                     "name": f"resize_{image_size}"}
        x = keras.layers.Resizing.from_config(cfg)(inputs)
        if self._before_backbone == PREPROCESS_LAYER:
            x = self.get_layer(PREPROCESS_LAYER)(x)
        base = self.backbone
        # The backbone's graph re-run on a smaller input with the same layer objects.
        shape = (image_size, image_size, base.input_shape[-1])
        inner = keras.models.clone_model(base, input_tensors=keras.Input(shape),
                                         clone_function=lambda layer: layer)
        outputs = self._head(inner(x, training=False))
        return keras.Model(inputs, outputs, name=f"{self.name}_{image_size}px")

    def _head(self, x, *, pooled: bool = False, logits: bool = False):
        """The head layers applied to pooled features ``x`` (with pooling first unless ``pooled``).

        ``logits``: the softmax output layer gives its scores before the softmax.
        """
        if not pooled:
            x = self.pool(x)
        *layers, last = self.head_layers
        for layer in layers:
            x = layer(x)
        if logits and getattr(last, "activation", None) is keras.activations.softmax:
            return _Logits(last, name=f"{last.name}_logits")(x)
        return last(x)


class _Logits(keras.layers.Layer):
    """A softmax ``Dense`` layer's scores before the softmax, computed with its own weights."""

    def __init__(self, dense: keras.layers.Dense, **kwargs):
        super().__init__(dtype=dense.dtype_policy, **kwargs)
        self.dense = dense

    def call(self, x):
        return keras.ops.add(keras.ops.matmul(x, self.dense.kernel), self.dense.bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.dense.units)
