"""The loaders check every cheap argument before they read or decode any image."""

import pytest

from transferkit.data.cifar import load_cifar10
from transferkit.data.folder import load_image_folder
from transferkit.errors import ConfigurationError, DataError, UnknownNameError


def _never(*args, **kwargs):
    raise AssertionError("images were read")


def test_load_cifar10_checks_the_classes_before_reading_an_image(tmp_path, monkeypatch):
    import transferkit.data.cifar as cifar

    monkeypatch.setattr(cifar, "_read_cifar10", _never)  # 60,000 images: a typo cost a full load
    monkeypatch.setattr(cifar, "_download_cifar10", _never)
    with pytest.raises(UnknownNameError, match="Unknown class 'dgo'. Did you mean 'dog'"):
        load_cifar10(tmp_path, classes=["cat", "dgo"])
    with pytest.raises(DataError, match="out of range 0..9"):
        load_cifar10(tmp_path, classes=["cat", 10])
    with pytest.raises(DataError, match="Duplicate"):
        load_cifar10(tmp_path, classes=["cat", 3])
    with pytest.raises(DataError, match="at least 2 classes"):
        load_cifar10(tmp_path, classes=["cat"])
    with pytest.raises(DataError, match=r"pass \['cat', ...\]"):
        load_cifar10(tmp_path, classes="cat")
    with pytest.raises(ConfigurationError, match="limit_per_class"):
        load_cifar10(tmp_path, classes=["cat", "dog"], limit_per_class=0)


def test_load_image_folder_checks_names_and_sizes_before_decoding(tmp_path, monkeypatch):
    import transferkit.data.folder as folder

    for cls in ("daisy", "rose"):
        (tmp_path / "flowers" / cls).mkdir(parents=True)
        (tmp_path / "flowers" / cls / "0.jpg").write_bytes(b"not decoded")
    monkeypatch.setattr(folder, "decode_images", _never)
    monkeypatch.setattr(folder, "sample_sizes", _never)
    with pytest.raises(UnknownNameError, match="Unknown class 'rsoe'. Did you mean 'rose'"):
        load_image_folder(tmp_path / "flowers", class_names=["daisy", "rsoe"])
    with pytest.raises(ConfigurationError, match="class_names must be a list"):
        load_image_folder(tmp_path / "flowers", class_names="rose")
    monkeypatch.setattr(folder, "list_entries", _never)
    with pytest.raises(ConfigurationError, match="image_size must be a positive int"):
        load_image_folder(tmp_path / "flowers", image_size=0)
