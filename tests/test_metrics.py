"""FID and KID: the statistics against closed forms and independent references, the Inception features end to
end (random weights: nothing is downloaded), and the errors for bad input and for no network."""

import socket
import time

import keras
import numpy as np
import pytest

import gan_lib
from gan_lib import metrics


def random_cov(rng, d):
    """A random full-rank covariance (d, d)."""
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def images(n, channels, seed=0, size=8):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype(np.float32)


# ---------------------------------------------------------------- Frechet distance


def test_frechet_of_identical_sets_is_zero():
    rng = np.random.default_rng(0)
    for n, d in ((200, 10), (20, 64)):  # the second has a singular covariance (N < d), as 150 images of 2048 do
        f = rng.standard_normal((n, d)) * 3 + 1
        assert abs(gan_lib.fid_from_features(f, f)) < 1e-6


def test_frechet_of_diagonal_gaussians_is_the_closed_form():
    rng = np.random.default_rng(1)
    d = 12
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = rng.uniform(0.1, 4, d), rng.uniform(0.1, 4, d)
    want = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(want, rel=1e-10)
    # moving a mean changes only the first term
    shift = np.arange(d) * 0.5
    moved = metrics.frechet_distance(mu1 + shift, np.diag(s1), mu2, np.diag(s2))
    assert moved - want == pytest.approx(np.sum((mu1 + shift - mu2) ** 2) - np.sum((mu1 - mu2) ** 2), rel=1e-10)
    assert metrics.frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0, abs=1e-10)


def test_frechet_matches_an_independent_reference_on_full_covariances():
    rng = np.random.default_rng(2)
    d = 20
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_cov(rng, d), random_cov(rng, d)
    # Tr((S1 S2)^(1/2)) from the general (non-symmetric) eigenvalues of S1 S2, which are real and positive
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real))
    want = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean
    got = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(want, rel=1e-6)
    try:
        from scipy.linalg import sqrtm  # a second reference when SciPy happens to be there (not a dependency)
    except ImportError:
        pass
    else:
        ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real)
        assert got == pytest.approx(ref, rel=1e-6)
    assert metrics.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(got, rel=1e-9)  # symmetric


def test_feature_stats_are_mean_and_covariance_in_float64():
    f = np.random.default_rng(3).standard_normal((30, 5)).astype(np.float32)
    mu, sigma = metrics.feature_stats(f)
    assert mu.dtype == sigma.dtype == np.float64 and mu.shape == (5,) and sigma.shape == (5, 5)
    centred = f.astype(np.float64) - f.astype(np.float64).mean(axis=0)
    assert np.allclose(sigma, centred.T @ centred / 29) and np.allclose(mu, f.mean(axis=0))


def test_frechet_refuses_bad_input():
    rng = np.random.default_rng(4)
    s = random_cov(rng, 4)
    with pytest.raises(ValueError, match=r"sigma2 must be a \(4, 4\) covariance"):
        metrics.frechet_distance(np.zeros(4), s, np.zeros(4), random_cov(rng, 3))
    with pytest.raises(ValueError, match="mu1 and mu2 must be vectors"):
        metrics.frechet_distance(np.zeros(4), s, np.zeros(3), s)
    with pytest.raises(ValueError, match="sigma1 is not symmetric"):
        metrics.frechet_distance(np.zeros(4), s + np.triu(np.ones((4, 4)), 1), np.zeros(4), s)
    with pytest.raises(ValueError, match="sigma2 is not positive semi-definite"):
        metrics.frechet_distance(np.zeros(4), s, np.zeros(4), -s)
    with pytest.raises(ValueError, match="at least 2 samples"):
        gan_lib.fid_from_features(np.ones((1, 4)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="differ in width: 4 and 3"):
        gan_lib.fid_from_features(np.ones((5, 4)), np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"must be an array \(N, d\)"):
        metrics.feature_stats(np.ones(5))


# ---------------------------------------------------------------- KID


def kernel(x, y):
    return (np.dot(x, y) / len(x) + 1) ** 3


def mmd2(x, y, unbiased):
    """MMD^2 by explicit loops: unbiased leaves out the i == j terms within each set (the U-statistic); the biased
    V-statistic keeps them."""
    m = len(x)
    within = sum(kernel(a[i], a[j]) for a in (x, y) for i in range(m) for j in range(m) if i != j or not unbiased)
    across = sum(kernel(x[i], y[j]) for i in range(m) for j in range(m))
    return within / (m * (m - 1) if unbiased else m * m) - 2 * across / (m * m)


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((7, 6)), rng.standard_normal((7, 6)) + 0.3
    mean, std = gan_lib.kid(x, y, subsets=1, subset_size=100)  # the subset is all 7 rows of each set
    assert mean == pytest.approx(mmd2(x, y, unbiased=True), rel=1e-10)
    assert std is None  # 100 subsets of all 7 rows would all score the same: no spread to report


def test_kid_has_a_spread_only_where_its_subsets_can_differ():
    # subsets as large as both sets used to report a spread of 0 (1e-16): one score, 100 times
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((40, 5)), rng.standard_normal((40, 5)) + 0.2
    assert gan_lib.kid(x, y, subsets=20, subset_size=40, rng=0)[1] is None
    assert gan_lib.kid(x, y, subsets=20, subset_size=20, rng=0)[1] > 0  # halves: a real spread
    assert gan_lib.kid(x, np.vstack([y, y]), subsets=20, subset_size=40, rng=0)[1] > 0  # one side is sampled


def test_kid_is_unbiased_where_the_v_statistic_is_not():
    # many small independent sample pairs from ONE distribution: the true MMD^2 is 0
    rng = np.random.default_rng(6)
    u, v = [], []
    for _ in range(1500):
        x, y = rng.standard_normal((10, 8)), rng.standard_normal((10, 8))
        u.append(gan_lib.kid(x, y, subsets=1, subset_size=10)[0])
        k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731
        v.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())  # the biased V-statistic
    se = np.std(u) / np.sqrt(len(u))
    assert abs(np.mean(u)) < 4 * se
    assert np.mean(v) > 20 * np.std(v) / np.sqrt(len(v))  # biased upwards, clearly


def test_kid_tells_same_from_shifted_and_repeats_with_a_seed():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    same = gan_lib.kid(a, b, subsets=50, subset_size=100, rng=1)
    assert abs(same[0]) < same[1]
    shifted = gan_lib.kid(a, b + 1, subsets=50, subset_size=100, rng=1)
    assert shifted[0] > 5 * shifted[1] > 0
    assert gan_lib.kid(a, b, subsets=5, subset_size=50, rng=3) == gan_lib.kid(a, b, subsets=5, subset_size=50, rng=3)
    assert gan_lib.kid(a, b, subsets=5, subset_size=50, rng=3) != gan_lib.kid(a, b, subsets=5, subset_size=50, rng=4)
    with pytest.raises(ValueError, match="subset_size >= 2"):
        gan_lib.kid(a, b, subset_size=1)
    with pytest.raises(ValueError, match="differ in width"):
        gan_lib.kid(a, b[:, :3])


# ---------------------------------------------------------------- Inception features


class Recorder:
    """Stands in for the Inception model: records each batch it is given, returns each image's mean and
    standard deviation, (n, 2)."""

    def __init__(self):
        self.batches = []

    def __call__(self, x, training=False):
        x = keras.ops.convert_to_numpy(x)
        self.batches.append(x)
        return np.stack([x.mean(axis=(1, 2, 3)), x.std(axis=(1, 2, 3))], axis=1)


def test_images_reach_inception_as_299_rgb_in_minus_one_one_in_batches(monkeypatch):
    recorder = Recorder()
    monkeypatch.setitem(metrics._MODELS, None, recorder)  # what weights=None will use, only in this test
    x = np.full((7, 8, 8, 1), -0.5, np.float32) + np.arange(7, dtype=np.float32)[:, None, None, None] * 0.1
    got = gan_lib.inception_features(x, weights=None, batch_size=3)
    assert [b.shape for b in recorder.batches] == [(3, 299, 299, 3), (3, 299, 299, 3), (1, 299, 299, 3)]
    seen = np.concatenate(recorder.batches)
    assert np.allclose(seen, x[:, :1, :1, :1], atol=1e-6)  # flat images stay flat: no rescaling of [-1, 1]
    assert got.dtype == np.float64 and np.allclose(got[:, 0], -0.5 + np.arange(7) * 0.1, atol=1e-6)  # in order


def test_inception_features_end_to_end_with_random_weights():
    grey = images(4, 1)
    f_grey = gan_lib.inception_features(grey, weights=None)
    f_colour = gan_lib.inception_features(images(4, 3, seed=1), weights=None)
    for f in (f_grey, f_colour):
        assert f.shape == (4, 2048) and f.dtype == np.float64 and np.isfinite(f).all()
    assert np.allclose(gan_lib.inception_features(np.repeat(grey, 3, axis=-1), weights=None), f_grey)
    assert metrics._feature_model(None) is metrics._feature_model(None)  # built once
    assert not np.allclose(f_grey, f_colour)


def test_fid_and_kid_on_images(monkeypatch):
    monkeypatch.setitem(metrics._MODELS, None, Recorder())  # 2 features: Frechet on 2048 would take seconds here
    a, b = images(30, 3, seed=2), images(30, 3, seed=3) * 0.5
    fa, fb = gan_lib.inception_features(a, weights=None), gan_lib.inception_features(b, weights=None)
    assert abs(gan_lib.fid(a, a, weights=None)) < 1e-9
    assert gan_lib.fid(a, b, weights=None) == pytest.approx(gan_lib.fid_from_features(fa, fb))
    assert gan_lib.fid_from_features(fa, fb) > 0.01
    assert gan_lib.kid_score(a, b, weights=None, subsets=3, subset_size=8, rng=0) == gan_lib.kid(fa, fb, 3, 8, rng=0)


def test_inception_features_refuses_bad_input():
    with pytest.raises(ValueError, match=r"images must be an array \(N, H, W, C\)"):
        gan_lib.inception_features(np.zeros((4, 8)), weights=None)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        gan_lib.inception_features(np.zeros((4, 8, 8, 2), np.float32), weights=None)
    with pytest.raises(ValueError, match=r"\[-1, 1\].*x / 127.5 - 1"):
        gan_lib.inception_features(images(4, 3) * 127.5 + 127.5, weights=None)
    with pytest.raises(ValueError, match="batch_size"):
        gan_lib.inception_features(images(4, 3), weights=None, batch_size=0)
    with pytest.raises(ValueError, match="weights must be 'imagenet', None or the path"):
        gan_lib.inception_features(images(4, 3), weights=3)


def test_weights_from_a_path(tmp_path):
    missing = tmp_path / "nothing_here.h5"
    with pytest.raises(ValueError, match=f"weights file {missing} does not exist.*{metrics.WEIGHTS_FILE}"):
        gan_lib.inception_features(images(2, 3), weights=str(missing))
    junk = tmp_path / "junk.h5"
    junk.write_text("not weights")
    with pytest.raises(ValueError, match=f"weights file {junk} could not be loaded"):
        gan_lib.inception_features(images(2, 3), weights=str(junk))
    # a legacy .h5 like the one Keras downloads, here holding the random model's weights
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "copy_of_notop.h5"
    with h5py.File(path, "w") as f:
        legacy.save_weights_to_hdf5_group(f, metrics._feature_model(None))
    x = images(3, 3, seed=4)
    gan_lib.set_precision("mixed_bfloat16")  # the features are float32 all the same
    try:
        got = gan_lib.inception_features(x, weights=path)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"  # and the policy is left as it was
    finally:
        gan_lib.set_precision("float32")
    assert np.allclose(got, gan_lib.inception_features(x, weights=None), rtol=1e-5, atol=1e-7)


def test_offline_imagenet_weights_fail_at_once_with_what_to_do(tmp_path, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    start = time.monotonic()
    with pytest.raises(gan_lib.DownloadError) as caught:
        gan_lib.inception_features(images(2, 3), weights="imagenet")
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "keras" / "models") in message and "weights=PATH" in message and "--weights PATH" in message
    assert isinstance(caught.value, OSError) and attempts  # it did try the network, and stopped there
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no partial download left behind
    assert "imagenet" not in metrics._MODELS
