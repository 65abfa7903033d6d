"""Counted nouns read as English: 1 run, 2 runs, 1 epoch."""

import pytest

from transferkit._text import plural


@pytest.mark.parametrize("n, word, text", [
    (1, "run", "1 run"), (2, "run", "2 runs"), (0, "epoch", "0 epochs"), (1, "epoch", "1 epoch"),
    (1, "class", "1 class"), (3, "class", "3 classes"), (None, "layer", "? layers"),
    (2, "image", "2 images"), (1_234, "image", "1,234 images"),
])
def test_plural(n, word, text):
    assert plural(n, word) == text
