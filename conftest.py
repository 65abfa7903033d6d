"""Set-up shared by the tests (tests/) and the docstring examples (src/transferkit).

pytest loads this file first, for every run from this checkout: before
tests/conftest.py, and also for a run that collects only the package's
doctests (``--doctest-modules``), which tests/conftest.py never applies to.
So it holds what both need:

- The feature cache turned off (``TRANSFERKIT_CACHE=off``; see below).
- One compute thread per test process for TensorFlow and PyTorch, set before
  either is imported (see below); JAX keeps its threads and gets cheaper compiles.
- A private Keras cache, set before Keras is imported (Keras reads
  ``KERAS_HOME`` once, at import): it holds the shared MobileNetV2 ImageNet
  weights (when ``../shared/weights`` has them) under every per-size name
  Keras asks for. The file holds the 224-px weights; MobileNetV2's weights do
  not depend on the input size, so serving them for 96-224 px is correct (see
  ../shared/weights/README.md).
- ``cifar``: the real CIFAR-10 copy, decoded once per session (about 15 s),
  for real-data tests, tests/harness.py and the examples alike.
- The examples' namespace (``doctest_namespace``): every public name of
  ``transferkit`` an example uses and its module does not define, and, for
  the examples listed in :data:`REAL_DATA_EXAMPLES`, ``data``: a small real
  CIFAR-10 subset, cat and ship unless the entry names other classes
  (:func:`example_data`), with the random seed set to 0.
- Those examples train, so they are marked ``slow`` and ``realdata`` and are
  skipped, with the reason, where the CIFAR-10 copy or the ImageNet weights
  are absent; real-data items are skipped on backends other than TensorFlow.

An example that uses ``data`` must be listed in :data:`REAL_DATA_EXAMPLES` by
its doctest name (``module.function``); elsewhere ``data`` is undefined.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One compute thread per test process, for TensorFlow and PyTorch (OpenMP), set before
# either is imported. The suites run several processes on the cores (pytest -n 2, and
# CI's three backend suites side by side) with tiny models, where extra threads spin
# rather than work: on 2 cores (AVX-512 Xeon), three suites at once on six test files
# took 370 s and 777 CPU-s this way, against 527 s and 996 CPU-s with the defaults;
# PyTorch alone on those files, 66 CPU-s against 98. JAX keeps its default: one thread
# made its run slower. Set the variables yourself to override.
for _var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if os.environ.get("KERAS_BACKEND") == "jax":
    # The suite's models are tiny and each compiles once: cheaper XLA compiles on CPU
    # make the JAX run about 30 % faster (set XLA_FLAGS yourself to override).
    os.environ.setdefault(
        "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    )
ROOT = Path(__file__).resolve().parent
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
# The on-disk feature cache is off: no test writes to the user's cache folder, and
# none reads features another run left there. Tests of the cache turn it on in a
# temporary folder (the `feature_cache` fixture of tests/conftest.py).
os.environ["TRANSFERKIT_CACHE"] = "off"
os.environ.pop("TRANSFERKIT_CACHE_MAX", None)

EXAMPLE_PER_CLASS, EXAMPLE_VAL_PER_CLASS = 100, 20
"""``data`` in the examples: 100 train and 100 test images per class, 20 validation."""


@dataclasses.dataclass(frozen=True)
class RealDataExample:
    """What a docstring example that trains on ``data`` needs."""

    imagenet: bool = True
    """It needs the MobileNetV2 ImageNet weights (all need the CIFAR-10 copy)."""
    classes: tuple[str, ...] = ("cat", "ship")
    """The classes of its ``data``, in label order."""


REAL_DATA_EXAMPLES: dict[str, RealDataExample] = {
    "transferkit.training.train.train": RealDataExample(),
    "transferkit.training.recipes.fine_tune": RealDataExample(),
    "transferkit.training.recipes.train_from_scratch": RealDataExample(imagenet=False),
    # Two stages of at least 2 classes each: the same cat and ship, then 2 more.
    "transferkit.twostage.two_stage": RealDataExample(
        classes=("cat", "ship", "automobile", "bird")),
    "transferkit.runs.evaluation.evaluate": RealDataExample(),
}
"""The docstring examples that train on ``data``, by doctest name: slow, real data, TensorFlow only."""


@pytest.hookimpl(tryfirst=True)  # before pytest's own, which deselects by marker (-m)
def pytest_collection_modifyitems(config, items):
    """Mark the training examples slow; skip real-data items where they cannot run."""
    backend = None
    for item in items:
        example = REAL_DATA_EXAMPLES.get(item.name) if hasattr(item, "dtest") else None
        if example is not None:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.realdata)
            if not CIFAR_ARCHIVE.exists():
                item.add_marker(pytest.mark.skip(reason=f"real CIFAR-10 copy absent: {CIFAR_ARCHIVE}"))
            if example.imagenet and not MOBILENET_FILE.exists():
                item.add_marker(pytest.mark.skip(
                    reason=f"MobileNetV2 ImageNet weights absent: {MOBILENET_FILE}"))
        if "realdata" in item.keywords:
            if backend is None:
                import keras

                backend = keras.backend.backend()
            if backend != "tensorflow":
                # CI runs them on TensorFlow; on JAX and PyTorch they are left out.
                item.add_marker(pytest.mark.skip(
                    reason=f"real-data tests run on TensorFlow only; backend: {backend}"))


@pytest.fixture(scope="session")
def cifar():
    """The whole real CIFAR-10 copy, loaded once per session (about 15 s)."""
    if not CIFAR_ARCHIVE.exists():
        pytest.skip(f"real CIFAR-10 copy absent: {CIFAR_ARCHIVE}")
    from transferkit.data.cifar import load_cifar10

    return load_cifar10(CIFAR_ARCHIVE, download=False)


_EXAMPLE_DATA: dict[tuple[str, ...], object] = {}


def example_data(cifar, classes: tuple[str, ...]):
    """``data`` in the docstring examples: ``classes``, 100 train, 20 val, 100 test per class."""
    if classes not in _EXAMPLE_DATA:
        chosen = cifar.subset(classes)
        data = chosen.limit(EXAMPLE_PER_CLASS, seed=0)
        val = chosen.limit(EXAMPLE_VAL_PER_CLASS, seed=0)  # fewer: validation runs every epoch
        _EXAMPLE_DATA[classes] = dataclasses.replace(data, x_val=val.x_val, y_val=val.y_val)
    return _EXAMPLE_DATA[classes]


@pytest.fixture(autouse=True)
def _example_namespace(request, doctest_namespace):
    """Give a docstring example the public names it uses, and ``data`` where it is listed.

    Only names the example mentions and its module does not define are added
    (the module's own globals win), so an example that uses no public name
    imports nothing more; they are removed again afterwards, since
    ``doctest_namespace`` is one dict for the whole session.
    """
    dtest = getattr(request.node, "dtest", None)
    if dtest is None:
        yield
        return
    added = {}
    source = "\n".join(example.source for example in dtest.examples)
    public = set(re.findall(r"[A-Za-z_]\w*", source)) & _public_names()
    if public:
        import transferkit

        for name in sorted(public):
            if name not in dtest.globs and name not in doctest_namespace:
                added[name] = getattr(transferkit, name)
    example = REAL_DATA_EXAMPLES.get(request.node.name)
    if example is not None and "data" not in doctest_namespace:
        import keras

        added["data"] = example_data(request.getfixturevalue("cifar"), example.classes)
        keras.utils.set_random_seed(0)  # the same weights, shuffles and accuracy every run
    doctest_namespace.update(added)
    yield
    for name in added:
        doctest_namespace.pop(name, None)


def _public_names() -> set[str]:
    import transferkit

    return set(transferkit.__all__)
