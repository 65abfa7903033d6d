"""Shared fixtures. Sets a private Keras cache before Keras is imported.

Keras reads ``KERAS_HOME`` once, at import, so this module sets it first: a
session-private cache holding the shared MobileNetV2 ImageNet weights (when
``../shared/weights`` has them) under every per-size name Keras asks for.
The file holds the 224-px weights; MobileNetV2's weights do not depend on the
input size, so serving them for 96-224 px is correct (see ../shared/weights/README.md).

The suite runs under every Keras backend (``KERAS_BACKEND=torch`` or ``jax``,
where TensorFlow need not be installed; see docs/backends.rst). Tests that call
TensorFlow themselves carry ``@requires_tensorflow``.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("KERAS_BACKEND") == "jax":
    # The suite's models are tiny and each compiles once: cheaper XLA compiles on CPU
    # make the JAX run about 30 % faster (set XLA_FLAGS yourself to override).
    os.environ.setdefault(
        "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    )
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CIFAR_ARCHIVE = SHARED / "data" / "cifar10-jpeg.tar.gz"
MOBILENET_FILE = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
MOBILENET_V1_FILE = SHARED / "weights" / "mobilenet_2_5_224_tf_no_top.h5"

_KERAS_HOME = Path(tempfile.mkdtemp(prefix="transferkit-keras-home-"))
(_KERAS_HOME / "models").mkdir()
if MOBILENET_FILE.exists():
    for size in (96, 128, 160, 192, 224):
        name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
        (_KERAS_HOME / "models" / name).symlink_to(MOBILENET_FILE)
if MOBILENET_V1_FILE.exists():
    for size in (128, 160, 192, 224):
        (_KERAS_HOME / "models" / f"mobilenet_2_5_{size}_tf_no_top.h5").symlink_to(MOBILENET_V1_FILE)
os.environ["KERAS_HOME"] = str(_KERAS_HOME)
os.environ.pop("TRANSFERKIT_DATA", None)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from transferkit.data.synthetic import make_synthetic_dataset  # noqa: E402

requires_cifar = pytest.mark.skipif(
    not CIFAR_ARCHIVE.exists(), reason=f"real CIFAR-10 copy absent: {CIFAR_ARCHIVE}"
)
BACKEND = keras.backend.backend()
requires_tensorflow = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason=f"calls TensorFlow itself (tf.data, tf.distribute); the Keras backend is {BACKEND}",
)
requires_imagenet = pytest.mark.skipif(
    not MOBILENET_FILE.exists(), reason=f"MobileNetV2 ImageNet weights absent: {MOBILENET_FILE}"
)


def pytest_collection_modifyitems(config, items):
    """On JAX and PyTorch, leave out the real-data tests: CI runs them on TensorFlow."""
    if BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"real-data tests run on TensorFlow only; backend: {BACKEND}")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 ``(h, w, 3)`` image encoded as PNG (Pillow: no TensorFlow needed)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture
def tiny():
    """3 learnable classes of 16x16 images: 36 train+val and 8 test per class."""
    return make_synthetic_dataset(3, per_class=36, image_size=16, test_per_class=8, seed=1)


@pytest.fixture(scope="session")
def cifar():
    """The whole real CIFAR-10 copy, loaded once per session (about 15 s)."""
    if not CIFAR_ARCHIVE.exists():
        pytest.skip(f"real CIFAR-10 copy absent: {CIFAR_ARCHIVE}")
    from transferkit.data.cifar import load_cifar10

    return load_cifar10(CIFAR_ARCHIVE)


@pytest.fixture
def raw_images():
    return np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
