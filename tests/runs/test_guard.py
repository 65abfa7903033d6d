"""The run-folder lock: one writer per run folder, stale locks taken over, overwrite keeps it."""

import json
import os
import socket
import subprocess
import sys

import pytest

from transferkit.errors import RunDirectoryBusyError
from transferkit.runs.guard import LOCK_FILE, check_free, holder, run_lock
from transferkit.runs.layout import prepare_run_dir


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid  # reaped: no process has it now (barring reuse within microseconds)


def _lock_as(folder, pid: int, host: str | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_FILE).write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid}))


def test_a_folder_another_live_job_writes_is_refused_before_anything_changes(tmp_path):
    run = tmp_path / "run"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            _lock_as(run, other.pid)
            (run / "run.json").write_text("{}")
            for attempt in (lambda: run_lock(run).__enter__(),
                            lambda: prepare_run_dir(run, overwrite=True, resume=False),
                            lambda: check_free(run)):
                with pytest.raises(RunDirectoryBusyError, match=f"process {other.pid} on"):
                    attempt()
            assert (run / "run.json").exists()  # overwrite deleted nothing
        finally:
            other.kill()
    _lock_as(run, 1, host="another-host")  # a pid there cannot be checked: trusted
    with pytest.raises(RunDirectoryBusyError, match="another-host"):
        check_free(run)


def test_the_lock_is_held_for_the_block_reentrant_and_released(tmp_path):
    run = tmp_path / "run"
    with run_lock(run) as path:
        assert path == run and holder(run) == {"host": socket.gethostname(), "pid": os.getpid()}
        with run_lock(run):  # an inner run in the same folder (a recipe's stage)
            pass
        assert (run / LOCK_FILE).exists()  # the outer block still holds it
        (run / "run.json").write_text("{}")
        assert prepare_run_dir(run, overwrite=True, resume=False) == run
        assert [p.name for p in run.iterdir()] == [LOCK_FILE]  # the old run went, the lock stayed
    assert not (run / LOCK_FILE).exists()
    with run_lock(None) as nothing:
        assert nothing is None


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    run = tmp_path / "run"
    _lock_as(run, _dead_pid())
    assert holder(run) is None
    with run_lock(run):
        assert holder(run)["pid"] == os.getpid()
    (run / LOCK_FILE).write_text("not json")  # a lock cut short by a crash: free too
    assert holder(run) is None
