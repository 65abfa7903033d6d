"""The benchmark scripts' bookkeeping: partial runs report what they measured."""

import importlib.util
import json
import os
import tarfile

import numpy as np
import pytest
from conftest import CIFAR_ARCHIVE, ROOT


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


def test_budget_table_names_each_rows_input_size():
    budget = _load("budget")
    rows = [{"train_images": 5000, "case": "default", "wall_s": 168.0, "test_accuracy": 0.8354},
            {"train_images": 5000, "case": "budget_1", "fraction": 1.0, "budget_s": 168.0,
             "wall_s": 163.0, "wall_share": 0.97, "test_accuracy": 0.8336,
             "plan": {"planned_epochs": 12, "steps": 945}},  # measured before --image-sizes
            {"train_images": 5000, "case": "budget_1_128px", "fraction": 1.0, "image_size": 128,
             "budget_s": 168.0, "wall_s": 30.0, "too_short": "Give at least 3.1 min (budget=186)."}]
    lines = budget._table(rows, "cpu").splitlines()
    assert {len(line.split("|")) for line in lines if line.startswith("|")} == {10}  # 8 columns
    assert "| 96 px | 168 s | 163 s (0.97) | 0.8336 | 12 epochs, 945 steps | yes: 0.8354 |" in lines[5]
    assert "| 128 px | 168 s | stopped after" in lines[6] and "needs 3.1 min" in lines[6]


def test_budget_views_table_pairs_the_two_ways_by_seed():
    views = _load("budget_views")

    def row(seed, n, acc):
        return {"train_images": 5000, "case": f"s{seed}v{n}", "fraction": 0.5, "budget_s": 84.0,
                "wall_share": 0.98, "test_accuracy": acc, "views": n, "seed": seed, "steps": 100 * n}

    rows = [{"train_images": 5000, "case": "default", "wall_s": 168.0, "test_accuracy": 0.8354},
            row(0, 2, 0.79), row(0, 1, 0.81), row(1, 2, 0.78), row(1, 1, 0.81),
            row(2, 1, 0.70)]  # seed 2's run with both views is missing: left out of the pairs
    lines = views._table(rows, "cpu").splitlines()
    image = next(line for line in lines if "| image |" in line)
    assert "| 3 | 100 |" in image and "0.8100, 0.8100, 0.7000" in image
    assert "+2.50 ± 0.50 points" in image  # seeds 0 and 1: +2 and +3 points
    both = [line for line in lines if "| both |" in line]
    assert "none (10 epochs, 168 s)" in both[0] and "| both | 2 | 200 |" in both[1]


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
    for views, says in ((2, "flip views + shifts"), (1, "shifts of the image alone")):
        recipe = {"phases": None, "frozen_through": "block_5_add", "cached_prefix": "block_5_add",
                  "cached_views": views}
        cached = results.markdown({"fine_tune": {**case, "test_accuracy": 0.89, "epochs": 4,
                                                 "train_img_s": 330.0, "recipe": recipe}})
        assert f"the frozen prefix cached, 96 px, {says})" in cached
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{results.MARK[0]}\nold\n{results.MARK[1]}\noutro\n")
    results._replace_marked(doc, table)
    text = doc.read_text()
    assert "old" not in text and table in text and text.startswith("intro") and "outro" in text


def _own_row(setting, test, kept_val=0.8, head_val=0.8, rc=0):
    row = {"dataset": "d", "setting": setting, "flags": [], "rc": rc, "wall_s": 10.0,
           "user_s": 15.0, "sys_s": 5.0, "sys_share": 0.25, "max_rss_mb": 900.0}
    if rc:
        return {**row, "error": "DataError: no images | here"}
    return {**row, "kept": "fine_tuned", "test_accuracy": test, "kept_val": kept_val,
            "head_test": 0.7, "head_val": head_val, "fine_test": test, "fine_val": kept_val,
            "image_size": [96, 96]}


def test_own_images_verdict_and_table():
    own = _load("own_images")
    best = _own_row("size128", 0.900)
    close = own.verdict([_own_row("default", 0.895), best, _own_row("frozen", 0.8)])
    assert close["best"] == "size128" and close["pass"] is True
    assert close["default_minus_best"] == -0.5
    far = own.verdict([_own_row("default", 0.885), best])
    assert far["pass"] is False and far["default_minus_best"] == -1.5
    assert own.verdict([_own_row("default", 0.89), best])["pass"] is True  # exactly 1 point
    worse_val = own.verdict([_own_row("default", 0.9, kept_val=0.7, head_val=0.75), best])
    assert worse_val["pass"] is False and "validation" in worse_val["why"]
    rows = [_own_row("default", 0.9), _own_row("size224", None, rc=1)]
    verdicts = {"d": own.verdict(rows)}
    assert verdicts["d"]["best"] == "default" and verdicts["d"]["pass"] is True
    machine = own.machine_line("2026-11-30")
    assert f"{os.cpu_count()} CPUs" in machine and machine.endswith("; 2026-11-30")
    table = own.markdown(rows, verdicts, machine)
    assert "FAILED rc=1" in table and "| d | default | +0.0 | pass" in table
    assert table.count("\n| d | size224 |") == 1 and "no images / here" in table


def test_own_images_cifar_builder(tmp_path):
    from PIL import Image

    own = _load("own_images")
    src = tmp_path / "src"
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            folder = src / "cifar10" / split / label
            folder.mkdir(parents=True)
            for i in (3, 0, 2, 1):
                Image.new("RGB", (4, 4), (i * 40, 0, 0)).save(folder / f"{i:04d}.jpg")
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar10", arcname="cifar10")
    out = own.build_cifar(archive, tmp_path / "cifar2", n_train=2, n_test=3)
    for label in ("cat", "dog"):
        assert sorted(p.name for p in (out / "train" / label).iterdir()) == ["0000.jpg", "0001.jpg"]
        assert len(list((out / "test" / label).iterdir())) == 3
    assert sorted(p.name for p in out.iterdir()) == ["test", "train"]  # nothing but images
    stamp = (out / "train" / "cat" / "0000.jpg").stat().st_mtime_ns
    assert own.build_cifar(archive, tmp_path / "cifar2", n_train=2, n_test=3) == out
    assert (out / "train" / "cat" / "0000.jpg").stat().st_mtime_ns == stamp  # not rebuilt


def test_imbalance_table_has_a_row_per_run_and_the_means():
    imbalance = _load("imbalance")
    row = {"minority_recall_mean": 0.1, "majority_recall_mean": 0.8, "balanced_accuracy": 0.6,
           "accuracy": 0.6, "accuracy_train_mix": 0.75, "wall_s": 9.0, "cpu_s": 3.0}
    rows = [{**row, "seed": s, "class_weight": w, "minority_recall": {"cat": 0.1 + s / 10}}
            for s in (0, 1) for w in imbalance.WEIGHTINGS]
    lines = imbalance.table(rows, ["cat"]).splitlines()
    assert len(lines) == 2 + 4 + 2 and "| cat recall |" in lines[0]
    assert lines[-2].startswith("| mean | none | 0.150 | 0.100 | 0.800 | 0.600 | 0.600 | 0.750 |")
    assert lines[-1].startswith("| mean | balanced |")


def test_tta_benchmark_compares_the_same_images_and_averages_seeds():
    from transferkit.runs.evaluation import evaluate_predictions

    tta = _load("tta")
    y = [0, 0, 1, 1]
    plain = evaluate_predictions(y, [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.6, 0.4]], "ab")
    mirrored = evaluate_predictions(y, [[0.8, 0.2], [0.6, 0.4], [0.4, 0.6], [0.3, 0.7]], "ab",
                                    tta=True)
    row = tta.compare(plain, mirrored)
    assert (row["accuracy"], row["accuracy_tta"], row["gain_points"]) == (0.5, 1.0, 50.0)
    assert (row["fixed"], row["broken"]) == (2, 0)
    worse = {**row, "accuracy_tta": 0.25, "gain_points": -25.0, "fixed": 0, "broken": 1}
    mean = tta.summarise([{"test": row}, {"test": worse}], "test")
    assert mean["gain_points"] == 12.5 and mean["gains"] == [50.0, -25.0]
    assert (mean["fixed"], mean["broken"], mean["rows"]) == (2, 1, 2)


def test_threads_schedule_interleaves_and_summary_compares_with_the_default_per_repetition():
    threads = _load("threads")
    settings = threads.parse_settings("0/0,1/1,2/1")
    order = threads.schedule(["plain_fit", "fine_tune"], settings, 2)
    assert len(order) == 12 and order[0][1:] == ("plain_fit", (0, 0))
    assert order[6][1:] == ("fine_tune", (0, 0))  # rotated: the second repetition starts later
    assert {o[1:] for o in order[:6]} == {o[1:] for o in order[6:]}  # each pair once per repetition
    rows = [{"case": "plain_fit", "intra": i, "inter": j, "rep": rep, "img_s": img_s, "cpu_s": 1.0}
            for rep, (i, j, img_s) in enumerate([(0, 0, 100.0), (1, 1, 50.0), (0, 0, 80.0),
                                                 (1, 1, 60.0)])]
    for row in rows:
        row["rep"] //= 2
    summary = {(s["intra"], s["inter"]): s for s in threads.summarise(rows)}
    assert summary[(0, 0)]["vs_default"] == 1.0
    assert summary[(1, 1)]["vs_default_all"] == [0.5, 0.75] and summary[(1, 1)]["img_s"] == 55.0
    table = threads.markdown({"summary": list(summary.values()), "cpu": "c", "load": 1, "load_end": 2})
    assert "| plain_fit | 0/0 (default) | 2 |" in table and "| 0.625 |" in table


def test_threads_refuses_settings_without_the_default_first():
    threads = _load("threads")
    try:
        threads.parse_settings("1/1,0/0")
    except SystemExit as e:
        assert "0/0" in str(e)
    else:
        raise AssertionError("no error")


def test_batch_streams_before_is_the_reference_and_pairs_rotate():
    from transferkit.data.augment import AugmentedBatches
    from transferkit.training.cached_prefix import ShiftedViews

    bench = _load("batch_streams")
    rng = np.random.default_rng(0)
    views = [rng.normal(size=(20, 5, 5, 3)).astype(np.float16) for _ in range(2)]
    images = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(20)
    for getitem in (bench.before_shifted, bench.ring_shifted):
        ours, theirs = (ShiftedViews(views, labels, 8, seed=1) for _ in range(2))
        for i in range(3):
            np.testing.assert_array_equal(getitem(theirs, i)[0], ours[i][0])
    ours, theirs = (AugmentedBatches(images, labels, 8, seed=1) for _ in range(2))
    np.testing.assert_array_equal(bench.before_augmented(theirs, 0)[0], ours[0][0])
    calls = []
    times = bench.pairs_of({"before": 2.0, "after": 1.0}, 2, lambda v: calls.append(v) or v)
    assert calls == [2.0, 1.0, 1.0, 2.0] and bench._row("c", "s", times)["ratio_before_over"] == {"after": 2.0}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["threads", "batch_streams"])
def test_quick_run_writes_its_table(name, tmp_path):
    out = tmp_path / f"{name}.json"
    # threads: one case (two fresh processes, not four) keeps this check under a minute.
    only = ["--cases", "plain_fit"] if name == "threads" else []
    assert _load(name).main(["--quick", *only, "--cifar", str(CIFAR_ARCHIVE), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["quick"]
