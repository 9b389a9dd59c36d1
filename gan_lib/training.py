"""The tutorial's training loop: train_on_batch on half batches, with progress and history.

Per batch: D learns from n_batch/2 real images (label 1), then n_batch/2 fake
ones (label 0); then G learns through the combined model from n_batch latent
points labelled 1 ('fool D'). Everything random comes from one NumPy Generator
and the models' own seed state, both saved in checkpoints, so a resumed run
continues exactly where the killed one stopped.
"""

import csv
import io
import json
import os
import time

import keras
import numpy as np

from .backend import set_seed  # noqa: F401  (re-exported: the tutorial loop's seeding)
from .checkpoint import list_checkpoints, mirror_run, restore_checkpoint, save_checkpoint
from .data import check_images, generate_fake_samples, generate_latent_points, generate_real_samples
from .evaluate import d_scores, save_generator, summarize_performance
from .files import write_text
from .panel import check_panel, panel_json
from .plots import plot_history, save_plot

HISTORY_COLUMNS = [
    "epoch", "batch", "step", "d_loss_real", "d_loss_fake", "g_loss",
    "d_x", "d_g_z", "acc_real", "acc_fake",
]


class TrainingDiverged(RuntimeError):
    """A loss or weight became NaN or infinite; training stopped."""


def default_outputs():
    """./outputs, or the checkout's top-level outputs/ when working inside a gan_lib checkout (notebooks/ too)."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    inside = (os.path.abspath(os.getcwd()) + os.sep).startswith(top + os.sep)
    if inside and os.path.isdir(os.path.join(top, "outputs")) and os.path.exists(os.path.join(top, "pyproject.toml")):
        return os.path.join(top, "outputs")
    return "outputs"


def new_run_dir(root=None, name="run"):
    """A fresh folder ROOT/NAME-YYYYmmdd-HHMMSS (with -2, -3... if taken); ROOT defaults to default_outputs()."""
    base = os.path.join(root or default_outputs(), f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, i = base, 1
    while os.path.exists(path):
        i += 1
        path = f"{base}-{i}"
    return path


def train_step(g_model, d_model, gan_model, dataset, latent_dim, n_batch, rng, panel):
    """One batch of the tutorial's loop. Returns the losses and D's scores as a dict."""
    half_batch = n_batch // 2
    x_real, y_real = generate_real_samples(dataset, half_batch, rng)
    x_fake, y_fake = generate_fake_samples(g_model, latent_dim, half_batch, rng)
    # D's opinion before it learns from this batch; accuracy against hard 0/1 labels
    scores = d_scores(d_model, np.concatenate([x_real, x_fake]))
    real_scores, fake_scores = scores[:half_batch], scores[half_batch:]
    # best practices (off by default): one-sided label smoothing, flipped labels
    y_real = y_real * (1.0 - panel["label_smoothing"])
    if panel["label_noise"] > 0:
        y_real = np.where(rng.random((half_batch, 1)) < panel["label_noise"], 0.0, y_real).astype(np.float32)
        y_fake = np.where(rng.random((half_batch, 1)) < panel["label_noise"], 1.0, y_fake).astype(np.float32)
    d_loss1, _ = d_model.train_on_batch(x_real, y_real)
    d_loss2, _ = d_model.train_on_batch(x_fake, y_fake)
    x_gan = generate_latent_points(latent_dim, n_batch, rng)
    y_gan = np.ones((n_batch, 1), dtype=np.float32)
    g_loss = gan_model.train_on_batch(x_gan, y_gan)
    return {
        "d_loss_real": float(d_loss1), "d_loss_fake": float(d_loss2), "g_loss": float(g_loss),
        "d_x": float(real_scores.mean()), "d_g_z": float(fake_scores.mean()),
        "acc_real": float((real_scores > 0.5).mean()), "acc_fake": float((fake_scores <= 0.5).mean()),
    }


def check_models(g_model, d_model, dataset, latent_dim):
    """ValueError when the data, latent size and the two models do not fit together."""
    g_in, g_out = tuple(g_model.input_shape[1:]), tuple(g_model.output_shape[1:])
    d_in = tuple(d_model.input_shape[1:])
    if g_in != (latent_dim,):
        raise ValueError(
            f"the generator takes latent points of size {g_in[0]}, but latent_dim is {latent_dim}; "
            f"set latent_dim={g_in[0]} or build a new generator"
        )
    if dataset.shape[1:] != d_in or g_out != d_in:
        raise ValueError(
            f"shapes do not match: images {dataset.shape[1:]}, generator output {g_out}, discriminator "
            f"input {d_in}; build the models with define_discriminator(in_shape={dataset.shape[1:]}) and "
            f"define_generator(latent_dim, out_shape={dataset.shape[1:]})"
        )


def train(g_model, d_model, gan_model, dataset, latent_dim=None, n_epochs=None, n_batch=None,
          panel=None, run_dir=None, verbose=1):
    """Train with the tutorial's loop; returns the per-batch history (list of dicts).

    dataset: float32 (N, H, W, C) in [-1, 1]. latent_dim, n_epochs and n_batch,
    when given, override the panel. Writes to run_dir (default: a new folder in
    outputs/): image grids, generator .keras files, history.csv, history.png,
    panel.json and checkpoints/. With panel['load_weights'] it resumes run_dir
    from its last checkpoint instead.
    """
    overrides = {k: v for k, v in (("latent_dim", latent_dim), ("n_epochs", n_epochs), ("n_batch", n_batch)) if v is not None}
    panel = check_panel(panel, **overrides)
    latent_dim, n_epochs, n_batch = panel["latent_dim"], panel["n_epochs"], panel["n_batch"]
    dataset = check_images(dataset, name="dataset")
    if n_batch > len(dataset):
        raise ValueError(
            f"panel key 'n_batch' is {n_batch} but the dataset has only {len(dataset)} images; "
            "lower n_batch or use more images"
        )
    check_models(g_model, d_model, dataset, latent_dim)
    models = (g_model, d_model, gan_model)
    run_dir = run_dir or new_run_dir()

    if panel["load_weights"] and not os.path.exists(os.path.join(run_dir, "panel.json")):
        raise ValueError(f"{run_dir!r} is not a gan_lib run folder (no panel.json), so there is nothing to resume; "
                         "give the folder a run wrote, or set load_weights=False to start a new run there")
    resuming = panel["load_weights"] and bool(list_checkpoints(run_dir))
    if panel["load_weights"] and not resuming and verbose:
        print(f"{run_dir} has no checkpoint yet (stopped in its first steps): starting it from the beginning")
    if resuming:
        saved = load_panel(run_dir)
        for key in ("n_batch", "latent_dim"):  # what each step draws: changing them breaks an exact resume
            if saved[key] != panel[key]:
                raise ValueError(
                    f"panel key {key!r} is {panel[key]} but run {run_dir!r} was made with {saved[key]}; a run "
                    "resumes with its own value (drop the override; in Python start from gan_lib.load_panel(run_dir))"
                )
        meta, fixed_z, rows, path = restore_checkpoint(run_dir, models, verbose=verbose)
        if panel["epochs"] and panel["epochs"] != meta["epoch"]:
            raise ValueError(
                f"panel key 'epochs' is {panel['epochs']} but the last checkpoint of {run_dir!r} has "
                f"{meta['epoch']} epochs completed; set epochs=0 to resume from wherever it stopped"
            )
        if meta["epoch"] >= n_epochs:
            raise ValueError(
                f"run {run_dir!r} has already trained {meta['epoch']} epochs and n_epochs is {n_epochs}; "
                f"ask for more to train longer (--epochs {meta['epoch'] + 10}, or n_epochs={meta['epoch'] + 10})"
            )
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["rng"]
        history = [dict(zip(HISTORY_COLUMNS, map(float, r))) for r in rows]
        for row in history:
            row.update(epoch=int(row["epoch"]), batch=int(row["batch"]), step=int(row["step"]))
        epoch0, batch0 = meta["epoch"], meta["batch"]
        if verbose:
            print(f"resuming {run_dir} from {os.path.basename(path)}: epoch {epoch0 + 1}, batch {batch0}")
    else:
        if os.path.exists(os.path.join(run_dir, "panel.json")) and not panel["load_weights"]:
            raise ValueError(
                f"{run_dir!r} already holds a run; resume it with load_weights=True (--resume) "
                "or choose another folder"
            )
        rng = np.random.default_rng(panel["seed"])
        fixed_z = generate_latent_points(latent_dim, panel["grid"] ** 2, rng)  # the same faces every epoch
        history, epoch0, batch0 = [], 0, 0
    os.makedirs(run_dir, exist_ok=True)
    write_text(os.path.join(run_dir, "panel.json"), panel_json(panel))

    bat_per_epo = len(dataset) // n_batch
    every = panel["checkpoint_every"]

    def checkpoint(epoch, batch):
        meta = {"epoch": epoch, "batch": batch, "rng": rng.bit_generator.state}
        rows = np.array([[row[k] for k in HISTORY_COLUMNS] for row in history], dtype=np.float64)
        try:
            save_checkpoint(run_dir, models, meta, fixed_z, rows.reshape(-1, len(HISTORY_COLUMNS)),
                            keep=panel["keep_checkpoints"])
        except FloatingPointError as e:
            _stop(run_dir, history, f"training diverged before epoch {epoch + 1}, batch {batch}: {e}")
        if batch == 0:  # epoch end; mid-epoch the checkpoint holds the history, and rewriting the CSV would cost
            write_history(run_dir, history)
        if panel["mirror_dir"]:
            mirror_run(run_dir, panel["mirror_dir"])

    for epoch in range(epoch0, n_epochs):
        bar = keras.utils.Progbar(bat_per_epo, verbose=1 if verbose else 0, stateful_metrics=["d1", "d2", "g"])
        bar.update(batch0)
        for j in range(batch0, bat_per_epo):
            row = train_step(g_model, d_model, gan_model, dataset, latent_dim, n_batch, rng, panel)
            if not all(np.isfinite([row["d_loss_real"], row["d_loss_fake"], row["g_loss"]])):
                bad = ", ".join(f"{k}={row[k]}" for k in ("d_loss_real", "d_loss_fake", "g_loss"))
                _stop(run_dir, history, f"training diverged at epoch {epoch + 1}, batch {j + 1}: {bad}")
            history.append({"epoch": epoch + 1, "batch": j + 1, "step": len(history) + 1, **row})
            if verbose:
                bar.update(j + 1, [("d1", row["d_loss_real"]), ("d2", row["d_loss_fake"]), ("g", row["g_loss"])])
                if panel["batchloss"] and (j + 1) % panel["batchloss"] == 0:
                    end_bar_line = "\n" if getattr(bar, "_dynamic_display", False) else ""  # the bar leaves its line open
                    print(f"{end_bar_line}>{epoch + 1}, {j + 1}/{bat_per_epo}, d1={row['d_loss_real']:.3f}, "
                          f"d2={row['d_loss_fake']:.3f}, g={row['g_loss']:.3f}")
            if every and len(history) % every == 0 and j + 1 < bat_per_epo:
                checkpoint(epoch, j + 1)
        batch0 = 0
        if panel["save_freq"] and (epoch + 1) % panel["save_freq"] == 0:
            fixed_fake = keras.ops.convert_to_numpy(g_model(fixed_z, training=False))
            save_plot(fixed_fake, epoch, n=panel["grid"], run_dir=run_dir)
        if (epoch + 1) % panel["summarization"] == 0 or epoch + 1 == n_epochs:
            summarize_performance(epoch, g_model, d_model, dataset, latent_dim, panel["n_samples"],
                                  run_dir=run_dir, rng=rng, plot=False, verbose=verbose)
        else:
            save_generator(g_model, epoch, run_dir, numbered=False)  # generator.keras: always the latest epoch
        if history:
            plot_history(history, os.path.join(run_dir, "history.png"))
        checkpoint(epoch + 1, 0)
    return history


def _stop(run_dir, history, message):
    """Save the history so far, leave the checkpoints alone, and raise TrainingDiverged."""
    write_history(run_dir, history)
    raise TrainingDiverged(f"{message}. History so far is in {run_dir}/history.csv; the last good "
                           "checkpoint is untouched (try a lower learning rate, or label_smoothing=0.1)")


def write_history(run_dir, history):
    """history.csv: one row per batch, the columns of HISTORY_COLUMNS."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, HISTORY_COLUMNS)
    writer.writeheader()
    writer.writerows(history)
    write_text(os.path.join(run_dir, "history.csv"), buf.getvalue())


def read_history(run_dir):
    """history.csv back as a list of dicts of numbers."""
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    return [{k: (int(v) if k in ("epoch", "batch", "step") else float(v)) for k, v in row.items()} for row in rows]


def load_panel(run_dir):
    """The panel a run was made with, checked. ValueError if panel.json is missing or damaged."""
    path = os.path.join(run_dir, "panel.json")
    try:
        with open(path) as f:
            return check_panel(json.load(f))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} cannot be read ({e}); is {run_dir!r} a gan_lib run folder?") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
