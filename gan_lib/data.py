"""Datasets in, validated and scaled to [-1, 1]; real, latent and fake samples out.

Images are float32 arrays of shape (N, H, W, C), C = 1 or 3, values in [-1, 1].
"""

import hashlib
import json
import os
import pickle
import time
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np

from .files import atomic_path
from .panel import RESIZES

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SHAPES_CLASSES = [
    f"{colour} {shape}"
    for colour in ("warm", "cool")
    for shape in ("disc", "square", "triangle", "ring", "cross")
]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# The TensorFlow tutorials' cats and dogs (about 70 MB): each name loads this part of the extracted zip as a folder.
CATS_DOGS = {"cats_vs_dogs": "train", "cats_vs_dogs/cats": "train/cats", "cats_vs_dogs/dogs": "train/dogs"}
NAMED = ("cifar10", "mnist", "fashion_mnist", "shapes", *CATS_DOGS)
FOLDER_SIZE = 32  # the side folders of photos are brought to when image_size is 0: the tutorial's models take 32 x 32
# ...and for each panel 'arch' (the seeds' DCGANs draw 64 x 64, CycleGAN's photos too; the conditional GANs are the
# tutorial's size)
ARCH_SIZE = {"tutorial": FOLDER_SIZE, "dcgan": 64, "cgan": FOLDER_SIZE, "acgan": FOLDER_SIZE, "cyclegan": 64}
CACHE_MIN_FILES = 1000  # folders with at least this many images keep their decoded array in the Keras cache
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N")  # Pillow modes stored as greyscale
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
FASHION_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"  # where Keras fetches Fashion-MNIST
CATS_DOGS_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"


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


def load_images(dataset="cifar10", limit=0, image_size=0, resize="crop", channels=0, log=None):
    """Raw images by name or path -> array (N, H, W, C) as stored (usually uint8).

    dataset: 'cifar10', 'mnist', 'fashion_mnist', 'cats_vs_dogs' (or 'cats_vs_dogs/cats',
    'cats_vs_dogs/dogs'), all downloaded once into the Keras cache; 'shapes' (made here,
    offline); or a path: an .npz holding `x`, a folder of image files, or an extracted
    cifar-10-batches-py folder.

    Folders of photos (and cats_vs_dogs) are always brought to image_size x image_size
    (0: FOLDER_SIZE, 32), see read_image_folder. Named datasets and .npz files keep their
    size unless image_size is set. resize: 'crop' (the centred square, then resized) or
    'stretch' (the whole image resized). channels: 0 keeps greyscale only when every image
    is greyscale, else RGB; 1 or 3 converts to greyscale or RGB. log: a function given one
    line about the load (e.g. print), or None.
    """
    check_load_options(image_size, resize, channels)
    if is_folder(dataset):
        folder = _cats_dogs_folder(dataset) if dataset in CATS_DOGS else dataset
        return read_image_folder(folder, image_size or FOLDER_SIZE, resize, channels, limit=limit, log=log)
    if dataset == "shapes":
        x = make_shapes(limit or 10000)[0]
    elif dataset == "cifar10":
        x = read_cifar10_folder(_cifar10_folder())
    elif dataset == "mnist":
        x = _pad_to_32(_read_npz(_download("mnist.npz", MNIST_URL, "MNIST"), "x_train"))
    elif dataset == "fashion_mnist":
        x = _pad_to_32(_fashion_mnist())
    elif os.path.isdir(dataset):  # is_folder said no: an extracted CIFAR-10
        x = read_cifar10_folder(dataset)
    elif os.path.isfile(dataset):
        if not dataset.endswith(".npz"):
            raise ValueError(f"dataset file {dataset!r} is not an .npz; give an .npz holding `x`, or a folder of images")
        x = _read_npz(dataset, "x")
    else:
        raise ValueError(
            f"dataset {dataset!r} is neither a known name ({', '.join(NAMED)}) nor an existing file or folder"
        )
    x = x[:limit] if limit else x
    if image_size or channels:
        x = resize_images(x, image_size, resize, channels, log=log)
    return x


def load_real_samples(dataset="cifar10", limit=0, image_size=0, resize="crop", channels=0, log=None):
    """The tutorial's loader: images scaled from [0, 255] to [-1, 1], float32 (N, H, W, C).

    The keyword arguments are load_images' (sizes, crop or stretch, channels, a log function).
    """
    x = load_images(dataset, limit, image_size=image_size, resize=resize, channels=channels, log=log)
    return scale_images(x, name=str(dataset))


def load_labelled_images(dataset="shapes", limit=0, image_size=0, resize="crop", channels=0, log=None):
    """Raw images and their class labels -> (x as stored (usually uint8 (N, H, W, C)), int64 labels (N,)).

    For a conditional GAN (arch 'cgan'). Labelled are: 'shapes' (SHAPES_CLASSES), 'cifar10'
    (CIFAR10_CLASSES), 'mnist' and 'fashion_mnist' (digits, garments: 0..9), 'cats_vs_dogs'
    (cats 0, dogs 1), a folder with one subfolder per class (the classes are the sorted
    subfolder names: folder_classes), an extracted cifar-10-batches-py folder, and an .npz
    holding `x` and `y`. Anything else is a ValueError saying how to label it. The keyword
    arguments are load_images'.
    """
    check_load_options(image_size, resize, channels)
    if is_folder(dataset):
        folder = _cats_dogs_folder(dataset) if dataset in CATS_DOGS else dataset
        folder_classes(folder)  # a folder without class subfolders: one clear error before any decoding
        return read_image_folder(folder, image_size or FOLDER_SIZE, resize, channels, limit=limit, log=log,
                                 labels=True)
    if dataset == "shapes":
        x, y = make_shapes(limit or 10000)
    elif dataset == "cifar10":
        x, y = read_cifar10_folder(_cifar10_folder(), labels=True)
    elif dataset in ("mnist", "fashion_mnist"):
        x, y = _labelled(dataset)
    elif os.path.isdir(dataset):  # is_folder said no: an extracted CIFAR-10
        x, y = read_cifar10_folder(dataset, labels=True)
    elif os.path.isfile(dataset) and dataset.endswith(".npz"):
        x = _read_npz(dataset, "x")
        try:
            y = _read_npz(dataset, "y")
        except ValueError as e:
            if "has no array" not in str(e):
                raise
            raise ValueError(f"{dataset} holds images `x` but no labels `y`, and a conditional GAN (arch cgan) needs "
                             "a class per image: save them with np.savez(path, x=images, y=labels), labels 0..K-1, "
                             "or train an unconditional arch (tutorial, dcgan)") from None
    else:
        load_images(dataset)  # raises the error for an unknown name or a file of another kind
        raise ValueError(f"dataset {dataset!r} has no labels for a conditional GAN")  # not reached
    y = check_labels(y, len(x), name=str(dataset))
    x, y = (x[:limit], y[:limit]) if limit else (x, y)
    if image_size or channels:
        x = resize_images(x, image_size, resize, channels, log=log)
    return x, y


def load_labelled_samples(dataset="shapes", limit=0, image_size=0, resize="crop", channels=0, log=None):
    """The conditional tutorial's loader: [images, labels], images float32 (N, H, W, C) in [-1, 1], labels
    int32 (N,) class indices. See load_labelled_images for the datasets that have labels."""
    x, y = load_labelled_images(dataset, limit, image_size=image_size, resize=resize, channels=channels, log=log)
    return [scale_images(x, name=str(dataset)), y.astype(np.int32)]


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


def folder_classes(folder):
    """The class names of a folder with one subfolder per class: its subfolders' names, sorted (hidden ones left out).

    ValueError when it has no subfolder holding images: a conditional GAN needs the classes.
    """
    names = sorted(d.name for d in os.scandir(folder) if d.is_dir() and not d.name.startswith(".")
                   and d.name != "__MACOSX" and _image_files(d.path)) if os.path.isdir(folder) else []
    if not names:
        raise ValueError(f"folder {folder!r} has no subfolders of images, so its images have no classes; a "
                         "conditional GAN (arch cgan) wants one subfolder per class (e.g. photos/cats/*.jpg, "
                         "photos/dogs/*.jpg), or train an unconditional arch (tutorial, dcgan)")
    return names


def is_folder(dataset):
    """True when dataset names a folder of image files (or cats_vs_dogs): images of any size, brought to one."""
    if dataset in CATS_DOGS:
        return True
    return os.path.isdir(dataset) and not os.path.exists(os.path.join(dataset, "data_batch_1"))


def folder_size(panel):
    """The side (pixels) a panel's folder of photos is brought to: panel key image_size, or when it is 0
    the architecture's size (ARCH_SIZE: 32 for the tutorial's models, 64 for the DCGAN's, as in the seeds)."""
    return panel["image_size"] or ARCH_SIZE[panel["arch"]]


def panel_load_options(panel):
    """load_images' keyword arguments for panel['dataset']: image_size (folders: folder_size), resize, channels."""
    size = folder_size(panel) if is_folder(panel["dataset"]) else panel["image_size"]
    return {"image_size": size, "resize": panel["resize"], "channels": panel["channels"]}


def check_load_options(image_size, resize, channels):
    """One ValueError for each bad image_size, resize or channels, saying what is allowed."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 0:
        raise ValueError(f"image_size must be a whole number of pixels (0: the dataset's or architecture's size), "
                         f"got {image_size!r}")
    if resize not in RESIZES:
        raise ValueError(f"resize must be one of {', '.join(RESIZES)} (crop: the centred square, then resized; "
                         f"stretch: the whole image squeezed to a square), got {resize!r}")
    if channels not in (0, 1, 3):
        raise ValueError(f"channels must be 0 (greyscale only when every image is), 1 (greyscale) or 3 (RGB), "
                         f"got {channels!r}")


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


def check_dataset(x, name="dataset"):
    """A training set as train() takes it: uint8 (N, H, W, C) in [0, 255], kept as it is and scaled per
    batch (a quarter of float32's memory: 10,000 faces at 64 x 64 are 123 MB instead of 492 MB), or
    float (N, H, W, C) in [-1, 1] as float32. Rank 3 becomes rank 4; anything else: check_images' errors."""
    x = np.asarray(x)
    return check_images(x, name=name, scaled=x.dtype != np.uint8)


def scale_batch(x):
    """Real images as the models take them: uint8 [0, 255] -> float32 [-1, 1] (x / 127.5 - 1, as scale_images);
    float images as they are. NumPy arrays here; fused.pixels does the same on the device."""
    return x.astype(np.float32) / 127.5 - 1.0 if x.dtype == np.uint8 else x


def _pad_to_32(x):
    """(N, 28, 28) digits -> (N, 32, 32) with a 2-pixel black border, the size the tutorial's models take."""
    return np.pad(x, ((0, 0), (2, 2), (2, 2)))


def _keras_home():
    """$KERAS_HOME or ~/.keras, read at each call (a notebook may set it after import)."""
    return os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))


def _keras_cache():
    return os.path.join(_keras_home(), "datasets")


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


def _cats_dogs_folder(dataset):
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
            _download("cats_and_dogs_filtered.zip", CATS_DOGS_URL, "cats_and_dogs_filtered.zip", extract=True)
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


def read_image_folder(folder, image_size=FOLDER_SIZE, resize="crop", channels=0, limit=0, workers=0, cache=None,
                      log=None, labels=False):
    """Every image file in a folder and its subfolders, in path order -> uint8 (N, image_size, image_size, C).

    Files may have any size and Pillow mode (RGB, RGBA, P, L, CMYK, 16-bit...). Each is
    brought to a square: resize='crop' keeps the centred square and resizes it,
    'stretch' resizes the whole image. channels 0: one channel when every image is
    stored greyscale, else RGB (transparent pixels become white); 1 or 3 forces it.
    Files that cannot be read (truncated, empty, not images) are skipped with one
    warning; a folder with none readable is a ValueError. limit keeps the first N
    readable images. workers: decoding threads (0: Python's default, 1: none).
    cache: keep the decoded array as an .npy under the Keras cache and reuse it while
    the folder's files (names, sizes, times) are unchanged; None does it for folders
    of CACHE_MIN_FILES images or more. log: a function given one line about the load.
    labels=True: (x, int64 labels (N,)), each image's class the index of its subfolder among
    folder_classes(folder); an image outside the class subfolders is a ValueError. The cache
    keeps the images alone: the labels follow from the file names, which its listing fixes.
    """
    check_load_options(image_size, resize, channels)
    if image_size < 1:
        raise ValueError(f"image_size must be at least 1 pixel for a folder, got {image_size}")
    start = time.perf_counter()
    files = _image_files(folder)
    if not files:
        raise ValueError(f"folder {folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    file_labels = _file_labels(folder, files) if labels else None
    wanted = min(limit, len(files)) if limit else len(files)
    if cache is None:
        cache = wanted >= CACHE_MIN_FILES
    npy, meta = _cache_paths(folder, image_size, resize, channels, limit)
    listing = _listing_digest(folder, files) if cache else None
    cached = _read_cache(npy, meta, listing, image_size) if cache else None
    if cached is not None:
        x, skipped, tried = cached
        where = f"from the cache {npy}"
    else:
        workers = workers or min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default
        x, skipped, tried = _decode_files(files, image_size, resize, channels, workers, wanted)
        where = f"{workers} thread{'s' * (workers > 1)}"
        if cache:
            where += _write_cache(npy, meta, x, listing, tried, skipped)
    if skipped:  # tried: all the files, or with a limit as many as it took to find that many images
        warnings.warn(f"skipped {len(skipped)} of {tried} files in {folder} that are not readable images, "
                      f"e.g. {skipped[0]}", stacklevel=2)
    if not len(x):
        raise ValueError(f"folder {folder!r} holds {len(files)} image files but none could be read as an image "
                         f"(e.g. {skipped[0]}); check that they are whole JPEG, PNG, BMP or GIF files")
    if log:
        log(f"{folder}: {len(files):,} image files, {len(skipped):,} skipped -> uint8 {x.shape} ({resize}) "
            f"in {time.perf_counter() - start:.1f} s, {where}")
    if labels:  # the files read: the first `tried`, less the skipped ones, in path order, as decoded
        gone = set(skipped)
        return x, np.array([y for f, y in zip(files[:tried], file_labels) if f not in gone], np.int64)[:len(x)]
    return x


def _file_labels(folder, files):
    """The class of each file: the index of its first folder under `folder` among folder_classes(folder)."""
    index = {name: i for i, name in enumerate(folder_classes(folder))}
    out = []
    for path in files:
        top = os.path.relpath(path, folder).split(os.sep)[0]
        if top not in index:
            raise ValueError(f"{path} lies outside the class subfolders of {folder!r} ({', '.join(index)}); move it "
                             "into the subfolder of its class")
        out.append(index[top])
    return out


def resize_images(x, image_size, resize="crop", channels=0, workers=0, log=None):
    """uint8 images (N, H, W) or (N, H, W, C) -> uint8 (N, S, S, C'), each brought to a square like a folder's.

    image_size 0 keeps the size (N, H, W, C'); channels 0 keeps the channels. Returns x
    itself when nothing changes.
    """
    check_load_options(image_size, resize, channels)
    x = check_images(x, name="images to resize", scaled=False)  # uint8 (N, H, W, C)
    h, w, c = x.shape[1:]
    out_h, out_w = (image_size, image_size) if image_size else (h, w)
    channels = channels or c
    if (out_h, out_w, channels) == (h, w, c):
        return x
    from PIL import Image

    start = time.perf_counter()
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(x), out_h, out_w, channels), np.uint8)

    def one(i):
        im = Image.fromarray(x[i, ..., 0] if c == 1 else x[i]).convert(mode)  # (H, W) is mode L, (H, W, 3) RGB
        out[i] = np.asarray(_fit(im, image_size, resize) if image_size else im).reshape(out_h, out_w, channels)

    with ThreadPoolExecutor(workers or None) as pool:  # Pillow releases the GIL while it resizes
        list(pool.map(one, range(len(x))))
    if log:
        log(f"resized {len(x):,} images {h}x{w}x{c} -> {out_h}x{out_w}x{channels} ({resize}) "
            f"in {time.perf_counter() - start:.1f} s")
    return out


def _image_files(folder):
    """Image files (by extension) under folder, sorted by path; hidden files and folders (.DS_Store, __MACOSX) left out."""
    files = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__MACOSX"]
        files += [os.path.join(root, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")]
    return sorted(files)


def _decode_files(files, size, resize, channels, workers, wanted):
    """Decode files in order until `wanted` images are read -> (uint8 (n, size, size, C), skipped paths, files tried).

    Pillow releases the GIL while it decodes and resizes, so threads run in parallel.
    """
    out = np.empty((wanted, size, size, 1 if channels == 1 else 3), np.uint8)  # auto: RGB until all prove grey
    n, taken, skipped, all_grey = 0, 0, [], True

    def decode(path):
        return _decode(path, size, resize, channels)

    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    try:
        while n < wanted and taken < len(files):
            batch = files[taken:taken + wanted - n]  # a skipped file makes room for the next one
            taken += len(batch)
            for path, image in zip(batch, pool.map(decode, batch) if pool else map(decode, batch)):
                if image is None:
                    skipped.append(path)
                    continue
                out[n] = image  # (size, size, 1) fills all 3 channels while the choice is open
                all_grey &= image.shape[-1] == 1
                n += 1
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    x = out[:n]
    if channels == 0 and all_grey and n:
        x = np.ascontiguousarray(x[..., :1])
    return x, skipped, taken


def _decode(path, size, resize, channels):
    """One image file -> uint8 (size, size, 1 or 3), or None when it cannot be read as an image.

    channels 0: 1 channel for files stored greyscale, 3 for the rest.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            mode = "L" if (channels == 1 or (channels == 0 and im.mode in GREY_MODES)) else "RGB"
            # JPEG only: decode at 1/2, 1/4 or 1/8 scale while that stays at least twice the size (as Image.thumbnail)
            im.draft(mode, (2 * size, 2 * size))
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # phone photos: upright as they are shown
            image = np.asarray(_fit(_convert(im, mode), size, resize))
    except MemoryError:
        raise
    except Exception:  # Pillow raises OSError, ValueError, SyntaxError, ... for broken files: all mean "skip it"
        return None
    return image.reshape(size, size, -1)  # L: (size, size) -> (size, size, 1)


def _convert(im, mode):
    """A Pillow image of any mode -> mode 'L' or 'RGB'.

    16-bit greyscale is scaled to 8 bits (Pillow's convert would clip it at 255);
    transparent pixels are laid on white.
    """
    from PIL import Image

    if im.mode.startswith("I"):  # 16-bit (or 32-bit) integer greys, 0..65535
        im = Image.fromarray((np.asarray(im, np.float32) / 257).round().clip(0, 255).astype(np.uint8))
    if "A" in im.getbands() or "transparency" in im.info:
        im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
    return im.convert(mode)


def _fit(im, size, resize):
    """A Pillow image -> size x size: its centred square resized ('crop'), or all of it ('stretch').

    Bicubic resampling, antialiased when shrinking (Lanczos differs by under 1 level of 255 on
    average for faces at 64 x 64 and costs half as much again: 250 against 165 us), after a
    quick reduction by whole factors while at least twice the size remains (reducing_gap), as
    Pillow's thumbnail does. An image already size x size comes back unchanged.
    """
    from PIL import Image

    w, h = im.size
    box = (0, 0, w, h)
    if resize == "crop":
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2  # fractional: exactly centred
        box = (left, top, left + side, top + side)
    return im.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=2.0)


# ---------------------------------------------------------------- the folder cache


def _cache_paths(folder, size, resize, channels, limit):
    """The cache's .npy and .json for one folder and one set of load options (a changed folder overwrites them)."""
    key = json.dumps([os.path.abspath(folder), size, resize, channels, limit])
    name = hashlib.sha256(key.encode()).hexdigest()[:24]
    base = os.path.join(_keras_home(), "gan_lib", "folders", name)
    return base + ".npy", base + ".json"


CACHE_VERSION = 1  # bump when decoding changes: older cache files are then decoded again


def _listing_digest(folder, files):
    """A digest of the files' relative paths, sizes and modification times, and of CACHE_VERSION."""
    h = hashlib.sha256(f"gan_lib folder cache {CACHE_VERSION}\n".encode())
    for path in files:
        try:
            st = os.stat(path)
            stamp = f"{st.st_size} {st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{os.path.relpath(path, folder)}\0{stamp}\n".encode())
    return h.hexdigest()


def _read_cache(npy, meta, listing, size):
    """(x, skipped paths, files tried) from the cache when its listing matches, else None."""
    try:
        with open(meta) as f:
            info = json.load(f)
        if info.get("listing") != listing:
            return None
        x = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # no cache yet, or a damaged one: decode again
        return None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:3] != (size, size) or list(x.shape) != info.get("shape"):
        return None
    return x, info.get("skipped", []), info.get("tried", len(x))


def _write_cache(npy, meta, x, listing, tried, skipped):
    """Save x and its listing atomically; returns a few words for the report. Never fails the load."""
    try:
        if os.path.exists(meta):
            os.remove(meta)  # first: a .json always describes the .npy beside it
        with atomic_path(npy) as tmp:
            np.save(tmp, x)
        info = {"listing": listing, "shape": list(x.shape), "tried": tried, "skipped": skipped}
        with atomic_path(meta) as tmp, open(tmp, "w") as f:
            json.dump(info, f)
    except OSError as e:
        warnings.warn(f"could not cache the decoded images in {npy} ({e.strerror or e}); the next load decodes "
                      "them again", stacklevel=3)
        return ""
    return f"; cached in {npy}"


# ---------------------------------------------------------------- samples


def generate_real_samples(dataset, n_samples, rng=None):
    """n_samples random real images (with replacement), float32 in [-1, 1], and their labels, ones (n, 1).

    dataset: float32 in [-1, 1], or uint8 in [0, 255] scaled here, batch by batch (check_dataset).
    A labelled dataset [images, classes] (a conditional GAN's) gives ([images, classes], ones):
    the classes of the images drawn, int32 (n,), go to D with them.
    """
    rng = rng or np.random.default_rng()
    if isinstance(dataset, (list, tuple)):
        images, classes = dataset
        ix = rng.integers(0, images.shape[0], n_samples)
        return [scale_batch(images[ix]), np.asarray(classes[ix], np.int32)], np.ones((n_samples, 1), dtype=np.float32)
    ix = rng.integers(0, dataset.shape[0], n_samples)
    return scale_batch(dataset[ix]), np.ones((n_samples, 1), dtype=np.float32)


def generate_latent_points(latent_dim, n_samples, rng=None, n_classes=0):
    """Points in latent space, standard normal: float32 (n_samples, latent_dim).

    n_classes > 0 (a conditional GAN's): [points, classes], the classes drawn uniformly, int32 (n,).
    """
    rng = rng or np.random.default_rng()
    z = rng.standard_normal((n_samples, latent_dim), dtype=np.float32)
    if n_classes:
        return [z, rng.integers(0, n_classes, n_samples).astype(np.int32)]
    return z


def generate_fake_samples(g_model, latent_dim, n_samples, rng=None, training=False, classes=None):
    """n_samples generated images and their labels, zeros (n, 1).

    Calls the model directly: `predict` costs tens of milliseconds per call.
    training=True runs G as it trains (BatchNorm on this batch's statistics, which
    also updates its moving statistics): the fakes D learns from (training.train_step).
    The default, inference mode, is for sampling and scoring. A conditional G (it
    takes [z, class]) gives ([images, classes], zeros): classes drawn uniformly, or
    the int (n,) `classes` given.
    """
    k = n_classes_of(g_model)
    x_input = generate_latent_points(latent_dim, n_samples, rng, n_classes=k)
    if classes is not None:
        if not k:
            raise ValueError(f"classes given, but the generator {g_model.name!r} is not conditional (it takes no label)")
        x_input[1] = check_labels(np.broadcast_to(classes, (n_samples,)), n_samples, k, name="classes")
    x = keras.ops.convert_to_numpy(g_model(x_input, training=training))
    y = np.zeros((n_samples, 1), dtype=np.float32)
    return ([x, x_input[1]], y) if k else (x, y)


def n_classes_of(model):
    """How many classes a conditional model (cgan.py: it takes a label, read by an Embedding, or by an ACGAN's D a
    CategoryEncoding) knows; 0 for others."""
    if len(getattr(model, "inputs", None) or ()) < 2:  # one input (or a stand-in without Keras inputs)
        return 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            return int(layer.input_dim)
        if isinstance(layer, keras.layers.CategoryEncoding):  # an ACGAN's D: the label picks a class probability
            return int(layer.num_tokens)
        if isinstance(layer, keras.Model) and n_classes_of(layer):  # a combined model: G inside
            return n_classes_of(layer)
    return 0


def class_grid(z, n_classes):
    """Latent points (cols, latent_dim) -> [z (n_classes * cols, latent_dim), classes (n_classes * cols,)]:
    a conditional G's inputs for a grid with one row per class and the same latent point down each column."""
    z = np.asarray(z, np.float32)
    return [np.tile(z, (n_classes, 1)), np.repeat(np.arange(n_classes, dtype=np.int32), len(z))]


def images_of(dataset):
    """The images of a dataset: itself, or the first of a labelled one [images, labels]."""
    return dataset[0] if isinstance(dataset, (list, tuple)) else dataset


def join(a, b):
    """Two batches one after the other: arrays concatenated, or [images, labels] pairs part by part."""
    if isinstance(a, (list, tuple)):
        return [np.concatenate([p, q]) for p, q in zip(a, b, strict=True)]
    return np.concatenate([a, b])
