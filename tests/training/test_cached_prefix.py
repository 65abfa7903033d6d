"""The cached-prefix fast path: a split that shares weights, shifted views, fine_tune using it."""

import logging

import keras
import numpy as np
import pytest
from harness import SMALL_PREFIX, small_transfer_model

from transferkit import build_transfer_model, fine_tune, load_model
from transferkit.data.augment import crop_flip
from transferkit.errors import ConfigurationError
from transferkit.models.anatomy import find_backbone
from transferkit.training.cached_prefix import ShiftedViews, cache_activations
from transferkit.training.recipes import Recipe


@pytest.fixture(scope="session")
def mobilenet():
    keras.utils.set_random_seed(0)
    return build_transfer_model("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None)


def test_prefix_then_suffix_is_the_model_and_shares_its_weights(mobilenet):
    prefix, suffix = mobilenet.split_at("block_5_add")
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(suffix.predict(prefix.predict(x, verbose=0), verbose=0),
                               mobilenet.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    model_vars = {id(v) for v in mobilenet.weights}
    assert all(id(v) in model_vars for v in prefix.weights + suffix.weights)
    assert prefix.output_shape == (None, 12, 12, 32)  # 96 px inside, stride 8


def test_cached_activations_are_float16_and_mirror_on_request(mobilenet):
    prefix, _ = mobilenet.split_at("block_5_add")
    x = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    plain, mirrored = cache_activations(prefix, x), cache_activations(prefix, x, flip=True)
    assert plain.dtype == np.float16
    np.testing.assert_allclose(mirrored, cache_activations(prefix, x[:, :, ::-1]), atol=1e-3)


def test_shift_moves_each_sample_within_reach_and_reflects_borders():
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(64, 6, 6, 2)).astype(np.float32)
    out = crop_flip(batch, np.random.default_rng(1), pad=1, flip=False)  # what ShiftedViews uses
    padded = np.pad(batch, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    for i in range(len(batch)):  # every sample is one of the 9 crops of its padded self
        assert any(np.array_equal(out[i], padded[i, dy:dy + 6, dx:dx + 6])
                   for dy in range(3) for dx in range(3))
    assert not np.array_equal(out, batch)  # some moved


def test_shifted_views_cover_every_sample_once_per_epoch_with_its_label():
    views = [np.arange(10, dtype=np.float16).reshape(10, 1, 1, 1) * np.ones((1, 4, 4, 1), np.float16)]
    views.append(-views[0])  # the "mirror" view: negated, to tell them apart
    labels = np.arange(10) % 3
    ds = ShiftedViews(views, labels, 4, shift=1, seed=0)
    seen = []
    for i in range(len(ds)):
        x, y = ds[i]
        ids = np.abs(x[:, 0, 0, 0]).astype(int)  # constant maps: shifting keeps the value
        assert (labels[ids] == y).all()
        seen += ids.tolist()
    assert sorted(seen) == list(range(10)) and len(ds) == 3


def test_fine_tune_caches_the_frozen_prefix_by_default(tiny, tmp_path):
    # MobileNetV2's own cut, fed 32 px rather than upscaled to 96 (the cut does not depend
    # on the size; PyTorch computes 9x less) and without the head stage (not checked here).
    keras.utils.set_random_seed(0)
    model = build_transfer_model("mobilenet_v2", 3, input_shape=tiny.image_shape, weights=None,
                                 image_size=32)
    base = find_backbone(model)
    frozen_before = base.get_layer("block_5_project").get_weights()[0].copy()
    trained_before = base.get_layer("block_6_expand").get_weights()[0].copy()
    run = fine_tune(model, tiny, epochs=2, seed=0, verbose=0, run_dir=tmp_path / "ft",
                    head_first=False)
    assert run.config["recipe"]["cached_prefix"] == "block_5_add"
    assert run.config["recipe"]["phases"] is None and run.timings["features"] > 0
    np.testing.assert_array_equal(base.get_layer("block_5_project").get_weights()[0], frozen_before)
    # Four steps of a short run peak at 3/31 of the rate: the change is small, but a change.
    assert not np.array_equal(base.get_layer("block_6_expand").get_weights()[0], trained_before)
    reloaded = load_model(tmp_path / "ft" / "model.keras")
    np.testing.assert_allclose(reloaded.predict(tiny.x_test, verbose=0),
                               model.predict(tiny.x_test, verbose=0), rtol=1e-5, atol=1e-6)


def test_cache_prefix_choices_are_checked(tiny):
    # The choices are the recipe's logic, not MobileNetV2's: a two-block CNN checks them.
    model = small_transfer_model(tiny)
    run = fine_tune(model, tiny, epochs=1, verbose=0, unfreeze=SMALL_PREFIX, cache_prefix=False,
                    head_first=False)
    assert run.config["recipe"]["cached_prefix"] is None
    with pytest.raises(ConfigurationError, match="no part of the backbone stays frozen"):
        fine_tune(model, tiny, epochs=1, verbose=0, unfreeze="all", cache_prefix=True,
                  head_first=False)
    with pytest.raises(ConfigurationError, match="cache_prefix"):
        fine_tune(model, tiny, epochs=1, verbose=0, unfreeze=SMALL_PREFIX, cache_prefix="yes",
                  head_first=False)
    classic = fine_tune(model, tiny, epochs=1, verbose=0, unfreeze=6, head_first=False)  # classic: no cache
    assert classic.config["recipe"]["cached_prefix"] is None
    cached = fine_tune(model, tiny, epochs=1, verbose=0, unfreeze=SMALL_PREFIX, head_first=False)
    assert cached.config["recipe"]["cached_prefix"] == SMALL_PREFIX  # "auto" caches this cut


def test_photo_augmentation_feeds_images_and_says_why(tiny, caplog):
    # Random-resized crops change what the frozen layers see every epoch: "auto" falls
    # back to images with a log line, True is refused with the reason.
    model = small_transfer_model(tiny)
    with caplog.at_level(logging.INFO, logger="transferkit"):
        run = fine_tune(model, tiny, epochs=1, verbose=0, augment="photo", head_first=False,
                        unfreeze=SMALL_PREFIX)
    assert run.config["recipe"]["cached_prefix"] is None
    assert run.config["recipe"]["augment"] == "photo" and run.config["augment"] == "photo"
    assert "Feeding the images every epoch" in caplog.text and "augment='photo'" in caplog.text
    with pytest.raises(ConfigurationError, match="augment='photo' crops and rescales"):
        fine_tune(model, tiny, epochs=1, verbose=0, augment="photo", cache_prefix=True,
                  head_first=False, unfreeze=SMALL_PREFIX)
    with pytest.raises(ConfigurationError, match="augment must be"):
        fine_tune(model, tiny, epochs=1, verbose=0, augment="crop", head_first=False)


def test_recipe_records_which_augmentation_ran(tiny):
    choices = {"base_lr": 1e-3, "base_batch": 256, "warmup": 0.0, "weight_decay": 0.0,
               "optimizer": "adamw"}
    recorded = {a: Recipe.resolve(tiny, augment=a, **choices).record()["augment"]
                for a in (True, "flip", "photo", False)}
    assert recorded == {True: "crop+flip", "flip": "flip", "photo": "photo", False: None}



@pytest.fixture
def streamed_photos(tmp_path):
    """3 colour classes of 32-px PNG files, 12 each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(["a", "b", "c"]):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(12):
            image = rng.integers(0, 90, (32, 32, 3), np.uint8)
            image[..., c] += 150
            Image.fromarray(image).save(tmp_path / "photos" / name / f"{i}.png")
    return tmp_path / "photos"


@pytest.mark.filterwarnings("ignore:Few training images")
def test_activations_of_streamed_images_go_to_disk_and_equal_those_in_memory(mobilenet,
                                                                             streamed_photos):
    from transferkit._diskarray import is_on_disk
    from transferkit.data.folder import load_image_folder

    streamed = load_image_folder(streamed_photos, image_size=None, in_memory=False)
    in_memory = load_image_folder(streamed_photos, image_size=None, in_memory=True)
    prefix, _ = mobilenet.split_at("block_5_add")
    on_disk = cache_activations(prefix, streamed.x_train, flip=True)
    assert is_on_disk(on_disk) and on_disk.dtype == np.float16
    np.testing.assert_array_equal(on_disk, cache_activations(prefix, in_memory.x_train, flip=True))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Few training images")
def test_fine_tune_on_a_streamed_folder_trains_on_activations_on_disk(streamed_photos):
    from transferkit.data.folder import load_image_folder

    streamed = load_image_folder(streamed_photos, image_size=None, in_memory=False)
    model = build_transfer_model("mobilenet_v2", streamed, weights=None)
    run = fine_tune(model, streamed, epochs=1, seed=0, verbose=0, cache_prefix=True)
    assert run.config["recipe"]["cached_prefix"] == "block_5_add"
    assert len(run.evaluation.y_true) == len(streamed.y_test) and run.epochs_run == 1


def _slow_suffix(monkeypatch, seconds: float) -> list[int]:
    """Every timed suffix step "takes" ``seconds`` (a slow machine, made deterministic);
    the lengths of the batches the prefix runs on are recorded."""
    from transferkit.training import cached_prefix

    monkeypatch.setattr(cached_prefix, "step_time", lambda *args, **kwargs: seconds)
    passes = []
    real = cached_prefix.cache_activations
    monkeypatch.setattr(cached_prefix, "cache_activations",
                        lambda prefix, x, **kw: passes.append(len(x)) or real(prefix, x, **kw))
    return passes


@pytest.mark.parametrize("cache_prefix, costs", [
    (True, r"caching the frozen prefix's activations would take about .*before caching"),
    ("auto", r"an epoch \(feeding the images; caching would leave less time\) would take"),
])
def test_a_budget_too_short_for_one_epoch_is_refused_before_caching(tiny, monkeypatch,
                                                                    cache_prefix, costs):
    # Each 100-s step leaves no room for an epoch either way. Required, the cache is
    # weighed; on "auto", caching cannot pay within 60 s, so feeding the images is. The
    # refusal comes after the probe's two prefix passes (one batch), before any caching.
    from transferkit.errors import BudgetTooShortError

    passes = _slow_suffix(monkeypatch, 100.0)
    model = build_transfer_model("mobilenet_v2", 3, input_shape=tiny.image_shape, weights=None)
    with pytest.raises(BudgetTooShortError, match=costs) as err:
        fine_tune(model, tiny, budget=60, head_first=False, verbose=0, cache_prefix=cache_prefix)
    assert passes == [64, 64] and len(tiny.y_train) > 64  # the probe's batch, twice; no caching
    assert int(str(err.value).split("budget=")[1].split(")")[0]) > 100  # one 100-s epoch at least


def test_a_budget_that_holds_under_two_epochs_feeds_the_images_instead_of_caching(
        tiny, monkeypatch, caplog):
    # Caching both views costs two passes of the prefix: with the estimates made so
    # that the budget holds one epoch without caching and none after it, the run
    # trains on the images, its prefix frozen, and records that nothing was cached.
    from transferkit.training import cached_prefix

    monkeypatch.setattr(cached_prefix, "views_that_pay", lambda *args, **kwargs: 0)
    model = small_transfer_model(tiny)
    base = find_backbone(model)
    frozen_before = base.get_layer("block1_conv1").get_weights()[0].copy()
    with caplog.at_level(logging.INFO, logger="transferkit"):
        run = fine_tune(model, tiny, budget=120, head_first=False, epochs=1, verbose=0,
                        unfreeze=SMALL_PREFIX)
    assert run.config["recipe"]["cached_prefix"] is None and run.epochs_run == 1
    assert run.config["recipe"]["cached_views"] is None
    assert "features" not in run.timings  # nothing was cached
    assert "Feeding the images every epoch, not caching the frozen prefix" in caplog.text
    np.testing.assert_array_equal(base.get_layer("block1_conv1").get_weights()[0], frozen_before)
    assert len(run.evaluation.y_true) == len(tiny.y_test)


def test_a_short_budget_caches_the_images_without_their_mirror_images(tiny, monkeypatch, caplog):
    # Where the mirror view's pass would cost more epochs than its flips are worth
    # (views_that_pay: 1), the prefix runs once per training image, not twice, and
    # the suffix trains on that one view; the run records it.
    from transferkit.training import cached_prefix

    monkeypatch.setattr(cached_prefix, "views_that_pay", lambda *args, **kwargs: 1)
    passes = []
    real = cached_prefix.cache_activations
    monkeypatch.setattr(cached_prefix, "cache_activations",
                        lambda prefix, x, **kw: passes.append((len(x), kw.get("flip", False)))
                        or real(prefix, x, **kw))
    model = small_transfer_model(tiny)
    with caplog.at_level(logging.INFO, logger="transferkit"):
        run = fine_tune(model, tiny, budget=120, head_first=False, epochs=2, verbose=0,
                        unfreeze=SMALL_PREFIX)
    recipe = run.config["recipe"]
    assert recipe["cached_prefix"] == SMALL_PREFIX and recipe["cached_views"] == 1
    cached = passes[1:]  # after the budget's one timed probe batch
    assert (len(tiny.y_train), False) in cached and not any(flip for _, flip in cached)
    assert "ran once per image (no mirror images" in caplog.text
    assert run.epochs_run == 2 and len(run.evaluation.y_true) == len(tiny.y_test)
