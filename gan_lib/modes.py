"""Which classes a generator draws: a small classifier of the dataset's classes, mode counts, conditional accuracy.

A small CNN classifier, trained once in seconds on a CPU and cached as a .keras file,
sorts generated images into the dataset's 10 classes: mode_count says how many
classes a generator covers and how far its class histogram is from the data's (the
stacked-MNIST way of counting modes); features() gives the classifier's penultimate
layer for a cheap Frechet distance (and memorisation.py's feature distances).

Images are float32 (N, 32, 32, C) in [-1, 1], as everywhere in gan_lib: C = 3 for
'shapes', C = 1 for 'mnist' and 'fashion_mnist' (padded to 32x32 by gan_lib).
"""

import math
import os
import time
import warnings

import keras
import numpy as np

from .datasets import DownloadError, cache_name, check_images, keras_home, labelled_arrays, make_shapes, scale_images
from .files import atomic_path

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
        cache_dir = os.path.join(keras_home(), "gan_lib")
    return os.path.join(os.fspath(cache_dir), f"classifier_{dataset}_{RECIPE}_seed{seed}.keras")


_UNCACHED = {}  # classifier_path -> a classifier trained in this process whose cache file could not be written


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
    model = _UNCACHED[path] if path in _UNCACHED else _load(path)
    if model is None:
        start = time.perf_counter()
        model, accuracy, n_test = _train(dataset, seed)
        try:
            with atomic_path(path) as tmp:
                model.save(tmp)
            where = f"cached in {cache_name(path)}"
        except OSError as e:  # an unwritable KERAS_HOME: the model still serves this process
            where = "not cached"
            _UNCACHED[path] = model  # the next call in this process (evaluate's next metric) reuses it
            warnings.warn(f"could not cache the {dataset} classifier in {path} ({e.strerror or e}); it is used from "
                          "memory and trained again next time: set KERAS_HOME to a folder you can write", stacklevel=2)
        if verbose:
            print(f"trained the {dataset} classifier in {time.perf_counter() - start:.0f} s: held-out accuracy "
                  f"{accuracy:.1%} on {n_test} images; {where}")
    return model


def classifier_accuracy(dataset="shapes", classifier=None, seed=0):
    """The classifier's accuracy on the held-out sixth of its recipe's labelled images (never trained on), in [0, 1]."""
    model = resolve_classifier(dataset, classifier)
    _, _, x_test, y_test = _split(dataset, seed)
    return float(np.mean(_predict(model, x_test).argmax(axis=1) == y_test))


def _check_dataset(dataset):
    if dataset not in CHANNELS:
        raise ValueError(f"no mode-counting classifier for dataset {dataset!r}; choose one of {', '.join(CHANNELS)} "
                         "(CIFAR-10 needs a far larger network than one trained here in seconds)")


def resolve_classifier(dataset, model):
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
            x, y = labelled_arrays(dataset)
        except DownloadError:
            raise DownloadError(
                f"the {dataset} classifier trains on {dataset}, which is not in the Keras cache "
                f"({os.path.join(keras_home(), 'datasets')}) and could not be downloaded: are you offline? "
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
    model = resolve_classifier(dataset, classifier)
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
    model = resolve_classifier(dataset, classifier)
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
    model = resolve_classifier(dataset, classifier)
    x = _images_for(model, images, "images")
    return _predict(keras.Model(model.input, model.layers[-2].output), x)


