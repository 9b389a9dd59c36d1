"""Datasets: the embedded shapes, local files, the CIFAR-10 reader, and validation of each bad input."""

import gzip
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import gan_lib
from conftest import ROOT, offline_env
from gan_lib import data


def test_shapes_dataset_is_made_here_the_same_every_time():
    x, y = gan_lib.make_shapes(200, seed=4)
    x2, y2 = gan_lib.make_shapes(200, seed=4)
    assert x.shape == (200, 32, 32, 3) and x.dtype == np.uint8
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert set(y) == set(range(10)) == set(range(len(gan_lib.SHAPES_CLASSES)))
    assert x.max() > 200  # shapes are bright on a dark background
    assert np.median(x) < 60


def test_load_real_samples_scales_to_minus_one_one():
    x = gan_lib.load_real_samples("shapes", limit=50)
    assert x.shape == (50, 32, 32, 3) and x.dtype == np.float32
    assert -1 <= x.min() < -0.9 and 0.9 < x.max() <= 1


def test_npz_and_folder_and_grayscale(tmp_path):
    x, _ = gan_lib.make_shapes(12)
    np.savez(tmp_path / "mine.npz", x=x)
    assert gan_lib.load_real_samples(str(tmp_path / "mine.npz")).shape == (12, 32, 32, 3)
    np.savez(tmp_path / "gray.npz", x=x[..., 0])  # (N, H, W)
    assert gan_lib.load_real_samples(str(tmp_path / "gray.npz")).shape == (12, 32, 32, 1)
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(x[i]).save(folder / ("sub" if i % 2 else ".") / f"{i}.png")
    got = gan_lib.load_images(str(folder))
    assert got.shape == (5, 32, 32, 3) and got.dtype == np.uint8


def fake_cifar_batch(path, n, seed):
    """A batch file in the official python format: a pickled dict with bytes keys."""
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"test", b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return batch[b"data"]


def test_cifar10_reader_through_the_keras_cache(tmp_path, monkeypatch):
    folder = tmp_path / "datasets" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = [fake_cifar_batch(folder / f"data_batch_{i}", 3, i) for i in range(1, 6)]
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    x = gan_lib.load_images("cifar10")  # the same call as load_real_samples("cifar10")
    assert x.shape == (15, 32, 32, 3) and x.dtype == np.uint8
    # rows hold 1024 reds, then 1024 greens, then 1024 blues
    assert np.array_equal(x[0, :, :, 0].ravel(), rows[0][0, :1024])
    assert np.array_equal(x[14, :, :, 2].ravel(), rows[4][2, 2048:])
    assert gan_lib.load_images(str(folder)).shape == (15, 32, 32, 3)  # a folder the user names


def test_cifar10_reader_refuses_pickles_that_run_code(tmp_path):
    for i in range(1, 6):
        with open(tmp_path / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": os.system}, f)
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch.*not allowed"):
        data.read_cifar10_folder(str(tmp_path))


def test_offline_cifar10_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(data.keras.utils, "get_file", no_network)
    with pytest.raises(gan_lib.DownloadError, match="--dataset shapes.*--dataset PATH"):
        gan_lib.load_real_samples("cifar10")


@pytest.mark.parametrize(
    "images,message",
    [
        (np.zeros((4, 32, 32, 3, 1), np.float32), "must be an array \\(N, H, W, C\\)"),
        (np.zeros((32, 32), np.float32), "must be an array"),
        (np.zeros((4, 32, 32, 4), np.float32), "1 or 3 channels"),
        (np.zeros((4, 3, 32, 32), np.float32), "channels-first"),
        (np.full((4, 32, 32, 3), 255, np.uint8), "uint8 images .* are not scaled"),
        (np.full((4, 32, 32, 3), 200.0, np.float32), "look like 0-255 pixels"),
        (np.full((4, 32, 32, 3), 1.5, np.float32), "must lie in \\[-1, 1\\]"),
        (np.full((4, 32, 32, 3), np.nan, np.float32), "NaN or infinite"),
        (np.linspace(0, 1, 4 * 32 * 32 * 3, dtype=np.float32).reshape(4, 32, 32, 3), r"scaled to \[0, 1\]"),
        (np.zeros((0, 32, 32, 3), np.float32), "at least 1 images, got 0"),
        (np.zeros((4, 32, 32, 3), np.int32), "dtype int32"),
    ],
)
def test_bad_images_raise_one_clear_error(images, message):
    with pytest.raises(ValueError, match=message):
        gan_lib.check_images(images)


def test_bad_files_raise_one_clear_error(tmp_path):
    np.savez(tmp_path / "wrong_key.npz", images=np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="has no array 'x' \\(it has images\\)"):
        gan_lib.load_images(str(tmp_path / "wrong_key.npz"))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="cannot be read as an .npz of plain arrays"):
        gan_lib.load_images(str(tmp_path / "objects.npz"))
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        gan_lib.load_images(str(tmp_path / "broken.npz"))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="is not an .npz"):
        gan_lib.load_images(str(tmp_path / "notes.txt"))
    with pytest.raises(ValueError, match="neither a known name"):
        gan_lib.load_images("cifar100")


def test_samples_have_the_tutorials_shapes_and_labels(shapes_small):
    rng = np.random.default_rng(0)
    x, y = gan_lib.generate_real_samples(shapes_small, 10, rng)
    assert x.shape == (10, 32, 32, 3) and y.shape == (10, 1) and (y == 1).all()
    z = gan_lib.generate_latent_points(7, 5, rng)
    assert z.shape == (5, 7) and z.dtype == np.float32
    a = gan_lib.generate_latent_points(7, 5, np.random.default_rng(1))
    b = gan_lib.generate_latent_points(7, 5, np.random.default_rng(1))
    assert np.array_equal(a, b)


def test_fake_samples_call_the_model_directly_not_predict():
    g = gan_lib.define_generator(8)

    def slow_predict(*args, **kwargs):
        raise AssertionError("predict costs tens of milliseconds per call")

    g.predict = slow_predict
    x, y = gan_lib.generate_fake_samples(g, 8, 4)
    assert x.shape == (4, 32, 32, 3) and (y == 0).all()


def test_mnist_from_the_keras_cache_is_padded_to_32(tmp_path, monkeypatch):
    cache = tmp_path / "datasets"
    cache.mkdir()
    digits = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.savez(cache / "mnist.npz", x_train=digits, y_train=np.arange(5), x_test=digits, y_test=np.arange(5))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    x = gan_lib.load_real_samples("mnist")
    assert x.shape == (5, 32, 32, 1)
    assert (x[:, :2] == -1).all() and (x[:, :, -2:] == -1).all()  # a black border
    assert np.allclose(x[:, 2:30, 2:30, 0], digits / 127.5 - 1, atol=1e-6)


def fake_fashion_mnist_cache(keras_home, n=6):
    """The four gzipped IDX files keras.datasets.fashion_mnist reads, in KERAS_HOME/datasets/fashion-mnist."""
    folder = keras_home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    images = np.random.default_rng(3).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    for split, x in (("train", images), ("t10k", 255 - images)):  # gan_lib trains on the training split
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels.tobytes())
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes())
    return images


LOAD_FASHION = """
import os, sys
import numpy as np
import gan_lib
if len(sys.argv) > 2:
    os.environ["KERAS_HOME"] = sys.argv[2]  # set after import, as a notebook cell might
np.save(sys.argv[1], gan_lib.load_real_samples("fashion_mnist"))
"""


def load_fashion_offline(tmp_path, *args):
    """gan_lib.load_real_samples('fashion_mnist') in a fresh process with no network; its array or an error."""
    env, _ = offline_env(tmp_path)
    result = subprocess.run([sys.executable, "-c", LOAD_FASHION, str(tmp_path / "x.npy"), *args], cwd=ROOT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **env), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return np.load(tmp_path / "x.npy")


def test_fashion_mnist_from_the_keras_cache_is_padded_to_32(tmp_path):
    """Keras fixes its cache folder when it is imported, so this runs in a process started with KERAS_HOME."""
    clothes = fake_fashion_mnist_cache(tmp_path / "home" / ".keras")  # offline_env's KERAS_HOME
    x = load_fashion_offline(tmp_path)
    assert x.shape == (6, 32, 32, 1) and x.dtype == np.float32
    assert (x[:, :2] == -1).all() and (x[:, -2:] == -1).all() and (x[:, :, :2] == -1).all() and (x[:, :, -2:] == -1).all()
    assert np.allclose(x[:, 2:30, 2:30, 0], clothes / 127.5 - 1, atol=1e-6)


def test_fashion_mnist_follows_keras_home_set_after_import_like_mnist(tmp_path):
    clothes = fake_fashion_mnist_cache(tmp_path / "later")
    x = load_fashion_offline(tmp_path, str(tmp_path / "later"))
    assert np.allclose(x[:, 2:30, 2:30, 0], clothes / 127.5 - 1, atol=1e-6)


def test_shapes_limit_keeps_the_first_n_of_the_same_set():
    full = gan_lib.load_real_samples("shapes")
    assert len(full) == 10000
    for n in (1, 37, 512):
        assert np.array_equal(gan_lib.load_real_samples("shapes", limit=n), full[:n])


def test_cache_paths_are_shown_by_the_setting_not_this_machines_folder(tmp_path, monkeypatch):
    """Saved outputs (notebooks, logs) name $KERAS_HOME or ~/.keras, not a machine's folder; other paths stay as given."""
    from gan_lib.datasets import cache_name

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    inside = str(tmp_path / "keras" / "gan_lib" / "classifier_shapes_v1_seed0.keras")
    assert cache_name(inside) == os.path.join("$KERAS_HOME", "gan_lib", "classifier_shapes_v1_seed0.keras")
    assert cache_name(str(tmp_path / "kerasx" / "a.npy")) == str(tmp_path / "kerasx" / "a.npy")  # a prefix, not inside
    monkeypatch.delenv("KERAS_HOME")
    home = os.path.join(os.path.expanduser("~"), ".keras", "gan_lib", "inception2015")
    assert cache_name(home) == os.path.join("~/.keras", "gan_lib", "inception2015")
