"""Crash-safe writes: a process killed while saving never leaves a truncated artefact."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from transferkit._atomic import (
    atomic_save_model,
    atomic_write_json,
    atomic_write_text,
    remove_stale_temp_files,
    temp_path_for,
)

_SAVER = r'''
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
import numpy as np
from transferkit._atomic import atomic_save_model, atomic_write_json

folder = sys.argv[1]
# About 16 MB of weights, so a save takes long enough for a kill to land inside it.
model = keras.Sequential([keras.Input((1000,)), keras.layers.Dense(4000), keras.layers.Dense(10)])
payload = {"values": list(range(20_000))}
i = 0
while True:
    atomic_save_model(model, f"{folder}/model.keras")
    atomic_write_json(f"{folder}/metrics.json", {**payload, "i": i})
    i += 1
    open(f"{folder}/saves.txt", "w").write(str(i))
'''


@pytest.mark.slow
def test_kill_during_saves_never_leaves_a_truncated_file(tmp_path):
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    rng = np.random.default_rng(0)
    kills, interrupted = 0, 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while not (tmp_path / "saves.txt").exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(rng.uniform(0.05, 0.6))  # land at a random point of a save cycle
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        kills += 1
        # Whatever the kill interrupted, the files in place are complete.
        model = keras.saving.load_model(tmp_path / "model.keras")
        assert model.count_params() == 1000 * 4000 + 4000 + 4000 * 10 + 10
        record = json.loads((tmp_path / "metrics.json").read_text())
        assert len(record["values"]) == 20_000
        (tmp_path / "saves.txt").unlink()
        interrupted += bool(remove_stale_temp_files(tmp_path))  # what a resumed run does first
        assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    assert kills == 4
    # The saver spends most of its time inside saves, so kills do land in them:
    # a temporary file was left behind (and the target was still intact).
    assert interrupted >= 1, "no kill landed inside a save; the test proved nothing"


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_temp_names_keep_the_suffix_keras_checks(tmp_path):
    assert temp_path_for(tmp_path / "best.keras").name.endswith(".keras")
    assert temp_path_for(tmp_path / "latest.weights.h5").name.endswith(".weights.h5")
    assert not temp_path_for(tmp_path / "best.keras").exists()


def test_model_and_text_round_trip(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    atomic_save_model(model, tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").count_params() == 8
    atomic_write_text(tmp_path / "sub" / "a.txt", "hello")
    assert (tmp_path / "sub" / "a.txt").read_text() == "hello"


def test_written_files_respect_the_umask(tmp_path):
    import os
    import stat

    from transferkit._atomic import atomic_write_text

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "out.txt", "hello")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def _fill(files: dict[str, str]):
    """A writer that fills the folder it is given with ``files`` (name -> text)."""
    def write(folder):
        for name, text in files.items():
            (Path(folder) / name).write_text(text)
    return write


def test_folder_writes_replace_only_what_may_be_replaced(tmp_path):
    import os
    import stat

    from transferkit._atomic import atomic_write_dir

    target = tmp_path / "export"
    old = os.umask(0o022)
    try:
        atomic_write_dir(target, _fill({"a": "1", "b": "1"}))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # not mkdtemp's 0700
    with pytest.raises(FileExistsError):  # not said to be replaceable: kept
        atomic_write_dir(target, _fill({"a": "2"}))
    atomic_write_dir(target, _fill({"a": "2"}), replaceable=lambda p: (p / "a").exists())
    assert sorted(p.name for p in target.iterdir()) == ["a"]  # the whole new folder, no b
    assert (target / "a").read_text() == "2"

    def fails(folder):
        _fill({"a": "3"})(folder)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_dir(target, fails, replaceable=lambda p: True)
    assert (target / "a").read_text() == "2"  # the earlier folder, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no temporary folder left
