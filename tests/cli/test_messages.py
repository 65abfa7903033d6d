"""What the CLI says when something is missing or wrong: whole, once, in the CLI's terms."""

import json

import keras
import pytest

from transferkit.cli import main
from transferkit.data.cifar import cifar10_search_paths


def _offline():
    raise Exception("URL fetch failure: no network")


@pytest.mark.backend_neutral
def test_offline_quickstart_says_everything_once_in_cli_terms(tmp_path, capsys, monkeypatch):
    real = keras.applications.MobileNetV2

    def no_imagenet(*args, **kwargs):  # the ImageNet weights cannot be fetched
        if kwargs.get("weights") == "imagenet":
            raise Exception("URL fetch failure: no network")
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", _offline)
    monkeypatch.setattr(keras.applications, "MobileNetV2", no_imagenet)
    assert main(["quickstart", "--per-class", "10", "--epochs", "1", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "FALLBACK to generated images" in err and "FALLBACK to random initialisation" in err
    for place in cifar10_search_paths():  # the whole message, not its first line
        assert str(place) in err
    assert "Pass --data PATH" in err and "--weights none" in err
    for python in ("data_dir=", "weights=None", "weights=<", "image_size="):
        assert python not in err
    assert "--image-size" not in err  # quickstart has no such option
    assert err.count("Upscaling 32x32 inputs") == 1
    notes = json.loads((tmp_path / "metrics.json").read_text())["notes"]
    assert "data: generated images (fallback)" in notes, notes


def test_hints_name_only_options_the_command_has():
    from transferkit.cli import cli_terms

    upscaling = "Upscaling 32x32 inputs to 96x96 inside the model (pass image_size= to choose)."
    assert cli_terms(upscaling, flags={"--data", "--weights"}) == (
        "Upscaling 32x32 inputs to 96x96 inside the model.")
    assert cli_terms(upscaling, flags={"--image-size"}) == (
        "Upscaling 32x32 inputs to 96x96 inside the model (pass --image-size N to choose).")


@pytest.fixture
def photo(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), "red").save(path)
    return path


def test_predict_tells_a_missing_model_from_a_file_that_is_not_one(tmp_path, photo, capsys):
    fake = tmp_path / "bad" / "fake.keras"
    fake.parent.mkdir()
    fake.write_text("this is a text file, not a model\n")
    assert main(["predict", str(fake), str(photo)]) == 2
    err = capsys.readouterr().err
    assert "not a Keras model file" in err and "not found" not in err.lower()
    assert main(["predict", str(tmp_path / "missing.keras"), str(photo)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_predict_on_a_folder_without_images_names_the_photo_formats(tmp_path):
    from transferkit.cli._checks import image_files as _image_files
    from transferkit.data.images import IMAGE_EXTENSIONS
    from transferkit.errors import DataError

    (tmp_path / "notes.txt").write_text("no photos here")
    with pytest.raises(DataError, match="No images in") as err:
        _image_files([str(tmp_path)], IMAGE_EXTENSIONS)
    assert ".jpg" in str(err.value) and ".png" in str(err.value)
    assert ".apng" not in str(err.value) and ".bufr" not in str(err.value)
