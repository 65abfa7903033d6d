"""Progress lines say what they process; sizes under a megabyte print in kilobytes."""

import io

import pytest

from transferkit._progress import Progress, format_size, progress_line


@pytest.mark.parametrize("nbytes, text", [
    (0, "0 bytes"), (1, "1 byte"), (900, "900 bytes"), (300_000, "293 KB"), (2**20 - 1, "1,024 KB"),
    (5 * 2**20, "5 MB"), (1536 * 2**20, "1.5 GB"),
])
def test_sizes_print_in_the_unit_that_shows_them(nbytes, text):
    assert format_size(nbytes) == text


def test_a_progress_line_names_what_it_processes():
    line = progress_line("Extracting features (train split)", 48, 48, 2.64, "image")
    assert line == "Extracting features (train split): 48/48 images - 3s - 55ms/image"
    assert progress_line("Caching", 1, 1, 0.0004, "image") == "Caching: 1/1 image - 0s - 400us/image"
    assert progress_line("Caching", 5, 10, 30.0, "step").endswith("5/10 steps - 30s - 6s/step")


@pytest.mark.parametrize("verbose, lines", [(0, 0), (2, 1)])
def test_progress_prints_one_labelled_line_in_logs(verbose, lines):
    out = io.StringIO()
    progress = Progress("Extracting features (val split)", 20, "image", verbose=verbose, file=out)
    for done in (8, 16, 20):
        progress.update(done)
    text = out.getvalue()
    assert text.count("\n") == lines and "\r" not in text
    if lines:
        assert text.startswith("Extracting features (val split): 20/20 images - ")


def test_progress_on_a_terminal_redraws_one_line():
    out = io.StringIO()
    progress = Progress("Caching", 3, "image", verbose=1, file=out)
    for done in (1, 2, 3):
        progress.update(done)
    text = out.getvalue()
    assert text.count("\r") >= 3 and text.endswith("\n") and text.count("\n") == 1
    assert text.rstrip().rsplit("\r", 1)[-1].startswith("Caching: 3/3 images")
