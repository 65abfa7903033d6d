"""A real 2-process JAX job on 127.0.0.1: ``keras.distribution.initialize`` with CPU collectives.

Runs where the suite runs on JAX (``KERAS_BACKEND=jax``), in the fast suite: two
processes join through ``keras.distribution.initialize`` (gloo CPU
collectives), each fits a plain Keras model on its half of every global batch
(``auto_shard_dataset = False``) and must end where one process ends; then
transferkit's ``train`` must see the job (process 0 the chief) and refuse it
with one clear message before training, since Keras' ``predict`` there returns
arrays that span the other process's devices (docs/scaling.rst).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
from conftest import ROOT, requires_jax_suite

pytestmark = requires_jax_suite  # a JAX job

PROCESS = """
    import json, sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras
    import numpy as np

    index, port = int(sys.argv[1]), sys.argv[2]
    keras.distribution.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=index)
    dist = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    dist.auto_shard_dataset = False  # each process hands fit its own shard
    keras.distribution.set_distribution(dist)
    import transferkit as tk
    from transferkit import _workers

    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    # Global batch k (32) = rows 32k..32k+31: process i holds x[i::2], 16 of them a step.
    loss = model.fit(x[index::2], y[index::2], batch_size=16, epochs=2, shuffle=False,
                     verbose=0).history["loss"]
    role = _workers.current_role(model)
    data = tk.make_synthetic_dataset(2, per_class=8, image_size=8, test_per_class=2, seed=1)
    try:
        tk.train(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                                   keras.layers.Dense(2, activation="softmax")]),
                 data, epochs=1, batch_size=8, verbose=0)
        refused = None
    except tk.ConfigurationError as exc:
        refused = str(exc)
    print(json.dumps({"loss": loss, "role": role.describe(), "chief": role.is_chief,
                      "refused": refused}), flush=True)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_jax_processes_train_as_one_and_transferkit_refuses_the_job_clearly(tmp_path):
    import keras

    port = _free_port()
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "", "PYTHONPATH": str(ROOT / "src")}  # one CPU device per process
    procs = []
    try:
        for index in range(2):
            log = open(tmp_path / f"process{index}.log", "w")  # noqa: SIM115 (closed by the OS)
            procs.append(subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(PROCESS), str(index), str(port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        for index, p in enumerate(procs):
            log = (tmp_path / f"process{index}.log")
            assert p.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
    rows = [json.loads(line) for i in range(2)
            for line in (tmp_path / f"process{i}.log").read_text().splitlines()
            if line.startswith("{")]
    assert [r["role"] for r in rows] == ["process 0 of 2", "process 1 of 2"]
    assert [r["chief"] for r in rows] == [True, False]
    for r in rows:
        assert "does not train in a multi-process JAX job yet" in r["refused"]
    # One process, the whole global batch of 32 a step, from the same weights.
    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    loss = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0).history["loss"]
    for r in rows:
        np.testing.assert_allclose(r["loss"], loss, rtol=1e-5)
