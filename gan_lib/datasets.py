"""Image arrays: the named datasets and their downloads, the embedded shapes, and the checks every set passes.

Images are arrays (N, H, W, C), C = 1 or 3: uint8 in [0, 255] as stored, or float32 in
[-1, 1] as the models take them (scale_images). Downloads go into the Keras cache
(KERAS_HOME, default ~/.keras) once; `shapes` is drawn here and needs no network.
"""

import os
import pickle
import zipfile

import keras
import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


SHAPES_CLASSES = [
    f"{colour} {shape}"
    for colour in ("warm", "cool")
    for shape in ("disc", "square", "triangle", "ring", "cross")
]


# The TensorFlow tutorials' cats and dogs (about 70 MB): each name loads this part of the extracted zip as a folder.
CATS_DOGS = {"cats_vs_dogs": "train", "cats_vs_dogs/cats": "train/cats", "cats_vs_dogs/dogs": "train/dogs"}


NAMED = ("cifar10", "mnist", "fashion_mnist", "shapes", *CATS_DOGS)


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


FASHION_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"  # where Keras fetches Fashion-MNIST


CATS_DOGS_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"


class DownloadError(OSError):
    """A dataset could not be downloaded (no internet, or the server refused)."""


def make_shapes(n=10000, size=32, seed=0):
    """The offline default: n coloured shapes on dark noisy backgrounds.

    Returns (x, y): uint8 (n, size, size, 3) and int64 labels (n,) in 0..9, one
    per SHAPES_CLASSES entry (5 shapes x 2 colour families), so a generator's
    mode coverage can be counted. Made from `seed` alone: no files, no network.
    Image i depends only on (seed, i), so make_shapes(n)[0][:k] == make_shapes(k)[0]:
    a limit keeps the first k images of the same set.
    """
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    x = np.empty((n, size, size, 3), dtype=np.uint8)
    y = np.empty(n, dtype=np.int64)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        x[i] = rng.integers(0, 40, size=(size, size, 3))  # dark noise
        y[i] = rng.integers(0, 10)
        cx, cy = rng.uniform(0.35, 0.65, 2) * size
        r = rng.uniform(0.2, 0.32) * size
        dx, dy = xx - cx, yy - cy
        shape = y[i] % 5
        if shape == 0:  # disc
            mask = dx**2 + dy**2 <= r**2
        elif shape == 1:  # square
            mask = (abs(dx) <= r * 0.85) & (abs(dy) <= r * 0.85)
        elif shape == 2:  # triangle, point up
            mask = (dy <= r * 0.8) & (dy >= -r) & (abs(dx) <= (dy + r) * 0.6)
        elif shape == 3:  # ring
            d2 = dx**2 + dy**2
            mask = (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
        else:  # cross
            mask = ((abs(dx) <= r * 0.3) | (abs(dy) <= r * 0.3)) & (abs(dx) <= r) & (abs(dy) <= r)
        if y[i] < 5:  # warm: reds, oranges, yellows
            colour = [rng.uniform(200, 255), rng.uniform(40, 220), rng.uniform(0, 60)]
        else:  # cool: blues, cyans, greens
            colour = [rng.uniform(0, 60), rng.uniform(90, 230), rng.uniform(180, 255)]
        x[i][mask] = np.array(colour, dtype=np.uint8)
    return x, y.astype(np.int64)


def keras_home():
    """$KERAS_HOME or ~/.keras, read at each call (a notebook may set it after import)."""
    return os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))


def cache_name(path):
    """path as a message shows it: under the Keras cache, as $KERAS_HOME/... (where that is set) or ~/.keras/..., so a
    saved output names the setting, not this machine's folder; any other path as it is."""
    home = keras_home()
    if os.path.commonpath([os.path.abspath(path), os.path.abspath(home)]) != os.path.abspath(home):
        return path
    shown = "$KERAS_HOME" if "KERAS_HOME" in os.environ else "~/.keras"
    return os.path.join(shown, os.path.relpath(path, home))


def _keras_cache():
    return os.path.join(keras_home(), "datasets")


OFFLINE_ADVICE = ("Train on the embedded dataset instead (a quick first run: python -m gan_lib train --dataset shapes "
                  "--epochs 5), or give a local copy with --dataset PATH (an .npz holding uint8 `x`, a folder of "
                  "images, or an extracted cifar-10-batches-py folder)")


def download(fname, url, title, extract=False, advice=OFFLINE_ADVICE, **options):
    """keras.utils.get_file into the Keras cache (KERAS_HOME read now; cache_subdir 'datasets' unless options
    say otherwise) -> the local path. Any failure is one DownloadError: what, 'are you offline?', and the advice."""
    try:
        return keras.utils.get_file(fname, origin=url, extract=extract, cache_dir=keras_home(), **options)
    except Exception as e:  # urllib and Keras raise many kinds; all mean the same to a user
        why = " ".join(str(e).split())[:160] or type(e).__name__  # Keras raises a bare Exception with the URL's error
        raise DownloadError(f"could not download {title} ({why}); are you offline? {advice}") from None


def cifar10_folder():
    """The extracted CIFAR-10 python batches in the Keras cache, downloading them once."""
    cache = _keras_cache()
    for folder in (
        os.path.join(cache, "cifar-10-batches-py"),  # older Keras
        os.path.join(cache, "cifar-10-batches-py-target", "cifar-10-batches-py"),  # Keras 3.8+
    ):
        if os.path.exists(os.path.join(folder, "data_batch_1")):
            return folder
    path = download("cifar-10-batches-py-target", CIFAR10_URL, "CIFAR-10", extract=True)
    return os.path.join(path, "cifar-10-batches-py")


def cats_dogs_folder(dataset):
    """train, train/cats or train/dogs of cats_and_dogs_filtered.zip (TensorFlow's tutorials) in the Keras cache,
    downloaded and extracted once."""
    part = CATS_DOGS[dataset]
    cache = _keras_cache()
    roots = (
        os.path.join(cache, "cats_and_dogs_filtered_extracted", "cats_and_dogs_filtered"),  # Keras 3.8+
        os.path.join(cache, "cats_and_dogs_filtered"),  # older Keras extract beside the zip
    )
    for attempt in range(2):
        for root in roots:
            if os.path.isdir(os.path.join(root, "train", "cats")) and os.path.isdir(os.path.join(root, "train", "dogs")):
                return os.path.join(root, part)
        if attempt == 0:
            download("cats_and_dogs_filtered.zip", CATS_DOGS_URL, "cats_and_dogs_filtered.zip", extract=True)
    raise ValueError(f"cats_and_dogs_filtered.zip was downloaded but {cache} holds no cats_and_dogs_filtered/train/"
                     "cats and train/dogs; delete cats_and_dogs_filtered* there and try again")


class _ArraysOnly(pickle.Unpickler):
    """Unpickles the CIFAR batch dicts and refuses anything that could run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which is not allowed")


def read_cifar10_folder(folder, labels=False):
    """The 50,000 training images from data_batch_1..5 -> uint8 (N, 32, 32, 3).

    labels=True: (images, int64 labels (N,) in 0..9, CIFAR10_CLASSES' order).
    """
    parts, classes = [], []
    for i in range(1, 6):
        path = os.path.join(folder, f"data_batch_{i}")
        if not os.path.exists(path):
            raise ValueError(f"CIFAR-10 folder {folder!r} has no data_batch_{i}; extract cifar-10-python.tar.gz again")
        try:
            with open(path, "rb") as f:
                batch = _ArraysOnly(f, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            classes.append(np.asarray(batch[b"labels"], dtype=np.int64) if labels else None)
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path} is not a CIFAR-10 python batch ({e}); download it again") from None
        parts.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # rows are RRR..GGG..BBB
    if labels:
        return np.concatenate(parts), np.concatenate(classes)
    return np.concatenate(parts)


def read_npz(path, key):
    try:
        with np.load(path, allow_pickle=False) as z:
            if key not in z.files:
                raise ValueError(
                    f"{path} has no array {key!r} (it has {', '.join(z.files) or 'none'}); "
                    f"save your images with np.savez(path, {key}=images)"
                )
            return z[key]
    except ValueError as e:
        if "has no array" in str(e):
            raise
        raise ValueError(f"{path} cannot be read as an .npz of plain arrays ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a readable .npz file ({e})") from None


def pad_to_32(x):
    """(N, 28, 28) digits -> (N, 32, 32) with a 2-pixel black border, the size the tutorial's models take."""
    return np.pad(x, ((0, 0), (2, 2), (2, 2)))


def fashion_mnist_arrays(fname="train-images-idx3-ubyte.gz"):
    """Fashion-MNIST's 60,000 training images, uint8 (60000, 28, 28), from the Keras cache (KERAS_HOME read
    now, like the other datasets), downloading the one file needed once.

    fname="train-labels-idx1-ubyte.gz" gives their labels instead, uint8 (60000,).
    """
    import gzip

    path = download(fname, FASHION_URL + fname, "Fashion-MNIST", cache_subdir=os.path.join("datasets", "fashion-mnist"),
                    advice="Use --dataset shapes (embedded) or --dataset PATH to a local .npz")
    with gzip.open(path, "rb") as f:
        if "labels" in fname:
            return np.frombuffer(f.read(), np.uint8, offset=8)  # IDX labels: 8-byte header
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)  # IDX images: 16-byte header


def labelled_arrays(dataset):
    """The training split of 'mnist' or 'fashion_mnist' with its labels: uint8 (N, 32, 32), int64 (N,).

    For the mode-counting classifier (modes.py); load_images gives the images alone.
    """
    if dataset == "mnist":
        path = download("mnist.npz", MNIST_URL, "MNIST")
        return pad_to_32(read_npz(path, "x_train")), read_npz(path, "y_train").astype(np.int64)
    if dataset == "fashion_mnist":
        return pad_to_32(fashion_mnist_arrays()), fashion_mnist_arrays("train-labels-idx1-ubyte.gz").astype(np.int64)
    raise ValueError(f"no labelled loader for {dataset!r}; 'mnist' and 'fashion_mnist' have one")


def check_images(x, name="dataset", scaled=True, min_count=1):
    """Validate an image array; return it as rank 4 (float32 when scaled=True).

    Raises ValueError saying what is wrong and how to fix it: rank, channels,
    dtype, value range, non-finite values, too few images.
    """
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]  # (N, H, W) grayscale -> (N, H, W, 1)
    if x.ndim != 4:
        raise ValueError(
            f"{name}: images must be an array (N, H, W, C) or (N, H, W), got shape {x.shape}"
        )
    if x.shape[-1] not in (1, 3):
        raise ValueError(
            f"{name}: images must have 1 or 3 channels (last axis), got shape {x.shape}; "
            "channels-first data needs np.transpose(x, (0, 2, 3, 1)), RGBA needs x[..., :3]"
        )
    if len(x) < min_count:
        raise ValueError(f"{name}: needs at least {min_count} images, got {len(x)}")
    if not scaled:
        if x.dtype != np.uint8:
            raise ValueError(f"{name}: expected uint8 pixels in [0, 255], got {x.dtype}")
        return x
    if x.dtype == np.uint8:
        raise ValueError(
            f"{name}: uint8 images in [0, 255] are not scaled; use gan_lib.scale_images(x) "
            "(x / 127.5 - 1) to bring them to [-1, 1]"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name}: images must be float in [-1, 1] or uint8 in [0, 255], got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"{name}: {bad} pixel values are NaN or infinite; clean or drop those images")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.0001 or hi > 1.0001:
        hint = " They look like 0-255 pixels: use x / 127.5 - 1." if hi > 1.5 else ""
        raise ValueError(f"{name}: pixel values must lie in [-1, 1], got [{lo:.3g}, {hi:.3g}].{hint}")
    if lo >= 0 and hi > 0.5:  # no pixel darker than mid-grey anywhere: x / 255 rather than x / 127.5 - 1
        raise ValueError(
            f"{name}: pixel values lie in [{lo:.3g}, {hi:.3g}], which looks like images scaled to [0, 1]; "
            "the generator's tanh draws in [-1, 1], so use x * 2 - 1 (or scale uint8 with x / 127.5 - 1)"
        )
    return x


def check_dataset(x, name="dataset"):
    """A training set as train() takes it: uint8 (N, H, W, C) in [0, 255], kept as it is and scaled per
    batch (a quarter of float32's memory: 10,000 faces at 64 x 64 are 123 MB instead of 492 MB), or
    float (N, H, W, C) in [-1, 1] as float32. Rank 3 becomes rank 4; anything else: check_images' errors."""
    x = np.asarray(x)
    return check_images(x, name=name, scaled=x.dtype != np.uint8)


def scale_images(x, name="dataset"):
    """uint8 [0, 255] -> float32 [-1, 1]; float input must already be in [-1, 1].

    Accepts (N, H, W) or (N, H, W, C) with C = 1 or 3; always returns rank 4.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = check_images(x, name=name, scaled=False)
        return x.astype(np.float32) / 127.5 - 1.0
    return check_images(x, name=name)


def check_labels(labels, n_images, n_classes=None, name="dataset"):
    """Class labels for n_images images -> int32 (N,). ValueError when they are missing, not whole numbers,
    of another length, negative, or (n_classes given) not below n_classes."""
    if labels is None:
        raise ValueError(f"{name}: a conditional GAN needs a class label per image; give the dataset as "
                         "[images, labels] (gan_lib.load_labelled_samples loads both)")
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # (N, 1) -> (N,)
    if y.ndim != 1:
        raise ValueError(f"{name}: labels must be one class index per image, shape (N,), got shape {y.shape}; "
                         "one-hot labels need y.argmax(axis=1)")
    if len(y) != n_images:
        raise ValueError(f"{name}: {len(y)} labels for {n_images} images; give one label per image")
    if y.dtype.kind == "f" and len(y) and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise ValueError(f"{name}: labels must be whole class indices 0..K-1, got values such as {y[y != np.round(y)][:1]}")
    if y.dtype.kind not in "iuf" and len(y):
        raise ValueError(f"{name}: labels must be class indices 0..K-1, got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise ValueError(f"{name}: labels must be class indices 0..K-1, got {y.min()}")
    if n_classes is not None and len(y) and y.max() >= n_classes:
        raise ValueError(f"{name}: label {int(y.max())} is out of range for a model of {n_classes} classes "
                         f"(0..{n_classes - 1}); build the models with n_classes={int(y.max()) + 1} or fix the labels")
    return y.astype(np.int32)


def n_classes(labels):
    """The number of classes labels 0..K-1 name: K = the largest + 1 (at least 2: a conditional model needs a choice)."""
    return max(int(np.max(labels)) + 1, 2) if len(labels) else 2
