import pickle
import tarfile
import zipfile

import numpy as np
import pytest
from conftest import CIFAR_ARCHIVE, png_bytes, requires_cifar, requires_tensorflow
from hypothesis import given, settings
from hypothesis import strategies as st

from transferkit.data.cifar import CIFAR10_CLASSES, load_cifar10
from transferkit.data.folder import load_image_folder
from transferkit.data.splits import DataSplits
from transferkit.data.stratify import stratified_split
from transferkit.errors import (
    ConfigurationError,
    CorruptDataError,
    DataError,
    DataNotFoundError,
    UnknownNameError,
)

# The advice a tiny test tree draws (images of a few pixels, under 10 per class): expected here.
SMALL_TREE = "tiny|Few training images"


def _png(h, w, value):
    return png_bytes(np.full((h, w, 3), value, np.uint8))


def _write_tree(root, layout, size=(8, 8)):
    """layout: {relative_dir: count}; image value encodes the class index."""
    for i, (rel, count) in enumerate(layout.items()):
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        for k in range(count):
            (d / f"{k}.png").write_bytes(_png(*size, 20 * i))
    return root


# --------------------------------------------------------------------------- DataSplits


def test_datasplits_validates_images_and_labels(tiny):
    x, y = tiny.x_train, tiny.y_train
    with pytest.raises(DataError, match="uint8"):
        DataSplits(x.astype(np.float32), y, x[:0], y[:0], x, y, tiny.class_names)
    with pytest.raises(DataError, match="shape"):
        DataSplits(x[0], y, x[:0], y[:0], x, y, tiny.class_names)
    with pytest.raises(DataError, match="channels"):
        DataSplits(x[..., :2], y, x[:0], y[:0], x, y, tiny.class_names)
    with pytest.raises(DataError, match=r"0\.\.2"):
        DataSplits(x, y + 5, x[:0], y[:0], x, y, tiny.class_names)
    with pytest.raises(DataError, match="labels"):
        DataSplits(x, y[:-1], x[:0], y[:0], x, y, tiny.class_names)
    with pytest.raises(DataError, match="at least 2 classes"):
        DataSplits(x, y * 0, x[:0], y[:0], x, y * 0, ("only",))
    with pytest.raises(DataError, match="empty"):
        DataSplits(x[:0], y[:0], x[:0], y[:0], x, y, tiny.class_names)


def test_subset_relabels_in_given_order_and_keeps_names(tiny):
    sub = tiny.subset(["class_2", 0])
    assert sub.class_names == ("class_2", "class_0")
    assert set(sub.y_train) == {0, 1}
    # Images of class_2 became label 0: compare with the originals.
    np.testing.assert_array_equal(sub.x_train[sub.y_train == 0], tiny.x_train[tiny.y_train == 2])
    assert len(sub.y_test) == (tiny.y_test != 1).sum()


def test_subset_errors(tiny):
    with pytest.raises(UnknownNameError, match="class_1"):
        tiny.subset(["class_1", "clas_2x"])
    with pytest.raises(DataError, match="out of range"):
        tiny.subset([0, 7])
    with pytest.raises(DataError, match="Duplicate"):
        tiny.subset([0, 0])


@requires_tensorflow
def test_as_tf_dataset_streams_every_image_once_as_float(tiny):
    ds = tiny.as_tf_dataset("test", batch_size=5, shuffle=False)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    assert xs[0].dtype == np.float32 and xs[0].shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(np.concatenate(xs), tiny.x_test.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate(ys), tiny.y_test)


@requires_tensorflow
def test_as_tf_dataset_shuffles_and_augments(tiny):
    plain = np.concatenate([y.numpy() for _, y in tiny.as_tf_dataset("train", 8)])
    assert sorted(plain) == sorted(tiny.y_train) and not np.array_equal(plain, tiny.y_train)
    x_aug, _ = next(iter(tiny.as_tf_dataset("train", 8, shuffle=False, augment=True)))
    assert x_aug.shape == (8, 16, 16, 3)
    assert not np.allclose(x_aug.numpy(), tiny.x_train[:8])
    assert x_aug.numpy().min() >= 0 and x_aug.numpy().max() <= 255


def test_as_tf_dataset_rejects_empty_split_and_bad_names(tiny):
    empty = DataSplits(tiny.x_train, tiny.y_train, tiny.x_val[:0], tiny.y_val[:0],
                       tiny.x_test, tiny.y_test, tiny.class_names)
    with pytest.raises(DataError, match="empty"):
        empty.as_tf_dataset("val")
    with pytest.raises(ConfigurationError, match="Unknown split"):
        tiny.split("dev")


# --------------------------------------------------------------------------- splitting


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=1, max_size=200),
    fraction=st.floats(0, 0.95),
    seed=st.integers(0, 2**16),
)
def test_stratified_split_loses_nothing_and_keeps_proportions(labels, fraction, seed):
    y = np.array(labels)
    keep, held = stratified_split(y, fraction, seed=seed)
    both = np.concatenate([keep, held])
    assert sorted(both) == list(range(len(y)))  # nothing lost, nothing duplicated
    for c in np.unique(y):
        n = (y == c).sum()
        n_held = (y[held] == c).sum()
        assert n_held <= max(n - 1, 0)  # each class keeps at least one sample
        if n >= 2:
            assert abs(n_held - fraction * n) <= 1  # stratified within rounding
            assert n_held >= 1 or fraction == 0  # and gives at least one where it can


def test_stratified_split_edge_cases_and_seed():
    # A large, a small and a one-sample class: scikit-learn's proportional share alone
    # would hold none of class 1 at 10 % and leave it nothing to train on at 95 %.
    y = np.array([0] * 100 + [1] * 2 + [2])
    keep, held = stratified_split(y, 0.1, seed=3)
    assert np.bincount(y[held], minlength=3).tolist() == [10, 1, 0]
    keep, held = stratified_split(y, 0.95, seed=3)
    assert np.bincount(y[keep], minlength=3).tolist() == [5, 1, 1]
    keep, held = stratified_split(y, 0.0, seed=3)
    assert held.size == 0 and keep.tolist() == list(range(len(y)))
    same = stratified_split(y, 0.1, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(same, stratified_split(y, 0.1, seed=3)))
    assert not np.array_equal(same[1], stratified_split(y, 0.1, seed=4)[1])


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_subset_never_loses_or_duplicates(data):
    labels = data.draw(st.lists(st.integers(0, 3), min_size=4, max_size=60))
    y = np.array(labels)
    y[:4] = [0, 1, 2, 3]  # every class present
    x = np.arange(len(y), dtype=np.uint8)[:, None, None, None].repeat(3, axis=3)
    d = DataSplits(x, y, x[:0], y[:0], x, y, ("a", "b", "c", "d"))
    chosen = data.draw(st.lists(st.sampled_from("abcd"), min_size=2, max_size=4, unique=True))
    sub = d.subset(chosen)
    expected = np.isin(y, [d.class_names.index(c) for c in chosen]).sum()
    assert len(sub.y_train) == expected
    assert sub.y_train.min() >= 0 and sub.y_train.max() < len(chosen)
    # each kept image keeps its class under the new name
    for img, lab in zip(sub.x_train[:, 0, 0, 0], sub.y_train):
        assert d.class_names[y[img]] == chosen[lab]


@settings(max_examples=30, deadline=None)
@given(labels=st.lists(st.integers(0, 2), min_size=3, max_size=80), per_class=st.integers(1, 30),
       seed=st.integers(0, 2**16))
def test_limit_keeps_distinct_images_up_to_the_cap_per_class(labels, per_class, seed):
    y = np.array(labels)
    y[:3] = [0, 1, 2]
    x = np.arange(len(y), dtype=np.uint8)[:, None, None, None].repeat(3, axis=3)  # pixel = id
    d = DataSplits(x, y, x[:0], y[:0], x, y, ("a", "b", "c"))
    small = d.limit(per_class, seed=seed)
    for split in ("train", "test"):
        xs, ys = small.split(split)
        ids = xs[:, 0, 0, 0].astype(int)
        assert len(set(ids)) == len(ids)  # nothing duplicated
        assert list(y[ids]) == list(ys)  # every image keeps its label
        assert list(np.bincount(ys, minlength=3)) == [min(per_class, (y == c).sum()) for c in range(3)]


def test_validation_split_out_of_range():
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ConfigurationError, match=r"\[0, 1\)"):
            stratified_split(np.array([0, 1]), bad)


# --------------------------------------------------------------------------- image folders


def test_load_image_folder_with_split_folders(tmp_path):
    _write_tree(tmp_path, {"train/cat": 6, "train/dog": 6, "test/cat": 2, "test/dog": 2})
    with pytest.warns(UserWarning, match=SMALL_TREE):  # tiny images, few per class: advice
        d = load_image_folder(tmp_path, validation_split=1 / 3)
    assert d.class_names == ("cat", "dog")
    assert len(d.y_train) == 8 and len(d.y_val) == 4 and len(d.y_test) == 4
    assert d.counts()["val"] == [2, 2]
    # class identity survives: dog images are the brighter ones
    assert (d.x_test[d.y_test == 1] > d.x_test[d.y_test == 0].max()).all()


def test_load_image_folder_without_splits_is_split_by_loader(tmp_path):
    _write_tree(tmp_path, {"a": 10, "b": 10, "c": 10})
    with pytest.warns(UserWarning, match=SMALL_TREE):  # tiny images, few per class: advice
        d = load_image_folder(tmp_path, validation_split=0.2, test_split=0.2)
    assert d.counts() == {"train": [6, 6, 6], "val": [2, 2, 2], "test": [2, 2, 2]}


def test_load_image_folder_recognises_val_folder(tmp_path):
    _write_tree(tmp_path, {"train/a": 3, "train/b": 3, "valid/a": 2, "valid/b": 1, "test/a": 1, "test/b": 1})
    with pytest.warns(UserWarning, match=SMALL_TREE):  # tiny images, few per class: advice
        d = load_image_folder(tmp_path)
    assert len(d.y_train) == 6 and len(d.y_val) == 3


def test_train_and_val_folders_score_on_val(tmp_path, caplog):
    # The common tutorial layout: no test/ folder. Carving a test split from a
    # small train/ would score on a handful of images; val/ is scored instead.
    _write_tree(tmp_path, {"train/a": 10, "train/b": 10, "val/a": 4, "val/b": 4})
    with caplog.at_level("INFO", logger="transferkit"), pytest.warns(UserWarning, match=SMALL_TREE):
        d = load_image_folder(tmp_path, validation_split=0.2)
    assert d.counts() == {"train": [8, 8], "val": [2, 2], "test": [4, 4]}
    assert "val/ folder is the test split" in caplog.text


def _photo(path, size, fmt, **save):
    from PIL import Image

    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (255, 0, 0)  # left half red, right half blue
    a[:, w // 2:] = (0, 0, 255)
    Image.fromarray(a).save(path, fmt, **save)


@pytest.mark.parametrize("mode", ["crop", "pad", "squash"])
def test_resize_modes_fit_wide_photos_as_named(tmp_path, mode):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(2):
            _photo(tmp_path / cls / f"{k}.png", (60, 20), "PNG")  # 3:1 landscape
    with pytest.warns(UserWarning, match=SMALL_TREE):  # tiny images, few per class: advice
        d = load_image_folder(tmp_path, image_size=12, resize=mode, validation_split=0,
                              test_split=0.5)
    im = d.x_train[0].astype(int)
    assert im.shape == (12, 12, 3)
    if mode == "pad":  # all of it, shrunk, between black bands above and below
        assert im[0].max() == 0 and im[-1].max() == 0 and im[6, 0, 0] > 200
    else:  # crop keeps the centre (both halves); squash stretches: both start red
        assert im[6, 0, 0] > 200 and im[6, -1, 2] > 200 and im[0].max() > 200


def test_webp_tiff_and_rotated_phone_photos_are_read(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _photo(tmp_path / "a" / "0.webp", (16, 16), "WEBP", lossless=True)
    _photo(tmp_path / "a" / "1.tiff", (16, 16), "TIFF")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display upright
    _photo(tmp_path / "b" / "0.jpg", (16, 16), "JPEG", exif=exif.tobytes(), quality=95)
    _photo(tmp_path / "b" / "1.png", (16, 16), "PNG")
    with pytest.warns(UserWarning, match=SMALL_TREE):  # tiny images, few per class: advice
        d = load_image_folder(tmp_path, image_size=None, validation_split=0, test_split=0.5)
    images = np.concatenate([d.x_train, d.x_test]).astype(int)
    assert len(images) == 4
    upright = [im for im in images if im[0, 8, 0] > 150 and im[15, 8, 2] > 150]
    assert len(upright) == 1  # the EXIF-rotated one: red on top, blue below


def test_resize_mode_is_checked(tmp_path):
    _write_tree(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(ConfigurationError, match="resize"):
        load_image_folder(tmp_path, image_size=8, resize="stretch")


def test_load_image_folder_sizes(tmp_path):
    _write_tree(tmp_path / "t", {"a": 2}, size=(8, 8))
    _write_tree(tmp_path / "t", {"b": 2}, size=(10, 12))
    with pytest.raises(DataError, match="image_size"):
        load_image_folder(tmp_path / "t", image_size=None)
    with pytest.warns(UserWarning, match=SMALL_TREE):  # tiny images, few per class: advice
        d = load_image_folder(tmp_path / "t", image_size=6, validation_split=0, test_split=0.5)
    assert d.image_shape == (6, 6, 3)
    with pytest.warns(UserWarning, match="Few training"), \
            pytest.warns(UserWarning, match="tiny"):  # the default: sized from the images
        auto = load_image_folder(tmp_path / "t", validation_split=0, test_split=0.5)
    assert auto.image_shape == (128, 128, 3)  # small images in a small set: decoded to 128
    assert auto.provenance["size_choice"]["source_side"] == 9  # the median of 8, 8, 10, 10


def test_load_image_folder_bad_inputs(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_image_folder(tmp_path / "empty")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.png").write_bytes(_png(4, 4, 1))
    # The top-level file is skipped with a warning (and, read first, its size advised on).
    with pytest.raises(DataError, match="no images in class folders"), \
            pytest.warns(UserWarning, match="tiny"), \
            pytest.warns(UserWarning, match="skipped 1 file.* not images in a <class>/ folder: x.png"):
        load_image_folder(tmp_path / "flat")


def test_unreadable_images_are_skipped_with_warning_or_fail_when_strict(tmp_path):
    _write_tree(tmp_path, {"a": 4, "b": 4})
    (tmp_path / "a" / "broken.jpg").write_bytes(b"not really a jpeg")
    (tmp_path / "b" / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning) as record:
        d = load_image_folder(tmp_path, validation_split=0, test_split=0.25)
    messages = " ".join(str(w.message) for w in record)
    assert "broken.jpg" in messages and "notes.txt" in messages
    assert len(d.y_train) + len(d.y_test) == 8
    with pytest.raises(CorruptDataError, match="broken.jpg"), pytest.warns(UserWarning):
        load_image_folder(tmp_path, strict=True)


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_load_image_folder_from_archive(tmp_path, kind):
    tree = _write_tree(tmp_path / "src", {"ds/train/x": 4, "ds/train/y": 4, "ds/test/x": 2, "ds/test/y": 2})
    archive = tmp_path / f"ds.{kind}"
    files = sorted(p for p in tree.rglob("*.png"))
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for p in files:
                zf.write(p, p.relative_to(tree))
    else:
        with tarfile.open(archive, "w:gz") as tf_:
            tf_.add(tree / "ds", arcname="ds")
    with pytest.warns(UserWarning, match=SMALL_TREE):  # tiny images, few per class: advice
        d = load_image_folder(archive, validation_split=0.25)
    assert d.class_names == ("x", "y") and len(d.y_test) == 4 and len(d.y_train) == 6


def test_corrupt_archive_raises(tmp_path):
    bad = tmp_path / "data.tar.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(CorruptDataError, match="could not be read"):
        load_image_folder(bad)


# --------------------------------------------------------------------------- CIFAR-10 layouts


def _fake_cifar_batches(folder, per_batch=20):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = (np.arange(per_batch) % 10).tolist()
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        data[:, 0] = labels  # red channel of pixel (0, 0) encodes the label
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    return folder


def test_load_cifar10_official_folder_and_tarball(tmp_path):
    folder = _fake_cifar_batches(tmp_path / "cifar-10-batches-py")
    d = load_cifar10(folder, validation_split=0.1)
    assert len(d.y_train) + len(d.y_val) == 100 and len(d.y_test) == 20
    assert d.class_names == CIFAR10_CLASSES
    # channel-first pickles are transposed to HWC correctly
    np.testing.assert_array_equal(d.x_train[:, 0, 0, 0], d.y_train)
    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as t:
        t.add(folder, arcname="cifar-10-batches-py")
    d2 = load_cifar10(tarball)
    np.testing.assert_array_equal(d2.x_test, d.x_test)


def test_load_cifar10_image_tree_uses_cifar_label_order(tmp_path):
    # folders listed in an order unlike CIFAR's: labels must still follow CIFAR-10
    _write_tree(tmp_path, {"train/truck": 3, "train/airplane": 3, "test/truck": 1, "test/airplane": 1})
    d = load_cifar10(tmp_path, validation_split=0)
    assert set(d.y_train) == {0, 9}
    assert (d.x_train[d.y_train == 9] == 0).all()  # truck folder was written first (value 0)


def test_cifar_limit_decodes_only_the_images_it_keeps_and_the_same_ones(tmp_path, monkeypatch):
    from PIL import Image

    import transferkit.data.folder as folder
    from transferkit.data.stratify import limit_indices

    for split, count in (("train", 7), ("test", 5)):
        for c, name in enumerate(CIFAR10_CLASSES[:3]):
            (tmp_path / split / name).mkdir(parents=True)
            for k in range(count):  # each image its own: class in red, index in green
                pixels = np.full((4, 4, 3), (40 * c, 20 * k, 0), np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / name / f"{k:02d}.png")
    full = load_cifar10(tmp_path, validation_split=0)
    decoded, decode = [], folder.decode_images
    monkeypatch.setattr(folder, "decode_images",
                        lambda reads, *a, **k: decoded.append(len(reads)) or decode(reads, *a, **k))
    few = load_cifar10(tmp_path, validation_split=0, limit_per_class=2, seed=5)
    assert decoded == [3 * 2 + 3 * 2]  # 2 per class in each split, not all 36
    kept_train, kept_test = limit_indices(full.y_train, 2, 5), limit_indices(full.y_test, 2, 6)
    np.testing.assert_array_equal(few.x_train, full.x_train[kept_train])
    np.testing.assert_array_equal(few.y_train, full.y_train[kept_train])
    np.testing.assert_array_equal(few.x_test, full.x_test[kept_test])


def test_load_cifar10_rejects_foreign_classes(tmp_path):
    _write_tree(tmp_path, {"train/cat": 2, "train/unicorn": 2, "test/cat": 1})
    with pytest.raises(DataError, match="unicorn"):
        load_cifar10(tmp_path)


def test_load_cifar10_resolution_order(tmp_path, monkeypatch):
    folder = _fake_cifar_batches(tmp_path / "cifar-10-batches-py")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_cifar10(tmp_path / "nope")
    monkeypatch.setenv("TRANSFERKIT_DATA", str(folder))
    assert len(load_cifar10().y_test) == 20
    monkeypatch.setenv("TRANSFERKIT_DATA", str(tmp_path / "gone"))
    with pytest.raises(DataNotFoundError, match="TRANSFERKIT_DATA"):
        load_cifar10()


def test_load_cifar10_failed_download_names_where_to_put_files(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataNotFoundError) as err:
        load_cifar10()
    assert "cifar-10-python.tar.gz" in str(err.value) and "datasets" in str(err.value)
    with pytest.raises(DataNotFoundError):
        load_cifar10(download=False)


def test_limit_per_class_and_classes(tmp_path):
    folder = _fake_cifar_batches(tmp_path / "cifar-10-batches-py")
    d = load_cifar10(folder, limit_per_class=4, validation_split=0.25, classes=["ship", "cat"])
    assert d.class_names == ("ship", "cat")
    assert d.counts() == {"train": [3, 3], "val": [1, 1], "test": [2, 2]}


# --------------------------------------------------------------------------- real data


@pytest.mark.slow  # decodes all 60,000 JPEGs (15 s); the slow suite's processes load them anyway
@requires_cifar
@pytest.mark.realdata
def test_real_cifar10_copy_is_complete(cifar):
    assert cifar.source == str(CIFAR_ARCHIVE)
    assert cifar.class_names == CIFAR10_CLASSES
    assert cifar.x_train.dtype == np.uint8 and cifar.image_shape == (32, 32, 3)
    counts = cifar.counts()
    train_plus_val = np.add(counts["train"], counts["val"])
    assert train_plus_val.tolist() == [5000] * 10
    assert counts["val"] == [500] * 10  # stratified 10 %
    assert counts["test"] == [1000] * 10
    assert len(cifar.y_train) + len(cifar.y_val) == 50000 and len(cifar.y_test) == 10000
    # real photographs, not blank decodes
    assert 80 < cifar.x_test.mean() < 180 and cifar.x_test.std() > 40


def test_counts_and_repr(tiny):
    assert "train=" in repr(tiny) and "synthetic" in repr(tiny)
    assert sum(tiny.counts()["train"]) == len(tiny.y_train)

