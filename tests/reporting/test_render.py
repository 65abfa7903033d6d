"""The report and the deck as a person sees them: rendered and printed by headless Chromium.

Chromium runs from its command line (``--dump-dom`` after an injected check
script, ``--print-to-pdf``); no Python driver is needed. Debian's ``chromium``
package provides it (``.ci/run`` installs it); without a browser these tests skip.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
pytestmark = [pytest.mark.skipif(
    BROWSER is None, reason="no Chromium on PATH (Debian: apt-get install chromium; .ci/run does)"),
    pytest.mark.xdist_group("render")]  # one worker builds the module's runs (pytest -n)

# Runs after load: lays every slide out as printed, then measures.
CHECK_JS = """<script>addEventListener('load',function(){setTimeout(function(){
var d=document.documentElement;d.classList.add('static');
var slides=[].slice.call(document.querySelectorAll('.slide'));
var boxes=slides.length?slides:[document.body],out={count:slides.length,overflow:[],broken:[],external:[],
text:slides.map(function(s){return s.innerText;})};
boxes.forEach(function(box,k){var r=box.getBoundingClientRect(),right=slides.length?r.right:d.clientWidth,
bottom=slides.length?r.bottom:Infinity,left=slides.length?r.left:0;
box.querySelectorAll('*').forEach(function(e){var b=e.getBoundingClientRect();
if(!b.width&&!b.height)return;
if(b.right>right+1||b.left<left-1||b.bottom>bottom+1)out.overflow.push([k+1,e.tagName,e.className,
Math.round(b.right-right),Math.round(b.bottom-bottom)]);});
var body=box.querySelector('.body');if(!body)return;var end=body.getBoundingClientRect().bottom;
body.querySelectorAll('*').forEach(function(e){var b=e.getBoundingClientRect();
if((b.width||b.height)&&b.bottom>end+1)out.overflow.push([k+1,e.tagName,e.className,'below the body',
Math.round(b.bottom-end)]);});});
if(!slides.length&&d.scrollWidth>d.clientWidth+1)out.overflow.push(['page',d.scrollWidth,d.clientWidth]);
[].forEach.call(document.images,function(i){if(!(i.complete&&i.naturalWidth>0))out.broken.push(i.alt);
if(!i.alt||i.alt==='figure')out.broken.push('no alt text');});
out.small=[];out.figtext=[];out.alts=[];
slides.forEach(function(s,k){s.querySelectorAll('*').forEach(function(e){
var own=[].some.call(e.childNodes,function(n){return n.nodeType===3&&n.textContent.trim();});
var px=parseFloat(getComputedStyle(e).fontSize);
if(own&&px<18)out.small.push([k+1,e.tagName,e.className,px,e.textContent.trim().slice(0,40)]);});
s.querySelectorAll('img').forEach(function(i){out.alts.push([k+1,i.alt]);
var m=parseFloat(i.dataset.minTextPx);if(!m)return;
var shown=m*i.clientWidth/i.naturalWidth;if(shown<12)out.figtext.push([k+1,i.alt.slice(0,60),Math.round(shown*10)/10]);});});
performance.getEntriesByType('resource').forEach(function(e){if(!/^(data|file|blob):/.test(e.name))
out.external.push(e.name);});
var p=document.createElement('pre');p.id='tk-check';p.textContent=JSON.stringify(out);
document.body.appendChild(p);},50);});</script>"""


def _chromium(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", "--disable-dev-shm-usage", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def layout_check(page: Path, width: int = 1280) -> dict:
    """Render ``page`` (with the check script) and return what the script measured."""
    probe = page.with_name(page.stem + ".check.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", CHECK_JS + "</body>"),
                     encoding="utf-8")
    result = _chromium(f"--window-size={width},900", "--virtual-time-budget=10000",
                       "--dump-dom", probe.resolve().as_uri())
    found = re.search(r'<pre id="tk-check">(.*?)</pre>', result.stdout, re.S)
    assert found, f"Chromium printed no check result: {result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def print_pdf(page: Path) -> list[tuple[float, float]]:
    """Print ``page`` to PDF with Chromium; the (width, height) in points of each page."""
    pdf = page.with_suffix(".pdf")
    result = _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.resolve().as_uri())
    assert pdf.is_file(), result.stderr[-2000:]
    data = pdf.read_bytes()
    pages = re.findall(rb"/Type\s*/Page\b(?!s)", data)
    boxes = [tuple(float(v) for v in m.split()[2:4])
             for m in re.findall(rb"/MediaBox\s*\[\s*([-\d.\s]+)\]", data)]
    assert len(boxes) >= len(pages)
    return boxes[: len(pages)]


@pytest.fixture(scope="session")
def pages(tmp_path_factory):
    from transferkit.data.synthetic import make_synthetic_dataset
    from transferkit.models.builders import build_baseline_cnn, build_transfer_model
    from transferkit.reporting.report import write_report
    from transferkit.training.recipes import fine_tune
    from transferkit.training.train import train

    data = make_synthetic_dataset(3, per_class=24, image_size=32, test_per_class=6, seed=2)
    model = build_transfer_model("mobilenet_v2", 3, image_size=32, weights=None)
    runs = [train(model, data, epochs=2, verbose=0, name="mobilenet_v2_frozen"),
            fine_tune(model, data, epochs=1, unfreeze=20, verbose=0, name="mobilenet_v2_finetuned"),
            train(build_baseline_cnn(3, filters=(8, 16)), data, epochs=3, verbose=0,
                  name="baseline_cnn_scratch")]
    for run in runs[:2]:  # stand in for ImageNet runs: no weights offline
        run.config["backbone"].update(weights="imagenet", pretrained=True)
    root = tmp_path_factory.mktemp("render")
    for run in runs:  # records for tests that compare the slides with the runs' numbers
        run.save(root / "runs" / run.name, save_model=False)
    options = {"data": data, "title": "Transfer learning on a test set: a backbone study",
               "quick": True, "skipped": {"resnet50": "ImageNet weights not cached, no network"}}
    return (write_report(runs, root / "slides.html", slides=True, **options),
            write_report(runs, root / "report.html", **options))


def test_deck_prints_ten_landscape_pages(pages):
    sizes = print_pdf(pages[0])
    assert len(sizes) == 10
    assert all(w > h and abs(w / h - 16 / 9) < 0.01 for w, h in sizes)


def test_deck_fits_every_slide_and_loads_everything(pages):
    found = layout_check(pages[0])
    assert found["count"] == 10
    assert found["overflow"] == [], found["overflow"][:10]
    assert found["broken"] == [] and found["external"] == []


def test_report_fits_the_page_and_loads_everything(pages):
    for width in (1280, 800):
        found = layout_check(pages[1], width=width)
        assert found["overflow"] == [], (width, found["overflow"][:10])
        assert found["broken"] == [] and found["external"] == []


def test_no_external_urls_in_the_files(pages):
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
        assert "@import" not in text and "url(http" not in text


def test_the_checks_see_a_clipped_slide_and_a_broken_image(pages, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(pages[0].read_text(encoding="utf-8").replace(
        '<div class="body">', '<div class="body"><div style="width:2000px;height:10px"></div>'
        '<img alt="missing" src="missing.png">', 1), encoding="utf-8")
    found = layout_check(bad)
    assert found["overflow"] and found["overflow"][0][0] == 1
    assert "missing" in found["broken"]


SNAKE_CASE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
"""An identifier (``mobilenet_v2_finetuned``, ``class_0``): code, not words for an audience."""
TYPED = re.compile(r"\S*/\S*|\S+\.(?:html|keras|h5|png|json|csv|txt)\b")
"""Paths and file names a person must type as they are: exempt."""


def test_no_slide_shows_an_identifier(pages):
    found = layout_check(pages[0])
    assert len(found["text"]) == 10
    for k, text in enumerate(found["text"], start=1):
        assert not SNAKE_CASE.findall(TYPED.sub(" ", text)), (k, SNAKE_CASE.findall(text), text[:500])
    assert "MobileNetV2, fine-tuned" in found["text"][5]  # the results slide names runs as words
    assert found["text"][0].startswith("Transfer learning on a test set")


def test_the_identifier_check_sees_a_run_name(pages, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(pages[0].read_text(encoding="utf-8").replace(
        '<div class="body">', '<div class="body"><p>mobilenet_v2_finetuned</p>', 1), encoding="utf-8")
    texts = layout_check(bad)["text"]
    assert SNAKE_CASE.findall(TYPED.sub(" ", texts[0])) == ["mobilenet_v2_finetuned"]


@pytest.fixture(scope="session")
def study_runs():
    """A backbone study's hand-made records: 4 backbones frozen then fine-tuned, a CNN, 2 skipped."""
    import numpy as np

    from transferkit.runs.evaluation import evaluate_predictions
    from transferkit.runs.record import Run

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    rng = np.random.default_rng(0)
    cifar = {"source": "/data/cifar-10-batches-py", "class_names": classes,
             "sizes": {"train": 2700, "val": 300, "test": 1000}, "image_shape": [32, 32, 3],
             "provenance": {"loader": "cifar10", "limit_per_class": 300, "seed": 0,
                            "validation_split": 0.1}}

    def run(name, backbone, frozen, accuracy, seconds, pretrained=True):
        y = np.repeat(np.arange(10), 100)
        pred = np.where(rng.random(1000) < accuracy, y, (y + rng.integers(1, 3, 1000)) % 10)
        curve = list(np.linspace(accuracy - 0.2, accuracy, 3))
        config = {"model": backbone, "data": cifar, "lr": 1e-3,
                  "backbone": {"name": backbone, "frozen": frozen, "pretrained": pretrained,
                               "layers": 150, "trainable_layers": 0 if frozen else 40}}
        return Run(name, config, {"accuracy": curve, "val_accuracy": curve},
                   evaluate_predictions(y, np.eye(10)[pred], classes), {"total": seconds})

    runs = []
    for k, backbone in enumerate(("mobilenet_v2", "mobilenet_v1_025", "efficientnet_b0", "resnet50")):
        runs += [run(f"{backbone}_frozen", backbone, True, 0.7 + 0.03 * k, 60 + 40 * k),
                 run(f"{backbone}_finetuned", backbone, False, 0.74 - 0.02 * k, 200 + 90 * k)]
    runs.append(run("baseline_cnn_scratch", "features", False, 0.55, 150, pretrained=False))
    skipped = {"vgg16": "ImageNet weights not cached, no network",
               "mobilenet_v3_small": "ImageNet weights for mobilenet_v3_small at 96px are not in "
               "Keras' cache. Put the file weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5 "
               "into /home/me/.keras/models/, or pass --weights none."}
    return runs, skipped


@pytest.fixture(scope="session")
def study(study_runs, tmp_path_factory):
    """The study's deck from its records alone."""
    from transferkit.reporting.report import write_report

    runs, skipped = study_runs
    return write_report(runs, tmp_path_factory.mktemp("study") / "slides.html", slides=True,
                        skipped=skipped)


@pytest.fixture(scope="session")
def study_with_data(study_runs, tmp_path_factory):
    """The same study's deck given images: 10 classes, a test split in the records' order."""
    import numpy as np

    from transferkit.data.synthetic import make_synthetic_dataset
    from transferkit.reporting.report import write_report

    data = make_synthetic_dataset(10, per_class=12, image_size=32, test_per_class=100, seed=1)
    data.class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                        "ship", "truck"]
    assert np.array_equal(data.y_test, np.repeat(np.arange(10), 100))  # the records' order
    return write_report(study_runs[0], tmp_path_factory.mktemp("study-data") / "slides.html",
                        slides=True, data=data)


def test_a_backbone_study_fits_every_slide_and_tells_its_story(study):
    found = layout_check(study)
    assert found["count"] == 10 and found["overflow"] == [], found["overflow"][:10]
    for k, text in enumerate(found["text"], start=1):
        assert not SNAKE_CASE.findall(TYPED.sub(" ", text)), (k, SNAKE_CASE.findall(text))
    assert found["text"][0].startswith("CIFAR-10: transfer learning vs training from scratch")
    assert "did not help" in found["text"][6] and "the frozen head is the result to use" in found["text"][6]
    assert ("Fine-tuning did not help EfficientNetB0 (-8.1), ResNet50 (-9.1) points over the "
            "frozen head.") in found["text"][6]
    assert "80 Million Tiny Images" in found["text"][8] and "±2.5 points" in found["text"][8]
    assert "5 more runs in the report" in found["text"][5]
    conclusion = found["text"][9]
    assert ("Fine-tuning helped MobileNetV2 (+7.9); did not help MobileNet v1 0.25 (-2.9), "
            "EfficientNetB0 (-8.1), ResNet50 (-9.1) points over the frozen head.") in conclusion
    assert "Most accuracy per minute of training:" in conclusion and " → " in conclusion
    assert "Not compared: VGG16; MobileNetV3-Small (see slide 4)." in conclusion
    assert "ImageNet weights for MobileNetV3-Small at 96px" in found["text"][3]  # the reason, in words


def test_deck_text_and_figure_text_are_readable(pages, study, study_with_data):
    """No slide text under 18 px; no figure text under 12 px as shown on its slide."""
    for page in (pages[0], study, study_with_data):
        found = layout_check(page)
        assert found["overflow"] == [], (page, found["overflow"][:10])
        assert found["small"] == [], (page, found["small"][:10])
        assert found["figtext"] == [], (page, found["figtext"])


def test_a_study_with_images_shows_ten_classes_and_its_top_mistake(study_with_data):
    found = layout_check(study_with_data)
    alts = dict(found["alts"])
    assert alts[2].startswith("Sample images: 2 training images of each class, airplane, automobile")
    assert alts[7] == "3 test images of airplane that ResNet50, frozen head took for automobile"
    assert "Most frequent mistakes (ResNet50, frozen head): airplane → automobile" in found["text"][6]


def test_the_readability_checks_see_small_text(pages, tmp_path):
    bad = tmp_path / "bad.html"
    text = pages[0].read_text(encoding="utf-8").replace(
        '<div class="body">', '<div class="body"><p style="font-size:14px">tiny words</p>', 1)
    # A figure shrunk to 60 px wide: its smallest text drops far below 12 px.
    text = text.replace("data-min-text-px=", 'style="width:60px" data-min-text-px=', 1)
    bad.write_text(text, encoding="utf-8")
    found = layout_check(bad)
    assert found["small"][0][:2] == [1, "P"] and found["small"][0][3] == 14
    assert found["figtext"], "a shrunken figure went unnoticed"


def test_deck_slides_show_what_the_issue_asks(pages):
    found = layout_check(pages[0])
    text, alts = found["text"], found["alts"]
    assert any(k == 2 and a.startswith("Sample images: 2 training images of each class") for k, a in alts)
    assert any(k == 8 and "Grad-CAM" in a for k, a in alts)
    assert any(k == 7 and "took for" in a for k, a in alts)  # the top mistake's test images
    assert "Input image" in text[2] and "New head: trains" in text[2]
    assert re.search(r"MobileNetV2, fine-tuned: \d+\.\d% of parameters train \([\d.]+ [Mk] of", text[2])
    assert "MobileNetV2, frozen head: " in text[2] and "only the new head" in text[2]
    steps = pages[0].read_text(encoding="utf-8").split('id="slide-5"')[1].split("</section>")[0]
    assert 4 <= steps.count("<li>") <= 6 and '<ol class="steps">' in steps
    assert "Keep BatchNorm layers in inference mode" in text[4] and "Parameters trained" in text[4]
    assert "Training time*" in text[5] and "includes the frozen head it continues" in text[5]
    assert "Fine-tuning MobileNetV2" in text[6]
    assert all(word in text[8] for word in ("Benefits", "Limitations", "Pitfalls", "Ethics"))


def test_the_chart_and_the_table_tell_the_same_times(pages):
    """The results table's times are the cumulative training times the chart's stars sit at."""
    from transferkit.reporting.naming import continuations, display_names
    from transferkit.reporting.timing import cumulative_seconds

    text = layout_check(pages[0])["text"][5]
    runs = _runs_of(pages)
    cont, names = continuations(runs), display_names(runs)
    for run in runs:
        shown = f"{cumulative_seconds(run, cont):.0f} s"
        assert re.search(rf"{re.escape(names[run.name])}\s+\S+%\s+\d+\s+{shown}", text), (shown, text)


def _runs_of(pages):
    from transferkit.runs.record import Run

    return [Run.load(pages[0].parent / "runs" / n, load_model=False)
            for n in ("mobilenet_v2_frozen", "mobilenet_v2_finetuned", "baseline_cnn_scratch")]
