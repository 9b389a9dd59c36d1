"""Which classes a generator draws, and whether it copies its training images.

A small CNN classifier, trained once in seconds on a CPU and cached as a .keras file,
sorts generated images into the dataset's 10 classes: mode_count says how many
classes a generator covers and how far its class histogram is from the data's (the
stacked-MNIST way of counting modes); features() gives the classifier's penultimate
layer for a cheap Frechet distance. nearest_training and memorisation_score look for
generated images that sit closer to a training image than training images sit to
one another.

Images are float32 (N, 32, 32, C) in [-1, 1], as everywhere in gan_lib: C = 3 for
'shapes', C = 1 for 'mnist' and 'fashion_mnist' (padded to 32x32 by gan_lib).
"""

import math
import os
import time
import warnings

import keras
import numpy as np

from .data import DownloadError, _labelled, check_images, make_shapes, scale_images
from .files import atomic_path
from .plots import save_figure

RECIPE = "v1"  # part of the cache file's name: change it when the recipe below changes, so old files are not used
CHANNELS = {"shapes": 3, "mnist": 1, "fashion_mnist": 1}  # the datasets with a classifier, and their image channels
N_LABELLED = 6000  # labelled images per recipe; the last sixth is held out to measure accuracy
EPOCHS = 8
BATCH = 64
SHAPES_SEED = 1  # the classifier's shapes are make_shapes(N_LABELLED, seed=1), apart from the GAN's default seed=0 set
CONFIDENT = 0.9  # a prediction is confident when its top softmax probability reaches this
# Class counts of the MNIST training split (60,000 digits), for KL against the data; shapes (labels drawn uniformly)
# and Fashion-MNIST (6,000 per class) are uniform.
MNIST_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)

_LOADED = {}  # path -> ((mtime_ns, size), model): a file read once per process, read again when it changes


# ---------------------------------------------------------------- the classifier


def classifier_path(dataset="shapes", cache_dir=None, seed=0):
    """Where classifier(dataset) is cached: KERAS_HOME/gan_lib/ (default ~/.keras/gan_lib/) unless cache_dir is given.

    The name holds the dataset, the recipe version and the seed, e.g. classifier_shapes_v1_seed0.keras.
    """
    _check_dataset(dataset)
    if cache_dir is None:
        cache_dir = os.path.join(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "gan_lib")
    return os.path.join(os.fspath(cache_dir), f"classifier_{dataset}_{RECIPE}_seed{seed}.keras")


def classifier(dataset="shapes", cache_dir=None, seed=0, verbose=True):
    """A trained 10-class CNN for 32x32 images of `dataset` ('shapes', 'mnist' or 'fashion_mnist').

    Loaded from its cache file (classifier_path) when there is one; otherwise trained
    (about 10 s on a CPU), its held-out accuracy printed, and saved atomically. A cache
    file that cannot be read is trained again, with a warning. The same seed gives the
    same data, initial weights and batch order. Input float32 (N, 32, 32, C) in
    [-1, 1]; output softmax probabilities (N, 10); the layer before the last,
    'features', is what features() returns.
    """
    path = classifier_path(dataset, cache_dir, seed)
    model = _load(path)
    if model is None:
        start = time.perf_counter()
        model, accuracy, n_test = _train(dataset, seed)
        with atomic_path(path) as tmp:
            model.save(tmp)
        if verbose:
            print(f"trained the {dataset} classifier in {time.perf_counter() - start:.0f} s: held-out accuracy "
                  f"{accuracy:.1%} on {n_test} images; cached in {path}")
    return model


def classifier_accuracy(dataset="shapes", classifier=None, seed=0):
    """The classifier's accuracy on the held-out sixth of its recipe's labelled images (never trained on), in [0, 1]."""
    model = _model(dataset, classifier)
    _, _, x_test, y_test = _split(dataset, seed)
    return float(np.mean(_predict(model, x_test).argmax(axis=1) == y_test))


def _check_dataset(dataset):
    if dataset not in CHANNELS:
        raise ValueError(f"no mode-counting classifier for dataset {dataset!r}; choose one of {', '.join(CHANNELS)} "
                         "(CIFAR-10 needs a far larger network than one trained here in seconds)")


def _model(dataset, model):
    """The classifier given, or the cached one for dataset."""
    _check_dataset(dataset)
    return model if model is not None else classifier(dataset)


def _load(path):
    """The model cached at path, or None when there is no file or it cannot be read (with a warning)."""
    if not os.path.exists(path):
        return None
    stamp = (os.stat(path).st_mtime_ns, os.path.getsize(path))
    if path in _LOADED and _LOADED[path][0] == stamp:
        return _LOADED[path][1]
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # a truncated zip, a foreign file, an old Keras: all mean "train it again"
        warnings.warn(f"cached classifier {path} cannot be read ({type(e).__name__}: {e}); training it again",
                      stacklevel=3)
        return None
    _LOADED[path] = (stamp, model)
    return model


def _split(dataset, seed):
    """The recipe's labelled images, float32 (N, 32, 32, C) in [-1, 1] and int64 labels, as (x_train, y_train,
    x_test, y_test): the last sixth is held out."""
    if dataset == "shapes":
        x, y = make_shapes(N_LABELLED, seed=SHAPES_SEED + seed)
    else:
        try:
            x, y = _labelled(dataset)
        except DownloadError:
            raise DownloadError(
                f"the {dataset} classifier trains on {dataset}, which is not in the Keras cache "
                f"({os.environ.get('KERAS_HOME', '~/.keras')}/datasets) and could not be downloaded: are you offline? "
                "Use dataset='shapes', run once with internet, or pass classifier=your own trained model"
            ) from None
        x, y = x[:N_LABELLED], y[:N_LABELLED]
    x = scale_images(x, name=dataset)
    n_test = max(1, len(x) // 6)
    return x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:]


def _outliers(x, y, n, rng):
    """n images that belong to no class, float32 (n, H, W, C) in [-1, 1]: a third pixel noise in a random range,
    a third blocky noise (8x8-pixel squares), a third blends of two images of different classes (what a generator
    caught between two modes draws). Trained towards uniform probabilities, they teach the classifier to say
    'not sure' about garbage instead of naming a class with confidence."""
    _, h, w, c = x.shape
    k = n // 3
    lo = rng.uniform(-1, 0.5, (k, 1, 1, 1))
    noise = rng.uniform(lo, np.minimum(lo + rng.uniform(0.1, 1, (k, 1, 1, 1)), 1), (k, h, w, c))
    blocks = rng.uniform(-1, 1, (k, h // 8, w // 8, c)).repeat(8, axis=1).repeat(8, axis=2)
    i = rng.integers(0, len(x), n - 2 * k)
    j = np.array([rng.choice(np.flatnonzero(y != y[a])) for a in i], dtype=np.int64)  # another class each
    blends = (x[i] + x[j]) / 2
    return np.concatenate([noise, blocks, blends]).astype(np.float32)


def _build(channels, seed):
    """Three strided 3x3 convolutions (32 -> 16 -> 8 -> 4 pixels), a 64-unit 'features' layer, a 10-way softmax.

    Every initializer has its own seed, so the weights depend on `seed` alone, not on global random state.
    """
    def init(i):
        return keras.initializers.GlorotUniform(seed=seed * 100 + i)

    x_in = keras.Input((32, 32, channels))
    h = x_in
    for i, filters in enumerate((16, 32, 64)):  # (16, 16, 16) -> (8, 8, 32) -> (4, 4, 64)
        h = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", kernel_initializer=init(i))(h)
    h = keras.layers.Flatten()(h)  # (1024,)
    h = keras.layers.Dense(64, activation="relu", kernel_initializer=init(3), name="features")(h)
    out = keras.layers.Dense(10, activation="softmax", kernel_initializer=init(4), name="classes")(h)
    return keras.Model(x_in, out, name="classifier")


def _train(dataset, seed):
    """A fresh classifier trained on the recipe's images -> (model, held-out accuracy, held-out count)."""
    x_train, y_train, x_test, y_test = _split(dataset, seed)
    rng = np.random.default_rng([seed, 2])
    odd = _outliers(x_train, y_train, len(x_train) // 5, rng)
    x = np.concatenate([x_train, odd])
    targets = np.concatenate([np.eye(10, dtype=np.float32)[y_train], np.full((len(odd), 10), 0.1, np.float32)])
    model = _build(CHANNELS[dataset], seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))  # our own shuffle: fit's would draw from the backend's global seed
        model.fit(x[order], targets[order], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    accuracy = float(np.mean(_predict(model, x_test).argmax(axis=1) == y_test))
    return model, accuracy, len(x_test)


def _predict(model, x, batch=500):
    """model's outputs for x in batches, float64 numpy. Calls the model directly: predict() is slow per call."""
    parts = [keras.ops.convert_to_numpy(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)]
    return np.concatenate(parts).astype(np.float64)


def _images_for(model, images, name):
    """images checked (float [-1, 1], rank 4) and matched to the classifier's input size."""
    x = check_images(images, name=name)
    want = tuple(model.input_shape[1:])
    if x.shape[1:] != want:
        raise ValueError(
            f"{name}: images are {'x'.join(map(str, x.shape[1:]))} but the classifier takes "
            f"{'x'.join(map(str, want))}; use the dataset the generator was trained on (gan_lib pads MNIST "
            "and Fashion-MNIST to 32x32x1; 'shapes' is 32x32x3)"
        )
    return x


# ---------------------------------------------------------------- modes


def mode_count(images, dataset="shapes", classifier=None, threshold=0.01, reference=None):
    """How many of the dataset's classes a generator's images fall in, and how evenly.

    Each image is given the classifier's most probable class. A class is *found* when
    it gets at least max(1, ceil(threshold * N)) of the N images: with the default
    0.01, at least 1% of them, a tenth of the ~10% each class has in the data, so a
    few misclassified images do not make a mode (stacked-MNIST papers count a mode
    from a single sample among ~26,000; a minimum count is the same idea made robust).

    Returns a dict:
      classes_found: int, 0..10;
      histogram: int64 (10,), images per class;
      kl: KL(generated || data) in nats, sum over classes of p log(p / q), p the
          generated class shares, q the data's (uniform for shapes and Fashion-MNIST,
          MNIST's training counts for mnist, or `reference`: 10 counts or shares);
          q gets 1e-12 so a class missing from the reference cannot divide by zero;
          0 when the shares match, log(10/3) = 1.2 for 3 classes drawn evenly;
      confident: share of images whose top probability is >= 0.9; garbage (noise,
          blends of two classes) scores low: read it before trusting classes_found;
      min_count: the count a class needed.
    """
    model = _model(dataset, classifier)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold is the share of images a class needs to count as found, in (0, 1]; got {threshold}")
    probs = _predict(model, _images_for(model, images, "images"))  # (N, 10)
    n, k = probs.shape
    if reference is None:
        reference = MNIST_COUNTS if dataset == "mnist" and k == len(MNIST_COUNTS) else np.ones(k)
    q = np.asarray(reference, dtype=np.float64)
    if q.shape != (k,) or not np.isfinite(q).all() or (q < 0).any() or q.sum() <= 0:
        raise ValueError(f"reference must be {k} non-negative class counts or shares (e.g. np.bincount(labels, "
                         f"minlength={k})), got {np.asarray(reference).shape} values {np.asarray(reference)}")
    q = q / q.sum() + 1e-12
    histogram = np.bincount(probs.argmax(axis=1), minlength=k)
    p = histogram / n
    seen = p > 0  # 0 log 0 = 0
    min_count = max(1, math.ceil(threshold * n))
    return {
        "classes_found": int((histogram >= min_count).sum()),
        "histogram": histogram,
        "kl": float(np.sum(p[seen] * np.log(p[seen] / q[seen]))),
        "confident": float(np.mean(probs.max(axis=1) >= CONFIDENT)),
        "min_count": min_count,
    }


def conditional_accuracy(images, classes, dataset="shapes", classifier=None):
    """A conditional GAN's score: the share of its images the classifier puts in the class they were drawn for.

    images: float32 (N, 32, 32, C) in [-1, 1], drawn for classes int (N,) (the dataset's own
    class indices: SHAPES_CLASSES for shapes, digits for mnist, garments for fashion_mnist).
    Chance is 1/10. Returns {"accuracy": share, "per_class": share per class (10,), list}.
    """
    model = _model(dataset, classifier)
    classes = np.asarray(classes).reshape(-1)
    if len(classes) != len(images):
        raise ValueError(f"{len(classes)} classes for {len(images)} images; give the class each image was drawn for")
    right = _predict(model, _images_for(model, images, "images")).argmax(axis=1) == classes
    k = int(model.output_shape[-1])
    per_class = [float(right[classes == c].mean()) if (classes == c).any() else None for c in range(k)]
    return {"accuracy": float(right.mean()), "per_class": per_class}


def features(images, dataset="shapes", classifier=None):
    """The classifier's penultimate layer for each image: float64 (N, 64) for gan_lib's classifiers
    (the layer before the last of any classifier given), for a domain Frechet distance."""
    model = _model(dataset, classifier)
    x = _images_for(model, images, "images")
    return _predict(keras.Model(model.input, model.layers[-2].output), x)


# ---------------------------------------------------------------- memorisation


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
        model = _model(dataset, classifier)
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
