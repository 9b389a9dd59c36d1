"""Does a generator copy its training images? Nearest training images, and the share of samples that sit too close.

A sample counts as memorised when its nearest training image is as close as the closest
pairs of training images are to one another (memorisation_score); nearest_training and
plot_nearest show the neighbours. Distances are between flattened pixels, or between
the features of gan_lib's classifier (modes.features).

Images are float32 (N, H, W, C) in [-1, 1].
"""

import numpy as np

from .datasets import check_images
from .modes import features, resolve_classifier
from .plots import save_figure


def nearest_training(samples, training, k=1, space="pixels", dataset="shapes", classifier=None, chunk=256):
    """Each sample's k nearest training images -> (indices int64 (N, k), distances float64 (N, k)), nearest first.

    space='pixels': Euclidean distance between the flattened images; space='features': between
    their classifier features (features()). Ties go to the lower index. Samples are compared
    `chunk` at a time, so memory holds chunk x len(training) distances (256 x 10,000: 20 MB),
    never N x len(training).
    """
    a, b = _vectors(samples, training, space, dataset, classifier)
    if not (isinstance(k, (int, np.integer)) and 1 <= k <= len(b)):
        raise ValueError(f"k must be a whole number from 1 to the {len(b)} training images, got {k!r}")
    return _nearest(a, b, int(k), chunk)


def memorisation_score(samples, training, space="pixels", percentile=5, n_reference=500, seed=0,
                       dataset="shapes", classifier=None, chunk=256):
    """Share of samples, in [0, 1], that sit as close to a training image as the closest training pairs do.

    The yardstick: n_reference training images (a random subset, drawn with seed) each find
    their nearest *other* training image; t is the `percentile`-th percentile of those
    distances. A sample counts as memorised when its nearest training image is at most t
    away. With the 5th percentile, fresh images from the data's own distribution score
    about 0.05 (the rate at which a new draw lands that close by chance), exact copies
    score 1.0, so a score well above 0.05 means the generator reproduces training images.
    The median would put fresh images at 0.5, leaving little room above them.
    """
    a, b = _vectors(samples, training, space, dataset, classifier)
    if len(b) < 2:
        raise ValueError(f"training needs at least 2 images, to measure how close they sit to one another; got {len(b)}")
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must lie strictly between 0 and 100, got {percentile}")
    if n_reference < 1:
        raise ValueError(f"n_reference must be at least 1, got {n_reference}")
    ref = np.random.default_rng(seed).choice(len(b), min(n_reference, len(b)), replace=False)
    idx, dist = _nearest(b[ref], b, 2, chunk)  # (R, 2): the nearest is itself, unless a duplicate ties with it
    other = np.where(idx[:, 0] == ref, dist[:, 1], dist[:, 0])
    t = np.percentile(other, percentile)
    _, d = _nearest(a, b, 1, chunk)
    return float(np.mean(d[:, 0] <= t))


def _vectors(samples, training, space, dataset, classifier):
    """samples and training as rows of numbers: flattened pixels (N, H*W*C) or classifier features (N, 64)."""
    if space not in ("pixels", "features"):
        raise ValueError(f"space must be 'pixels' or 'features', got {space!r}")
    a = check_images(samples, name="samples")
    b = check_images(training, name="training")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"samples are {'x'.join(map(str, a.shape[1:]))} images but training images are "
                         f"{'x'.join(map(str, b.shape[1:]))}; compare images of one size and channel count")
    if space == "features":
        model = resolve_classifier(dataset, classifier)
        return features(a, dataset, model), features(b, dataset, model)
    return a.reshape(len(a), -1), b.reshape(len(b), -1)


def _nearest(a, b, k, chunk):
    """Rows of a (N, D) -> indices (N, k) and Euclidean distances (N, k) of their k nearest rows of b (M, D).

    Candidates come from |b|^2 - 2 a.b in float32 (|a|^2 is the same along a row, so it cannot change the
    ranking); their distances are then computed exactly in float64, so an exact copy is at distance 0.
    """
    if not (isinstance(chunk, (int, np.integer)) and chunk >= 1):
        raise ValueError(f"chunk must be a whole number of samples >= 1, got {chunk!r}")
    b32 = np.asarray(b, dtype=np.float32)
    b_sq = np.einsum("ij,ij->i", b32, b32, dtype=np.float64)  # (M,)
    indices = np.empty((len(a), k), dtype=np.int64)
    distances = np.empty((len(a), k), dtype=np.float64)
    for s in range(0, len(a), chunk):
        rows = np.asarray(a[s:s + chunk], dtype=np.float64)  # (c, D)
        score = b_sq[None, :] - 2.0 * (rows.astype(np.float32) @ b32.T)  # (c, M): squared distance minus |a|^2
        if k < len(b):
            top = np.argpartition(score, k - 1, axis=1)[:, :k]  # (c, k), in no order
        else:
            top = np.broadcast_to(np.arange(len(b)), score.shape)
        top = np.sort(top, axis=1)  # lower index first, so the stable sort below breaks ties by index
        exact = np.sqrt(((rows[:, None, :] - np.asarray(b[top], dtype=np.float64)) ** 2).sum(axis=-1))  # (c, k)
        order = np.argsort(exact, axis=1, kind="stable")
        indices[s:s + chunk] = np.take_along_axis(top, order, axis=1)
        distances[s:s + chunk] = np.take_along_axis(exact, order, axis=1)
    return indices, distances


def plot_nearest(samples, training, n=8, k=3, space="pixels", dataset="shapes", classifier=None, path=None):
    """A figure with one row per sample (the first n): the sample, then its k nearest training images, each
    titled with its distance. Saves a PNG when path is given (and closes the figure), else returns it to draw."""
    import matplotlib.pyplot as plt

    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"n is how many samples to show, a whole number >= 1; got {n!r}")
    n = min(n, len(samples))
    shown = check_images(samples, name="samples")[:n]
    train = check_images(training, name="training")
    idx, dist = nearest_training(shown, train, k=k, space=space, dataset=dataset, classifier=classifier)
    fig, axes = plt.subplots(n, k + 1, figsize=((k + 1) * 1.2, n * 1.3), squeeze=False)
    for r in range(n):
        row = [(shown[r], "sample")] + [(train[i], f"{d:.2f}") for i, d in zip(idx[r], dist[r])]
        for ax, (image, title) in zip(axes[r], row):
            picture = np.clip((image + 1) / 2, 0, 1)  # [-1, 1] -> [0, 1]
            ax.imshow(picture[..., 0] if picture.shape[-1] == 1 else picture, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.suptitle(f"samples and their nearest training images ({space})", fontsize=8)
    fig.tight_layout()
    if path:
        save_figure(fig, path)
    return fig
