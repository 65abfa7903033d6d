"""examples/transfer_learning.ipynb runs top to bottom (quick mode, real CIFAR-10 copy)."""

import os

import pytest
from conftest import CIFAR_ARCHIVE, ROOT, requires_cifar, requires_imagenet

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = ROOT / "examples" / "transfer_learning.ipynb"


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
    outputs = "\n".join(
        o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
    )
    assert "reloaded model gives the same predictions: True" in outputs
    assert "| mobilenet_v2_finetuned |" in outputs
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 5  # learning curves, confusion matrix, errors, comparison, feature maps
    assert (tmp_path / "notebook-runs" / "report.html").exists()


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    for section in ("Data loading", "Preprocessing", "Model definition", "Training",
                    "Prediction and evaluation", "Transfer vs", "Fine-tuning"):
        assert any(section in h for h in headings), section
    assert os.path.getsize(NOTEBOOK) < 50_000
