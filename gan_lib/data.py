"""The tutorial's data functions: load_real_samples and the real, latent and fake samples of each step.

Images are float32 arrays of shape (N, H, W, C), C = 1 or 3, values in [-1, 1] (or uint8
[0, 255], kept as stored and scaled per batch). Where they come from: datasets.py (named
sets, downloads, shapes) and photos.py (folders of photos); this module picks by name.
"""

import os

import keras
import numpy as np

from .batches import n_classes_of, scale_batch
from .datasets import (
    CATS_DOGS,
    MNIST_URL,
    NAMED,
    cats_dogs_folder,
    check_dataset,
    check_images,
    check_labels,
    cifar10_folder,
    download,
    fashion_mnist_arrays,
    labelled_arrays,
    make_shapes,
    pad_to_32,
    read_cifar10_folder,
    read_npz,
    scale_images,
)
from .panel import CYCLE_TASKS
from .photos import FOLDER_SIZE, check_load_options, folder_classes, is_folder, read_image_folder, resize_images

CONDITIONAL_ARCHS = ("cgan", "acgan")  # the archs whose models take a class label: their data is [images, labels]
# ...and for each panel 'arch' (the seeds' DCGANs draw 64 x 64, CycleGAN's photos too; the conditional GANs are the
# tutorial's size)
ARCH_SIZE = {"tutorial": FOLDER_SIZE, "dcgan": 64, "cgan": FOLDER_SIZE, "acgan": FOLDER_SIZE, "cyclegan": 64}


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
        folder = cats_dogs_folder(dataset) if dataset in CATS_DOGS else dataset
        return read_image_folder(folder, image_size or FOLDER_SIZE, resize, channels, limit=limit, log=log)
    if dataset == "shapes":
        x = make_shapes(limit or 10000)[0]
    elif dataset == "cifar10":
        x = read_cifar10_folder(cifar10_folder())
    elif dataset == "mnist":
        x = pad_to_32(read_npz(download("mnist.npz", MNIST_URL, "MNIST"), "x_train"))
    elif dataset == "fashion_mnist":
        x = pad_to_32(fashion_mnist_arrays())
    elif os.path.isdir(dataset):  # is_folder said no: an extracted CIFAR-10
        x = read_cifar10_folder(dataset)
    elif os.path.isfile(dataset):
        if not dataset.endswith(".npz"):
            raise ValueError(f"dataset file {dataset!r} is not an .npz; give an .npz holding `x`, or a folder of images")
        x = read_npz(dataset, "x")
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
        folder = cats_dogs_folder(dataset) if dataset in CATS_DOGS else dataset
        folder_classes(folder)  # a folder without class subfolders: one clear error before any decoding
        return read_image_folder(folder, image_size or FOLDER_SIZE, resize, channels, limit=limit, log=log,
                                 labels=True)
    if dataset == "shapes":
        x, y = make_shapes(limit or 10000)
    elif dataset == "cifar10":
        x, y = read_cifar10_folder(cifar10_folder(), labels=True)
    elif dataset in ("mnist", "fashion_mnist"):
        x, y = labelled_arrays(dataset)
    elif os.path.isdir(dataset):  # is_folder said no: an extracted CIFAR-10
        x, y = read_cifar10_folder(dataset, labels=True)
    elif os.path.isfile(dataset) and dataset.endswith(".npz"):
        x = read_npz(dataset, "x")
        try:
            y = read_npz(dataset, "y")
        except ValueError as e:
            if "has no array" not in str(e):
                raise
            raise ValueError(f"{dataset} holds images `x` but no labels `y`, and a conditional GAN (arch cgan or acgan) needs "
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


def folder_size(panel):
    """The side (pixels) a panel's folder of photos is brought to: panel key image_size, or when it is 0
    the architecture's size (ARCH_SIZE: 32 for the tutorial's models, 64 for the DCGAN's, as in the seeds)."""
    return panel["image_size"] or ARCH_SIZE[panel["arch"]]


def panel_load_options(panel):
    """load_images' keyword arguments for panel['dataset']: image_size (folders: folder_size), resize, channels."""
    size = folder_size(panel) if is_folder(panel["dataset"]) else panel["image_size"]
    return {"image_size": size, "resize": panel["resize"], "channels": panel["channels"]}


# ---------------------------------------------------------------- samples


def load_training_set(panel, log=None):
    """The images panel key 'dataset' names, as train() takes them: uint8 (N, H, W, C) as stored (train scales
    each batch), brought to the panel's size and channels; for a conditional arch (cgan, acgan) [images, labels
    int32 (N,)]. log: a function given one line about the load, or None."""
    name, options = str(panel["dataset"]), panel_load_options(panel)
    if panel["arch"] in CONDITIONAL_ARCHS:  # [images, labels]: a conditional GAN learns the classes too
        x, y = load_labelled_images(panel["dataset"], panel["limit"], **options, log=log)
        return [check_dataset(x, name=name), check_labels(y, len(x), name=name)]
    return check_dataset(load_images(panel["dataset"], panel["limit"], **options, log=log), name=name)


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


SAMPLE_BATCH = 250  # images G draws per call when sampling many: memory stays flat in N


def sample_images(g_model, latent_dim, n_samples, rng=None, classes=None, batch=SAMPLE_BATCH):
    """generate_fake_samples' images for many latent points, G called on `batch` of them at a time (inference
    mode): float32 (n_samples, H, W, C), and a conditional G's classes (n_samples,) (else None). The same latent
    points and classes as generate_fake_samples(g_model, latent_dim, n_samples, rng, classes=classes) draws, so
    the same images; only the peak memory differs (G's activations for `batch` images, not all of them)."""
    k = n_classes_of(g_model)
    x_input = generate_latent_points(latent_dim, n_samples, rng, n_classes=k)
    if classes is not None:
        if not k:
            raise ValueError(f"classes given, but the generator {g_model.name!r} is not conditional (it takes no label)")
        x_input[1] = check_labels(np.broadcast_to(classes, (n_samples,)), n_samples, k, name="classes")
    parts = [keras.ops.convert_to_numpy(g_model([p[i:i + batch] for p in x_input] if k else x_input[i:i + batch],
                                                training=False)) for i in range(0, n_samples, batch)]
    return np.concatenate(parts).astype(np.float32, copy=False), (x_input[1] if k else None)


SHAPES_DOMAINS = {"shapes-warm": 0, "shapes-cool": 5}  # first class of each colour family in datasets.SHAPES_CLASSES


def load_domain(name, panel, which, log=None):
    """One domain's images -> (uint8 (N, H, W, C), int64 shapes classes (N,) or None).

    name: 'shapes-warm' or 'shapes-cool' (datasets.make_shapes' colour families, made here), or anything
    load_images takes (a folder of photos of any sizes, an .npz, a named dataset). Folders are
    brought to image_size (0: 64); limit keeps the first N images.
    """
    limit = panel["limit"]
    try:
        if name in SHAPES_DOMAINS:
            first = SHAPES_DOMAINS[name]
            want = limit or CYCLE_TASKS["shapes"]["limit"]
            n = 2 * want + 64
            while True:  # image i depends on i alone, so a larger set starts with the smaller one
                x, y = make_shapes(n)
                keep = (y >= first) & (y < first + 5)
                if keep.sum() >= want:
                    break
                n *= 2
            x, y = x[keep][:want], y[keep][:want]
            if panel["image_size"] or panel["channels"]:
                x = resize_images(x, panel["image_size"], panel["resize"], panel["channels"], log=log)
            return x, y
        options = panel_load_options({**panel, "dataset": name})
        return check_images(load_images(name, limit, **options, log=log), name=name, scaled=False), None
    except ValueError as e:
        raise ValueError(f"domain {which} ({name}): {e}") from None


def load_domains(panel, log=None):
    """(a, b, labels_a, labels_b): both domains as uint8 (N, H, W, C), the same H, W and C.

    One domain greyscale and the other RGB: the greyscale one is made RGB (with a log line), so G and F
    map images of one shape and the identity loss applies. Different sizes (an .npz or a named
    dataset keeps its own): ValueError, set image_size.
    """
    if os.path.abspath(panel["dataset"]) == os.path.abspath(panel["dataset_b"]):
        raise ValueError(f"domains A and B are the same ({panel['dataset']!r}); give two different folders")
    a, labels_a = load_domain(panel["dataset"], panel, "A", log)
    b, labels_b = load_domain(panel["dataset_b"], panel, "B", log)
    if a.shape[1:3] != b.shape[1:3]:
        raise ValueError(f"domain A's images are {a.shape[1]}x{a.shape[2]} but domain B's are {b.shape[1]}x{b.shape[2]}; "
                         "bring both to one size with --set image_size=32 (or 64)")
    if a.shape[3] != b.shape[3]:
        if log:
            log(f"domain {'A' if a.shape[3] == 1 else 'B'} is greyscale and the other RGB: using it as RGB "
                "(--set channels=1 makes both greyscale)")
        a, b = (resize_images(x, 0, channels=3) for x in (a, b))
    for which, x in (("A", a), ("B", b)):
        if len(x) < panel["n_batch"]:
            raise ValueError(f"domain {which} has {len(x)} images but n_batch is {panel['n_batch']}; lower --batch "
                             "or give more images")
    return a, b, labels_a, labels_b
