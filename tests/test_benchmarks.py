"""The benchmark scripts' bookkeeping: partial runs report what they measured."""

import importlib.util

from conftest import ROOT


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_partial_run_writes_the_rows_it_measured():
    run = _load("run")
    cases = {"transferkit_head": {"wall_s": 80.0, "median_epoch_s": 1.0, "test_accuracy": 0.71,
                                  "peak_rss_mb": 2000.0},
             "extraction": {"transferkit_img_s": 880.0, "bare_predict_img_s": 760.0, "slowdown": 0.86}}
    ratios = run._ratios(cases)
    assert ratios == {"extraction_slowdown_vs_bare": 0.86}
    table = run._markdown({"mode": "full", "machine": "m", "data": {"train": 1, "test": 1},
                           "epochs": 10, "cases": cases, "ratios": ratios, "total_s": 1.0})
    assert "3. feature extraction" in table and "plain Keras" in table
    assert "1. head training" not in table  # needs plain_head, which did not run


def test_results_table_and_doc_markers(tmp_path):
    results = _load("results")
    case = {"measured": "2026-11-25 21:00", "machine": "x86_64, 2 CPU cores, no GPU",
            "data": "the real CIFAR-10 copy", "wall_s": 600.0}
    table = results.markdown({
        "fine_tune": {**case, "test_accuracy": 0.9, "epochs": 12, "train_img_s": 900.0,
                      "recipe": {"phases": [[64, 8], [96, 12]], "frozen_through": "block_5_add"}},
        "plain_fit": {**case, "train_img_s": 300.0},
    })
    assert "| 0.9000 | 10.0 min | 12 epochs |" in table and "(3.00x)" in table
    assert "64 px to epoch 8, 96 px to epoch 12" in table
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{results.MARK[0]}\nold\n{results.MARK[1]}\noutro\n")
    results._replace_marked(doc, table)
    text = doc.read_text()
    assert "old" not in text and table in text and text.startswith("intro") and "outro" in text
