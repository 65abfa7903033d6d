"""train_from_scratch: the from-scratch baseline's recipe, and the residual baseline CNN."""

import keras
import pytest
from conftest import requires_cifar
from harness import assert_learns_on_real_subset, assert_round_trip, real_subset

from transferkit.errors import ConfigurationError
from transferkit.models.builders import build_baseline_cnn
from transferkit.training.recipes import train_from_scratch


def test_residual_cnn_has_its_blocks_and_round_trips(tiny, tmp_path):
    cnn = build_baseline_cnn(3, input_shape=tiny.image_shape, filters=(8, 16), residual=True)
    features = cnn.get_layer("features")
    names = {layer.name for layer in features.layers}
    assert {"stem", "block1_add", "block2_add"} <= names
    assert features.output_shape == (None, 4, 4, 16)
    assert_round_trip(cnn, tiny.x_test, tmp_path)


def test_train_from_scratch_learns_and_records_its_recipe(tiny):
    cnn = build_baseline_cnn(3, input_shape=tiny.image_shape, filters=(8, 16), residual=True)
    # 96 training images: small batches give the schedule enough steps.
    run = train_from_scratch(cnn, tiny, epochs=10, batch_size=16, lr=3e-3, seed=0, verbose=0)
    assert run.evaluation.accuracy > 1 / 3 + 0.15  # 3 learnable synthetic classes
    recipe = run.config["recipe"]
    assert recipe["batch_size"] == 16 and recipe["lr"] == pytest.approx(3e-3)
    assert run.config["lr"] == pytest.approx(3e-3) and run.config["augment"]
    assert float(cnn.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)  # decayed to 0


def test_default_batch_and_learning_rate_follow_the_data_size(tiny):
    cnn = build_baseline_cnn(3, input_shape=tiny.image_shape, filters=(8,))
    recipe = train_from_scratch(cnn, tiny, epochs=1, verbose=0).config["recipe"]
    assert recipe["batch_size"] == 64 and recipe["lr"] == pytest.approx(1e-3)  # 2e-3 * 64 / 128


def test_train_from_scratch_refuses_options_it_sets_itself(tiny):
    cnn = build_baseline_cnn(3, input_shape=tiny.image_shape, filters=(8,))
    for kwargs, match in [({"schedule": "cosine"}, "schedule"), ({"compile": True}, "compile"),
                          ({"epochs": 0}, "epochs"), ({"warmup": 1.0}, "warmup")]:
        with pytest.raises(ConfigurationError, match=match):
            train_from_scratch(cnn, tiny, verbose=0, **kwargs)


@pytest.mark.slow
@requires_cifar
@pytest.mark.realdata
def test_real_recipe_beats_the_plain_cnn_at_equal_epochs(cifar):
    from transferkit.training.train import train

    keras.utils.set_random_seed(0)
    plain = build_baseline_cnn(10)
    plain_acc = train(plain, real_subset(cifar, per_class=200, seed=0), epochs=4, seed=0,
                      verbose=0).evaluation.accuracy
    run = assert_learns_on_real_subset(  # chance: 0.1; the same subset, weights seeded with 0
        cifar,
        lambda data: build_baseline_cnn(data, residual=True, filters=(48, 96, 192), head=(),
                                        dropout=0.2),
        lambda model, data: train_from_scratch(model, data, epochs=4, seed=0, verbose=0),
        per_class=200, seed=0, min_accuracy=0.3)
    assert run.evaluation.accuracy > plain_acc - 0.03, (run.evaluation.accuracy, plain_acc)
    # The plain CNN learns too (the 5-epoch one scored 0.35-0.46 on subset seeds 1-4).
    assert plain_acc > 0.25, plain_acc  # chance: 0.1
