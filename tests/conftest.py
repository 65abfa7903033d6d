"""Fixtures and markers for the tests.

What the tests share with the docstring examples is set up in ../conftest.py,
which pytest loads before this file: the private Keras cache (set before Keras
is imported, with the shared ImageNet weights), the session fixture ``cifar``
(the real CIFAR-10 copy, decoded once), and the skipping of real-data tests on
backends other than TensorFlow. tests/harness.py holds the shared assertions.

The suite runs under every Keras backend (``KERAS_BACKEND=torch`` or ``jax``,
where TensorFlow need not be installed; see docs/backends.rst). Tests that call
TensorFlow themselves carry ``@requires_tensorflow``. Tests of what the backend does
not change (messages, folders, argument checks, the report's HTML, what Keras builds and
saves alike everywhere) carry ``@pytest.mark.backend_neutral``: CI's PyTorch and JAX
suites leave them out (``-m "not slow and not backend_neutral"``).

The suites run on 2 processes with ``--dist loadfile``: each module's tests
stay in one process. ``--dist loadgroup`` ignored the ``xdist_group`` marks
with pytest 9.2 and pytest-xdist 3.8, so both processes built a module's
expensive fixture (a CLI fixture took 45 s twice, the real fine-tune runs 150 s
twice). Those fixtures are also session-scoped, so a process that runs other
modules' tests in between does not build them again; none has a teardown.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from transferkit.data.synthetic import make_synthetic_dataset

# The paths ../conftest.py sets the Keras cache up from, for `from conftest import ...`
# in the tests (a test module's `conftest` is this file, not ../conftest.py).
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CIFAR_ARCHIVE = SHARED / "data" / "cifar10-jpeg.tar.gz"
MOBILENET_FILE = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
MOBILENET_V1_FILE = SHARED / "weights" / "mobilenet_2_5_224_tf_no_top.h5"

requires_cifar = pytest.mark.skipif(
    not CIFAR_ARCHIVE.exists(), reason=f"real CIFAR-10 copy absent: {CIFAR_ARCHIVE}"
)
BACKEND = keras.backend.backend()
requires_tensorflow = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason=f"calls TensorFlow itself (tf.data, tf.distribute); the Keras backend is {BACKEND}",
)
requires_jax_suite = pytest.mark.skipif(
    BACKEND != "jax", reason="runs where the suite runs on JAX (KERAS_BACKEND=jax)")
requires_imagenet = pytest.mark.skipif(
    not MOBILENET_FILE.exists(), reason=f"MobileNetV2 ImageNet weights absent: {MOBILENET_FILE}"
)


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 ``(h, w, 3)`` image encoded as PNG (Pillow: no TensorFlow needed)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture(autouse=True)
def _cli_logging_undone():
    """An in-process ``main([...])`` routes the transferkit logger to the stderr pytest
    captured for that test (closed after it) and stops propagation (caplog sees nothing):
    each test starts from the logger as it was."""
    log = logging.getLogger("transferkit")
    saved = (list(log.handlers), log.propagate, log.level, os.environ.get("TRANSFERKIT_VERBOSITY"))
    yield
    log.handlers[:], log.propagate = saved[0], saved[1]
    log.setLevel(saved[2])
    if saved[3] is None:
        os.environ.pop("TRANSFERKIT_VERBOSITY", None)
    else:
        os.environ["TRANSFERKIT_VERBOSITY"] = saved[3]


@pytest.fixture
def feature_cache(tmp_path, monkeypatch) -> Path:
    """The on-disk feature cache turned on in a temporary folder (the suite runs with it off)."""
    root = tmp_path / "feature-cache"
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(root))
    monkeypatch.delenv("TRANSFERKIT_CACHE_MAX", raising=False)
    return root


@pytest.fixture
def tiny():
    """3 learnable classes of 16x16 images: 36 train+val and 8 test per class."""
    return make_synthetic_dataset(3, per_class=36, image_size=16, test_per_class=8, seed=1)


@pytest.fixture
def raw_images():
    return np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
