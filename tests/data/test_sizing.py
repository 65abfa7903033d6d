"""The image size chosen from the data, header sizes, class-count warnings, the validation floor."""

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from transferkit.data.checks import warn_about_counts
from transferkit.data.folder import MIN_VALIDATION, load_image_folder
from transferkit.data.images import sample_sizes, stored_size
from transferkit.data.sizing import NATIVE_SIZE, choose_image_size
from transferkit.models.builders import build_transfer_model


def _jpeg(h, w, orientation=None):
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_header_sizes_are_upright_and_unreadable_files_are_left_out():
    assert stored_size(_jpeg(30, 50)) == (30, 50)
    assert stored_size(_jpeg(30, 50, orientation=6)) == (50, 30)  # a phone photo turned 90 degrees
    reads = [lambda: _jpeg(30, 50), lambda: b"not an image", lambda: _jpeg(40, 40)]
    assert sample_sizes(reads) == [(30, 50), (40, 40)]
    assert len(sample_sizes([lambda: _jpeg(8, 8)] * 1000, limit=50)) == 50


@pytest.mark.parametrize("sizes, stored, fed", [
    ([(32, 32)] * 5, 32, None),                  # CIFAR-like: kept, the model upscales to 96
    ([(128, 128)] * 5, 128, 160),                # the flower photos: kept, fed at 160
    ([(480, 640), (3000, 4000), (375, 500)], NATIVE_SIZE, None),  # phone photos: decoded to 224
    ([(100, 900), (90, 300), (120, 120)], 100, 128),  # short sides decide; 125 rounds up to 128
    ([(200, 200)], 200, 224),                    # never above the native size
])
def test_size_rules(sizes, stored, fed):
    choice = choose_image_size(sizes)
    assert (choice.image_size, choice.model_size) == (stored, fed)
    assert str(choice.image_size) in choice.reason or "kept at their size" in choice.reason


def test_small_images_in_a_small_set_are_decoded_to_128():
    small = choose_image_size([(32, 32)], n_images=9_999)
    assert (small.image_size, small.model_size, small.source_side) == (128, None, 32)
    large = choose_image_size([(32, 32)], n_images=50_000)
    assert (large.image_size, large.model_size) == (32, None)  # the model upscales to 96
    assert choose_image_size([(128, 128)], n_images=500).model_size == 160  # photos: unchanged


def test_extreme_sizes_warn_with_advice():
    with pytest.warns(UserWarning, match="tiny.*build_baseline_cnn"):
        choose_image_size([(12, 12)])
    with pytest.warns(UserWarning, match="large.*Shrink a copy"):
        choose_image_size([(3000, 4000)])
    with pytest.raises(ValueError, match="at least one"):
        choose_image_size([])


def _photo_tree(root, per_class, size):
    for c in ("ant", "bee"):
        (root / c).mkdir(parents=True)
        for k in range(per_class):
            (root / c / f"{k}.jpg").write_bytes(_jpeg(*size))
    return root


def test_auto_size_is_recorded_and_feeds_the_model(tmp_path):
    with pytest.warns(UserWarning, match="Few training images"):  # 12 a class: advice
        data = load_image_folder(_photo_tree(tmp_path / "p", 12, (120, 160)))
    assert data.image_shape == (120, 120, 3)
    assert data.provenance["size_choice"]["model_size"] == 160
    model = build_transfer_model("mobilenet_v2", data, weights=None)
    assert model.input_shape == (None, 120, 120, 3) and model.resize_size == 160
    fixed = build_transfer_model("mobilenet_v2", data, weights=None, image_size=192)
    assert fixed.resize_size == 192  # an explicit size wins over the data's choice


def test_a_small_folder_gets_a_validation_split_big_enough_to_choose_with(tmp_path):
    data = load_image_folder(_photo_tree(tmp_path / "p", 150, (40, 40)), image_size=16)
    pool = 300 - len(data.y_test)
    assert len(data.y_val) >= 0.25 * pool - 2  # 10 % would be 27 images; capped at a quarter
    many = load_image_folder(_photo_tree(tmp_path / "q", 700, (8, 8)), image_size=8)
    assert abs(len(many.y_val) - 140) <= 2  # large sets keep their 10 %: above MIN_VALIDATION
    assert len(many.y_val) > MIN_VALIDATION


def test_class_count_warnings():
    with pytest.warns(UserWarning) as caught:
        warn_about_counts(np.array([0] * 60 + [1] * 15 + [2] * 5), ("a", "b", "c"))
    text = " ".join(str(w.message) for w in caught)
    assert "c (5)" in text and "b (15)" not in text  # only classes under 10
    assert "a has 60 training images, c 5 (12.0x)" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # balanced and big enough: silent
        assert warn_about_counts(np.array([0] * 20 + [1] * 30), ("a", "b")) == []
