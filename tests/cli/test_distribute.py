"""``train``/``run`` in a multi-worker job: TF_CONFIG checked first, a non-chief's --out."""

import json

import pytest

from transferkit._workers import Role
from transferkit.cli import main
from transferkit.cli._distribute import check, out_for
from transferkit.errors import ConfigurationError


@pytest.mark.parametrize("config, message", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    (json.dumps({"cluster": {"worker": ["127.0.0.1:5000", "127.0.0.1:5000"]},
                 "task": {"type": "worker", "index": 1}}), "lists 127.0.0.1:5000 twice"),
])
def test_a_bad_tf_config_stops_train_before_anything_loads(tmp_path, monkeypatch, capsys,
                                                          config, message):
    monkeypatch.setenv("TF_CONFIG", config)
    assert main(["train", str(tmp_path / "missing-images"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]  # before IMAGES_DIR's own check
    assert not (tmp_path / "o").exists()


class Args:
    distribute, resume = False, False


def test_two_workers_make_a_job_one_needs_the_flag_and_only_tensorflow(monkeypatch):
    two = {"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(two))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    args = Args()
    check(args)
    assert args.role == Role(workers=2, index=1, is_chief=False)
    one = {"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(one))
    check(args)
    assert args.role is None  # a one-worker TF_CONFIG alone: an ordinary run
    args.distribute = True
    check(args)
    assert args.role == Role(workers=1, index=0, is_chief=True)
    args.budget = 600
    with pytest.raises(ConfigurationError, match="--budget is not supported in a multi-worker"):
        check(args)
    args.budget = None
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(ConfigurationError, match="on TensorFlow .KERAS_BACKEND=jax"):
        check(args)


def test_a_non_chief_writes_a_temporary_copy_of_the_chiefs_out(tmp_path):
    chief = tmp_path / "out"
    (chief / "frozen_head").mkdir(parents=True)
    (chief / "frozen_head" / "run.json").write_text("{}")
    (chief / ".lock").write_text("{}")
    args = Args()
    assert out_for(args, chief) == chief  # the chief, or a lone process
    args.worker_out = tmp_path / "temp"
    args.worker_out.mkdir()
    assert out_for(args, chief) == tmp_path / "temp" / "out"
    assert not (tmp_path / "temp" / "out").exists()  # a new run starts empty
    args.resume = True  # a resumed job: the chief's finished stages and backups, not its lock
    mine = out_for(args, chief)
    assert (mine / "frozen_head" / "run.json").exists() and not (mine / ".lock").exists()
