"""Shared assertions for the tests, in the spirit of keras-hub's test case helpers.

``from harness import ...`` in a test module, as with ``from conftest import ...``.

- :func:`assert_round_trip`: a model survives ``.keras`` saving and its config.
- :func:`real_subset`: a seeded subset of the session's real CIFAR-10 copy.
- :func:`assert_learned`: a run's test accuracy clears a threshold above chance.
- :func:`assert_learns_on_real_subset`: subset, build, fit and assert, in one call.
- :func:`small_transfer_model`: a transfer model on a two-block CNN, for tests of the
  recipes' logic where MobileNetV2's 154 layers would cost seconds of tracing each.

The real-data helpers take the session fixture ``cifar`` (../conftest.py): the
archive is decoded once per session (about 15 s) and every subset is cut from
it (a few milliseconds), so tests and docstring examples share the one decode;
the fixture skips the test where the copy is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from transferkit.data.splits import DataSplits
from transferkit.models.builders import build_baseline_cnn, build_transfer_model, load_model
from transferkit.runs.record import Run


def assert_round_trip(model: keras.Model, images: np.ndarray, tmp_path: Path, *,
                      atol: float = 1e-5) -> keras.Model:
    """Save ``model`` as ``.keras``, reload it, and check it is the same model.

    The file is ``tmp_path / f"{model.name}.keras"``. Checks: the reloaded
    model (:func:`~transferkit.models.builders.load_model`) has the same class
    and the same ``get_config()``; ``from_config(get_config())`` rebuilds a
    model with the same parameter count; the reloaded model's predictions on
    ``images`` equal the original's within ``atol``.

    Returns:
        The reloaded model, for checks specific to the test.
    """
    path = Path(tmp_path) / f"{model.name}.keras"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is type(model), (type(loaded), type(model))
    config = model.get_config()
    assert loaded.get_config() == config
    rebuilt = type(model).from_config(config)
    assert rebuilt.count_params() == model.count_params(), (rebuilt.count_params(),
                                                            model.count_params())
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               rtol=0, atol=atol)
    return loaded


SMALL_PREFIX = "block1_pool"
"""The last layer of :func:`small_transfer_model`'s first block: pass it as ``unfreeze``."""


def small_transfer_model(data: DataSplits, *, filters: Sequence[int] = (4, 8)) -> keras.Model:
    """A transfer model for ``data`` on a small CNN backbone, one block per ``filters`` entry.

    The model resizes its input to 32 px inside, like a real backbone's upscale, and
    has no hidden head layer. The backbone is in no registry, so it has no default
    cut: pass ``unfreeze=SMALL_PREFIX`` to fine-tune after its first block (with a
    frozen prefix to cache), or ``unfreeze="all"``. Built inside a distribution
    scope, it is built in that distribution. It traces in a fraction of a
    second, where MobileNetV2 takes seconds per compiled function.
    """
    cnn = build_baseline_cnn(2, input_shape=(32, 32, 3), filters=filters, head=())
    return build_transfer_model(cnn.backbone, data, image_size=32, head=())


def real_subset(cifar: DataSplits, *, classes: Sequence[str | int] | None = None,
                per_class: int = 100, seed: int = 0) -> DataSplits:
    """``per_class`` images per class in each split of the real CIFAR-10 copy.

    Args:
        cifar: The session fixture ``cifar``.
        classes: Keep only these classes (relabelled in the order given); None: all 10.
        per_class: Images per class in train, validation and test alike.
        seed: Seed of the choice.
    """
    data = cifar if classes is None else cifar.subset(classes)
    return data.limit(per_class, seed=seed)


def assert_learned(run: Run, min_accuracy: float) -> float:
    """Assert ``run``'s test accuracy exceeds ``min_accuracy``, itself above chance.

    The message gives the accuracy, the number of test images and chance
    (1 / number of classes). A threshold at or below chance is refused: it
    would pass a model that learned nothing.

    Returns:
        The accuracy.
    """
    classes = len(run.config["data"]["class_names"])
    chance = 1 / classes
    if min_accuracy <= chance:
        raise ValueError(f"min_accuracy={min_accuracy} is not above chance ({chance:.3f}).")
    accuracy = run.evaluation.accuracy
    tested = run.config["data"]["sizes"]["test"]
    assert accuracy > min_accuracy, (
        f"{run.name}: test accuracy {accuracy:.3f} on {tested} images of {classes} classes; "
        f"needed > {min_accuracy} (chance {chance:.3f})")
    return accuracy


def assert_learns_on_real_subset(
    cifar: DataSplits,
    build: Callable[[DataSplits], keras.Model],
    fit: Callable[[keras.Model, DataSplits], Run],
    *,
    min_accuracy: float,
    classes: Sequence[str | int] | None = None,
    per_class: int = 100,
    seed: int = 0,
) -> Run:
    """Build a model for a real CIFAR-10 subset, train it, and assert it learned.

    Args:
        cifar: The session fixture ``cifar``.
        build: ``build(data)`` returns the model (``build_baseline_cnn`` will do).
        fit: ``fit(model, data)`` trains it and returns the Run, evaluated on
            the test split.
        min_accuracy: The test accuracy to beat; above chance.
        classes: Keep only these classes; None: all 10.
        per_class: Images per class in each split (:func:`real_subset`).
        seed: Seed of the subset's choice and of the model's initial weights
            (``keras.utils.set_random_seed`` just before ``build``).

    Returns:
        The Run, for checks specific to the test.
    """
    data = real_subset(cifar, classes=classes, per_class=per_class, seed=seed)
    keras.utils.set_random_seed(seed)
    run = fit(build(data), data)
    assert_learned(run, min_accuracy)
    return run
