"""The workaround Keras needs to ``fit`` under ``tf.distribute.MultiWorkerMirroredStrategy``.

Keras 3 (checked on 3.15.1 with TensorFlow 2.21) cannot fit a model under a
``MultiWorkerMirroredStrategy`` that joins several processes: keras-team/keras
issue 20585 ("Does Keras 3 work with tf.distribute.MultiWorkerMirroredStrategy?",
open). Two private functions of ``keras.src.backend.tensorflow.trainer`` fail:

- ``TensorFlowTrainer._maybe_symbolic_build`` averages the first batch across
  the replicas with ``strategy.reduce``, which a multi-worker strategy runs as
  a collective that cannot take a ``PerReplica`` of input batches eagerly
  (``ValueError: Attempt to convert a value (PerReplica:...)``). Building only
  needs the batch's shapes and dtypes: this worker's first replica's share
  serves.
- ``reduce_per_replica`` averages each logged metric with
  ``strategy.reduce("MEAN", v, axis=0)``, and a scalar has no axis 0
  (``Invalid reduction dimension 0 for input with 0 dimensions``): scalars are
  averaged across the replicas with ``axis=None``.

:func:`keras_workarounds` swaps both in for the duration of a multi-worker run
only, and puts the originals back after it; a single-process run, or any other
strategy, goes through Keras untouched. Remove this module once Keras fixes
issue 20585.
"""

from __future__ import annotations

import contextlib

from transferkit._workers import current_role


@contextlib.contextmanager
def keras_workarounds(model):
    """Patch Keras for the block if ``model`` trains under a multi-worker strategy."""
    if not current_role(model).multi_worker or not _tensorflow_model(model):
        yield
        return
    from keras.src.backend.tensorflow import trainer

    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = _build_from_local_batch(original_build)
    trainer.reduce_per_replica = _reduce_scalars_across_workers(original_reduce)
    try:
        yield
    finally:
        trainer.TensorFlowTrainer._maybe_symbolic_build = original_build
        trainer.reduce_per_replica = original_reduce


def _tensorflow_model(model) -> bool:
    import keras

    return keras.backend.backend() == "tensorflow"


def _build_from_local_batch(original):
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    def local(strategy, value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if (strategy is None or iterator is None
                or not trainer._collective_all_reduce_multi_worker(strategy)):
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:  # as Keras does: the first batch, taken from the epoch
            data_batch = tree.map_structure(lambda v: local(strategy, v), next(batches))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    return maybe_symbolic_build


def _reduce_scalars_across_workers(original):
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    def reduce_per_replica(values, strategy, reduction):
        if (reduction not in ("auto", "mean")
                or not trainer._collective_all_reduce_multi_worker(strategy)):
            return original(values, strategy, reduction)

        def mean(v):
            if not (isinstance(v, tf.distribute.DistributedValues) or tf.is_tensor(v)):
                return v
            return strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0)

        return tree.map_structure(mean, values)

    return reduce_per_replica
