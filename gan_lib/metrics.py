"""How good are the fakes: FID and KID on Inception-v3 features, the way the field computes them.

FID (Heusel et al. 2017) fits a Gaussian to the 2048 pooled Inception-v3 features of the real and of the
fake images and reports the Frechet distance between the two: 0 for identical statistics, larger is worse.
KID (Binkowski et al. 2018) is the unbiased estimate of the squared MMD between the two feature sets with
the kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

Read these numbers with two caveats:

- The features come from Keras's ImageNet InceptionV3 weights, NOT the TF-2015 Inception graph
  (pt_inception-2015-12-05) that published FIDs use. Values are comparable between gan_lib runs measured
  the same way, not with numbers in papers.
- FID is biased by the sample size: fewer images give a larger FID, so compare runs at the same N
  (papers use 10,000 or 50,000). KID is unbiased: its mean does not depend on N, only its spread does.

Offline, weights="imagenet" needs the weights file already in the Keras cache; otherwise pass
weights=PATH to a copy of it (DownloadError says which file). weights=None gives random weights, for tests.
"""

import os

import keras
import numpy as np

from .datasets import check_images, download, keras_home

WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"  # what Keras's InceptionV3 fetches
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + WEIGHTS_FILE
WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"  # Keras's own hash of that file
SIZE = 299  # Inception-v3's input side
_MODELS = {}  # weights value -> the built feature model, built once


# ---------------------------------------------------------------- statistics (NumPy, float64)


def feature_stats(features, name="features"):
    """(N, d) features -> (mu (d,), sigma (d, d)): their mean and covariance, float64."""
    f = _check_features(features, name)
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))  # cov divides by N - 1


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Frechet distance between two Gaussians.

    Tr((S1 S2)^(1/2)) is computed as the sum of the singular values of S2^(1/2) S1^(1/2), with the square
    roots from eigh: their squares are the eigenvalues of S1^(1/2) S2 S1^(1/2), which has the eigenvalues
    of S1 S2. Exact for PSD inputs, real (no complex parts, as scipy.linalg.sqrtm of the non-symmetric S1 S2
    can give), and singular covariances (N < d) are fine: an SVD finds their zero directions to ~1e-16,
    where the square root of a rounded eigenvalue would add ~1e-8 per direction.
    """
    mu1, mu2 = (np.asarray(m, dtype=np.float64) for m in (mu1, mu2))
    s1, s2 = (np.asarray(s, dtype=np.float64) for s in (sigma1, sigma2))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must be vectors (d,) of one length, got shapes {mu1.shape} and {mu2.shape}")
    d = len(mu1)
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise ValueError(f"{name} must be a ({d}, {d}) covariance to match the means, got shape {s.shape}")
    for name, a in (("mu1", mu1), ("mu2", mu2), ("sigma1", s1), ("sigma2", s2)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds NaN or infinite values; check the features it came from")
    root1, root2 = _sqrtm_psd(s1, "sigma1"), _sqrtm_psd(s2, "sigma2")
    tr_covmean = np.linalg.svd(root2 @ root1, compute_uv=False).sum()  # = Tr((S1 S2)^(1/2))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def _sqrtm_psd(s, name):
    """The symmetric square root of a symmetric PSD matrix, via its eigendecomposition."""
    if not np.allclose(s, s.T, rtol=1e-6, atol=1e-12 * max(1.0, np.abs(s).max())):
        raise ValueError(f"{name} is not symmetric; pass a covariance matrix, e.g. np.cov(features, rowvar=False)")
    w, v = np.linalg.eigh(s)
    if w.min() < -1e-6 * max(abs(w).max(), 1e-300):
        raise ValueError(f"{name} is not positive semi-definite (eigenvalue {w.min():.3g}); pass a covariance matrix")
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # V diag(sqrt w) V^T


def fid_from_features(features1, features2):
    """FID between two feature sets (N1, d) and (N2, d): their Gaussians' Frechet distance."""
    f1, f2 = _check_pair(features1, features2)
    return frechet_distance(*feature_stats(f1), *feature_stats(f2))


def kid(features1, features2, subsets=100, subset_size=1000, rng=None):
    """KID between two feature sets (N1, d) and (N2, d) -> (mean, std) over `subsets` random subsets.

    Each subset draws m = min(subset_size, N1, N2) rows of each set without replacement and computes the
    unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3: the mean of k over distinct pairs within each set, minus
    twice its mean across the sets. It can be slightly negative when the sets match. rng: a seed or a
    np.random.Generator, for repeatable subsets. std is None where m is the whole of both sets (N1 = N2 <=
    subset_size): every subset would then be the same rows, so there is no spread to report, only the one score.
    """
    f1, f2 = _check_pair(features1, features2)
    if int(subsets) != subsets or subsets < 1 or int(subset_size) != subset_size or subset_size < 2:
        raise ValueError(f"subsets must be >= 1 and subset_size >= 2 (whole numbers), got {subsets} and {subset_size}")
    rng = np.random.default_rng(rng)
    m, d = min(int(subset_size), len(f1), len(f2)), f1.shape[1]
    whole = m == len(f1) == len(f2)  # each subset all of both sets: the same score every time
    scores = np.empty(1 if whole else int(subsets))
    for i in range(len(scores)):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))  # each (m, m)
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))  # i != j only
        scores[i] = within - 2 * k_xy.mean()
    return float(scores.mean()), None if whole else float(scores.std())


def _check_features(features, name):
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{name} must be an array (N, d) of N feature vectors, got shape {f.shape}")
    if len(f) < 2:
        raise ValueError(f"{name}: needs at least 2 samples to estimate a covariance, got {len(f)}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} holds NaN or infinite values; check the images they came from")
    return f


def _check_pair(features1, features2):
    f1, f2 = _check_features(features1, "features1"), _check_features(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"the two feature sets differ in width: {f1.shape[1]} and {f2.shape[1]}; "
                         "compute both with the same model")
    return f1, f2


# ---------------------------------------------------------------- Inception-v3 features


def inception_features(images, weights="imagenet", batch_size=50):
    """Images float32 (N, H, W, C) in [-1, 1], C = 1 or 3 -> pooled Inception-v3 features, float64 (N, 2048).

    Grey images are repeated to 3 channels; all are resized to 299 x 299 (bilinear). InceptionV3's own
    preprocess_input maps [0, 255] to [-1, 1] (mode "tf"), so our images go in as they are.
    weights: "imagenet" (downloaded once into the Keras cache), a PATH to that .h5 file, or None (random).
    """
    x = check_images(images, name="images")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size}")
    model = _feature_model(weights)
    out = []
    for start in range(0, len(x), int(batch_size)):
        batch = x[start:start + int(batch_size)]
        if batch.shape[-1] == 1:
            batch = np.repeat(batch, 3, axis=-1)  # grey -> RGB, as Inception wants 3 channels
        batch = keras.ops.image.resize(batch, (SIZE, SIZE), interpolation="bilinear")  # (n, 299, 299, 3)
        out.append(keras.ops.convert_to_numpy(model(batch, training=False)).astype(np.float64))
    return np.concatenate(out)


def _feature_model(weights):
    """InceptionV3 without its classifier, average-pooled to (2048,), float32; built once per weights value."""
    key = os.path.abspath(weights) if isinstance(weights, (str, os.PathLike)) and weights != "imagenet" else weights
    if key in _MODELS:
        return _MODELS[key]
    if weights == "imagenet":
        path = _imagenet_weights()
    elif weights is None:
        path = None
    elif isinstance(weights, (str, os.PathLike)):
        path = key
        if not os.path.isfile(path):
            raise ValueError(f"weights file {path} does not exist; pass the path of a copy of {WEIGHTS_FILE}, "
                             "or weights='imagenet' to use the Keras cache")
    else:
        raise ValueError(f"weights must be 'imagenet', None or the path of a weights .h5 file, got {weights!r}")
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")  # features in float32 even after set_precision(mixed_...)
    try:
        model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                               input_shape=(SIZE, SIZE, 3))
    finally:
        keras.mixed_precision.set_global_policy(policy)
    if path is not None:
        try:
            model.load_weights(path)
        except Exception as e:  # h5py, Keras and the OS raise many kinds; all mean a file that does not fit
            raise ValueError(f"weights file {path} could not be loaded into InceptionV3 without its top "
                             f"({type(e).__name__}: {e}); it should be a copy of {WEIGHTS_FILE}") from None
    _MODELS[key] = model
    return model


def _imagenet_weights():
    """The path of Keras's ImageNet weights file in the Keras cache (KERAS_HOME read now), downloading it once."""
    return download(WEIGHTS_FILE, WEIGHTS_URL, f"the Inception-v3 weights {WEIGHTS_FILE}", cache_subdir="models",
                    file_hash=WEIGHTS_MD5,
                    advice=f"Keras keeps it in {os.path.join(keras_home(), 'models')}; copy the file there, or pass "
                    "weights=PATH (on the command line --weights PATH) to a copy of it")


# ---------------------------------------------------------------- the scores on images


def fid(real_images, fake_images, weights="imagenet", batch_size=50):
    """FID between two image sets, float32 (N, H, W, C) in [-1, 1]; use the same N to compare runs."""
    return fid_from_features(inception_features(real_images, weights, batch_size),
                             inception_features(fake_images, weights, batch_size))


def kid_score(real_images, fake_images, weights="imagenet", subsets=100, subset_size=1000, rng=None, batch_size=50):
    """KID (mean, std) between two image sets, float32 (N, H, W, C) in [-1, 1]; see kid()."""
    return kid(inception_features(real_images, weights, batch_size),
               inception_features(fake_images, weights, batch_size), subsets, subset_size, rng)
