"""Ctrl-C stops every command within seconds, exit 130, with a line on how to run it again."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import MOBILENET_FILE, ROOT, requires_imagenet

from transferkit.cli import main
from transferkit.cli._interrupt import RESEND_S, catching_interrupts
from transferkit.cli._outdir import check_out_dir


def _noop():
    pass


class _Finalized:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)
        _noop()  # the handler runs here, inside __del__, where Python drops its exception


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point
def test_a_ctrl_c_that_a_finalizer_swallowed_is_sent_again():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a pytest-xdist worker
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), catching_interrupts() as interrupts:
        _Finalized()  # TensorFlow's tracing runs such finalizers by the thousand
        while time.monotonic() - start < 5:  # without the resend: never interrupted
            time.sleep(0.01)
    assert interrupts.received == 2  # the swallowed one, then the one sent again
    assert RESEND_S - 0.1 < time.monotonic() - start < RESEND_S + 2
    assert signal.getsignal(signal.SIGINT) == before  # restored


class _Raises:
    def __init__(self, exc):
        self.exc = exc

    def __del__(self):
        raise self.exc


def test_a_ctrl_c_swallowed_by_a_finalizer_prints_no_traceback(monkeypatch):
    # A newcomer saw "Exception ignored in: <function WeakKeyDictionary...remove>" and a
    # traceback on Ctrl-C: the watchdog resends the signal, so the dropped one says nothing.
    seen = []
    record = seen.append
    monkeypatch.setattr(sys, "unraisablehook", lambda u: record(type(u.exc_value)))
    hook = sys.unraisablehook
    with catching_interrupts():
        _Raises(KeyboardInterrupt)  # deleted at once: Python hands it to the hook
        _Raises(ValueError)  # any other error in a finalizer is still shown
    _Raises(KeyboardInterrupt)  # outside a command: shown, as Python does
    assert seen == [ValueError, KeyboardInterrupt]
    assert sys.unraisablehook is hook


def test_an_interrupted_command_exits_130_saying_what_it_left(monkeypatch, capsys):
    import transferkit.cli._commands as commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "cache_info", interrupted)
    assert main(["cache", "info"]) == 130
    assert capsys.readouterr().err == ("transferkit: interrupted. Nothing was written; run the "
                                       "same command again.\n")

    def turned_into_an_error(args):  # what a library may do with a KeyboardInterrupt
        try:
            signal.raise_signal(signal.SIGINT)
            _noop()
        except KeyboardInterrupt:
            raise RuntimeError("UnknownError: KeyboardInterrupt in a py_func") from None

    monkeypatch.setattr(commands, "cache_info", turned_into_an_error)
    assert main(["cache", "info"]) == 130


# --------------------------------------------------------------------------- a real `train`


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("interrupt") / "photos"
    rng = np.random.default_rng(0)
    for cls, colour in {"red": (220, 30, 30), "blue": (30, 40, 220)}.items():
        (root / cls).mkdir(parents=True)
        for k in range(16):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (32, 32, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / cls / f"{k}.png")
    return root


@pytest.mark.slow
@requires_imagenet  # the head learns: fine_tune trains no second head first, as for a user
# Caching the frozen prefix (after "== fine_tuned") stopped as fast (39 s for the whole
# test on a busy machine); left out to keep CI short: it is a predict loop like the head's.
@pytest.mark.parametrize("stage, after, wait", [
    ("the head", "== frozen_head", 0.0),
    ("tracing the first fine-tuning step", "Epoch 1/50", 1.0),  # where one in four was lost
])
def test_ctrl_c_stops_train_at_once_with_exit_130(photos, tmp_path, stage, after, wait):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "transferkit", "train", str(photos), "--image-size", "32",
               "--weights", str(MOBILENET_FILE), "--head-epochs", "2", "--epochs", "50",
               "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1"}
    # As from a terminal: a pytest-xdist worker ignores SIGINT, and children inherit that.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen, sent = [], None
    try:
        for line in process.stdout:
            seen.append(line)
            if sent is None and after in line:
                time.sleep(wait)
                process.send_signal(signal.SIGINT)
                sent = time.monotonic()
        code = process.wait(timeout=60)
    finally:
        process.kill()
    assert sent is not None, "".join(seen[-20:])
    assert code == 130 and time.monotonic() - sent < 10, (stage, "".join(seen[-20:]))
    assert seen[-1].strip() == (f"transferkit: interrupted. What had finished is kept in {out}; "
                                "to continue, run the same command with --resume (or with "
                                "--overwrite to start again).")
    assert not (out / "model.keras").exists()  # the run did not go on to its end
    check_out_dir(out, overwrite=True, inputs=(photos,))  # `--overwrite` takes the folder
