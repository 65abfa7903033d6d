"""The report as a teacher grading a hand-in sees it: rendered and printed by headless Chromium.

The runs are hand-made records of a CIFAR-10 study (10 classes, frozen head,
fine-tuned, from scratch), as ``transferkit report`` loads them from folders
without models: no training here, so the suite's time stays where it is.
The rendering helpers are test_render.py's; its ``pages`` fixture cannot be
shared (a fixture imported into a second module is built a second time).
"""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from test_render import BROWSER, _chromium, layout_check, print_pdf

pytestmark = [pytest.mark.skipif(
    BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium; .ci/run does)"),
    pytest.mark.xdist_group("render")]

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SOURCE = "/data/me/cifar-10-batches-py"
SECRET = "/home/me/.keras/models/"

# Reports the figures, the images as drawn and the folded blocks once printing starts.
PROBE_JS = """<script>addEventListener('load',function(){setTimeout(function(){
var out={figures:[],images:[],blocks:[],printRules:[]};
[].forEach.call(document.querySelectorAll('figure'),function(f){var c=f.querySelector('figcaption');
out.figures.push({caption:c?c.textContent:'',cls:f.className,img:!!f.querySelector('img')});});
[].forEach.call(document.images,function(i){out.images.push({alt:i.alt,natural:i.naturalWidth,
shown:i.getBoundingClientRect().width,cm:!!i.closest('figure.cm')});});
[].forEach.call(document.styleSheets,function(s){[].forEach.call(s.cssRules,function(r){
if(r.media&&r.media.mediaText==='print')[].forEach.call(r.cssRules,function(x){out.printRules.push(x.cssText);});});});
dispatchEvent(new Event('beforeprint'));
[].forEach.call(document.querySelectorAll('details'),function(d){var p=d.querySelector('pre');
out.blocks.push({open:d.open,height:p?p.getBoundingClientRect().height:0});});
var p=document.createElement('pre');p.id='tk-probe';p.textContent=JSON.stringify(out);
document.body.appendChild(p);},50);});</script>"""


@functools.cache  # a few seconds a render: each width once per session
def _probe(page, width: int) -> dict:
    probe = page.with_name(page.stem + f".probe{width}.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE_JS + "</body>"),
                     encoding="utf-8")
    result = _chromium(f"--window-size={width},900", "--virtual-time-budget=10000",
                       "--dump-dom", probe.resolve().as_uri())
    found = re.search(r'<pre id="tk-probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"Chromium printed no probe result: {result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def _records():
    from transferkit.runs.evaluation import evaluate_predictions
    from transferkit.runs.record import Run

    rng = np.random.default_rng(0)
    cifar = {"source": SOURCE, "class_names": CLASSES, "sizes": {"train": 2700, "val": 300, "test": 1000},
             "image_shape": [32, 32, 3], "provenance": {"loader": "cifar10", "path": SOURCE,
                                                        "limit_per_class": 300, "seed": 0,
                                                        "validation_split": 0.1}}

    def run(name, frozen, accuracy, seconds, pretrained=True):
        y = np.repeat(np.arange(10), 100)
        pred = np.where(rng.random(1000) < accuracy, y, (y + rng.integers(1, 3, 1000)) % 10)
        curve = list(np.linspace(accuracy - 0.2, accuracy, 3))
        config = {"model": "mobilenet_v2" if pretrained else "features", "data": cifar, "lr": 1e-3,
                  "run_dir": f"/home/me/runs/{name}",
                  "backbone": {"name": "mobilenet_v2" if pretrained else "features", "frozen": frozen,
                               "pretrained": pretrained, "layers": 150, "trainable_layers": 0 if frozen else 40}}
        return Run(name, config, {"accuracy": curve, "val_accuracy": curve},
                   evaluate_predictions(y, np.eye(10)[pred], CLASSES), {"total": seconds})

    return [run("mobilenet_v2_frozen", True, 0.78, 60), run("mobilenet_v2_finetuned", False, 0.83, 240),
            run("baseline_cnn_scratch", False, 0.55, 150, pretrained=False)]


@pytest.fixture(scope="session")
def handed_in(tmp_path_factory):
    """The report of a transfer-vs-baseline study on CIFAR-10, titled as the experiment titles it."""
    from transferkit.reporting.report import write_report

    return write_report(_records(), tmp_path_factory.mktemp("handed_in") / "report.html", quick=False,
                        skipped={"resnet50": f"ImageNet weights not cached: put the file into {SECRET}"},
                        notes=[f"Fell back to the copy in {SOURCE}."])


def test_report_fits_and_titles_in_words(handed_in):
    for width in (1100, 800):
        found = layout_check(handed_in, width=width)
        assert found["overflow"] == [] and found["broken"] == [] and found["external"] == [], width
    text = handed_in.read_text(encoding="utf-8")
    assert "<h1>CIFAR-10: transfer learning vs training from scratch</h1>" in text


def test_figures_are_numbered_in_order_with_captions_and_alt_text(handed_in):
    found = _probe(handed_in, 1100)
    numbers = [int(re.match(r"Figure (\d+)\. \S", f["caption"]).group(1)) for f in found["figures"]]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 1 + 1 + 3 + 3
    assert all(f["img"] and len(f["caption"]) > 40 for f in found["figures"])
    assert [f["cls"] for f in found["figures"]].count("cm") == 3  # one confusion matrix per run
    for image in found["images"]:  # what it shows, in words
        assert len(image["alt"]) > 25 and image["alt"] != "figure", image["alt"]
        assert not re.search(r"\b[a-z0-9]+_[a-z0-9_]+\b", image["alt"]), image["alt"]


@pytest.mark.parametrize("width", [1100, 800])
def test_confusion_matrix_numbers_are_readable_as_drawn(handed_in, width):
    """Cell numbers at least 12 px on screen; 800 px is about the printed A4 column."""
    from transferkit.reporting.plots import plot_confusion_matrix

    fig = plot_confusion_matrix(_records()[0].evaluation, name="x", normalize="colour")
    cells = [t for t in fig.axes[0].texts if t.get_text().isdigit()]
    assert len(cells) == 100
    points = min(t.get_fontsize() for t in cells)
    matrices = [i for i in _probe(handed_in, width)["images"] if i["cm"]]
    assert len(matrices) == 3
    for image in matrices:
        shown_px = points * 110 / 72 * image["shown"] / image["natural"]  # embedded at 110 dpi
        assert shown_px >= 12, (width, shown_px)


def test_print_keeps_blocks_whole_and_opens_the_configuration(handed_in):
    found = _probe(handed_in, 1100)
    rules = " ".join(found["printRules"])
    assert re.search(r"\.run-block[^{]*\{[^}]*break-inside: avoid", rules), rules
    assert re.search(r"figure[^{]*\{[^}]*break-inside: avoid", rules), rules
    assert found["blocks"] and all(b["open"] and b["height"] > 50 for b in found["blocks"])
    text = handed_in.read_text(encoding="utf-8")
    assert text.count('<div class="run-block"><h3>') == 3


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="no pdftotext (poppler-utils)")
def test_the_printed_report_shows_the_configuration_and_whole_reports(handed_in):
    sizes = print_pdf(handed_in)
    assert all(h > w for w, h in sizes)  # portrait pages
    pages = subprocess.run(["pdftotext", "-layout", str(handed_in.with_suffix(".pdf")), "-"],
                           capture_output=True, text=True, check=True).stdout.split("\f")
    assert any('"trainable_layers": 40' in p for p in pages)  # printed open, not as triangles
    for label in ("MobileNetV2, frozen head", "MobileNetV2, fine-tuned", "CNN from scratch"):
        page = next(p for p in pages if re.search(rf"^\s*{re.escape(label)}\s*$", p, re.M))
        assert "weighted avg" in page[page.index(label):], label  # its report on the same page


def test_no_local_path_anywhere(handed_in):
    text = re.sub(r'src="data:[^"]*"', "", handed_in.read_text(encoding="utf-8"))
    for path in (SOURCE, SECRET, "/home/me", "/data/me"):
        assert path not in text and html.escape(path) not in text
    assert "Krizhevsky, A. (2009). Learning Multiple Layers of Features from Tiny Images" in text


def test_the_results_caption_times_the_best_run_as_its_table_row_does(handed_in):
    text = html.unescape(handed_in.read_text(encoding="utf-8"))
    said = re.search(r"The best test accuracy is [\d.]+% \(([^,]+, [^,]+), after ([^)]+) of training\)",
                     text)
    assert said, "the caption names the best run and its training time"
    row = re.search(r"<tr><td>" + re.escape(said[1]) + r"</td>(.*?)</tr>", text)
    assert row and re.findall(r"<td>([^<]*)</td>", row[1])[-1] == said[2]  # the Training time column
