"""check_scalar: one message shape for every numeric argument."""

import numpy as np
import pytest

from transferkit._validation import check_scalar
from transferkit.errors import ConfigurationError


@pytest.mark.parametrize("value, kind, bounds, message", [
    (0, int, {"min_val": 1}, "epochs must be an int >= 1, got 0."),
    (True, int, {"min_val": 1}, "epochs must be an int >= 1, got True."),
    (2.0, int, {"min_val": 1}, "epochs must be an int >= 1, got 2.0."),
    (0.0, float, {"min_val": 0, "include_min": False}, "epochs must be a number > 0, got 0.0."),
    ("1", float, {}, "epochs must be a number, got '1'."),
    (1.0, float, {"min_val": 0, "max_val": 1, "include_max": False},
     "epochs must be a number in [0, 1), got 1.0."),
    (5, int, {"max_val": 4}, "epochs must be an int <= 4, got 5."),
    # scikit-learn lets NaN through any bound; the wrapper refuses it.
    (float("nan"), float, {"min_val": 0}, "epochs must be a number >= 0, got nan."),
])
def test_refused_values_name_the_argument_range_and_value(value, kind, bounds, message):
    with pytest.raises(ConfigurationError) as info:
        check_scalar(value, "epochs", kind, **bounds)
    assert str(info.value) == message


def test_accepted_values_come_back_unchanged():
    assert check_scalar(np.int64(3), "n", int, min_val=1) == 3
    assert check_scalar(1, "lr", float, min_val=0, include_min=False) == 1
    assert check_scalar(0.0, "w", min_val=0, max_val=1, include_max=False) == 0.0
