"""Folders of photos: any size and mode, cropped or stretched to one square size, broken files skipped, the cache."""

import io
import os
import warnings

import numpy as np
import pytest
from PIL import Image

import gan_lib
from gan_lib import data, photos

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def noise(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def jpeg_bytes(image):
    buf = io.BytesIO()
    image.save(buf, "JPEG")
    return buf.getvalue()


def photo_folder(root):
    """Six readable images of mixed sizes, modes and formats in two class folders, and three broken files.

    In path order: cats/a.jpg, cats/b.png, cats/broken.jpg, cats/empty.png, dogs/c.bmp, dogs/d.gif,
    dogs/e.jpg, dogs/f.png, dogs/truncated.jpg (notes.txt is not an image file and is not counted).
    """
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    Image.fromarray(noise(80, 50)).save(root / "cats" / "a.jpg")  # RGB, 50 wide x 80 high
    Image.new("RGBA", (120, 90), (10, 20, 30, 255)).save(root / "cats" / "b.png")
    (root / "cats" / "broken.jpg").write_text("not a JPEG at all")
    (root / "cats" / "empty.png").write_bytes(b"")
    Image.new("L", (64, 64), 77).save(root / "dogs" / "c.bmp")
    Image.new("P", (30, 40), 3).save(root / "dogs" / "d.gif")
    Image.new("CMYK", (48, 40), (0, 255, 0, 0)).save(root / "dogs" / "e.jpg")  # magenta
    Image.fromarray(np.full((24, 20), 40000, np.uint16)).save(root / "dogs" / "f.png")  # 16-bit grey
    whole = jpeg_bytes(Image.fromarray(noise(64, 64, 1)))
    (root / "dogs" / "truncated.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    (root / "notes.txt").write_text("not an image file: left alone")
    return root


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache of the test's own: folder caches land here, never in ~/.keras."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def test_mixed_sizes_modes_and_formats_load_at_one_size_and_broken_files_are_skipped(tmp_path, keras_home):
    folder = photo_folder(tmp_path / "photos")
    lines = []
    with pytest.warns(UserWarning) as caught:
        x = gan_lib.load_images(str(folder), image_size=16, log=lines.append)
    assert x.shape == (6, 16, 16, 3) and x.dtype == np.uint8
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages  # one warning for all the broken files
    assert messages[0].startswith("skipped 3 of 9 files in ") and os.path.join("cats", "broken.jpg") in messages[0]
    assert len(lines) == 1 and "9 image files, 3 skipped -> uint8 (6, 16, 16, 3)" in lines[0] and " s, " in lines[0]
    assert tuple(x[1, 8, 8]) == (10, 20, 30)  # RGBA, opaque
    assert tuple(x[2, 8, 8]) == (77, 77, 77)  # greyscale in an RGB set: the grey repeated
    assert tuple(x[4, 8, 8]) == (255, 0, 255)  # CMYK magenta
    assert tuple(x[5, 8, 8]) == (156, 156, 156)  # 16 bits: 40000 / 257, not clipped to 255
    assert not list(keras_home.rglob("*.npy")), "9 files is a small folder: no cache"


def test_a_uniform_folder_at_its_own_size_comes_back_exactly(tmp_path):
    x = np.stack([noise(32, 32, i) for i in range(3)])
    for i, image in enumerate(x):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    assert np.array_equal(gan_lib.load_images(str(tmp_path)), x)  # the default size is the tutorial's 32
    assert gan_lib.load_images(str(tmp_path), image_size=16).shape == (3, 16, 16, 3)


def stripes(wide=True):
    """60 x 20 (or 20 x 60) pixels: thirds red, green, blue along the long side."""
    image = np.zeros((20, 60, 3), np.uint8)
    image[:, :20], image[:, 20:40], image[:, 40:] = RED, GREEN, BLUE
    return image if wide else image.transpose(1, 0, 2)


@pytest.mark.parametrize("wide", [True, False])
def test_crop_keeps_the_centre_and_stretch_keeps_everything(tmp_path, wide):
    Image.fromarray(stripes(wide)).save(tmp_path / "stripes.png")
    crop = data.read_image_folder(str(tmp_path), 10, "crop")[0].astype(int)
    inner = crop[2:-2, 2:-2]  # the edges may take a little colour from outside the square
    assert np.abs(inner - GREEN).max() <= 2, inner
    assert crop[5, 5].tolist() == list(GREEN)
    stretch = data.read_image_folder(str(tmp_path), 12, "stretch")[0].astype(int)
    first, last = (stretch[:, 1], stretch[:, -2]) if wide else (stretch[1], stretch[-2])  # along the long side
    assert np.abs(first - RED).max() <= 2 and np.abs(last - BLUE).max() <= 2
    assert np.abs(stretch[6, 6] - GREEN).max() <= 2


def test_greyscale_only_when_every_image_is_unless_channels_says(tmp_path):
    grey = tmp_path / "grey"
    grey.mkdir()
    Image.new("L", (20, 30), 50).save(grey / "a.png")
    Image.new("L", (40, 40), 90).save(grey / "b.jpg")
    Image.fromarray(np.full((30, 20), 40000, np.uint16)).save(grey / "c.png")
    x = data.read_image_folder(str(grey), 8)
    assert x.shape == (3, 8, 8, 1) and x.flags.c_contiguous
    assert x[:, 4, 4, 0].tolist() == [50, 90, 156]
    assert data.read_image_folder(str(grey), 8, channels=3).shape == (3, 8, 8, 3)
    Image.new("RGB", (30, 30), (200, 100, 0)).save(grey / "d.png")
    x = data.read_image_folder(str(grey), 8)
    assert x.shape == (4, 8, 8, 3) and x[0, 4, 4].tolist() == [50, 50, 50]
    x = data.read_image_folder(str(grey), 8, channels=1)
    assert x.shape == (4, 8, 8, 1) and x[3, 4, 4, 0] == round(200 * 0.299 + 100 * 0.587)  # Pillow's luma


def test_transparent_pixels_become_white(tmp_path):
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert data.read_image_folder(str(tmp_path), 8)[0, 4, 4].tolist() == [255, 255, 255]


def test_phone_photos_are_turned_upright_by_their_exif_orientation(tmp_path):
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20], image[:, 20:] = RED, BLUE  # stored sideways: red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to show"
    Image.fromarray(image).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    x = data.read_image_folder(str(tmp_path), 8, "stretch")[0].astype(int)
    assert np.abs(x[1] - RED).max() < 40 and np.abs(x[-2] - BLUE).max() < 40  # shown: red on top, blue below


def test_a_folder_with_no_readable_image_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        gan_lib.load_images(str(tmp_path / "empty"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_text("text")
    (broken / "b.png").write_bytes(b"")
    with warnings.catch_warnings(record=True) as said:  # one fact, one error: no "skipped" warning before it
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="none could be read"):
            gan_lib.load_images(str(broken))
    assert not said, [str(w.message) for w in said]


def test_limit_keeps_the_first_readable_images_and_threads_change_nothing(tmp_path):
    folder = photo_folder(tmp_path / "photos")
    with pytest.warns(UserWarning):
        every = data.read_image_folder(str(folder), 16, workers=1)
    with pytest.warns(UserWarning, match="skipped 2 of 6"):  # broken.jpg and empty.png come before the 4th image
        first = data.read_image_folder(str(folder), 16, limit=4, workers=3)
    assert np.array_equal(first, every[:4])
    with pytest.warns(UserWarning):
        assert np.array_equal(data.read_image_folder(str(folder), 16, workers=4), every)


def test_the_cache_is_reused_until_a_file_changes(tmp_path, keras_home, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(noise(30 + i, 40, i)).save(folder / f"{i}.png")
    lines = []
    first = data.read_image_folder(str(folder), 8, cache=True, log=lines.append)
    assert "cached in" in lines[-1] and len(list(keras_home.rglob("*.npy"))) == 1
    decode = photos._decode

    def no_decoding(*args):
        raise AssertionError("decoded a file although the cache holds the folder")

    monkeypatch.setattr(photos, "_decode", no_decoding)
    again = data.read_image_folder(str(folder), 8, cache=True, log=lines.append)
    assert np.array_equal(again, first) and "from the cache" in lines[-1]
    with pytest.raises(AssertionError, match="although the cache"):  # other options: another cache entry
        data.read_image_folder(str(folder), 8, "stretch", cache=True)
    Image.fromarray(noise(30, 40, 9)).save(folder / "0.png")  # a file changes: its size (and time) with it
    monkeypatch.setattr(photos, "_decode", decode)
    changed = data.read_image_folder(str(folder), 8, cache=True, log=lines.append)
    assert "cached in" in lines[-1] and not np.array_equal(changed[0], first[0])
    assert np.array_equal(changed[1:], first[1:])
    monkeypatch.setattr(photos, "_decode", no_decoding)
    assert np.array_equal(data.read_image_folder(str(folder), 8, cache=True), changed)


def test_large_folders_cache_by_default_and_a_damaged_cache_is_decoded_again(tmp_path, keras_home, monkeypatch):
    monkeypatch.setattr(photos, "CACHE_MIN_FILES", 3)
    folder = photo_folder(tmp_path / "photos")
    with pytest.warns(UserWarning, match="skipped 3"):
        x = gan_lib.load_images(str(folder), image_size=8)
    (npy,) = keras_home.rglob("*.npy")
    lines = []
    with pytest.warns(UserWarning, match="skipped 3 of 9"):  # still said when the cache answers
        assert np.array_equal(gan_lib.load_images(str(folder), image_size=8, log=lines.append), x)
    assert "from the cache" in lines[0]
    npy.write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(UserWarning, match="skipped 3"):
        assert np.array_equal(gan_lib.load_images(str(folder), image_size=8, log=lines.append), x)
    assert "cached in" in lines[-1]


def test_a_cache_that_cannot_be_written_is_a_warning_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the Keras cache would go")
    monkeypatch.setenv("KERAS_HOME", str(blocker))
    Image.new("RGB", (10, 10)).save(tmp_path / "a.png")
    with pytest.warns(UserWarning, match="could not cache"):
        assert data.read_image_folder(str(tmp_path), 8, cache=True).shape == (1, 8, 8, 3)


def test_named_datasets_keep_their_size_unless_image_size_is_set(tmp_path):
    x = gan_lib.load_images("shapes", limit=5)
    assert x.shape == (5, 32, 32, 3)
    big = gan_lib.load_images("shapes", limit=5, image_size=64)
    assert big.shape == (5, 64, 64, 3) and big.dtype == np.uint8
    halved = big.reshape(5, 32, 2, 32, 2, 3).mean(axis=(2, 4))  # 2 x 2 averages: back to 32 x 32
    assert np.abs(halved - x).mean() < 8  # the same pictures, larger
    assert gan_lib.load_images("shapes", limit=5, channels=1).shape == (5, 32, 32, 1)
    np.savez(tmp_path / "wide.npz", x=np.stack([stripes()] * 2))
    crop = gan_lib.load_images(str(tmp_path / "wide.npz"), image_size=10)
    assert crop.shape == (2, 10, 10, 3) and crop[0, 5, 5].tolist() == list(GREEN)
    stretch = gan_lib.load_images(str(tmp_path / "wide.npz"), image_size=10, resize="stretch")
    assert np.abs(stretch[0, 5, 0].astype(int) - RED).max() <= 2
    grey = gan_lib.load_real_samples(str(tmp_path / "wide.npz"), channels=1, image_size=8)
    assert grey.shape == (2, 8, 8, 1) and grey.dtype == np.float32
    grey = gan_lib.load_images(str(tmp_path / "wide.npz"), channels=1)  # image_size 0: their own size, 60 x 20
    assert grey.shape == (2, 20, 60, 1) and grey[0, 10, 30, 0] == round(255 * 0.587)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"image_size": -1}, "image_size must be a whole number"),
        ({"image_size": 16.0}, "image_size must be a whole number"),
        ({"resize": "pad"}, "resize must be one of crop, stretch"),
        ({"channels": 2}, "channels must be 0 .* 1 .* or 3"),
    ],
)
def test_bad_load_options_raise_one_clear_error(options, message):
    with pytest.raises(ValueError, match=message):
        gan_lib.load_images("shapes", limit=2, **options)


def cats_and_dogs_tree(root):
    """What extracting cats_and_dogs_filtered.zip leaves: train and validation, each with cats and dogs."""
    for split in ("train", "validation"):
        for animal, colour in (("cats", RED), ("dogs", BLUE)):
            colour = colour if split == "train" else GREEN  # validation photos must never be loaded
            (root / split / animal).mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40 + 10 * i, 30), colour).save(root / split / animal / f"{animal[:-1]}.{i}.jpg")


def no_download(*args, **kwargs):
    raise AssertionError("the test must not download")


@pytest.mark.parametrize("layout", [
    ("cats_and_dogs_filtered_extracted", "cats_and_dogs_filtered"),  # Keras 3.8 and later
    ("cats_and_dogs_filtered",),  # older Keras, extracted beside the zip
])
def test_cats_vs_dogs_loads_the_extracted_training_photos(layout, keras_home, monkeypatch):
    cats_and_dogs_tree(keras_home.joinpath("datasets", *layout))
    monkeypatch.setattr(data.keras.utils, "get_file", no_download)
    cats = gan_lib.load_images("cats_vs_dogs/cats", image_size=8)
    dogs = gan_lib.load_images("cats_vs_dogs/dogs", image_size=8)
    both = gan_lib.load_images("cats_vs_dogs", image_size=8)
    assert cats.shape == dogs.shape == (2, 8, 8, 3) and both.shape == (4, 8, 8, 3)
    assert (cats[..., 0] > 200).all() and (dogs[..., 2] > 200).all()  # only the training split's own animal
    assert np.array_equal(both, np.concatenate([cats, dogs]))


def test_cats_vs_dogs_offline_names_the_file_and_the_alternative(keras_home, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no route to host (test)")

    monkeypatch.setattr(data.keras.utils, "get_file", offline)
    with pytest.raises(gan_lib.DownloadError, match="cats_and_dogs_filtered.zip.*--dataset PATH"):
        gan_lib.load_images("cats_vs_dogs/cats")
    monkeypatch.setattr(data.keras.utils, "get_file", lambda *args, **kwargs: str(keras_home))  # "downloaded", no tree
    with pytest.raises(ValueError, match="holds no cats_and_dogs_filtered/train/cats"):
        gan_lib.load_images("cats_vs_dogs")


def test_folder_size_and_load_options_from_the_panel(tmp_path):
    panel = gan_lib.check_panel(dataset=str(tmp_path))
    assert data.folder_size(panel) == 32
    assert data.panel_load_options(panel) == {"image_size": 32, "resize": "crop", "channels": 0}
    assert data.panel_load_options(gan_lib.check_panel(dataset="cats_vs_dogs/cats"))["image_size"] == 32
    assert data.panel_load_options(gan_lib.check_panel(dataset="shapes"))["image_size"] == 0  # keeps its own
    assert data.folder_size(gan_lib.check_panel(dataset=str(tmp_path), arch="dcgan")) == 64  # the DCGAN's size
    assert data.folder_size(gan_lib.check_panel(dataset=str(tmp_path), arch="dcgan", image_size=32)) == 32
    panel = gan_lib.check_panel(dataset="shapes", image_size=64, resize="stretch", channels=1)
    assert data.folder_size(panel) == 64
    assert data.panel_load_options(panel) == {"image_size": 64, "resize": "stretch", "channels": 1}
