"""The key of a frozen part's outputs (models.fingerprint): what makes it change, what does not."""

import logging

import keras
import numpy as np
import pytest

from transferkit._cache import FeatureStore
from transferkit.models.builders import build_baseline_cnn
from transferkit.models.fingerprint import OutputCache, structure_digest, weights_digest


def _features(seed=0, size=16, filters=(4, 8)):
    keras.utils.set_random_seed(seed)
    model = build_baseline_cnn(3, input_shape=(size, size, 3), filters=filters, head=(8,))
    return model.split_at_pool()[0]


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)


def _key(part, images, *, flip=False, layer="pool", size=16, store=None):
    cache = OutputCache(part, kind="features", layer=layer, image_size=size, store=store)
    return cache.key(images, flip=flip)


def test_the_same_part_and_images_give_the_same_key_across_builds(images):
    a, b = _features(), _features()  # built twice with the same seed
    assert _key(a, images) == _key(b, images.copy())
    assert structure_digest(a) == structure_digest(b) and weights_digest(a) == weights_digest(b)
    # Keras numbers auto-named layers per process (dense, dense_1): names are not in the key.
    nets = [keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)]) for _ in range(2)]
    assert nets[0].layers[0].name != nets[1].layers[0].name
    assert structure_digest(nets[0]) == structure_digest(nets[1])


def test_a_changed_image_byte_or_shape_is_another_key(images):
    part = _features()
    changed = images.copy()
    changed[3, 7, 7, 1] ^= 1
    keys = {_key(part, images), _key(part, changed), _key(part, images[:5]),
            _key(part, images.astype(np.float32))}
    assert len(keys) == 4


def test_changed_weights_are_another_key(images):
    part = _features()
    before = _key(part, images)
    variable = part.weights[0]
    variable.assign(variable.value + 1e-3)
    assert _key(part, images) != before
    assert _key(_features(seed=1), images) != before  # another initialisation


def test_view_layer_size_and_structure_are_in_the_key(images):
    part = _features()
    base = _key(part, images)
    assert base != _key(part, images, flip=True)
    assert base != _key(part, images, layer="block_5_add")
    assert base != _key(part, images, size=96)
    assert structure_digest(part) != structure_digest(_features(filters=(4, 16)))


def test_outputs_come_back_from_the_cache_and_off_computes(tmp_path, images, caplog):
    part = _features()
    store = FeatureStore(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return part.predict(images, verbose=0)

    cache = OutputCache(part, kind="features", layer="pool", image_size=16, store=store)
    with caplog.at_level(logging.INFO, logger="transferkit"):
        first = cache.get_or_compute(images, compute, label="train split")
        cache.log_summary()
        again = OutputCache(part, kind="features", layer="pool", image_size=16, store=store)
        second = again.get_or_compute(images, compute, label="train split")
        again.get_or_compute(images, compute, flip=True, label="train split")
        again.log_summary(0.5)
    np.testing.assert_array_equal(first, second)
    assert len(calls) == 2 and cache.computed == ["train split"] and not cache.all_hits
    assert again.hits == ["train split"] and again.computed == ["train split, mirrored"]
    assert "Features written to the cache" in caplog.text
    assert "Features from the cache (train split: " in caplog.text


def test_with_the_cache_off_nothing_is_hashed_or_stored(monkeypatch, images):
    monkeypatch.setenv("TRANSFERKIT_CACHE", "off")
    cache = OutputCache(_features(), kind="features", layer="pool", image_size=16)
    assert cache.store is None
    assert cache.get_or_compute(images, lambda: np.ones(3), label="x").sum() == 3
    assert cache._part_digests is None and not cache.hits


def test_each_array_is_hashed_once_per_call_and_never_confused(images, monkeypatch, tmp_path):
    from transferkit.models import fingerprint

    hashed = []
    real = fingerprint.array_digest
    monkeypatch.setattr(fingerprint, "array_digest", lambda a: hashed.append(a.shape) or real(a))
    cache = OutputCache(_features(), kind="features", layer="pool", image_size=16,
                        store=FeatureStore(tmp_path))
    plain, flipped = cache.key(images), cache.key(images, flip=True)
    assert plain != flipped and hashed.count(images.shape) == 1  # (the weights are hashed too)
    # Temporary arrays, freed after use, may share an id: each still gets its own digest.
    keys = {cache.key(images[i:i + 1].copy()) for i in range(len(images))}
    assert len(keys) == len(images)
