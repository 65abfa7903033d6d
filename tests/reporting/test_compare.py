import pytest

from transferkit.errors import ConfigurationError
from transferkit.reporting.compare import COLUMNS, compare_runs
from transferkit.runs.evaluation import evaluate_predictions
from transferkit.runs.record import Run


def _run(name, acc_right, val, seconds, trainable):
    y = [0, 1, 0, 1]
    probs = [[0.9, 0.1] if (i < acc_right) == (t == 0) else [0.1, 0.9] for i, t in enumerate(y)]
    return Run(name=name, config={"params": {"trainable": trainable, "total": 1000}},
               history={"accuracy": [0.5, 0.6], "val_accuracy": val, "loss": [1, 0.8], "val_loss": [1, 0.9]},
               evaluation=evaluate_predictions(y, probs, ["a", "b"]), timings={"total": seconds})


def test_table_ranking_and_markdown(tmp_path):
    runs = [_run("slow_good", 4, [0.5, 0.8], 30.0, 500), _run("fast_bad", 1, [0.7, 0.6], 5.0, 100)]
    cmp = compare_runs(runs)
    assert [r["run"] for r in cmp.rows] == ["slow_good", "fast_bad"]
    assert set(cmp.rows[0]) == set(COLUMNS)
    assert cmp.best("test_accuracy")["run"] == "slow_good"
    assert cmp.best("train_time_s")["run"] == "fast_bad"
    assert cmp.best("trainable_params")["run"] == "fast_bad"
    assert cmp.rows[1]["best_val_accuracy"] == 0.7 and cmp.rows[1]["best_epoch"] == 1
    # fast_bad: one of two a's right (recall 0.5), no b (0.0).
    assert cmp.rows[1]["test_balanced_accuracy"] == pytest.approx(0.25)
    assert cmp.best("test_balanced_accuracy")["run"] == "slow_good"
    md = cmp.to_markdown().splitlines()
    assert md[0].startswith("| run | test_accuracy") and len(md) == 4
    assert cmp.to_dict()["columns"] == list(COLUMNS)
    fig = cmp.plot(path=tmp_path / "c.png")
    assert len(fig.axes) == 2 and (tmp_path / "c.png").stat().st_size > 0


def test_loaded_runs_compare(tmp_path):
    _run("a", 3, [0.5, 0.6], 1.0, 10).save(tmp_path / "a")
    loaded = Run.load(tmp_path / "a")
    assert compare_runs([loaded]).rows[0]["test_accuracy"] == 0.75


def test_errors():
    with pytest.raises(ConfigurationError, match="at least one run"):
        compare_runs([])
    with pytest.raises(ConfigurationError, match="Run objects"):
        compare_runs(["run"])
    with pytest.raises(ConfigurationError, match="Cannot rank"):
        compare_runs([_run("a", 3, [0.5], 1.0, 1)]).best("vibes")
