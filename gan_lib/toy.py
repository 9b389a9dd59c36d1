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
        d_loss_real, _ = d_model.train_on_batch(x_real, y_real)
        d_loss_fake, _ = d_model.train_on_batch(x_fake, y_fake)
        z = generate_latent_points(latent_dim, n_batch, rng)
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

# Settings of the toys' models, beside the control panel's keys (set them with --set KEY=VALUE too)
MODEL_KEYS = {
    "pack": 1,  # PacGAN: D judges this many samples together; n_batch / 2 must be a multiple of it
    "scale": 1.0,  # G's output is multiplied by it and D's input divided by it (fixed layers): the toy's extent
    "units": 128,  # neurons in each hidden layer of G and D
    "depth": 3,  # hidden layers of G and D
}

# Each toy's defaults: the panel keys and model keys it changes, and its steps. Measured with the fused step on a
# shared 2-core CPU (benchmarks/toys.py), each about 2 minutes of CPU time or less. The grid spans [-4, 4]; the
# plain GAN (scale 1, Adam 2e-4) reached 10/25 modes in 20,000 steps. Scaled by 4 into [-1, 1] with Adam at 1e-3:
# 18-20/25 and about 90% high quality (seeds 1, 2); adding one-sided label smoothing 0.1 and packing pairs
# (PacGAN2): 22-24/25 and 91-94% high quality, in less time (D sees half as many rows). Pack 4 lost quality.
TOY_DEFAULTS = {
    "ring": {"steps": 16000, "n_batch": 512, "latent_dim": 2, "d_lr": 0.0002, "g_lr": 0.0002, "beta_1": 0.5},
    "grid": {"steps": 20000, "n_batch": 512, "latent_dim": 2, "d_lr": 0.001, "g_lr": 0.001, "beta_1": 0.5,
             "label_smoothing": 0.1, "scale": 4.0, "pack": 2},
    # the tutorial's small models (define_toy_*), Adam 0.001 with Keras' default beta_1
    "parabola": {"steps": 20000, "n_batch": 128, "latent_dim": 5, "d_lr": 0.001, "g_lr": 0.001, "beta_1": 0.9},
}
N_SAMPLES = 2500  # generated points scored and saved, as in the papers
N_DATA = 100_000  # real points drawn once; the training steps sample their half batches from them


def toy_settings(name, overrides=None):
    """The panel (checked by check_panel) and the model settings for toy `name`: its defaults, then overrides.

    overrides: panel keys and MODEL_KEYS. Returns (panel, model) dicts. ValueError for an
    unknown toy or key, or values that cannot work together.
    """
    from .panel import check_panel

    if name not in TOY_DEFAULTS:
        raise ValueError(f"unknown toy {name!r}; choose one of {', '.join(TOY_DEFAULTS)}")
    merged = {**TOY_DEFAULTS[name], **(overrides or {})}
    merged.pop("steps")
    model = dict(MODEL_KEYS)
    for key in MODEL_KEYS:
        if key in merged:
            model[key] = merged.pop(key)
    if name == "parabola" and model != MODEL_KEYS:
        raise ValueError("pack, scale, units and depth set the ring's and grid's models; "
                         "the parabola trains the tutorial's small ones (leave them out)")
    for key, want in (("pack", int), ("units", int), ("depth", int)):
        if type(model[key]) is not want or model[key] < 1:
            raise ValueError(f"{key} must be a whole number of at least 1, got {model[key]!r}")
    if isinstance(model["scale"], bool) or not isinstance(model["scale"], (int, float)) or not model["scale"] > 0:
        raise ValueError(f"scale must be a number above 0 (the toy's extent: 1 for the ring, 4 for the grid), "
                         f"got {model['scale']!r}")
    model["scale"] = float(model["scale"])
    panel = check_panel(dataset=name, **merged)
    if (panel["n_batch"] // 2) % model["pack"]:
        raise ValueError(f"the half batch ({panel['n_batch'] // 2}) must be a multiple of pack ({model['pack']}): "
                         f"choose n_batch a multiple of {2 * model['pack']}")
    if model["pack"] > 1 and panel["label_noise"] > 0:
        raise ValueError("label_noise flips single labels, but a pack shares one label; "
                         "use label_noise=0 with pack above 1")
    return panel, model


def build_toy_models(name, panel, model):
    """(g_model, d_model, gan_model) for toy `name`, compiled with the panel's Adam settings."""
    from .models import apply_panel_optimizers, define_gan

    if name == "parabola":
        d = define_toy_discriminator(lr=panel["d_lr"])
        g = define_toy_generator(panel["latent_dim"])
    else:
        d = define_mlp_discriminator(model["pack"], model["scale"], model["units"], model["depth"], panel["d_lr"])
        g = define_mlp_generator(panel["latent_dim"], model["scale"], model["units"], model["depth"])
    gan = define_gan(g, d, lr=panel["g_lr"], beta_1=panel["beta_1"])
    apply_panel_optimizers(d, gan, panel, explicit=("d_lr", "g_lr", "beta_1"))  # D's beta_1 too
    return g, d, gan


def real_toy_points(name, n, rng):
    """n real points of toy `name`: float32 (n, 2)."""
    return generate_real_points(n, rng)[0] if name == "parabola" else sample_modes(name, n, rng)


def toy_scores(points, name):
    """The toy's scores for points (N, 2): mode_scores for ring and grid; curve_distance and coverage for the parabola."""
    if name == "parabola":
        return {"curve_distance": curve_distance(points), "coverage": coverage(points)}
    return mode_scores(points, name)


def measure_toy(g, d, name, z, spread, objective):
    """The image runs' measurements (diagnosis.EVAL_COLUMNS) for a toy: G's gradient norm on z[:N_GRAD]; the
    samples' diversity (mean distance between two of g(z[:N_EVAL]), over `spread`, the real points'); for ring and
    grid, the modes covered by g(z) (all N_SAMPLES points, as the final score); no domain_fd (no classifier)."""
    from .diagnosis import N_EVAL, N_GRAD, generator_gradient_norm, mean_distance

    points = keras.ops.convert_to_numpy(g(z, training=False)).astype(np.float32)
    return {"g_grad_norm": generator_gradient_norm(g, d, z[:N_GRAD], objective),
            "diversity": mean_distance(points[:N_EVAL]) / spread,
            "modes": None if name == "parabola" else float(mode_scores(points, name)["modes"]), "domain_fd": None}


def train_named_toy(name, steps, panel, model, log=None, log_every=0):
    """Train toy `name` from new models for `steps` steps; returns (samples float32 (2500, 2), scores, history).

    panel["fast"]: the fused step (FusedStep) or the tutorial's train_on_batch loop
    (training.train_step). log(line), every log_every steps: the losses and the scores so far.
    Every panel["eval_every"] steps (0 = never) the history's row also gets the image runs'
    measurements (measure_toy: g_grad_norm, diversity, modes; None in other rows), so
    gan_lib.diagnose(history) reads a toy run too. The caller seeds first (gan_lib.set_seed)
    for repeatable weights.
    """
    from .diagnosis import EVAL_COLUMNS, N_EVAL, mean_distance
    from .fused import FusedStep
    from .training import train_step

    rng = np.random.default_rng(panel["seed"])
    data = real_toy_points(name, N_DATA, rng)  # (N_DATA, 2)
    z = rng.standard_normal((N_SAMPLES, panel["latent_dim"])).astype(np.float32)  # the points scored and saved
    g, d, gan = build_toy_models(name, panel, model)
    fused = FusedStep(g, d, gan, data, panel) if panel["fast"] else None
    spread = mean_distance(data[:N_EVAL])  # the real points' diversity: the unit of `diversity`
    every, history = panel["eval_every"], []
    for k in range(steps):
        if fused:
            fused(k)
        else:
            history.append(train_step(g, d, gan, data, panel["latent_dim"], panel["n_batch"], rng, panel))
        if every and (k + 1) % every == 0:
            history += fused.read() if fused else []
            history[-1].update(measure_toy(g, d, name, z, spread, panel["g_objective"]))
        if log and log_every and ((k + 1) % log_every == 0 or k + 1 == steps):
            if fused:
                history += fused.read()  # one transfer for the steps since the last line
            last = history[-1]
            scores = toy_scores(keras.ops.convert_to_numpy(g(z)), name)
            log(f"step {k + 1}/{steps}: d_loss_real {last['d_loss_real']:.3f} d_loss_fake {last['d_loss_fake']:.3f} "
                f"g_loss {last['g_loss']:.3f} | {describe_scores(scores)}")
    if fused:
        history += fused.read()
    for k, row in enumerate(history):  # 1-based steps, and None where not measured, as in an image run's history
        row["step"] = k + 1
        for key in EVAL_COLUMNS:
            row.setdefault(key, None)
    samples = keras.ops.convert_to_numpy(g(z)).astype(np.float32)
    return samples, toy_scores(samples, name), history


def describe_scores(scores):
    """One line for toy_scores' dict."""
    if "curve_distance" in scores:
        return f"distance to the curve {scores['curve_distance']:.4f}, coverage {scores['coverage']:.2f}"
    return (f"modes {scores['modes']}/{scores['of']}, high quality {scores['high_quality']:.1%}, "
            f"reverse KL {scores['reverse_kl']:.3f}")
