"""What one training step's batches look like, on the host (NumPy) and on the device (keras.ops).

An unconditional GAN's batch is an array of images (n, H, W, C); a conditional GAN's
(cgan.py: both models take the class) is [images (n, H, W, C), labels int32 (n,)], and
every helper here handles both, part by part. Real images may be kept as uint8 [0, 255]
(a quarter of float32's memory) and scaled to float32 [-1, 1] per batch: scale_batch on
the host, pixels on the device, with the same values.
"""

import concurrent.futures

import keras
import numpy as np


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


def images_of(dataset):
    """The images of a dataset: itself, or the first of a labelled one [images, labels]."""
    return dataset[0] if isinstance(dataset, (list, tuple)) else dataset


def join(a, b):
    """Two batches one after the other: arrays concatenated, or [images, labels] pairs part by part."""
    if isinstance(a, (list, tuple)):
        return [np.concatenate([p, q]) for p, q in zip(a, b, strict=True)]
    return np.concatenate([a, b])


def scale_batch(x):
    """Real images as the models take them: uint8 [0, 255] -> float32 [-1, 1] (x / 127.5 - 1, as scale_images);
    float images as they are. NumPy arrays here; pixels does the same on the device."""
    return x.astype(np.float32) / 127.5 - 1.0 if x.dtype == np.uint8 else x


def class_grid(z, n_classes):
    """Latent points (cols, latent_dim) -> [z (n_classes * cols, latent_dim), classes (n_classes * cols,)]:
    a conditional G's inputs for a grid with one row per class and the same latent point down each column."""
    z = np.asarray(z, np.float32)
    return [np.tile(z, (n_classes, 1)), np.repeat(np.arange(n_classes, dtype=np.int32), len(z))]


def first_input_shape(model):
    """A model's input shape without the batch axis; a conditional model's first (latent points, images)."""
    shape = model.input_shape
    return tuple((shape[0] if isinstance(shape, list) else shape)[1:])


PIXELS = np.arange(256, dtype=np.float32) / 127.5 - 1.0  # uint8 value -> float32 pixel in [-1, 1]


def pixels(x):
    """Real images as the models take them, on the device: uint8 [0, 255] -> float32 [-1, 1]; float as it is.

    A uint8 dataset sits on the device (or streams from the host) at a quarter of float32's size.
    """
    if keras.backend.standardize_dtype(x.dtype) == "uint8":
        # a lookup in a 256-entry table made by NumPy: exactly scale_images' values on every backend
        # (XLA may turn / 127.5 into * (1 / 127.5), one rounding off)
        return keras.ops.take(PIXELS, keras.ops.cast(x, "int32"))
    return x


def joined(a, b):
    """a and b end to end along the batch: arrays, or [images, labels] part by part (a conditional GAN)."""
    return keras.tree.map_structure(lambda x, y: keras.ops.concatenate([x, y]), a, b)


def stacked(parts):
    """The steps' batches (each an array or [images, labels]) stacked on axis 1: (batch, steps, ...)."""
    return keras.tree.map_structure(lambda *a: keras.ops.stack(a, axis=1), *parts)


def step_k(batch, k):
    """Step k's batch out of a stacked one (stacked): batch[:, k], part by part."""
    return keras.tree.map_structure(lambda a: a[:, k], batch)


class Batches:
    """Real half batches drawn on the host, for a dataset too big for the device; one made ahead in a thread.

    Step k's images come from a NumPy generator seeded with (seed, k), so any step's batch
    can be made again (a resumed run) without saving a random state.
    """

    def __init__(self, dataset, half, seed):
        self.dataset, self.half, self.seed = dataset, half, seed
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gan_lib-batches")
        self.ahead = None  # (k, future of step k's batch)

    def make(self, k):
        """Step k's half batch, (half, H, W, C) (a conditional GAN's: [images, labels (half,)]), copied to the device."""
        idx = np.random.default_rng([self.seed, k]).integers(0, len(images_of(self.dataset)), self.half)
        return keras.tree.map_structure(lambda a: keras.ops.convert_to_tensor(a[idx]), self.dataset)

    def __call__(self, k):
        batch = self.ahead[1].result() if self.ahead and self.ahead[0] == k else self.make(k)
        self.ahead = (k + 1, self.pool.submit(self.make, k + 1))  # the next one, while this step runs
        return batch
