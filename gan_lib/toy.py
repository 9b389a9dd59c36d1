"""Toy GANs on 2-D points: the tutorial's parabola, and the ring and grid of Gaussians whose modes are known.

The parabola: the generator learns points (x, x^2) for x in [-0.5, 0.5], with two
small Dense models and the tutorial's half-batch loop, small enough to watch a GAN
learn on a CPU in about a minute. The ring and grid (Metz et al. 2017, VEEGAN,
PacGAN) show mode collapse in numbers: modes covered, high-quality share, reverse KL.
Points are float32 arrays (N, 2): column 0 is x, column 1 is y. Latent points and
fake samples come from gan_lib.data, the combined model from gan_lib.models.define_gan,
exactly as for images; `python -m gan_lib toy` trains any of them (train_named_toy).
"""

import keras
import numpy as np
from keras import layers

from .data import generate_fake_samples, generate_latent_points

X_RANGE = (-0.5, 0.5)  # where the real x values lie


def generate_real_points(n_samples, rng=None):
    """n_samples points on y = x^2, x uniform in X_RANGE: float32 (n, 2), and labels, ones (n, 1)."""
    rng = rng or np.random.default_rng()
    x = rng.uniform(*X_RANGE, n_samples)
    return np.stack([x, x * x], axis=1).astype(np.float32), np.ones((n_samples, 1), dtype=np.float32)


def define_toy_discriminator(n_inputs=2, lr=0.001):
    """Point (2,) -> probability that it is real, shape (1,). 101 parameters.

    Compiled with binary cross-entropy and Adam (Keras' default beta_1 = 0.9).
    """
    model = keras.Sequential(
        [
            keras.Input(shape=(n_inputs,)),
            layers.Dense(25, activation="relu", kernel_initializer="he_uniform"),  # (25,)
            layers.Dense(1, activation="sigmoid"),  # (1,)
        ],
        name="toy_discriminator",
    )
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=lr), metrics=["accuracy"])
    return model


def define_toy_generator(latent_dim=5, n_outputs=2):
    """Latent point (latent_dim,) -> point (2,), linear output. 122 parameters for latent_dim=5."""
    return keras.Sequential(
        [
            keras.Input(shape=(latent_dim,)),
            layers.Dense(15, activation="relu", kernel_initializer="he_uniform"),  # (15,)
            layers.Dense(n_outputs, activation="linear"),  # (2,): any real x and y
        ],
        name="toy_generator",
    )


def curve_distance(points):
    """Mean vertical distance |y - x^2| of points (N, 2) from the curve: 0 when all lie on it."""
    p = np.asarray(points, dtype=np.float64)
    return float(np.mean(np.abs(p[:, 1] - p[:, 0] ** 2)))


def coverage(points, n_bins=20):
    """Fraction of n_bins equal bins of X_RANGE that hold the x of at least one point (N, 2).

    1.0 when the points spread over the whole range; 1 / n_bins when they all share one x.
    Points with x outside X_RANGE count in no bin.
    """
    counts, _ = np.histogram(np.asarray(points)[:, 0], bins=n_bins, range=X_RANGE)
    return float(np.mean(counts > 0))


def train_toy(g_model, d_model, gan_model, latent_dim, n_steps, n_batch=128, rng=None):
    """The tutorial's loop on points, n_steps times; returns per-step losses as a list of dicts.

    Per step: D learns from n_batch/2 real points (label 1), then n_batch/2 fake ones
    (label 0); then G learns through gan_model (from define_gan, which updates G only)
    on n_batch latent points labelled 1. Call it again to keep training.
    """
    rng = rng or np.random.default_rng()
    half_batch = n_batch // 2
    history = []
    for _ in range(n_steps):
        x_real, y_real = generate_real_points(half_batch, rng)
        x_fake, y_fake = generate_fake_samples(g_model, latent_dim, half_batch, rng)
        # reset_metrics: each call reports its own batch's loss (Keras before 3.15 reports a running mean)
        d_model.reset_metrics()
        d_loss_real, _ = d_model.train_on_batch(x_real, y_real)
        d_model.reset_metrics()
        d_loss_fake, _ = d_model.train_on_batch(x_fake, y_fake)
        z = generate_latent_points(latent_dim, n_batch, rng)
        gan_model.reset_metrics()
        g_loss = gan_model.train_on_batch(z, np.ones((n_batch, 1), dtype=np.float32))
        history.append({"d_loss_real": float(d_loss_real), "d_loss_fake": float(d_loss_fake), "g_loss": float(g_loss)})
    return history


# ---------------------------------------------------------------- toys with known modes (ring and grid)

# name -> (mode centres, std of each Gaussian): the 2-D benchmarks of Metz et al. 2017, VEEGAN and PacGAN
MODE_TOYS = {
    "ring": (np.stack([np.cos(2 * np.pi * np.arange(8) / 8), np.sin(2 * np.pi * np.arange(8) / 8)], axis=1), 0.01),
    "grid": (np.array([(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], dtype=np.float64), 0.05),
}
MIN_COUNT = 5  # a mode counts as covered with at least this many high-quality samples (of 2,500: 0.2%)


def sample_modes(name, n, rng=None):
    """n points of toy `name` (ring or grid): a mode chosen uniformly, plus Gaussian noise. float32 (n, 2)."""
    means, std = _mode_toy(name)
    rng = rng or np.random.default_rng()
    return (means[rng.integers(0, len(means), n)] + rng.normal(0.0, std, (n, 2))).astype(np.float32)


def mode_scores(points, name, min_count=MIN_COUNT):
    """How well points (N, 2) cover toy `name`'s modes, as the papers score it.

    high_quality: share of points within 3 std of their nearest mode; modes: how many
    modes hold at least min_count of those; reverse_kl: KL(generated mode histogram ||
    uniform), over the high-quality points (0 = every mode equally often).
    """
    means, std = _mode_toy(name)
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {p.shape}")
    dist = np.linalg.norm(p[:, None, :] - means[None, :, :], axis=2)  # (N, K)
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(len(p)), nearest] <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(means))
    share = counts / max(counts.sum(), 1)
    kl = float(np.sum(share[share > 0] * np.log(share[share > 0] * len(means)))) if counts.sum() else float("inf")
    return {"modes": int((counts >= min_count).sum()), "of": len(means), "high_quality": float(good.mean()),
            "reverse_kl": kl, "counts": counts.tolist()}


def _mode_toy(name):
    if name not in MODE_TOYS:
        raise ValueError(f"unknown toy {name!r}; choose one of {', '.join(MODE_TOYS)}")
    return MODE_TOYS[name]


# ---------------------------------------------------------------- PacGAN packing and a fixed scale (the grid's remedy)


class Pack(layers.Layer):
    """(n, d) -> (n / m, m * d): each row holds m consecutive points side by side (PacGAN, Lin et al. 2018).

    D then judges m samples at once; a batch of one collapsed mode looks alike and is easy
    to spot, so G is pushed to spread out. n must be a multiple of m.
    """

    def __init__(self, m, **kwargs):
        super().__init__(**kwargs)
        self.m = m

    def call(self, x):
        return keras.ops.reshape(x, (-1, self.m * x.shape[-1]))  # row i: points i*m .. i*m + m - 1

    def compute_output_shape(self, shape):
        return (None if shape[0] is None else shape[0] // self.m, self.m * shape[-1])

    def get_config(self):
        return {**super().get_config(), "m": self.m}


class Unpack(layers.Layer):
    """(n / m, k) -> (n, k): each pack's output repeated for its m members.

    D's output then has one row per point, as the training steps' labels and losses expect:
    every member of a pack gets the pack's score, so the mean loss over the n points equals
    the mean over the n / m packs (same value, same gradients).
    """

    def __init__(self, m, **kwargs):
        super().__init__(**kwargs)
        self.m = m

    def call(self, x):
        return keras.ops.repeat(x, self.m, axis=0)

    def compute_output_shape(self, shape):
        return (None if shape[0] is None else shape[0] * self.m, shape[-1])

    def get_config(self):
        return {**super().get_config(), "m": self.m}


def define_mlp_discriminator(pack=1, scale=1.0, units=128, depth=3, lr=0.0002, beta_1=0.5):
    """Points (n, 2) -> probability (n, 1), each point scored with the m - 1 points packed beside it.

    Inputs are divided by `scale` first (a fixed layer, no weights), so a toy spanning
    [-scale, scale] reaches D in [-1, 1]. depth ReLU layers of `units`. Compiled like the tutorial's D
    (with accuracy, which the tutorial loop reports).
    """
    model = keras.Sequential(
        [keras.Input(shape=(2,)), layers.Rescaling(1.0 / scale), Pack(pack)]  # (n, 2) -> (n / m, 2m)
        + [layers.Dense(units, activation="relu") for _ in range(depth)]
        + [layers.Dense(1, activation="sigmoid"), Unpack(pack)],  # (n / m, 1) -> (n, 1)
        name="mlp_discriminator",
    )
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1),
                  metrics=["accuracy"])
    return model


def define_mlp_generator(latent_dim=2, scale=1.0, units=128, depth=3):
    """Latent point (latent_dim,) -> point (2,): depth ReLU layers of `units`, a linear output times `scale`
    (a fixed layer, no weights)."""
    return keras.Sequential(
        [keras.Input(shape=(latent_dim,))] + [layers.Dense(units, activation="relu") for _ in range(depth)]
        + [layers.Dense(2), layers.Rescaling(scale)],
        name="mlp_generator",
    )


# ---------------------------------------------------------------- training a toy from scratch (`python -m gan_lib toy`)


