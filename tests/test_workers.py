"""TF_CONFIG checks, the global batch check and where each worker writes (no real job here)."""

import json

import pytest

from transferkit import _workers
from transferkit._workers import Role, check_global_batch, read_tf_config, writable_run_dir
from transferkit.errors import ConfigurationError

CLUSTER = {"worker": ["127.0.0.1:2000", "127.0.0.1:2001"]}


def _env(config) -> dict:
    return {"TF_CONFIG": config if isinstance(config, str) else json.dumps(config)}


def test_tf_config_gives_this_worker_its_role():
    assert read_tf_config({}) is None and read_tf_config({"TF_CONFIG": "  "}) is None
    assert read_tf_config(_env({"cluster": CLUSTER, "task": {"type": "worker", "index": 0}})) \
        == Role(workers=2, index=0, is_chief=True)
    assert read_tf_config(_env({"cluster": CLUSTER, "task": {"type": "worker", "index": 1}})) \
        == Role(workers=2, index=1, is_chief=False)
    with_chief = {"chief": ["h:1"], **CLUSTER}  # a chief task: worker 0 is not the chief then
    worker0 = read_tf_config(_env({"cluster": with_chief, "task": {"type": "worker", "index": 0}}))
    assert worker0.workers == 3 and not worker0.is_chief
    assert read_tf_config(_env({"cluster": with_chief, "task": {"type": "chief", "index": 0}})) \
        .is_chief


@pytest.mark.parametrize("config, message", [
    ('{"cluster": ', "is not valid JSON"),
    ({"task": {"type": "worker", "index": 0}}, 'needs a "cluster"'),
    ({"cluster": CLUSTER}, 'needs a "task"'),
    ({"cluster": CLUSTER, "task": {"type": "worker"}}, 'needs a "task"'),
    ({"cluster": {"worker": ["127.0.0.1:2000", "127.0.0.1:2000"]},
      "task": {"type": "worker", "index": 0}}, "lists 127.0.0.1:2000 twice"),
    ({"cluster": {"chief": ["h:1"], "worker": ["h:1"]}, "task": {"type": "chief", "index": 0}},
     r"twice \(chief 0 and worker 0\)"),
    ({"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}, "index 2 is out of range"),
    ({"cluster": CLUSTER, "task": {"type": "worker", "index": "1"}}, "out of range"),
    ({"cluster": CLUSTER, "task": {"type": "ps", "index": 0}}, "'ps' is not in its cluster"),
    ({"cluster": {"worker": "h:1"}, "task": {"type": "worker", "index": 0}}, "must be a list"),
])
def test_a_bad_tf_config_is_one_clear_error(config, message):
    with pytest.raises(ConfigurationError, match=message):
        read_tf_config(_env(config))


def test_the_global_batch_must_split_evenly_across_the_replicas():
    job = Role(workers=2, index=0, is_chief=True)
    check_global_batch(64, 4, job)
    check_global_batch(7, 1, Role())  # one process: nothing to share
    with pytest.raises(ConfigurationError, match=r"64 images a step cannot be shared evenly by "
                                                 r"6 replicas on 2 workers.*\(e.g. 60 or 66\)"):
        check_global_batch(64, 6, job)


def test_only_the_chief_writes_the_run_folder_the_others_a_temporary_copy(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "backup" / "training_metadata.json").write_text('{"epoch": 2}')
    (run_dir / "history.csv").write_text("epoch,loss\n0,1.0\n1,0.5\n")
    with writable_run_dir(run_dir, Role(workers=2, index=0, is_chief=True), resume=True) as d:
        assert d == run_dir
    with writable_run_dir(None, Role(workers=2, index=1, is_chief=False), resume=True) as d:
        assert d is None
    with writable_run_dir(run_dir, Role(workers=2, index=1, is_chief=False), resume=True) as d:
        assert d != run_dir and d.name.startswith("transferkit-worker1-")
        # resuming: the chief's backup and history, so every worker restores the same epoch
        assert (d / "backup" / "training_metadata.json").read_text() == '{"epoch": 2}'
        assert (d / "history.csv").read_text() == (run_dir / "history.csv").read_text()
        (d / "run.json").write_text("{}")
    assert not d.exists()  # cleaned up
    with writable_run_dir(run_dir, Role(workers=2, index=1, is_chief=False), resume=False) as d:
        assert not any(d.iterdir())  # a new run: nothing of the chief's
    assert sorted(p.name for p in run_dir.iterdir()) == ["backup", "history.csv"]
    with _workers.private_run_dirs(), writable_run_dir(
            run_dir, Role(workers=2, index=1, is_chief=False), resume=True) as d:
        assert d == run_dir  # the CLI's non-chief --out is a temporary folder already


def test_a_lone_process_is_its_own_chief():
    assert _workers.current_role(None) == _workers.SINGLE
    assert _workers.SINGLE.is_chief and not _workers.SINGLE.multi_worker
