"""Real multi-worker jobs on one machine: 2 TensorFlow workers through ``TF_CONFIG`` on 127.0.0.1.

One job is started, worker 1 kills itself (SIGKILL) in the middle of its
second epoch, the chief (left waiting in a collective) is killed too, and the
job is started again: it resumes from the chief's backup and ends where an
uninterrupted single process ends. Every process is bounded by a timeout and
killed in a ``finally``.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT, requires_tensorflow

from transferkit.data.synthetic import make_synthetic_dataset

# A model without dropout or BatchNorm, so 2 workers x half a batch each compute the same
# averaged gradients as 1 process on the whole batch: the losses must agree to float noise.
# The frozen transfer model (cached features, a dropout head) is compared on validation loss.
WORKER = """
    import json, os, signal, sys
    from pathlib import Path
    import keras
    import tensorflow as tf
    import transferkit as tk
    from transferkit import _workers

    out, crash_at = Path(sys.argv[1]), int(sys.argv[2])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    data = tk.make_synthetic_dataset(2, per_class=32, image_size=16, test_per_class=4,
                                     validation_split=0.25, seed=1)

    def plain():
        return keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Conv2D(4, 3, activation="relu"),
                                 keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(2, activation="softmax")])

    def frozen():
        cnn = tk.build_baseline_cnn(2, input_shape=(16, 16, 3), filters=(4,), head=())
        return tk.build_transfer_model(cnn.backbone, data, head=())

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            print(json.dumps({"epoch_begin": epoch}), flush=True)

        def on_train_batch_begin(self, batch, logs=None):
            if role.index == 1 and self.epoch == crash_at and batch == 1:
                os.kill(os.getpid(), signal.SIGKILL)  # mid-epoch, as a machine dies

    for name, build in (("plain", plain), ("frozen", frozen)):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = build()
        role = _workers.current_role(model)
        run_dir = out / name
        run = tk.train(model, data, epochs=3, batch_size=16, seed=0, verbose=0, run_dir=run_dir,
                       resume=(run_dir / "backup").is_dir(), callbacks=[Probe()])
        print(json.dumps({"name": name, "role": role.describe(), "chief": role.is_chief,
                          "loss": run.history["loss"], "val_loss": run.history["val_loss"],
                          "cached": run.config["cached_features"]}), flush=True)
"""


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_job(out, tmp_path, crash_at: int) -> list[subprocess.Popen]:
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        temp = tmp_path / f"tmp{index}"  # each worker's TMPDIR: where a non-chief writes
        temp.mkdir(exist_ok=True)
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2",
               "TMPDIR": str(temp), "TF_CONFIG": json.dumps(
                   {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        log = open(tmp_path / f"worker{index}-{crash_at}.log", "w")  # noqa: SIM115 (closed by the OS)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER), str(out), str(crash_at)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _rows(tmp_path, index: int, crash_at: int) -> list[dict]:
    text = (tmp_path / f"worker{index}-{crash_at}.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _log(tmp_path, index: int, crash_at: int) -> str:
    return (tmp_path / f"worker{index}-{crash_at}.log").read_text()[-3000:]


def _one_process_reference():
    """The plain model's losses and the frozen model's validation losses, trained alone."""
    import keras

    import transferkit as tk

    data = make_synthetic_dataset(2, per_class=32, image_size=16, test_per_class=4,
                                  validation_split=0.25, seed=1)
    keras.utils.set_random_seed(0)
    plain = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    loss = tk.train(plain, data, epochs=3, batch_size=16, seed=0, verbose=0).history["loss"]
    keras.utils.set_random_seed(0)
    cnn = tk.build_baseline_cnn(2, input_shape=(16, 16, 3), filters=(4,), head=())
    frozen = tk.build_transfer_model(cnn.backbone, data, head=())
    val = tk.train(frozen, data, epochs=3, batch_size=16, seed=0, verbose=0).history["val_loss"]
    return loss, val


@pytest.mark.slow
@requires_tensorflow
def test_two_tf_workers_match_one_process_write_once_and_resume_after_a_kill(tmp_path):
    out = tmp_path / "job"
    procs: list[subprocess.Popen] = []
    try:
        # 1. Worker 1 dies in the middle of epoch 1; the chief then waits in a collective.
        procs = _start_job(out, tmp_path, crash_at=1)
        assert procs[1].wait(timeout=120) == -signal.SIGKILL, _log(tmp_path, 1, 1)
        assert procs[0].poll() is None  # still waiting for its peer: stop it as a scheduler would
        procs[0].kill()
        procs[0].wait(timeout=30)
        epoch_record = json.loads((out / "plain" / "backup" / "training_metadata.json").read_text())
        assert epoch_record["epoch"] == 1  # epoch 0 backed up by the chief
        # 2. The job starts again and resumes from the chief's backup.
        procs = _start_job(out, tmp_path, crash_at=-1)
        for p in procs:
            assert p.wait(timeout=150) == 0, _log(tmp_path, procs.index(p), -1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    chief, other = _rows(tmp_path, 0, -1), _rows(tmp_path, 1, -1)
    plain_epochs = [r["epoch_begin"] for r in chief if "epoch_begin" in r][:2]
    assert plain_epochs == [1, 2]  # resumed at epoch 1, not from scratch
    chief_runs = {r["name"]: r for r in chief if "name" in r}
    other_runs = {r["name"]: r for r in other if "name" in r}
    assert chief_runs["plain"]["chief"] and not other_runs["plain"]["chief"]
    assert other_runs["plain"]["role"] == "worker 1 of 2"
    assert chief_runs["frozen"]["cached"]  # features computed under the strategy
    # The result equals one process: the plain model exactly (up to float noise); the frozen
    # one (dropout masks differ per replica) on its validation loss.
    loss, val = _one_process_reference()
    np.testing.assert_allclose(chief_runs["plain"]["loss"], loss, rtol=1e-4)
    np.testing.assert_allclose(other_runs["plain"]["loss"], loss, rtol=1e-4)
    np.testing.assert_allclose(chief_runs["frozen"]["val_loss"], val, atol=1e-3)
    # Only the chief wrote: the run folders hold one run each and no lock; the non-chief's
    # temporary folder of the finished job is gone (the killed one's stays, naming the worker).
    for name in ("plain", "frozen"):
        files = sorted(p.name for p in (out / name).iterdir())
        assert files == ["best.keras", "history.csv", "model.keras", "predictions.npz", "run.json"]
    assert len((out / "plain" / "history.csv").read_text().splitlines()) == 4  # header + 3
    assert not list((tmp_path / "tmp0").iterdir())  # the chief used no temporary run folder
    left = [p.name for p in (tmp_path / "tmp1").iterdir()]
    assert len(left) == 1 and left[0].startswith("transferkit-worker1-")  # the killed run's


def test_a_job_checks_its_batch_and_budget_and_a_non_chief_leaves_no_files(tmp_path, monkeypatch):
    import keras

    import transferkit as tk
    from transferkit import _workers
    from transferkit.errors import ConfigurationError

    data = make_synthetic_dataset(2, per_class=8, image_size=8, test_per_class=2, seed=1)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    other = _workers.Role(workers=2, index=1, is_chief=False)
    monkeypatch.setattr(_workers, "current_role", lambda model=None: other)
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigurationError, match="7 images a step cannot be shared evenly by 2"):
        tk.train(model, data, epochs=1, batch_size=7, verbose=0, run_dir=run_dir)
    with pytest.raises(ConfigurationError, match="budget is not supported in a multi-worker"):
        tk.train(model, data, budget=60, batch_size=8, verbose=0, run_dir=run_dir)
    assert not run_dir.exists()  # refused before anything was written
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    run = tk.train(model, data, epochs=1, batch_size=8, verbose=0, run_dir=run_dir)
    assert run.history["loss"] and not run_dir.exists()  # it trained, and wrote elsewhere
    assert not any((tmp_path / "tmp").iterdir())  # ... in a folder it deleted
