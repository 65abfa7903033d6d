"""Which files count as images, and how the empty-folder error names them."""

import numpy as np
import pytest
from PIL import Image

from transferkit.data.folder import load_image_folder
from transferkit.data.images import IMAGE_EXTENSIONS, PHOTO_EXTENSIONS
from transferkit.errors import DataError

NOT_IMAGES = {".h5", ".hdf", ".grib", ".bufr", ".mpeg", ".mpg", ".pdf", ".eps", ".ps"}


def test_photo_formats_are_accepted_and_data_video_and_documents_are_not():
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"} <= IMAGE_EXTENSIONS
    assert not NOT_IMAGES & IMAGE_EXTENSIONS
    assert set(PHOTO_EXTENSIONS) <= IMAGE_EXTENSIONS


def test_empty_folder_error_names_the_photo_formats_only(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images") as err:
        load_image_folder(tmp_path / "empty")
    message = str(err.value)
    assert ".jpg" in message and ".png" in message and ".webp" in message
    for ext in (".h5", ".grib", ".mpeg", ".bufr", ".apng"):
        assert ext not in message


def test_a_weights_file_in_a_class_folder_is_skipped_as_not_an_image(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(4):
            Image.fromarray(np.full((8, 8, 3), 40 * k, np.uint8)).save(tmp_path / cls / f"{k}.png")
    (tmp_path / "a" / "weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.warns(UserWarning) as record:
        data = load_image_folder(tmp_path, image_size=8, validation_split=0, test_split=0.5)
    messages = [str(w.message) for w in record]
    assert any("not images" in m and "weights.h5" in m for m in messages), messages
    assert not any("unreadable" in m for m in messages)
    assert len(data.y_train) + len(data.y_test) == 8
