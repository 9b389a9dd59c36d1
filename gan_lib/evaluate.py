"""How good is a generator: the tutorial's summarize_performance and D's scores, and scoring a trained generator
(evaluate_generator; evaluate_run is the `evaluate` command)."""

import json
import os

import keras
import numpy as np

from . import inception2015, memorisation, modes
from . import metrics as inception
from .batches import first_input_shape, images_of, n_classes_of
from .data import generate_fake_samples, generate_real_samples, load_real_samples, sample_images
from .datasets import DownloadError
from .diagnosis import SATURATED_BATCHES, diagnose
from .files import atomic_path, copy_file, write_text
from .generate import check_image_generator, load_generator
from .losses import real_part
from .panel import check_panel
from .plots import save_plot
from .runs import is_run, load_panel, read_history


def d_scores(d_model, x):
    """D's opinion of each image, probability of 'real': float32 (N,). Inference mode (no dropout).
    An ACGAN's D: its first column (losses.real_part)."""
    return keras.ops.convert_to_numpy(real_part(d_model(x, training=False))).reshape(-1)


def save_generator(g_model, epoch, run_dir=".", numbered=True, name="generator"):
    """generator.keras (the latest) and, when numbered, generator_model_eNNN.keras (epoch + 1).

    Written atomically, serialized once; returns the path of the first file written. name: the latest's file name
    (generator_ema for the EMA of G, recipe.EMA, whose numbered files are generator_ema_eNNN.keras).
    """
    latest = os.path.join(run_dir, f"{name}.keras")
    stem = "generator_model" if name == "generator" else name
    path = os.path.join(run_dir, f"{stem}_e{epoch + 1:03d}.keras") if numbered else latest
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
        save_plot(images_of(x_fake), epoch, n=n, run_dir=run_dir)
    save_generator(g_model, epoch, run_dir)
    return acc_real, acc_fake


# ---------------------------------------------------------------- scoring a trained generator (python -m gan_lib evaluate)

METRICS = ("modes", "domain_fd", "memorisation", "kid", "fid")  # the classifier's three, then Inception's two
# ...and for a conditional GAN (cgan.py), the share of its images of the class asked for (modes.conditional_accuracy)
CONDITIONAL = "conditional_accuracy"
CLASSIFIED = ("shapes", "mnist", "fashion_mnist")  # datasets gan_lib has a classifier for (gan_lib/modes.py)


NETWORKS = ("auto", "standard", "keras")  # which Inception FID and KID use (network_of)
KERAS_NAME = "Keras InceptionV3 (ImageNet weights; not comparable with papers' FIDs)"


def reference_set(real, real_n):
    """The standard FID's real images: all of them, or a fixed random subset of real_n (the same every time, so
    its cached features are found again)."""
    if not real_n or len(real) <= real_n:
        return real
    return real[np.sort(np.random.default_rng(0).choice(len(real), real_n, replace=False))]


def network_of(inception="auto", weights="imagenet"):
    """'standard' (inception2015: the 2015 TensorFlow network papers use) or 'keras' (metrics.py: Keras's
    InceptionV3). auto: standard where torch and its network are installed, unless a Keras weights file is given."""
    if inception not in NETWORKS:
        raise ValueError(f"--inception must be one of {', '.join(NETWORKS)}, got {inception!r}")
    if inception == "auto":
        return "standard" if weights == "imagenet" and inception2015.available() else "keras"
    return inception


def evaluate_generator(g_model, real, dataset="shapes", metrics=METRICS, n=1000, weights="imagenet", seed=0,
                       inception="auto", log=None, real_n=10000):
    """Score g_model's images against real images (N, H, W, C) in [-1, 1]; returns (scores, skipped).

    FID and KID: on the standard network (inception="standard", or "auto" where it is installed), n generated
    images against reference_set's real ones (their features cached: inception2015.reference_features);
    on Keras's InceptionV3 (inception="keras"; weights: "imagenet", a file, or None for random weights), n of each.
    real_n: the standard network's real images, a fixed random subset of at most this many (0: all; papers use all
    of a training set, e.g. CIFAR-10's 50,000: about 1.5 hours on 2 CPU cores the first time, then cached).
    log: a function given progress lines of the slow parts, or None.

    scores: {metric: value or dict}; skipped: {metric: one line saying why it could not run
    here}. A metric that cannot run never stops the others. A conditional generator draws
    the n images for the classes in turn (0, 1, ..., K-1, 0, ...), and its metric
    conditional_accuracy (not for other generators) is the share the classifier puts in
    the class asked for (modes.conditional_accuracy; chance is 1 in 10).
    """
    unknown = [m for m in metrics if m not in (*METRICS, CONDITIONAL)]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from {', '.join((*METRICS, CONDITIONAL))}")
    if n < 2:
        raise ValueError(f"--n must be at least 2, got {n}")
    rng = np.random.default_rng(seed)
    k = n_classes_of(g_model)
    latent_dim = first_input_shape(g_model)[-1]
    classes = np.arange(n) % k if k else None  # a conditional G: every class equally often
    fake, _ = sample_images(g_model, latent_dim, n, rng, classes=classes)  # G on SAMPLE_BATCH images at a time
    training, real = real, real[rng.choice(len(real), min(n, len(real)), replace=False)]  # n of each: FID's bias
    scores, skipped, cache = {}, {}, {"network": network_of(inception, weights), "log": log, "real_n": real_n}
    for metric in metrics:
        if metric == CONDITIONAL and not k:
            skipped[metric] = "the generator is not conditional (it takes no class): train one with --arch cgan or acgan"
            continue
        if metric in ("modes", "domain_fd", "memorisation", CONDITIONAL) and dataset not in CLASSIFIED:
            skipped[metric] = f"needs a dataset gan_lib has a classifier for ({', '.join(CLASSIFIED)}), not {dataset!r}"
            continue
        if metric in ("kid", "fid") and metric in skipped:
            continue
        try:
            scores[metric] = (modes.conditional_accuracy(fake, classes, dataset) if metric == CONDITIONAL
                              else _score(metric, real, fake, training, dataset, weights, seed, cache))
        except (DownloadError, ValueError, inception2015.Unavailable) as e:  # offline, no torch, ...
            reason = " ".join(str(e).split())
            for m in (("kid", "fid") if metric in ("kid", "fid") else (metric,)):
                if m in metrics:
                    skipped[m] = reason  # Inception's failure stops both of its metrics, said once each
    return scores, skipped


def _score(metric, real, fake, training, dataset, weights, seed, cache):
    """One metric's value; cache keeps the Inception features, which FID and KID share."""
    if metric == "modes":
        found = modes.mode_count(fake, dataset)
        return {k: found[k] for k in ("classes_found", "kl", "confident")}
    if metric == "domain_fd":  # the Frechet distance on the classifier's features: cheap, and no download
        return inception.fid_from_features(modes.features(real, dataset), modes.features(fake, dataset))
    if metric == "memorisation":
        return memorisation.memorisation_score(fake, training, dataset=dataset)  # against every training image
    if "inception" not in cache and cache["network"] == "standard":  # up to real_n real images (0: all, as papers)
        cache["inception"] = (inception2015.reference_features(reference_set(training, cache["real_n"]), log=cache["log"]),
                              inception2015.features(fake, log=cache["log"]))
    elif "inception" not in cache:  # 2048-d pool features at 299 x 299: the slow part
        cache["inception"] = (inception.inception_features(real, weights), inception.inception_features(fake, weights))
    if metric == "fid":
        return inception.fid_from_features(*cache["inception"])
    mean, std = inception.kid(*cache["inception"], rng=seed)
    return {"mean": mean, "std": std}


def evaluate_run(model, metrics=None, n=1000, dataset=None, weights="imagenet", seed=0, log=print, inception="auto",
                 which="auto", real_n=10000):
    """What `python -m gan_lib evaluate` does: score a generator (a run folder or a .keras file) against the real
    images (default: its run's dataset, at the run's size and channels), say what its history.csv shows
    (diagnosis.py), and write metrics.json beside the model. metrics: names from METRICS (default: all of them,
    and conditional_accuracy for a conditional GAN). log: a function given the report's lines, or None.
    inception: the network FID and KID use (network_of; the report and metrics.json name it). which: the run's
    generator to score (generate.load_generator: auto, latest, ema, best).
    Returns (scores, skipped, path of metrics.json)."""
    if not 0 <= seed < 2**32:  # before anything is loaded; NumPy's own message names no flag
        raise ValueError(f"--seed must be between 0 and 2**32 - 1, got {seed}")
    network = network_of(inception, weights)
    g_model, model_path = load_generator(model, which)
    check_image_generator(g_model, model_path)  # a discriminator, a CycleGAN's G: said before any data is loaded
    folder = os.path.dirname(model_path)
    in_run = is_run(folder)
    panel = load_panel(folder) if in_run else check_panel()
    dataset_name = dataset or (panel["dataset"] if in_run else None)
    if not dataset_name:
        raise ValueError(f"{model_path} is not in a run folder, so give the real images with --dataset")
    # The real images must look like the generated ones: the panel's size and channels, or when it says 0 the
    # generator's (a model outside a run folder, or a folder of photos, which training brought to that size).
    _, h, w, c = g_model.output_shape  # a conditional G's too: one output, the images
    real = load_real_samples(dataset_name, 0 if dataset else panel["limit"], image_size=panel["image_size"] or h * (h == w),
                             resize=panel["resize"], channels=panel["channels"] or c, log=log)
    if metrics is None:  # all of them; a conditional GAN is also asked whether it draws the class asked for
        metrics = [*METRICS, CONDITIONAL] if n_classes_of(g_model) else list(METRICS)
    if not metrics:
        raise ValueError(f"--metrics names no metric; choose from {', '.join((*METRICS, CONDITIONAL))}")
    if real_n < 0:
        raise ValueError(f"--real must be 0 (all the real images) or more, got {real_n}")
    scores, skipped = evaluate_generator(g_model, real, dataset_name, metrics, n, weights, seed, network, log, real_n)
    say = log or (lambda line: None)
    say(f"{model_path} against {dataset_name} ({len(real)} images), {n} generated:")
    named = inception2015.NAME if network == "standard" else KERAS_NAME
    pad = max(map(len, metrics), default=0)  # the values in one column
    for m in metrics:
        say(f"  {m:<{pad}} {shown(scores[m]) if m in scores else 'not run: ' + skipped[m]}")
    if {"fid", "kid"} & set(scores):
        used = len(reference_set(real, real_n)) if network == "standard" else min(n, len(real))
        say(f"fid and kid: {named}; {n} generated against {used} of the {len(real)} real images")
    found = None
    if os.path.exists(os.path.join(folder, "history.csv")):  # a run: what its history says (diagnosis.py)
        history = read_history(folder)
        found = diagnose(history)
        short = len(history) < SATURATED_BATCHES and not any(row.get("diversity") is not None for row in history)
        say("diagnosis of its history.csv:" if found else f"diagnosis of its history.csv: too short to judge "
            f"({len(history)} batches, none measured)" if short else "diagnosis of its history.csv: no sign of trouble")
        for line in found.values():
            say(f"  {line}")
    out = os.path.join(folder, "metrics.json")
    write_text(out, json.dumps({"model": os.path.basename(model_path), "dataset": dataset_name, "n": n, "seed": seed,
                                "inception": named, "scores": scores, "not_run": skipped, "diagnosis": found}, indent=2))
    say(f"wrote {out}")
    return scores, skipped, out


def shown(value):
    """A metric's value as evaluate prints it: numbers to 4 significant digits, per-class shares to 2 decimals."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {shown(v)}" if isinstance(v, (float, list)) else
                         f"{k} none (both sets whole in every subset)" if v is None else f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):  # per-class shares
        return "[" + " ".join("-" if v is None else f"{v:.2f}" for v in value) + "]"
    return f"{value:.4g}"
