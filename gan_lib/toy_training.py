"""Training a toy GAN from scratch and scoring it: what `python -m gan_lib toy` runs (run_toy).

The toys' models and scores are in toy.py; here each toy's settings (TOY_DEFAULTS: the panel keys
and model keys it changes, measured to converge in about two minutes of CPU), the training itself
with either step kind (the tutorial loop's train_step or the fused step), the measurements an image
run takes too (so gan_lib.diagnose reads a toy run), and the files a run writes.
"""

import json
import math
import os
import time

import keras
import numpy as np

from .archs import apply_panel_optimizers
from .backend import set_seed
from .diagnosis import N_EVAL, N_GRAD, generator_gradient_norm, mean_distance
from .files import atomic_path, write_text
from .fused import FusedStep
from .losses import gan_loss
from .models import define_gan
from .panel import check_panel, parse_setting
from .plots import save_points
from .runs import EVAL_COLUMNS, TrainingDiverged, check_new_folder, new_run_dir
from .toy import (
    MODE_TOYS,
    X_RANGE,
    coverage,
    curve_distance,
    define_mlp_discriminator,
    define_mlp_generator,
    define_toy_discriminator,
    define_toy_generator,
    generate_real_points,
    mode_scores,
    sample_modes,
)
from .training import train_step

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
    if isinstance(model["scale"], bool) or not isinstance(model["scale"], (int, float)) or not 0 < model["scale"] < math.inf:
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
    if name == "parabola":
        d = define_toy_discriminator(lr=panel["d_lr"])
        g = define_toy_generator(panel["latent_dim"])
    else:
        d = define_mlp_discriminator(model["pack"], model["scale"], model["units"], model["depth"], panel["d_lr"])
        g = define_mlp_generator(panel["latent_dim"], model["scale"], model["units"], model["depth"])
    gan = define_gan(g, d, lr=panel["g_lr"], beta_1=panel["beta_1"], loss=gan_loss(panel))  # g_objective's loss
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
    """The image runs' measurements (runs.EVAL_COLUMNS) for a toy: G's gradient norm on z[:N_GRAD]; the
    samples' diversity (mean distance between two of g(z[:N_EVAL]), over `spread`, the real points'); for ring and
    grid, the modes covered by g(z) (all N_SAMPLES points, as the final score) and mode_counts, the high-quality
    points per mode (mode_scores' counts; toys only); no domain_fd (no classifier)."""
    points = keras.ops.convert_to_numpy(g(z, training=False)).astype(np.float32)
    found = None if name == "parabola" else mode_scores(points, name)
    return {"g_grad_norm": generator_gradient_norm(g, d, z[:N_GRAD], objective),
            "diversity": mean_distance(points[:N_EVAL]) / spread,
            "modes": None if found is None else float(found["modes"]), "domain_fd": None,
            # which modes (ring, grid): high-quality points near each, so a notebook can watch G move between them
            "mode_counts": None if found is None else found["counts"]}


def train_named_toy(name, steps, panel, model, log=None, log_every=0):
    """Train toy `name` from new models for `steps` steps; returns (samples float32 (2500, 2), scores, history).

    panel["fast"]: the fused step (FusedStep) or the tutorial's train_on_batch loop
    (training.train_step). log(line), every log_every steps: the losses and the scores so far.
    Every panel["eval_every"] steps (0 = never) the history's row also gets the image runs'
    measurements (measure_toy: g_grad_norm, diversity, modes; None in other rows), so
    gan_lib.diagnose(history) reads a toy run too. The caller seeds first (gan_lib.set_seed)
    for repeatable weights.
    """
    rng = np.random.default_rng(panel["seed"])
    data = real_toy_points(name, N_DATA, rng)  # (N_DATA, 2)
    z = rng.standard_normal((N_SAMPLES, panel["latent_dim"])).astype(np.float32)  # the points scored and saved
    g, d, gan = build_toy_models(name, panel, model)
    fused = FusedStep(g, d, gan, data, panel) if panel["fast"] else None
    spread = mean_distance(data[:N_EVAL])  # the real points' diversity: the unit of `diversity`
    every, history, checked = panel["eval_every"], [], 0  # checked: rows already found finite
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
            check_finite(history, name, checked)
            checked = len(history)
            last = history[-1]
            scores = toy_scores(keras.ops.convert_to_numpy(g(z)), name)
            log(f"step {k + 1}/{steps}: d_loss_real {last['d_loss_real']:.3f} d_loss_fake {last['d_loss_fake']:.3f} "
                f"g_loss {last['g_loss']:.3f} | {describe_scores(scores)}")
    if fused:
        history += fused.read()
    check_finite(history, name, checked)
    for k, row in enumerate(history):  # 1-based steps, and None where not measured, as in an image run's history
        row["step"] = k + 1
        for key in (*EVAL_COLUMNS, "mode_counts"):
            row.setdefault(key, None)
    samples = keras.ops.convert_to_numpy(g(z)).astype(np.float32)
    if not np.isfinite(samples).all():
        raise TrainingDiverged(f"toy {name} diverged: G's points are NaN or infinite after {steps} steps (try lower "
                               "learning rates, or a smaller scale)")
    return samples, toy_scores(samples, name), history


def check_finite(history, name, start=0):
    """TrainingDiverged at the first row (from `start` on) whose losses are NaN or infinite."""
    for k, row in enumerate(history[start:], start):
        losses = [row["d_loss_real"], row["d_loss_fake"], row["g_loss"]]
        if not np.isfinite(losses).all():
            raise TrainingDiverged(f"toy {name} diverged at step {k + 1}: d_loss_real={losses[0]}, "
                                   f"d_loss_fake={losses[1]}, g_loss={losses[2]} (try lower learning rates, or a "
                                   "smaller scale)")


def describe_scores(scores):
    """One line for toy_scores' dict."""
    if "curve_distance" in scores:
        return f"distance to the curve {scores['curve_distance']:.4f}, coverage {scores['coverage']:.2f}"
    return (f"modes {scores['modes']}/{scores['of']}, high quality {scores['high_quality']:.1%}, "
            f"reverse KL {scores['reverse_kl']:.3f}")


def parse_toy_setting(text):
    """'KEY=VALUE' for a toy: a panel key or one of MODEL_KEYS -> (key, value) typed like its default."""
    return parse_setting(text, extra=MODEL_KEYS)


def finite_or_none(value):
    """value, or None where it is a float that is not finite (JSON has no infinity)."""
    return None if isinstance(value, float) and not np.isfinite(value) else value


def run_toy(name, steps=None, overrides=None, out=None, log=print):
    """Everything `python -m gan_lib toy` does: train toy `name` (ring, grid, parabola) from new, seeded models for
    `steps` steps (default: the toy's) and write out/: samples.npy (float32 (2500, 2)), metrics.json (the scores,
    times, settings) and samples.png. overrides: panel keys and MODEL_KEYS (toy_settings). out: a new or empty
    folder (default outputs/TOY-DATE-TIME). log: a function given progress lines, or None. Returns (metrics.json's
    dict: toy, steps, seconds, cpu_seconds, scores, settings; out).
    """
    if name not in TOY_DEFAULTS:
        raise ValueError(f"unknown toy {name!r}; choose one of {', '.join(TOY_DEFAULTS)}")
    steps = TOY_DEFAULTS[name]["steps"] if steps is None else steps
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    panel, model = toy_settings(name, overrides)
    out = out or new_run_dir(None, name)
    check_new_folder(out, resumable=False)
    os.makedirs(out, exist_ok=True)  # claimed now: another run of the same second gets name-2
    if log:
        log(f"toy {name}: {steps} steps of {panel['n_batch']} points, "
            f"{'fused step' if panel['fast'] else 'tutorial loop'}, {model if name != 'parabola' else 'small models'}")
    set_seed(panel["seed"], panel["deterministic"])
    wall, cpu = time.perf_counter(), time.process_time()
    samples, scores, _ = train_named_toy(name, steps, panel, model, log=log, log_every=max(1, steps // 10))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with atomic_path(os.path.join(out, "samples.npy")) as tmp:
        np.save(tmp, samples)  # float32 (2500, 2)
    settings = {k: panel[k] for k in ("n_batch", "latent_dim", "d_lr", "g_lr", "beta_1", "seed", "fast",
                                      "label_smoothing", "label_noise")}
    if name != "parabola":
        settings.update(model)
    metrics = {"toy": name, "steps": steps, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
               "load_average": [round(x, 2) for x in os.getloadavg()], "scores": scores, "settings": settings}
    # strict JSON: a score that is infinite (reverse KL when no mode was found) is written as null
    write_text(os.path.join(out, "metrics.json"), json.dumps(keras.tree.map_structure(finite_or_none, metrics),
                                                               indent=2, allow_nan=False) + "\n")
    marks = None if name == "parabola" else MODE_TOYS[name][0]
    curve = None
    if name == "parabola":  # the true curve y = x^2 over X_RANGE, (101, 2)
        x = np.linspace(*X_RANGE, 101)
        curve = np.stack([x, x * x], axis=1)
    save_points(samples, os.path.join(out, "samples.png"), marks, curve,
                f"{name}, {steps} steps: {describe_scores(scores)}")
    return metrics, out
