"""Datasets in, validated and scaled to [-1, 1]; real, latent and fake samples out.

Images are float32 arrays of shape (N, H, W, C), C = 1 or 3, values in [-1, 1].
"""

import glob
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
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
NAMED = ("cifar10", "mnist", "fashion_mnist", "shapes")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
FASHION_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"  # where Keras fetches Fashion-MNIST


class DownloadError(OSError):
    """A dataset could not be downloaded (no internet, or the server refused)."""


# ---------------------------------------------------------------- the embedded dataset


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


# ---------------------------------------------------------------- loading


def load_images(dataset="cifar10", limit=0):
    """Raw images by name or path -> array (N, H, W, C) as stored (usually uint8).

    dataset: 'cifar10', 'mnist', 'fashion_mnist' (downloaded once into the Keras
    cache), 'shapes' (made here, offline), or a path: an .npz holding `x`, a folder
    of image files, or an extracted cifar-10-batches-py folder.
    """
    if dataset == "shapes":
        x = make_shapes(limit or 10000)[0]
    elif dataset == "cifar10":
        x = read_cifar10_folder(_cifar10_folder())
    elif dataset == "mnist":
        x = _pad_to_32(_read_npz(_download("mnist.npz", MNIST_URL, "MNIST"), "x_train"))
    elif dataset == "fashion_mnist":
        x = _pad_to_32(_fashion_mnist())
    elif os.path.isdir(dataset):
        if os.path.exists(os.path.join(dataset, "data_batch_1")):
            x = read_cifar10_folder(dataset)
        else:
            x = read_image_folder(dataset)
    elif os.path.isfile(dataset):
        if not dataset.endswith(".npz"):
            raise ValueError(f"dataset file {dataset!r} is not an .npz; give an .npz holding `x`, or a folder of images")
        x = _read_npz(dataset, "x")
    else:
        raise ValueError(
            f"dataset {dataset!r} is neither a known name ({', '.join(NAMED)}) nor an existing file or folder"
        )
    return x[:limit] if limit else x


def load_real_samples(dataset="cifar10", limit=0):
    """The tutorial's loader: images scaled from [0, 255] to [-1, 1], float32 (N, H, W, C)."""
    return scale_images(load_images(dataset, limit), name=str(dataset))


def scale_images(x, name="dataset"):
    """uint8 [0, 255] -> float32 [-1, 1]; float input must already be in [-1, 1].

    Accepts (N, H, W) or (N, H, W, C) with C = 1 or 3; always returns rank 4.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = check_images(x, name=name, scaled=False)
        return x.astype(np.float32) / 127.5 - 1.0
    return check_images(x, name=name)


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


def _pad_to_32(x):
    """(N, 28, 28) digits -> (N, 32, 32) with a 2-pixel black border, the size the tutorial's models take."""
    return np.pad(x, ((0, 0), (2, 2), (2, 2)))


def _keras_cache():
    return os.path.join(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "datasets")


def _download(fname, url, title, extract=False):
    try:
        return keras.utils.get_file(fname, origin=url, extract=extract, cache_dir=os.path.dirname(_keras_cache()))
    except Exception as e:  # urllib and Keras raise many kinds; all mean the same to a user
        raise DownloadError(
            f"could not download {title} ({type(e).__name__}); are you offline? Train on the embedded "
            "dataset with --dataset shapes, or give a local copy with --dataset PATH "
            "(an .npz holding uint8 `x`, a folder of images, or an extracted cifar-10-batches-py folder)"
        ) from None


def _cifar10_folder():
    """The extracted CIFAR-10 python batches in the Keras cache, downloading them once."""
    cache = _keras_cache()
    for folder in (
        os.path.join(cache, "cifar-10-batches-py"),  # older Keras
        os.path.join(cache, "cifar-10-batches-py-target", "cifar-10-batches-py"),  # Keras 3.8+
    ):
        if os.path.exists(os.path.join(folder, "data_batch_1")):
            return folder
    path = _download("cifar-10-batches-py-target", CIFAR10_URL, "CIFAR-10", extract=True)
    return os.path.join(path, "cifar-10-batches-py")


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


def read_cifar10_folder(folder):
    """The 50,000 training images from data_batch_1..5 -> uint8 (N, 32, 32, 3)."""
    parts = []
    for i in range(1, 6):
        path = os.path.join(folder, f"data_batch_{i}")
        if not os.path.exists(path):
            raise ValueError(f"CIFAR-10 folder {folder!r} has no data_batch_{i}; extract cifar-10-python.tar.gz again")
        try:
            with open(path, "rb") as f:
                batch = _ArraysOnly(f, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8)
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path} is not a CIFAR-10 python batch ({e}); download it again") from None
        parts.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # rows are RRR..GGG..BBB
    return np.concatenate(parts)


def _read_npz(path, key):
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


def _fashion_mnist(fname="train-images-idx3-ubyte.gz"):
    """Fashion-MNIST's 60,000 training images, uint8 (60000, 28, 28), from the Keras cache (KERAS_HOME read
    now, like the other datasets), downloading the one file needed once.

    fname="train-labels-idx1-ubyte.gz" gives their labels instead, uint8 (60000,).
    """
    import gzip

    try:
        path = keras.utils.get_file(fname, origin=FASHION_URL + fname,
                                    cache_dir=os.path.dirname(_keras_cache()),
                                    cache_subdir=os.path.join("datasets", "fashion-mnist"))
    except Exception as e:
        raise DownloadError(
            f"could not download Fashion-MNIST ({type(e).__name__}); are you offline? "
            "Use --dataset shapes (embedded) or --dataset PATH to a local .npz"
        ) from None
    with gzip.open(path, "rb") as f:
        if "labels" in fname:
            return np.frombuffer(f.read(), np.uint8, offset=8)  # IDX labels: 8-byte header
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)  # IDX images: 16-byte header


def _labelled(dataset):
    """The training split of 'mnist' or 'fashion_mnist' with its labels: uint8 (N, 32, 32), int64 (N,).

    For the mode-counting classifier (modes.py); load_images gives the images alone.
    """
    if dataset == "mnist":
        path = _download("mnist.npz", MNIST_URL, "MNIST")
        return _pad_to_32(_read_npz(path, "x_train")), _read_npz(path, "y_train").astype(np.int64)
    if dataset == "fashion_mnist":
        return _pad_to_32(_fashion_mnist()), _fashion_mnist("train-labels-idx1-ubyte.gz").astype(np.int64)
    raise ValueError(f"no labelled loader for {dataset!r}; 'mnist' and 'fashion_mnist' have one")


def read_image_folder(folder):
    """Every image file in a folder (and its subfolders) -> uint8 (N, H, W, C).

    All images must have one size. Grayscale stays 1 channel when every image is
    grayscale; otherwise all are converted to RGB.
    """
    from PIL import Image

    files = sorted(
        p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
        if p.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not files:
        raise ValueError(f"folder {folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    images = []
    for path in files:
        try:
            with Image.open(path) as im:
                im.load()
                images.append(im.copy())
        except OSError as e:
            raise ValueError(f"{path} is not a readable image ({e})") from None
    sizes = {im.size for im in images}
    if len(sizes) > 1:
        a, b = sorted(sizes)[:2]
        raise ValueError(
            f"folder {folder!r} mixes image sizes (e.g. {a[0]}x{a[1]} and {b[0]}x{b[1]}); "
            "resize them all to one size, e.g. 32x32 or 64x64"
        )
    mode = "L" if all(im.mode in ("L", "1") for im in images) else "RGB"
    return np.stack([np.asarray(im.convert(mode)) for im in images])


# ---------------------------------------------------------------- samples


def generate_real_samples(dataset, n_samples, rng=None):
    """n_samples random real images (with replacement) and their labels, ones (n, 1)."""
    rng = rng or np.random.default_rng()
    ix = rng.integers(0, dataset.shape[0], n_samples)
    return dataset[ix], np.ones((n_samples, 1), dtype=np.float32)


def generate_latent_points(latent_dim, n_samples, rng=None):
    """Points in latent space, standard normal: float32 (n_samples, latent_dim)."""
    rng = rng or np.random.default_rng()
    return rng.standard_normal((n_samples, latent_dim), dtype=np.float32)


def generate_fake_samples(g_model, latent_dim, n_samples, rng=None, training=False):
    """n_samples generated images and their labels, zeros (n, 1).

    Calls the model directly: `predict` costs tens of milliseconds per call.
    training=True runs G as it trains (BatchNorm on this batch's statistics, which
    also updates its moving statistics): the fakes D learns from (training.train_step).
    The default, inference mode, is for sampling and scoring.
    """
    x_input = generate_latent_points(latent_dim, n_samples, rng)
    x = keras.ops.convert_to_numpy(g_model(x_input, training=training))
    return x, np.zeros((n_samples, 1), dtype=np.float32)
