"""Image folders streamed from disk: the same splits and pixels as in memory, decoded lazily."""

from __future__ import annotations

import logging
import os
import shutil
import tarfile

import keras
import numpy as np
import pytest
from PIL import Image

from transferkit._diskarray import is_on_disk
from transferkit.data import stream
from transferkit.data.augment import AugmentedBatches
from transferkit.data.batches import StreamBatches
from transferkit.data.folder import load_image_folder
from transferkit.data.stream import ImageFiles
from transferkit.errors import ConfigurationError, DataChangedError


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    """3 learnable classes (red, green, blue) of JPEG and PNG photos of several sizes, one broken."""
    root = tmp_path_factory.mktemp("stream") / "photos"
    rng = np.random.default_rng(0)
    for c, name in enumerate(["blue", "green", "red"]):
        (root / name).mkdir(parents=True)
        for i in range(24):
            image = rng.integers(0, 80, (30 + i % 7, 36 + i % 5, 3), np.uint8)
            image[..., 2 - c] += 150
            Image.fromarray(image).save(root / name / f"{i}.{'png' if i % 4 else 'jpg'}")
    (root / "red" / "broken.jpg").write_bytes(b"not an image")
    return root


def _load(folder, **kwargs):
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        return load_image_folder(folder, image_size=20, seed=3, **kwargs)


def test_streamed_folder_has_the_in_memory_splits_and_pixels_decoded_lazily(folder, monkeypatch):
    decoded = []
    real = stream.decode_image
    monkeypatch.setattr(stream, "decode_image", lambda *a: decoded.append(1) or real(*a))
    streamed = _load(folder, in_memory=False)
    assert decoded == []  # listing, headers and splitting decode nothing
    limited = streamed.limit(5, seed=1).subset(["red", "blue"])
    assert isinstance(limited.x_train, ImageFiles) and decoded == []
    in_memory = _load(folder, in_memory=True)
    assert repr(streamed) == repr(in_memory)
    assert streamed.class_names == in_memory.class_names == ("blue", "green", "red")
    for split in ("train", "val", "test"):
        (xs, ys), (xm, ym) = streamed.split(split), in_memory.split(split)
        assert isinstance(xs, ImageFiles) and xs.shape == xm.shape and xs.dtype == np.uint8
        np.testing.assert_array_equal(ys, ym)
        np.testing.assert_array_equal(xs[:], xm)  # identical pixels, same decode and resize
    assert len(decoded) == len(streamed.y_train) + len(streamed.y_val) + len(streamed.y_test)
    x = in_memory.x_train
    np.testing.assert_array_equal(streamed.x_train[[4, 1]], x[[4, 1]])
    np.testing.assert_array_equal(streamed.x_train[-1], x[-1])
    np.testing.assert_array_equal(streamed.x_train[2:5, :, ::-1], x[2:5, :, ::-1])
    np.testing.assert_array_equal(limited.x_test[:], in_memory.limit(5, seed=1)
                                  .subset(["red", "blue"]).x_test)
    images, labels = StreamBatches(streamed.x_val, streamed.y_val, 8, shuffle=True)[1]
    assert images.shape == (8, 20, 20, 3) and labels.shape == (8,)


def test_in_memory_none_streams_when_the_decoded_images_exceed_the_memory_share(folder, monkeypatch,
                                                                              tmp_path):
    decoded = 73 * 20 * 20 * 3  # the estimate: every image file (the broken one too) at 20 px
    monkeypatch.setattr(stream, "available_memory", lambda: int(decoded / stream.MEMORY_SHARE) - 1)
    assert isinstance(_load(folder).x_train, ImageFiles)
    assert isinstance(_load(folder, in_memory=True).x_train, np.ndarray)
    monkeypatch.setattr(stream, "available_memory", lambda: int(decoded / stream.MEMORY_SHARE) + 1)
    assert isinstance(_load(folder).x_train, np.ndarray)
    archive = tmp_path / "photos.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder / "red", "red")
        tar.add(folder / "blue", "blue")
    with pytest.raises(ConfigurationError, match="only folders stream"):
        load_image_folder(archive, image_size=20, in_memory=False)


def test_a_file_changed_or_gone_while_streaming_raises_data_changed(folder, tmp_path):
    copy = tmp_path / "photos"
    for path in folder.rglob("*.png"):
        (copy / path.parent.name).mkdir(parents=True, exist_ok=True)
        (copy / path.parent.name / path.name).write_bytes(path.read_bytes())
    data = load_image_folder(copy, image_size=20, in_memory=False)
    first, second = data.x_train.paths[0], data.x_train.paths[1]
    with open(first, "ab") as f:
        f.write(b"\0")
    os.remove(second)
    with pytest.raises(DataChangedError, match=r"changed or disappeared .*0\.png"):
        data.x_train[0]
    with pytest.raises(DataChangedError, match="2 image file"):
        data.x_train.verify()
    with pytest.raises(DataChangedError):
        data.x_train[1:3]


@pytest.mark.parametrize("augment", [True, "flip", False])
def test_augmented_batches_of_streamed_images_equal_those_of_the_decoded_images(folder, augment):
    streamed, decoded = _load(folder, in_memory=False), _load(folder, in_memory=True)
    assert isinstance(streamed.x_train, ImageFiles)
    a = AugmentedBatches(streamed.x_train, streamed.y_train, 16, augment=augment, seed=1)
    b = AugmentedBatches(decoded.x_train, decoded.y_train, 16, augment=augment, seed=1)
    for _epoch in range(2):
        for i in range(len(a)):
            (xa, ya), (xb, yb) = a[i], b[i]
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
        a.on_epoch_end(), b.on_epoch_end()


def _tiny_model(data):
    from transferkit.models.builders import build_transfer_model

    inp = keras.Input(data.image_shape)
    features = keras.layers.Conv2D(4, 3, strides=2, name="conv")(keras.layers.Rescaling(1 / 255)(inp))
    return build_transfer_model(keras.Model(inp, features, name="tiny"), data)


def test_training_on_a_streamed_folder_end_to_end(folder, tmp_path, feature_cache, caplog):
    from transferkit.models.features import extract_features
    from transferkit.training.train import train

    shutil.copytree(folder, tmp_path / "photos")  # one of its files is changed below
    folder = tmp_path / "photos"
    streamed, in_memory = _load(folder, in_memory=False), _load(folder, in_memory=True)
    model = _tiny_model(streamed)
    features = extract_features(model, streamed, "train", verbose=0)
    assert is_on_disk(features)  # memory-mapped, not in RAM
    np.testing.assert_allclose(features, extract_features(model, in_memory, "train", verbose=0),
                               rtol=1e-6)
    # The frozen head on cached features (on disk, with the mirror images' too), twice: the
    # second run reads them from the feature cache, memory-mapped.
    with caplog.at_level(logging.INFO, logger="transferkit"):
        runs = [train(model, streamed, epochs=3, batch_size=16, augment="flip", lr=1e-2,
                      verbose=0, seed=0) for _ in range(2)]
    assert "Features from the cache (train split, val split, test split, train split, mirrored" \
        in caplog.text
    assert all(r.config["cached_features"] for r in runs)
    assert runs[1].evaluation.accuracy > 0.6
    assert len(runs[1].evaluation.y_true) == len(streamed.y_test)
    # Images every epoch (no fast path): a file that changes mid-run stops it with its own error.
    changed = streamed.x_train.paths[0]

    class Touch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            stat = os.stat(changed)
            os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    run = train(_tiny_model(streamed), streamed, epochs=1, batch_size=16, cache_features=False,
                verbose=0, run_dir=tmp_path / "run")
    assert run.epochs_run == 1 and run.evaluation is not None
    with pytest.raises(DataChangedError, match=os.path.basename(changed)):
        train(_tiny_model(streamed), streamed, epochs=2, batch_size=16, cache_features=False,
              verbose=0, callbacks=[Touch()])
    with pytest.raises(DataChangedError):  # checked before anything runs
        train(_tiny_model(streamed), streamed, epochs=1, verbose=0)
