import pytest

from transferkit.errors import (
    DataError,
    TransferkitError,
    UnknownNameError,
    WeightsNotFoundError,
    unknown_name,
)


def test_unknown_name_lists_close_matches_and_valid_names():
    err = unknown_name("backbone", "mobilenetv2", ["mobilenet_v2", "resnet50", "vgg16"])
    assert isinstance(err, UnknownNameError) and isinstance(err, KeyError)
    text = str(err)
    assert "'mobilenetv2'" in text
    assert "Did you mean 'mobilenet_v2'" in text
    assert "resnet50" in text  # the full list of valid names


def test_unknown_name_without_close_match_has_no_hint():
    assert "Did you mean" not in str(unknown_name("layer", "zzz", ["conv1", "pool"]))


@pytest.mark.parametrize("cls, builtin", [(DataError, ValueError), (WeightsNotFoundError, FileNotFoundError)])
def test_errors_are_catchable_as_builtin_and_base(cls, builtin):
    with pytest.raises(builtin):
        raise cls("x")
    with pytest.raises(TransferkitError):
        raise cls("x")


# --------------------------------------------------------------------------- the bad-input matrix
# Each row: an id, a call that a user could plausibly make, the one exception
# type it must raise, and a fragment of the message that names the problem or
# the fix. The rows cover the whole public API; the point is that nothing
# surfaces as a bare TensorFlow/NumPy error or a silent wrong result.

import numpy as np  # noqa: E402
from conftest import png_bytes  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.errors import (  # noqa: E402
    ConfigurationError,
    CorruptDataError,
    DataNotFoundError,
    RunDirectoryExistsError,
)


def _images(n=4, size=16, channels=3, dtype=np.uint8):
    return np.zeros((n, size, size, channels), dtype)


def _splits(**overrides):
    arrays = {
        "x_train": _images(6), "y_train": np.array([0, 1, 2, 0, 1, 2]),
        "x_val": _images(0), "y_val": np.zeros(0, int),
        "x_test": _images(3), "y_test": np.array([0, 1, 2]),
        "class_names": ("a", "b", "c"),
    }
    arrays.update(overrides)
    return tk.DataSplits(**arrays)


def _png(value=0):
    return png_bytes(np.full((8, 8, 3), value, np.uint8))


def _tree(root, layout):
    for rel, count in layout.items():
        (root / rel).mkdir(parents=True, exist_ok=True)
        for k in range(count):
            (root / rel / f"{k}.png").write_bytes(_png(k))
    return root


def _cnn(num_classes=3):
    return tk.build_baseline_cnn(num_classes, input_shape=(16, 16, 3), filters=(4,), head=(8,))


def _mobilenet():
    return tk.build_transfer_model("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None,
                                   image_size=32)


def _trained_run_dir(tmp_path, tiny):
    tk.train(_cnn(), tiny, epochs=1, run_dir=tmp_path / "run", verbose=0)
    return tmp_path / "run"


def _rows(tmp_path, tiny):
    t = tmp_path
    return [
        # -- raw images and labels
        ("images rank 3", lambda: _splits(x_train=np.zeros((6, 16, 16), np.uint8)),
         DataError, "shape"),
        ("images 4 channels", lambda: _splits(x_train=_images(6, channels=4)), DataError, "channels"),
        ("images float", lambda: _splits(x_train=_images(6, dtype=np.float32)), DataError, "uint8"),
        ("images list", lambda: _splits(x_train=[[1, 2]]), DataError, "NumPy array"),
        ("evaluate bare arrays", lambda: tk.evaluate(_cnn(), _images(2)), DataError, "DataSplits"),
        ("labels above range", lambda: _splits(y_train=np.array([0, 1, 2, 0, 1, 3])),
         DataError, "0..2"),
        ("labels negative", lambda: _splits(y_train=np.array([0, 1, 2, 0, 1, -1])),
         DataError, "0..2"),
        ("labels float", lambda: _splits(y_train=np.array([0, 1, 2, 0, 1, 0.5])),
         DataError, "integers"),
        ("labels one-hot", lambda: _splits(y_train=np.eye(3)[[0, 1, 2, 0, 1, 2]]),
         DataError, "argmax"),
        ("labels count mismatch", lambda: _splits(y_train=np.array([0, 1, 2])),
         DataError, "holds 6 images but"),
        ("one class", lambda: _splits(class_names=("a",), y_train=np.zeros(6, int),
                                      y_test=np.zeros(3, int)), DataError, "at least 2 classes"),
        ("empty training split", lambda: _splits(x_train=_images(0), y_train=np.zeros(0, int)),
         DataError, "empty"),
        ("empty split streamed", lambda: tiny.limit(36).as_tf_dataset("nonexistent"),
         ConfigurationError, "split"),
        ("evaluate on empty split", lambda: tk.evaluate(_cnn(), _splits(), split="val"),
         DataError, "empty"),
        ("unknown class", lambda: tiny.subset(["class_0", "dragon"]), UnknownNameError, "dragon"),
        ("validation_split 1.0", lambda: tk.load_cifar10(t, validation_split=1.0),
         ConfigurationError, "[0, 1)"),
        # -- models
        ("num_classes 1 (cnn)", lambda: tk.build_baseline_cnn(1), ConfigurationError, ">= 2"),
        ("num_classes 1 (transfer)", lambda: tk.build_transfer_model("mobilenet_v2", 1, weights=None),
         ConfigurationError, ">= 2"),
        ("unknown backbone", lambda: tk.build_transfer_model("mobilnet_v2", weights=None),
         UnknownNameError, "Did you mean 'mobilenet_v2'"),
        ("image size too small", lambda: tk.build_transfer_model(
            "resnet50", input_shape=(32, 32, 3), image_size=16, weights=None),
         ConfigurationError, "32"),
        ("input shape 2 channels", lambda: tk.build_baseline_cnn(3, input_shape=(16, 16, 2)),
         ConfigurationError, "channels"),
        ("dropout 1.0", lambda: tk.build_baseline_cnn(3, dropout=1.0), ConfigurationError, "dropout"),
        ("freeze out of range", lambda: tk.build_transfer_model(
            "mobilenet_v2", 3, weights=None, freeze=10_000), ConfigurationError, "0.."),
        ("freeze unknown layer", lambda: tk.build_transfer_model(
            "mobilenet_v2", 3, weights=None, freeze="block_99_add"),
         UnknownNameError, "block_99_add"),
        ("unfreeze_last negative", lambda: tk.unfreeze_last(_mobilenet(), -1),
         ConfigurationError, "0.."),
        ("unfreeze_last too many", lambda: tk.unfreeze_last(_mobilenet(), 10_000),
         ConfigurationError, "0.."),
        ("unfreeze_last not int", lambda: tk.unfreeze_last(_mobilenet(), 2.5),
         ConfigurationError, "int"),
        ("weights file missing", lambda: tk.build_transfer_model(
            "mobilenet_v2", 3, weights=str(t / "nope.h5")), WeightsNotFoundError, "nope.h5"),
        ("feature maps unknown layer", lambda: tk.extract_feature_maps(
            _cnn(), _images(2), layers=["conv_99"]), UnknownNameError, "conv_99"),
        ("model/data shape mismatch", lambda: tk.evaluate(
            tk.build_baseline_cnn(3, input_shape=(32, 32, 3)), tiny), DataError, "16"),
        # -- training
        ("model/data classes mismatch", lambda: tk.train(_cnn(5), tiny, epochs=1, verbose=0),
         DataError, "5 classes"),
        ("epochs 0", lambda: tk.train(_cnn(), tiny, epochs=0), ConfigurationError, "epochs"),
        ("batch_size 0", lambda: tk.train(_cnn(), tiny, batch_size=0), ConfigurationError,
         "batch_size"),
        ("cache with augmentation", lambda: tk.train(
            _cnn(), tiny, augment=True, cache_features=True, verbose=0),
         ConfigurationError, "augmentation"),
        ("unknown schedule", lambda: tk.lr_callback("cosinus", base_lr=1e-3, epochs=3),
         ConfigurationError, "cosinus"),
        ("run dir exists", lambda: tk.train(_cnn(), tiny, epochs=1, verbose=0,
                                            run_dir=_trained_run_dir(t, tiny)),
         RunDirectoryExistsError, "overwrite=True"),
        ("overwrite and resume", lambda: tk.train(_cnn(), tiny, run_dir=t / "r", overwrite=True,
                                                  resume=True), ConfigurationError, "not both"),
        ("compare no runs", lambda: tk.compare_runs([]), ConfigurationError, "at least one"),
        ("compare non-runs", lambda: tk.compare_runs(["run"]), ConfigurationError, "Run objects"),
        ("export unknown format", lambda: tk.export_model(_cnn(), t / "m.onnx", format="tfl"),
         UnknownNameError, "Did you mean 'tflite'"),
        ("export a feature model", lambda: tk.export_model(_cnn().split_at_pool()[0],
                                                           t / "m.onnx", format="onnx"),
         ConfigurationError, "transferkit classifier"),
        # -- files
        ("cifar path missing", lambda: tk.load_cifar10(t / "missing", download=False),
         DataNotFoundError, "does not exist"),
        ("truncated archive", lambda: (t / "cut.tar.gz").write_bytes(
            open(_tar_of(t), "rb").read()[:300]) and tk.load_image_folder(t / "cut.tar.gz"),
         CorruptDataError, "cut.tar.gz"),
        ("not an archive", lambda: (t / "text.zip").write_text("hello")
         and tk.load_image_folder(t / "text.zip"), CorruptDataError, "text.zip"),
        ("image folder empty", lambda: (t / "empty").mkdir() or tk.load_image_folder(t / "empty"),
         DataError, "no images"),
        ("unreadable image strict", lambda: (_tree(t / "bad", {"a": 3, "b": 3}) / "a" / "x.jpg")
         .write_bytes(b"garbage") and tk.load_image_folder(t / "bad", strict=True),
         CorruptDataError, "x.jpg"),
        ("class missing from test split", lambda: tk.load_image_folder(
            _tree(t / "gap", {"train/a": 3, "train/b": 3, "test/a": 2})),
         DataError, "b"),
        ("run folder not a run", lambda: tk.Run.load(t), DataNotFoundError, "run.json"),
    ]


def _tar_of(t):
    import tarfile

    _tree(t / "src", {"a": 20, "b": 20})
    with tarfile.open(t / "whole.tar.gz", "w:gz") as tar:
        tar.add(t / "src", arcname="ds")
    return t / "whole.tar.gz"


_ROW_IDS = [
    "images rank 3", "images 4 channels", "images float", "images list", "evaluate bare arrays", "labels above range",
    "labels negative", "labels float", "labels one-hot", "labels count mismatch", "one class",
    "empty training split", "empty split streamed", "evaluate on empty split", "unknown class",
    "validation_split 1.0", "num_classes 1 (cnn)", "num_classes 1 (transfer)", "unknown backbone",
    "image size too small", "input shape 2 channels", "dropout 1.0", "freeze out of range",
    "freeze unknown layer", "unfreeze_last negative", "unfreeze_last too many",
    "unfreeze_last not int", "weights file missing", "feature maps unknown layer",
    "model/data shape mismatch", "model/data classes mismatch", "epochs 0", "batch_size 0",
    "cache with augmentation", "unknown schedule", "run dir exists", "overwrite and resume",
    "compare no runs", "compare non-runs", "export unknown format", "export a feature model",
    "cifar path missing", "truncated archive",
    "not an archive", "image folder empty", "unreadable image strict",
    "class missing from test split", "run folder not a run",
]


def test_matrix_has_at_least_25_cases(tmp_path, tiny):
    rows = _rows(tmp_path, tiny)
    assert [r[0] for r in rows] == _ROW_IDS
    assert len(rows) >= 25


@pytest.mark.parametrize("row_id", _ROW_IDS)
@pytest.mark.backend_neutral
def test_bad_input_raises_one_clear_error(row_id, tmp_path, tiny):
    _, call, expected, fragment = next(r for r in _rows(tmp_path, tiny) if r[0] == row_id)
    with pytest.raises(expected) as info:
        call()
    assert isinstance(info.value, TransferkitError)
    assert fragment in str(info.value), str(info.value)
