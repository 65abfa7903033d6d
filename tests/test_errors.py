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
