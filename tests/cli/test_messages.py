"""What the CLI says when something is missing or wrong: whole, once, in the CLI's terms."""

import keras

from transferkit.cli import main
from transferkit.data.cifar import cifar10_search_paths


def _offline():
    raise Exception("URL fetch failure: no network")


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


def test_hints_name_only_options_the_command_has():
    from transferkit.cli import cli_terms

    upscaling = "Upscaling 32x32 inputs to 96x96 inside the model (pass image_size= to choose)."
    assert cli_terms(upscaling, flags={"--data", "--weights"}) == (
        "Upscaling 32x32 inputs to 96x96 inside the model.")
    assert cli_terms(upscaling, flags={"--image-size"}) == (
        "Upscaling 32x32 inputs to 96x96 inside the model (pass --image-size N to choose).")
