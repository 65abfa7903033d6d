"""Regenerate the report and deck screenshots in docs/_static/screenshots/.

Photographs a real experiment's deck and report with headless Chromium, e.g.
after ``transferkit run backbones --out runs/backbones`` (a backbone study) and
``transferkit train photos/ --out runs/own`` (a run on your own photos)::

    .venv/bin/python docs/screenshots.py runs/backbones
    .venv/bin/python docs/screenshots.py runs/own own- 2,3,7,9

The optional second and third arguments are a file-name prefix and the slides
to photograph (default: slides 1, 2, 3, 5, 6, 7, 8, 9 and the report).

Without a folder it trains three tiny runs on generated images (about 20 s on
a CPU) and photographs their report and deck instead (layout only: the
figures are not results).

Needs ``chromium`` on PATH (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "_static" / "screenshots"
SLIDES_SHOWN = (1, 2, 3, 5, 6, 7, 8, 9)


def _shoot(browser: str, url: str, path: Path, size: str) -> None:
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={size}", "--virtual-time-budget=5000",
                    f"--screenshot={path}", url], check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if browser is None:
        print("screenshots.py: no Chromium on PATH", file=sys.stderr)
        return 1
    if argv:
        folder = Path(argv[0]).resolve()
        deck, report = folder / "slides.html", folder / "report.html"
        if not (deck.exists() and report.exists()):
            print(f"screenshots.py: {folder} holds no slides.html and report.html", file=sys.stderr)
            return 2
        slides = tuple(map(int, argv[2].split(","))) if len(argv) > 2 else SLIDES_SHOWN
        _shoot_all(browser, deck, report, prefix=argv[1] if len(argv) > 1 else "", slides=slides)
        return 0
    import keras

    from transferkit.data.synthetic import make_synthetic_dataset
    from transferkit.models.builders import build_baseline_cnn, build_transfer_model
    from transferkit.reporting.report import write_report
    from transferkit.training.recipes import fine_tune
    from transferkit.training.train import train

    keras.utils.set_random_seed(0)
    data = make_synthetic_dataset(3, per_class=40, image_size=32, test_per_class=10, seed=2,
                                  class_names=["circle", "square", "stripes"])
    model = build_transfer_model("mobilenet_v2", 3, image_size=32, weights=None)
    runs = [train(model, data, epochs=3, verbose=0, name="mobilenet_v2_frozen"),
            fine_tune(model, data, epochs=2, unfreeze=20, verbose=0, name="mobilenet_v2_finetuned"),
            train(build_baseline_cnn(3, filters=(8, 16)), data, epochs=5, verbose=0,
                  name="baseline_cnn_scratch")]
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        options = {"data": data, "title": "Transfer learning: a backbone study (example)",
                   "quick": True, "skipped": {"resnet50": "ImageNet weights not cached, no network"}}
        deck = write_report(runs, Path(tmp) / "slides.html", slides=True, **options)
        report = write_report(runs, Path(tmp) / "report.html", **options)
        _shoot_all(browser, deck, report)
    return 0


def _shoot_all(browser: str, deck: Path, report: Path, *, prefix: str = "",
               slides: tuple[int, ...] = SLIDES_SHOWN) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for n in slides:
        _shoot(browser, f"{deck.as_uri()}#{n}", OUT / f"{prefix}slide-{n:02d}.png", "1280,720")
    _shoot(browser, report.as_uri(), OUT / f"{prefix}report.png", "1200,1600")
    print(f"Wrote {len(slides) + 1} screenshots to {OUT}")


if __name__ == "__main__":
    sys.exit(main())
