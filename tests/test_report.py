import re
from html.parser import HTMLParser

import pytest

from transferkit.cli import main
from transferkit.errors import ConfigurationError
from transferkit.models import build_baseline_cnn, build_transfer_model
from transferkit.report import REPORT_SECTIONS, SLIDES, write_report
from transferkit.training import train


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.h2, self.srcs, self.sections = [], [], [], 0
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in ("img", "meta", "br"):
            self.stack.append(tag)
        self._in_h2 = tag == "h2"
        if tag == "img":
            self.srcs.append(attrs["src"])
        if tag == "section":
            self.sections += 1

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, f"unbalanced </{tag}>"
        self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)


@pytest.fixture(scope="module")
def runs_and_data(tmp_path_factory):
    from transferkit.data import make_synthetic_dataset

    data = make_synthetic_dataset(3, per_class=30, image_size=32, test_per_class=6, seed=2)
    scratch = train(build_baseline_cnn(3, filters=(8, 16)), data, epochs=2, verbose=0, name="scratch")
    frozen = train(build_transfer_model("mobilenet_v2", 3, image_size=32, weights=None), data,
                   epochs=2, verbose=0, name="frozen")
    root = tmp_path_factory.mktemp("runs")
    scratch.save(root / "scratch")
    frozen.save(root / "frozen")
    return [frozen, scratch], data, root


def _check(path):
    text = path.read_text()
    checker = _Checker()
    checker.feed(text)
    assert not checker.stack and text.startswith("<!DOCTYPE html>")
    assert checker.srcs and all(s.startswith("data:image/png;base64,") for s in checker.srcs)
    assert not re.search(r"(src|href)=\"https?://", text) and "http://" not in text.replace("http://www", "")
    return checker, text


def test_report_has_every_section_with_embedded_figures(runs_and_data, tmp_path):
    runs, data, _ = runs_and_data
    checker, text = _check(write_report(runs, tmp_path / "r.html", data=data, title="T"))
    assert checker.h2 == list(REPORT_SECTIONS)
    assert "<td>frozen</td>" in text and "macro avg" in text
    assert len(checker.srcs) >= 1 + 2 + 2 + 1 + 4  # curves, 2 CMs, 2 bars, maps, predictions


def test_slide_deck_has_exactly_the_declared_slides(runs_and_data, tmp_path):
    runs, data, _ = runs_and_data
    checker, text = _check(write_report(runs, tmp_path / "s.html", data=data, slides=True))
    assert checker.h2 == list(SLIDES) and checker.sections == 10
    assert "page-break-after:always" in text and "Efficient ImageNet classification" in text


def test_report_cli_from_saved_runs(runs_and_data, tmp_path, capsys):
    _, _, root = runs_and_data
    out = tmp_path / "cli.html"
    assert main(["report", str(root / "frozen"), str(root / "scratch"), "-o", str(out), "--slides"]) == 0
    checker, _ = _check(out)
    assert checker.sections == 10
    assert main(["report", str(tmp_path / "nothing"), "-o", str(out)]) == 2


def test_report_needs_runs(tmp_path):
    with pytest.raises(ConfigurationError):
        write_report([], tmp_path / "x.html")
