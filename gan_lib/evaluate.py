"""How well D tells real from fake: the tutorial's summarize_performance and D's scores."""

import os

import keras
import numpy as np

from .data import generate_fake_samples, generate_real_samples
from .files import atomic_path, copy_file
from .plots import save_plot


def d_scores(d_model, x):
    """D's opinion of each image, probability of 'real': float32 (N,). Inference mode (no dropout)."""
    return keras.ops.convert_to_numpy(d_model(x, training=False)).reshape(-1)


def save_generator(g_model, epoch, run_dir=".", numbered=True):
    """generator.keras (the latest) and, when numbered, generator_model_eNNN.keras (epoch + 1).

    Written atomically, serialized once; returns the path of the first file written.
    """
    latest = os.path.join(run_dir, "generator.keras")
    path = os.path.join(run_dir, f"generator_model_e{epoch + 1:03d}.keras") if numbered else latest
    with atomic_path(path) as tmp:
        g_model.save(tmp)
    if numbered:
        copy_file(path, latest)
    return path


def summarize_performance(epoch, g_model, d_model, dataset, latent_dim, n_samples=150,
                          run_dir=".", rng=None, plot=True, verbose=True):
    """Score D on n_samples real and n_samples fake images, save G, and (plot=True) a grid.

    Accuracy is measured against hard 0/1 labels (score > 0.5 means 'real'), so it
    stays honest when training uses smoothed or noisy labels. Returns
    (acc_real, acc_fake) as fractions in [0, 1].
    """
    x_real, _ = generate_real_samples(dataset, n_samples, rng)
    acc_real = float(np.mean(d_scores(d_model, x_real) > 0.5))
    x_fake, _ = generate_fake_samples(g_model, latent_dim, n_samples, rng)
    acc_fake = float(np.mean(d_scores(d_model, x_fake) <= 0.5))
    if verbose:
        print(f">Accuracy real: {acc_real * 100:.0f}%, fake: {acc_fake * 100:.0f}%")
    if plot:
        n = int(np.sqrt(min(n_samples, 49)))
        save_plot(x_fake, epoch, n=n, run_dir=run_dir)
    save_generator(g_model, epoch, run_dir)
    return acc_real, acc_fake
