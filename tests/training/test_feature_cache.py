"""train and fine_tune with the on-disk feature cache: the second call reads, and learns the same."""

import logging

import keras
import numpy as np

from transferkit._cache import FeatureStore
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.training.recipes import fine_tune
from transferkit.training.train import train


def _cnn_features(data):
    cnn = build_baseline_cnn(data.num_classes, input_shape=data.image_shape, filters=(8, 16))
    return cnn.get_layer("features")


def _frozen_transfer(data, backbone):
    keras.utils.set_random_seed(0)  # the same head weights in each build
    return build_transfer_model(backbone, data.num_classes, input_shape=data.image_shape,
                                head=(16,))


def _train_twice(data, backbone, caplog, **kw):
    runs, logs = [], []
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="transferkit"):
            runs.append(train(_frozen_transfer(data, backbone), data, epochs=3, batch_size=16,
                              seed=1, verbose=0, **kw))
        logs.append(caplog.text)
    return runs, logs


def test_train_twice_reads_the_features_back_and_learns_the_same(tiny, feature_cache, caplog):
    keras.utils.set_random_seed(0)
    backbone = _cnn_features(tiny)
    runs, logs = _train_twice(tiny, backbone, caplog, augment="flip")
    assert "Features written to the cache" in logs[0] and "from the cache" not in logs[0]
    assert ("Features from the cache (train split, val split, test split, train split, "
            "mirrored: ") in logs[1] and "written" not in logs[1]
    # Same features, same seed: the same head. TensorFlow's CPU kernels repeat bit for
    # bit; PyTorch's and JAX's seeded runs differed by up to 1e-3 in probability.
    atol = 1e-6 if keras.backend.backend() == "tensorflow" else 1e-2
    np.testing.assert_allclose(runs[0].evaluation.probabilities,
                               runs[1].evaluation.probabilities, atol=atol)
    assert FeatureStore(feature_cache).info().entries == 4  # 3 splits + the mirrored view

    # Another image, or other backbone weights: computed again, never the old features.
    changed = tiny.subset(tiny.class_names)
    changed.x_train = changed.x_train.copy()
    changed.x_train[0, 0, 0, 0] ^= 1
    train(_frozen_transfer(changed, backbone), changed, epochs=1, verbose=0)
    assert FeatureStore(feature_cache).info().entries == 5  # the train split again
    backbone.weights[0].assign(backbone.weights[0].value * 2)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="transferkit"):
        train(_frozen_transfer(tiny, backbone), tiny, epochs=1, verbose=0)
    assert "from the cache" not in caplog.text


def test_fine_tune_twice_reads_the_prefix_activations_back(tiny, feature_cache, caplog):
    keras.utils.set_random_seed(0)
    backbone = _cnn_features(tiny)

    def run():
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="transferkit"):
            result = fine_tune(_frozen_transfer(tiny, backbone), tiny, unfreeze="block1_pool",
                               epochs=1, seed=0, verbose=0, head_first=False)
        return result, caplog.text

    (first, log1), (second, log2) = run(), run()
    assert first.config["recipe"]["cached_prefix"] == "block1_pool"
    assert "Prefix activations written to the cache" in log1
    assert ("Prefix activations from the cache (train split, train split, mirrored, val split"
            in log2) and "came from the cache" in log2
    assert first.evaluation.accuracy == second.evaluation.accuracy
