"""--out: a non-empty folder is refused at once unless --overwrite, which clears only a transferkit run."""

import json
import subprocess
import sys

import numpy as np
import pytest

from transferkit.cli import main


@pytest.fixture
def photos(tmp_path):
    """A flat class-per-folder tree of 2 colour classes × 10 tiny PNGs."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, colour in {"red": (220, 30, 30), "blue": (30, 40, 220)}.items():
        folder = tmp_path / "photos" / cls
        folder.mkdir(parents=True)
        for k in range(10):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{k}.png")
    return tmp_path / "photos"


def _old_run(out):
    """A previous `train` output, with a stage the next run would not write."""
    (out / "fine_tuned").mkdir(parents=True)
    (out / "fine_tuned" / "run.json").write_text("{}")
    (out / "metrics.json").write_text(json.dumps({"kept": "fine_tuned"}))
    return out


def test_non_empty_out_is_refused_before_tensorflow_and_decoding(photos, tmp_path):
    out = _old_run(tmp_path / "run")
    code = (
        "import sys, time\n"
        "from transferkit.cli import main\n"
        "import transferkit.data.images as images\n"
        "def no_decoding(*a, **k):\n    raise AssertionError('decoded an image')\n"
        "images.decode_images = no_decoding\n"
        "start = time.perf_counter()\n"
        f"for argv in (['train', {str(photos)!r}, '--out', {str(out)!r}],\n"
        f"             ['quickstart', '--out', {str(out)!r}]):\n"
        "    print('exit', main(argv))\n"
        "print('seconds', time.perf_counter() - start)\n"
        "print('TF LOADED' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'LIGHT')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.count("exit 2") == 2 and "LIGHT" in done.stdout, done.stdout + done.stderr
    assert float(done.stdout.split("seconds")[1].split()[0]) < 2  # under a second when not busy
    errors = done.stderr.strip().splitlines()
    assert errors == [f"transferkit: error: --out {out} is not empty: pass --overwrite to replace "
                      "the run in it, or choose another --out."] * 2
    assert (out / "fine_tuned" / "run.json").exists()  # nothing deleted


@pytest.mark.parametrize("command", [["train", "{photos}"], ["quickstart"]])
def test_overwrite_refuses_a_folder_that_is_not_a_transferkit_output(photos, tmp_path, capsys,
                                                                     command):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("mine")
    argv = [a.format(photos=photos) for a in command] + ["--out", str(notes), "--overwrite"]
    assert main(argv) == 2
    assert "holds no transferkit run" in capsys.readouterr().err
    assert (notes / "thesis.txt").read_text() == "mine"


def test_overwrite_never_clears_a_folder_holding_the_images(photos, capsys):
    (photos.parent / "metrics.json").write_text("{}")  # a transferkit output above the images
    assert main(["train", str(photos), "--out", str(photos.parent), "--overwrite"]) == 2
    assert "--overwrite would delete it" in capsys.readouterr().err
    assert len(list(photos.rglob("*.png"))) == 20


@pytest.mark.backend_neutral
def test_overwrite_replaces_the_previous_run_without_stale_stages(photos, tmp_path):
    out = _old_run(tmp_path / "run")
    assert main(["train", str(photos), "--weights", "none", "--image-size", "32",
                 "--backbone", "mobilenet_v1_025",  # the subject is the folder, not the network
                 "--head-epochs", "1", "--epochs", "0", "--out", str(out), "--overwrite", "-q"]) == 0
    assert not (out / "fine_tuned").exists()  # the old run's stage, not written by this one
    assert json.loads((out / "metrics.json").read_text())["kept"] == "frozen_head"
    assert (out / "model.keras").is_file() and (out / "frozen_head" / "run.json").is_file()


def test_an_empty_or_new_out_needs_no_overwrite(tmp_path):
    from transferkit.cli._outdir import check_out_dir

    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", overwrite=False)
    check_out_dir(tmp_path / "new", overwrite=False)
