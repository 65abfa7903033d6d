"""ImageNet weights offline: one clear error at once, naming the file, without a download attempt."""

import socket

import pytest

import transferkit.models.files as files
from transferkit.errors import WeightsNotFoundError
from transferkit.models.files import can_download, check_imagenet_weights


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Keras' cache folder, empty, for the checks (Keras itself keeps the suite's)."""
    def in_cache(name, size):
        from transferkit.models.registry import get_backbone_spec

        return tmp_path / "models" / get_backbone_spec(name).weights_filename(size)

    monkeypatch.setattr(files, "weights_cache_path", in_cache)
    (tmp_path / "models").mkdir()
    return tmp_path / "models"


def test_weights_neither_cached_nor_downloadable_name_the_file_and_folder(cache, monkeypatch):
    monkeypatch.setattr(files, "can_download", lambda **kwargs: False)
    with pytest.raises(WeightsNotFoundError) as err:
        check_imagenet_weights("mobilenet_v2", 128)
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5"
    assert f"Put the file {name} into {cache}/, or pass weights=None" in str(err.value)
    with pytest.raises(WeightsNotFoundError, match="by input size: 96, 128, 160, 192, 224 px"):
        check_imagenet_weights("mobilenet_v2")  # size not known yet
    (cache / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5").touch()
    check_imagenet_weights("mobilenet_v2")  # any size's file will do then
    with pytest.raises(WeightsNotFoundError):
        check_imagenet_weights("mobilenet_v2", 96)  # but not for another size
    monkeypatch.setattr(files, "can_download", lambda **kwargs: True)
    check_imagenet_weights("mobilenet_v2", 96)  # online: Keras downloads it


def test_a_cached_file_needs_no_network(cache, monkeypatch):
    (cache / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5").touch()

    def no_network(**kwargs):
        raise AssertionError("tried the network")

    monkeypatch.setattr(files, "can_download", no_network)
    check_imagenet_weights("resnet50", 96)  # one file for every size


def test_can_download_tries_one_connection_and_trusts_a_proxy(monkeypatch):
    tried = []

    def unreachable(address, timeout):
        tried.append(address)
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    for name in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert can_download(timeout=0.1) is False and tried == [(files.WEIGHTS_HOST, 443)]
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert can_download(timeout=0.1) is True and len(tried) == 1  # the proxy decides


def test_build_backbone_offline_raises_one_error_without_a_download(cache, monkeypatch, capsys):
    from keras.src.utils import file_utils

    from transferkit.models.backbones import build_backbone

    monkeypatch.setattr(files, "can_download", lambda **kwargs: False)
    monkeypatch.setattr(file_utils, "get_file", pytest.fail)  # Keras would print "Downloading"
    with pytest.raises(WeightsNotFoundError) as err:
        build_backbone("resnet50", image_size=96)
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in str(err.value)
    assert err.value.__cause__ is None and err.value.__context__ is None  # no chained traceback
    assert "Downloading" not in capsys.readouterr().out
