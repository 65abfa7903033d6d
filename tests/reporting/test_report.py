import re
from html.parser import HTMLParser

import numpy as np
import pytest

from transferkit.cli import main
from transferkit.errors import ConfigurationError
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.reporting import story
from transferkit.reporting.report import REPORT_SECTIONS, write_report
from transferkit.reporting.slides import SLIDES
from transferkit.training.train import train

# The report's HTML and figures are the same on every backend: CI checks them on TensorFlow
# only (backend_neutral). What the backend computes for them (predictions, feature maps,
# Grad-CAM) is checked on each backend by test_backends (which writes both reports from a
# JAX or PyTorch run), test_gradcam and test_features. On JAX this module took 90 s.
pytestmark = [pytest.mark.xdist_group("report"),  # one worker builds the module's runs (pytest -n)
              pytest.mark.backend_neutral]


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.h2, self.srcs, self.sections = [], [], [], 0
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in ("img", "meta", "br", "wbr"):
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


@pytest.fixture(scope="session")
def runs_and_data(tmp_path_factory):
    from transferkit.data.synthetic import make_synthetic_dataset

    data = make_synthetic_dataset(3, per_class=30, image_size=32, test_per_class=6, seed=2)
    scratch = train(build_baseline_cnn(3, filters=(8, 16)), data, epochs=2, verbose=0, name="scratch")
    frozen = train(build_transfer_model("mobilenet_v2", 3, image_size=32, weights=None), data,
                   epochs=2, verbose=0, name="frozen")
    assert frozen.config["backbone"]["pretrained"] is False  # the model says so itself
    # Stands in for an ImageNet run: the fast suite has no weights offline.
    frozen.config["backbone"].update(weights="imagenet", pretrained=True)
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
    assert "<td>MobileNetV2, frozen head</td>" in text and "macro avg" in text  # named from its record
    assert "<code>frozen</code>" in text  # the folder name, in the configuration
    assert "<th>Balanced accuracy</th>" in text and "<th>Class (test recall)</th>" in text
    assert len(checker.srcs) >= 1 + 1 + 2 + 2 + 1 + 1 + 4  # time, curves, CMs, bars, maps, cams, preds
    cams = text[text.index("<h2>Where the model looks (Grad-CAM)</h2>"):text.index("<h2>Sample predictions")]
    assert re.search(r'alt="(MobileNetV2, frozen head|CNN from scratch): Grad-CAM of \d+ right predictions? and \d+ wrong', cams)
    assert cams.count("<img") == 1 and "Wrong predictions show what misled it" in cams
    assert "No run carries" not in text and 'alt="figure"' not in text and "Quick run" not in text


def test_slide_deck_has_exactly_the_declared_slides(runs_and_data, tmp_path):
    runs, data, _ = runs_and_data
    checker, text = _check(write_report(runs, tmp_path / "s.html", data=data, slides=True, quick=True,
                                        skipped={"resnet50": "weights not cached"}))
    assert checker.h2 == list(SLIDES[1:]) and checker.sections == 10  # slide 1 has the title
    assert "@page{size:13.333in 7.5in" in text and "break-after:page" in text
    assert "Efficient ImageNet classification" in text
    assert text.count("QUICK RUN") == 10 and text.count("ResNet50") >= 2  # its display name
    assert "0.0010000000474974513" not in text and "1 epochs" not in text
    assert not re.search(r"features \d+ of \d+", text) and "see the backbone study" not in text
    sees = text[text.index("What the network sees</h2>"):text.index("Benefits, limitations")]
    assert "Grad-CAM of" in sees and sees.count("<img") == 1  # the best run's right and wrong
    slides = text.split('<section class="slide"')[1:]
    verdict = story.verdict(runs)
    assert "training from scratch" in verdict.lower() and verdict in slides[0]
    assert text.count(verdict) == 1  # once: the conclusion states findings, not the verdict again
    assert re.search(r"Best run: (MobileNetV2, frozen head|CNN from scratch) \(\d+\.\d% test", slides[-1])


def test_report_cli_loads_saved_runs_in_a_fresh_process(runs_and_data, tmp_path):
    """Nothing has imported transferkit's model classes there: loading must register them."""
    import subprocess
    import sys

    _, _, root = runs_and_data
    out = tmp_path / "fresh.html"
    done = subprocess.run([sys.executable, "-m", "transferkit", "report", str(root / "frozen"),
                           "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"Wrote {out}" in done.stdout and out.is_file()


def test_report_cli_from_saved_runs(runs_and_data, tmp_path, capsys):
    _, _, root = runs_and_data
    out = tmp_path / "cli.html"
    assert main(["report", str(root / "frozen"), str(root / "scratch"), "-o", str(out), "--slides"]) == 0
    checker, _ = _check(out)
    assert checker.sections == 10
    assert main(["report", str(tmp_path / "nothing"), "-o", str(out)]) == 2


def test_report_cli_opens_an_experiment_folder(runs_and_data, tmp_path):
    import json
    import shutil

    _, _, root = runs_and_data
    exp = tmp_path / "exp"
    shutil.copytree(root, exp)
    (exp / "metrics.json").write_text(json.dumps({
        "experiment": "backbones", "mode": "quick", "runs": {"scratch": {}, "frozen": {}},
        "skipped": {"vgg16": "ImageNet weights unavailable"}}))
    out = tmp_path / "exp.html"
    assert main(["report", str(exp), "-o", str(out)]) == 0
    text = out.read_text()
    assert "<h1>Synthetic images: transfer learning vs training from scratch</h1>" in text
    assert "Quick run" in text and "VGG16" in text
    # The recorded order.
    assert text.index("<td>CNN from scratch</td>") < text.index("<td>MobileNetV2, frozen head</td>")


def test_report_data_rebuilds_the_test_split(tmp_path, capsys):
    from PIL import Image

    from transferkit.data.folder import load_image_folder

    rng = np.random.default_rng(0)
    for c, name in enumerate(("a", "b", "c")):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(12):
            pixels = np.full((20 + i % 3, 24, 3), 80 * c, np.uint8) + rng.integers(0, 30, (20 + i % 3, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / name / f"{i}.png")
    data = load_image_folder(tmp_path / "imgs", image_size=16, seed=3)
    run = train(build_baseline_cnn(3, filters=(4, 8), input_shape=(16, 16, 3)), data, epochs=1, verbose=0,
                name="small", run_dir=tmp_path / "run")
    assert run.config["data"]["provenance"]["image_size"] == [16, 16]
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "run"), "--data", str(tmp_path / "imgs"), "-o", str(out)]) == 0
    text = out.read_text()
    assert "most confident mistakes" in text and "differs" not in capsys.readouterr().err


def test_report_needs_runs(tmp_path):
    with pytest.raises(ConfigurationError):
        write_report([], tmp_path / "x.html")


def _flat_folder(root):
    from PIL import Image

    for c, colour in (("a", 40), ("b", 200)):
        (root / c).mkdir(parents=True)
        for k in range(10):
            Image.fromarray(np.full((8, 8, 3), colour + k, np.uint8)).save(root / c / f"{k}.png")
    return root


def _run_of(data):
    from transferkit.runs.record import Run

    return Run(name="r", config={"data": {"class_names": list(data.class_names),
                                          "provenance": dict(data.provenance)}},
               history={}, evaluation=None, timings={})


def test_rebuilding_a_folder_split_warns_for_runs_split_the_old_way(tmp_path, caplog):
    from transferkit.data.folder import load_image_folder
    from transferkit.reporting.report import rebuild_test_data

    folder = _flat_folder(tmp_path / "photos")
    data = load_image_folder(folder, image_size=8, test_split=0.2, seed=3)
    again = rebuild_test_data([_run_of(data)], folder)
    np.testing.assert_array_equal(again.x_test, data.x_test)  # the same split, exactly
    assert "recorded before" not in caplog.text
    old = _run_of(data)
    del old.config["data"]["provenance"]["split_method"]
    rebuild_test_data([old], folder)
    assert "recorded before transferkit drew splits with scikit-learn" in caplog.text



def test_results_show_balanced_accuracy_and_recall_per_class():
    from transferkit.reporting import _parts as parts
    from transferkit.reporting.report_parts import recall_table
    from transferkit.runs.evaluation import Evaluation, evaluate_predictions
    from transferkit.runs.record import Run

    names = ["cat", "dog_breed", "fox"]
    ev = evaluate_predictions([0, 0, 0, 1, 2], np.eye(3)[[0, 0, 0, 0, 2]], names)
    old = ev.to_dict(include_predictions=False)
    del old["balanced_accuracy"]  # a run recorded before the metric: a dash, not a crash
    runs = [Run("weighted", {}, {}, ev, {}), Run("old", {}, {}, Evaluation.from_dict(old), {})]
    results = parts.results_table(runs, {})
    assert "<th>Balanced accuracy</th>" in results and "<td>66.7%</td>" in results
    assert "<td>80.0%</td>" in results and "<td>-</td>" in results
    recall = recall_table(runs)
    rows = re.findall(r"<tr>(.*?)</tr>", recall)[1:]  # the header row first
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    assert cells == [["cat", "100.0%", "100.0%"], ["dog_<wbr>breed", "0.0%", "0.0%"],
                     ["fox", "100.0%", "100.0%"], ["Balanced accuracy", "66.7%", "-"]]
    assert "--class-weight balanced" in recall and recall_table([]) == ""


@pytest.fixture(scope="session")
def report_text(runs_and_data, tmp_path_factory):
    """The report of the module's runs, written once for the tests that read its prose."""
    runs, data, _ = runs_and_data
    return write_report(runs, tmp_path_factory.mktemp("prose") / "r.html", data=data).read_text()


def _section(text, name):
    start = text.index(f"<h2>{name}</h2>")
    return text[start:text.index("</section>", start)]


def test_summary_is_a_paragraph_with_the_verdict_and_the_findings(runs_and_data, report_text):
    import html

    runs, _, _ = runs_and_data
    summary = _section(report_text, "Summary")
    assert f"<b>{html.escape(story.verdict(runs))}</b>" in summary
    assert "This report compares 2 runs on synthetic images (3 classes, 18 test images): " in summary
    assert "Best run: " in summary and "<ul" not in summary  # sentences, not a list of fragments


def test_discussion_weighs_the_result_and_the_conclusion_answers(report_text):
    discussion = _section(report_text, "Discussion")
    for heading in ("Transfer learning against training from scratch", "Did fine-tuning help, and at what cost?",
                    "Accuracy per minute of training", "Where the best run goes wrong",
                    "How far these numbers can be trusted"):
        assert f"<h3>{heading}</h3>" in discussion
    assert "With 18 test images, chance alone moves a test accuracy by about" in discussion
    assert re.search(r"\(Figure \d+\)", discussion)  # the figures it rests on, by number
    conclusion = _section(report_text, "Conclusion")
    assert "is the run to keep" in conclusion and "Next: " in conclusion


def test_the_data_is_cited_not_located():
    from transferkit.reporting import _parts as parts
    from transferkit.runs.record import Run

    cifar = {"source": "/home/me/data/cifar-10-batches-py", "class_names": ["cat", "dog"],
             "provenance": {"loader": "cifar10", "path": "/home/me/data/cifar-10-batches-py"}}
    rows = dict(parts.dataset_rows([Run("r", {"data": cifar}, {}, None, {})], None))
    assert rows["Source"].startswith("CIFAR-10 (Krizhevsky, A. (2009). Learning Multiple Layers")
    folder = {"source": "/home/me/photos/flowers", "class_names": ["daisy", "rose"],
              "sizes": {"train": 90, "val": 10, "test": 20},
              "provenance": {"loader": "image_folder", "path": "/home/me/photos/flowers"}}
    rows = dict(parts.dataset_rows([Run("r", {"data": folder}, {}, None, {})], None))
    assert rows["Source"] == "Own photos: the folder flowers, 120 images, one subfolder per class"


def test_identical_feature_maps_are_shown_once(runs_and_data):
    import dataclasses

    from transferkit.reporting.report_parts import Figures, feature_maps

    (frozen, _), data, _ = runs_and_data
    twin = dataclasses.replace(frozen, name="frozen_again")  # the same model: the same maps
    figures = Figures()
    out = feature_maps([frozen, twin], data, figures)
    assert figures.count == 1 and out.count("<figure") == 1
    assert re.search(r"the same feature maps as MobileNetV2, frozen head[^<]* at these layers, not shown "
                     r"again: its backbone is frozen", out)
