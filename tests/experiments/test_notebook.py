"""examples/transfer_learning.ipynb: it runs top to bottom (quick mode, real CIFAR-10 copy),
and it is committed with the outputs of a real small-budget run."""

import os
import re

import pytest
from conftest import CIFAR_ARCHIVE, ROOT, requires_cifar, requires_imagenet

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = ROOT / "examples" / "transfer_learning.ipynb"
MAX_BYTES = 2_000_000
"""The committed notebook, figures included, stays under this size."""
LOCAL_PATHS = re.compile(r"/work/|/tmp/|/home/|/Users/|\b[A-Z]:\\")


def _texts(nb) -> list[str]:
    """Every output's text: streams, plain-text and HTML results, and errors."""
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            texts += [out.get("text", ""), data.get("text/plain", ""), data.get("text/html", ""),
                      "\n".join(out.get("traceback", []))]
    return texts


def _png_count(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
@requires_cifar
@requires_imagenet
@pytest.mark.realdata
def test_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("TRANSFERKIT_DATA", str(CIFAR_ARCHIVE))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any failure
    outputs = "\n".join(_texts(nb))
    assert "quick=True" in outputs
    assert "reloaded model gives the same predictions: True" in outputs
    assert "| mobilenet_v2_finetuned |" in outputs
    # Section 7's text: MobileNetV2 fine-tunes after block_5_add on the cached prefix,
    # not with progressive resizing.
    assert "the frozen prefix (through block_5_add)" in outputs
    assert "progressive resizing, epochs" not in outputs
    assert _png_count(nb) >= 5  # learning curves, confusion matrix, errors, comparison, maps
    assert (tmp_path / "notebook-runs" / "report.html").exists()


def test_notebook_is_committed_with_the_outputs_of_a_real_run():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    for section in ("Data loading", "Preprocessing", "Model definition", "Training",
                    "Prediction and evaluation", "Transfer vs", "Fine-tuning"):
        assert any(section in h for h in headings), section
    code = [c for c in nb.cells if c.cell_type == "code"]
    # Run top to bottom in one kernel: every code cell ran, in order, and printed something.
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert all(c.outputs for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    outputs = "\n".join(_texts(nb))
    settings = re.search(r"quick=(\w+), per class=(\d+), epochs=(\d+), fine-tune epochs=(\d+)",
                         outputs)
    assert settings and settings[1] == "False", "the committed outputs come from a quick run"
    # The top cell's account of the run names the settings the run printed.
    assert f"{int(settings[2]):,} images per class" in nb.cells[0].source
    rows = re.findall(r"^\| (\w+) \| (0\.\d{4}) \|", outputs, flags=re.MULTILINE)
    assert {"mobilenet_v2_frozen", "mobilenet_v2_finetuned",
            "baseline_cnn_scratch"} <= {name for name, _ in rows}
    assert "reloaded model gives the same predictions: True" in outputs
    assert _png_count(nb) >= 5
    assert not LOCAL_PATHS.search(outputs), LOCAL_PATHS.search(outputs)
    assert os.path.getsize(NOTEBOOK) < MAX_BYTES
