"""Export: each format, read back by its own runtime, takes uint8 images and gives the
model's probabilities; bad requests fail at once and leave nothing behind.

SavedModel and TFLite need the TensorFlow backend; ONNX runs on TensorFlow and
PyTorch where the ``export`` extra is installed (onnx, tf2onnx, onnxruntime), and
is skipped, with the reason, where it is not (CI's PyTorch and JAX environments).
"""

import importlib.util

import keras
import numpy as np
import pytest
from conftest import BACKEND
from harness import real_subset

import transferkit as tk
from transferkit.errors import (
    ConfigurationError,
    DataError,
    MissingDependencyError,
    UnknownNameError,
)
from transferkit.models import export as export_module
from transferkit.models.export import FORMATS, check_export_request, export_model
from transferkit.models.exported import ExportedModel, compare_exported

NAMES = {"savedmodel": "cnn_savedmodel", "tflite": "cnn.tflite", "onnx": "cnn.onnx"}


def _can_export(format: str) -> None:
    """Skip, saying why, where this backend or environment cannot write and read ``format``."""
    spec = FORMATS[format]
    if BACKEND not in spec.writers:
        pytest.skip(f"{spec.label} export is not offered on the {BACKEND} backend")
    for package in spec.writers[BACKEND] + spec.readers:
        pytest.importorskip(package, reason=f"{package} is not installed (the export extra)")


@pytest.fixture
def cnn(tiny):
    keras.utils.set_random_seed(0)
    return tk.build_baseline_cnn(tiny, filters=(4,), head=(8,))


def _declared_input(exported: ExportedModel) -> tuple[str, tuple]:
    """The dtype and shape the file itself declares for its input."""
    if exported.format == "onnx":
        import onnxruntime

        given = onnxruntime.InferenceSession(str(exported.path)).get_inputs()[0]
        return given.type, tuple(d if isinstance(d, int) else None for d in given.shape)
    import tensorflow as tf

    if exported.format == "tflite":
        given = exported._interpreter.get_input_details()[0]
        return np.dtype(given["dtype"]).name, tuple(int(d) for d in given["shape_signature"])
    signature = tf.saved_model.load(str(exported.path)).signatures["serving_default"]
    spec, = signature.structured_input_signature[1].values()
    return spec.dtype.name, tuple(spec.shape)


@pytest.mark.parametrize("format", list(FORMATS))
def test_export_takes_uint8_images_and_gives_the_models_probabilities(format, cnn, tiny,
                                                                       tmp_path):
    _can_export(format)
    exported = export_model(cnn, tmp_path / NAMES[format], format=format)
    assert exported.max_abs_diff is not None and exported.max_abs_diff <= 1e-4
    read = ExportedModel.load(exported.path)
    assert (read.format, read.quantize) == (format, None)
    dtype, shape = _declared_input(read)
    assert "uint8" in dtype and shape[1:] == (16, 16, 3) and shape[0] in (None, -1)
    expected = cnn.predict(tiny.x_test, verbose=0)
    assert np.ptp(expected) > 0.01  # probabilities that differ, so the comparison means something
    got = read.predict(tiny.x_test, batch_size=7)  # several batches, the last one short
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_int8_tflite_is_quantized_and_stays_close(cnn, tiny, tmp_path):
    _can_export("tflite")
    exported = export_model(cnn, tmp_path / "cnn_int8.tflite", format="tflite", quantize="int8",
                            calibration_images=tiny.x_train[:16])
    read = ExportedModel.load(exported.path)
    assert read.quantize == "int8"  # int8 tensors in the file, not only the name
    assert "uint8" in _declared_input(read)[0]
    check = compare_exported(cnn, read, tiny.x_test, tiny.y_test)
    assert 0 < check.max_abs_diff < 0.05, check  # quantized, yet close to the float model
    assert check.images == len(tiny.x_test) and check.accuracy_change is not None


@pytest.mark.parametrize("format", ["onnx", "savedmodel"])
def test_a_failed_check_leaves_nothing_and_keeps_the_earlier_export(format, cnn, tmp_path,
                                                                     monkeypatch):
    _can_export(format)
    path = tmp_path / NAMES[format]
    if format == "savedmodel":
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"earlier export")
    else:
        path.write_bytes(b"earlier export")
    monkeypatch.setattr(export_module, "ATOL", -1.0)  # no file can pass
    with pytest.raises(RuntimeError, match="nothing was written"):
        export_model(cnn, path, format=format)
    earlier = path / "saved_model.pb" if format == "savedmodel" else path
    assert earlier.read_bytes() == b"earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left


def test_a_model_without_a_classifier_is_refused(cnn, tmp_path):
    features, _ = cnn.split_at_pool()
    with pytest.raises(ConfigurationError, match="transferkit classifier"):
        export_model(features, tmp_path / "f.onnx", format="onnx", check=False)
    assert not list(tmp_path.iterdir())


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    fake = tmp_path / "fake.keras"
    fake.write_text("not a model")
    with pytest.raises(ConfigurationError, match="not a Keras model file"):
        export_model(fake, tmp_path / "f.tflite", format="tflite", check=False)


@pytest.mark.parametrize("request_, error, fragment", [
    (dict(format="tfl"), UnknownNameError, "Did you mean 'tflite'"),
    (dict(format="onnx", quantize="int8"), ConfigurationError, "for TFLite files, not ONNX"),
    (dict(format="tflite", quantize="int4"), UnknownNameError, "Valid quantizations: int8"),
    (dict(format="savedmodel", backend="jax"), ConfigurationError, "KERAS_BACKEND=tensorflow"),
    (dict(format="tflite", backend="torch"), ConfigurationError, "needs the tensorflow"),
    (dict(format="onnx", backend="jax"), ConfigurationError, "tensorflow or torch"),
])
def test_bad_requests_name_the_problem(request_, error, fragment):
    with pytest.raises(error, match=fragment):
        check_export_request(**request_)


def test_a_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(MissingDependencyError) as raised:
        check_export_request("onnx", backend="torch", check=False)
    assert isinstance(raised.value, ImportError)
    assert "needs onnx, not installed" in str(raised.value)
    assert "Install with: pip install onnx (or, in a transferkit checkout, the export extra: " \
           'pip install ".[export]")' in str(raised.value)


def test_paths_that_may_not_hold_the_export_are_refused(cnn, tiny, tmp_path):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"a photo")
    cases = [(tmp_path / "cnn.onnx.txt", "onnx", "use"), (other, "tflite", r"named \*\.tflite"),
             (tmp_path / "d.tflite", "tflite", "is a folder"),
             (other, "savedmodel", "not a SavedModel folder")]
    (tmp_path / "d.tflite").mkdir()
    for path, format, fragment in cases:
        with pytest.raises(ConfigurationError, match=fragment):
            export_module.check_export_path(path, format)
    assert (other / "cat.jpg").read_bytes() == b"a photo"
    if BACKEND == "tensorflow":
        with pytest.raises(ConfigurationError, match="calibrates on training images"):
            export_model(cnn, tmp_path / "q.tflite", format="tflite", quantize="int8")
        with pytest.raises(DataError, match="input shape"):
            export_model(cnn, tmp_path / "q.tflite", format="tflite", quantize="int8",
                         calibration_images=tiny.x_train[:, :8])


def test_exported_predict_wants_raw_images(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="uint8"):
        ExportedModel.load(path).predict(np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(ConfigurationError, match="not an exported model"):
        ExportedModel.load(tmp_path)


@pytest.mark.slow
@pytest.mark.realdata
def test_exports_match_the_model_on_real_images(cifar, tmp_path):
    """A CNN trained on real CIFAR-10 images: every format, on the real test images, gives
    its probabilities within 1e-4 and the same accuracy; int8 stays close."""
    data = real_subset(cifar, classes=["airplane", "frog", "truck"], per_class=150)
    keras.utils.set_random_seed(0)
    model = tk.build_baseline_cnn(data, filters=(16, 32))
    run = tk.train(model, data, epochs=3, verbose=0)
    assert run.evaluation.accuracy > 0.45  # chance 0.33
    for format in ("savedmodel", "tflite", "onnx"):
        _can_export(format)
        exported = export_model(model, tmp_path / NAMES[format], format=format)
        check = compare_exported(model, exported, data.x_test, data.y_test)
        assert check.max_abs_diff <= 1e-4 and check.agreement == 1.0, (format, check)
        assert check.accuracy_exported == check.accuracy_model == run.evaluation.accuracy
    int8 = export_model(model, tmp_path / "int8.tflite", format="tflite", quantize="int8",
                        calibration_images=data.x_train[:200])
    check = compare_exported(model, int8, data.x_test, data.y_test)
    assert check.agreement > 0.9 and abs(check.accuracy_change) < 0.05, check
    assert int8.size_bytes < 0.5 * ExportedModel.load(tmp_path / "cnn.tflite").size_bytes
