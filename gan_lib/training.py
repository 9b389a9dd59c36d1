"""The tutorial's training loop: train_on_batch on half batches, with progress and history.

Per batch: D learns from n_batch/2 real images (label 1), then n_batch/2 fake
ones (label 0); then G learns through the combined model from n_batch latent
points labelled 1 ('fool D'). Everything random comes from one NumPy Generator
and the models' own seed state, both saved in checkpoints, so a resumed run
continues exactly where the killed one stopped.
"""

import dataclasses
import os
import shutil
import sys
import tempfile

import keras
import numpy as np

from . import devices
from .archs import CYCLEGAN_ELSEWHERE, apply_panel_optimizers, build_placed
from .backend import set_seed
from .batches import class_grid, first_input_shape, images_of, join, n_classes_of
from .best import BestTracker
from .checkpoint import check_mirror, list_checkpoints, restore_checkpoint
from .data import (
    generate_fake_samples,
    generate_latent_points,
    generate_real_samples,
    load_training_set,
)
from .datasets import check_dataset, check_labels, n_classes
from .diagnosis import Monitor, diagnose
from .evaluate import d_scores, save_generator, summarize_performance
from .files import append_text
from .fused import FusedStep
from .losses import objective_of
from .panel import RECIPE_KEYS, RUN_KEYS, check_panel
from .plots import plot_history, save_plot
from .progress import Progress
from .runs import (
    EVAL_COLUMNS,
    check_epochs,
    check_kept,
    check_new_folder,
    close_mirror,
    diverged,
    history_rows,
    is_run,
    load_panel,
    new_run_dir,
    open_run,
    run_name,
    save_state,
)


def train_step(g_model, d_model, gan_model, dataset, latent_dim, n_batch, rng, panel):
    """One iteration of the tutorial's loop. Returns the losses and D's scores as a dict.

    D learns panel['d_steps'] times (each on a new real and a new fake half batch: two
    updates, or one on both together with panel['mixed_batch']), then G panel['g_steps']
    times (each on n_batch new latent points). The losses returned are the means over
    those steps; with mixed_batch, d_loss_real and d_loss_fake both hold the one batch's loss.

    A conditional GAN (cgan.py; dataset [images, labels]) runs the same steps with the
    class beside each image: the real images' own, uniformly drawn ones for G's images.
    """
    half_batch = n_batch // 2
    d_losses = []  # (real, fake) per D step
    for k in range(panel["d_steps"]):
        x_real, y_real = generate_real_samples(dataset, half_batch, rng)
        # G in training mode, as in its own step below: with BatchNorm (DCGAN) D must learn from the images G's
        # step optimizes, not from inference-mode ones, whose lagging moving statistics make them different images
        x_fake, y_fake = generate_fake_samples(g_model, latent_dim, half_batch, rng, training=True)
        if k == 0:  # D's opinion before it learns in this iteration; accuracy against hard 0/1 labels
            scores = d_scores(d_model, join(x_real, x_fake))
            real_scores, fake_scores = scores[:half_batch], scores[half_batch:]
        # best practices (off by default): one-sided label smoothing, flipped labels
        y_real = y_real * (1.0 - panel["label_smoothing"])
        if panel["label_noise"] > 0:
            y_real = np.where(rng.random((half_batch, 1)) < panel["label_noise"], 0.0, y_real).astype(np.float32)
            y_fake = np.where(rng.random((half_batch, 1)) < panel["label_noise"], 1.0, y_fake).astype(np.float32)
        # reset_metrics: each call then reports its own batch's loss (Keras before 3.15, Colab's 3.13 too,
        # reports the running mean since the model's first call; tests/test_batch_losses.py)
        if panel["mixed_batch"]:  # one update on real and fake together (BatchNorm would see them mixed)
            d_model.reset_metrics()
            loss, _ = d_model.train_on_batch(join(x_real, x_fake), np.concatenate([y_real, y_fake]))
            d_losses.append((float(loss), float(loss)))
        else:  # the tutorial's: a real half batch, then a fake one
            d_model.reset_metrics()
            d_loss1, _ = d_model.train_on_batch(x_real, y_real)
            d_model.reset_metrics()
            d_loss2, _ = d_model.train_on_batch(x_fake, y_fake)
            d_losses.append((float(d_loss1), float(d_loss2)))
    g_losses = []
    for _ in range(panel["g_steps"]):
        x_gan = generate_latent_points(latent_dim, n_batch, rng, n_classes=n_classes_of(g_model))  # [z, classes] for cgan
        y_gan = np.ones((n_batch, 1), dtype=np.float32)
        gan_model.reset_metrics()
        g_losses.append(float(gan_model.train_on_batch(x_gan, y_gan)))
    d_loss1, d_loss2 = np.mean(d_losses, axis=0)  # the mean of one value is that value, exactly
    return {
        "d_loss_real": float(d_loss1), "d_loss_fake": float(d_loss2), "g_loss": float(np.mean(g_losses)),
        "d_x": float(real_scores.mean()), "d_g_z": float(fake_scores.mean()),
        "acc_real": float((real_scores > 0.5).mean()), "acc_fake": float((fake_scores <= 0.5).mean()),
    }


def check_training_data(dataset, g_model, d_model):
    """The dataset checked (datasets.check_dataset; labels: check_labels): images (N, H, W, C), float32 in [-1, 1] or
    uint8, or for a conditional GAN [images, int32 labels (N,)]. ValueError when the data and the models disagree
    about labels."""
    k, d_k = n_classes_of(g_model), n_classes_of(d_model)
    if k != d_k:
        raise ValueError(f"the generator knows {k or 'no'} classes but the discriminator {d_k or 'no'}; build both "
                         "with the same n_classes (gan_lib.build_models does it)")
    if isinstance(dataset, (list, tuple)):
        if len(dataset) != 2:
            raise ValueError(f"a labelled dataset is [images, labels], got {len(dataset)} parts")
        if not k:
            raise ValueError("the dataset has labels but the models are not conditional; build them with arch 'cgan' "
                             "or 'acgan' (gan_lib.build_models({'arch': 'cgan'}, ...)), or pass the images alone")
        images = check_dataset(dataset[0], name="dataset")
        return [images, check_labels(dataset[1], len(images), k, name="dataset")]
    if k:
        raise ValueError("the models are conditional (arch cgan, acgan) and need a class label per image; give the dataset "
                         "as [images, labels] (gan_lib.load_labelled_samples loads both)")
    return check_dataset(dataset, name="dataset")


def check_models(g_model, d_model, dataset, latent_dim):
    """ValueError when the data, latent size and the two models do not fit together."""
    dataset = images_of(dataset)
    g_in, g_out = first_input_shape(g_model), tuple(g_model.output_shape[1:])
    d_in = first_input_shape(d_model)
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


RESUME_KEPT = RUN_KEYS + ("recipe", "gp_weight") + RECIPE_KEYS  # a resume keeps what defines the run (the dataset, the recipe)


@dataclasses.dataclass
class Run:
    """What one train() call carries from step to step."""

    run_dir: str
    panel: dict
    models: tuple  # (g_model, d_model, gan_model)
    rng: np.random.Generator  # every draw: real images, latent points, label noise
    fixed_z: np.ndarray  # (grid**2, latent_dim): the same latent points for every saved grid; cgan: (grid, latent_dim)
    history: list  # one dict per batch, HISTORY_COLUMNS
    epoch0: int = 0  # where this call starts: epochs completed...
    batch0: int = 0  # ...and batches of the next epoch already done
    fused: FusedStep = None  # the compiled step when panel['fast'], else None (the tutorial loop)
    monitor: Monitor = None  # measures G every panel['eval_every'] batches (None when 0)
    best: BestTracker = None  # keeps the best generator, scored every panel['best_every'] batches (None when 0)
    hints: set = dataclasses.field(default_factory=set)  # the diagnosis kinds that hold now (printed once each)
    mirrored: bool = True  # whether the last mirror (panel key mirror_dir) succeeded

    @property
    def extra(self):
        """Variables a checkpoint holds beyond the models and optimizers: the fused step's RNG state."""
        return self.fused.variables if self.fused else []


def train(g_model, d_model, gan_model, dataset, latent_dim=None, n_epochs=None, n_batch=None,
          panel=None, run_dir=None, verbose=1):
    """Train with the tutorial's loop; returns the per-batch history (list of dicts).

    dataset: float32 (N, H, W, C) in [-1, 1], or uint8 in [0, 255], kept as uint8
    (a quarter of the memory) and scaled per batch, on the device in the fused step; for a
    conditional GAN (arch cgan) [images, labels], labels int (N,) class indices. latent_dim, n_epochs and n_batch,
    when given, override the panel. The panel's d_lr, g_lr and beta_1 are applied
    to the compiled optimizers (see archs.apply_panel_optimizers). Writes to
    run_dir (default: a new folder in outputs/): image grids, generator .keras
    files, history.csv, history.png, panel.json and checkpoints/. With
    panel['load_weights'] it resumes run_dir from its last checkpoint instead.
    The models must have been built under the panel's precision (set_precision
    before define_*); otherwise ValueError, as for mixed_float16 without a GPU.
    """
    overrides = {k: v for k, v in (("latent_dim", latent_dim), ("n_epochs", n_epochs), ("n_batch", n_batch)) if v is not None}
    given = {**(panel or {}), **overrides}
    if given.get("load_weights") and run_dir and is_run(run_dir):
        given = {**load_panel(run_dir), "epochs": 0, **given}  # a resumed run keeps its own settings unless told
    explicit = set(given)  # keys the caller chose or the run recorded, as opposed to defaults
    panel = check_panel(given)
    dataset = check_training_data(dataset, g_model, d_model)  # uint8 stays uint8: scaled per batch
    if panel["n_batch"] > len(images_of(dataset)):
        raise ValueError(
            f"panel key 'n_batch' is {panel['n_batch']} but the dataset has only {len(images_of(dataset))} images; "
            "lower n_batch or use more images"
        )
    check_models(g_model, d_model, dataset, panel["latent_dim"])
    devices.check_models_precision((g_model, d_model, gan_model), panel["precision"])
    devices.check_devices(g_model, d_model, panel)
    if objective_of(gan_model) != panel["g_objective"]:
        raise ValueError(f"the combined model was compiled for g_objective {objective_of(gan_model)!r} but panel key "
                         f"'g_objective' is {panel['g_objective']!r}; build it with define_gan(g_model, d_model"
                         + (", loss=gan_lib.saturating_loss" if panel["g_objective"] == "saturating" else "")
                         + ") (gan_lib.build_models does it from the panel)")
    if not devices.is_chief():  # a multi-worker run: only the chief writes the run folder
        with tempfile.TemporaryDirectory(prefix="gan_lib-worker-") as folder:
            copy = os.path.join(folder, "run")  # this worker trains in step with the chief, in a copy thrown away
            if panel["load_weights"]:
                shutil.copytree(run_dir, copy)  # resuming: every worker must be able to read the run (a shared disk)
            return _train((g_model, d_model, gan_model), dataset, {**panel, "mirror_dir": ""}, copy, explicit, 0)
    check_mirror(panel["mirror_dir"])  # the chief mirrors the run; the other workers never do, so never check it
    return _train((g_model, d_model, gan_model), dataset, panel, run_dir or new_run_dir(), explicit, verbose)


def _train(models, dataset, panel, run_dir, explicit, verbose):
    """train() once its arguments are checked: the run folder's checks, then the epochs."""
    g_model, d_model, gan_model = models
    fused = None
    try:
        with open_run(run_dir, panel["load_weights"]) as lock:
            if not panel["load_weights"]:
                apply_panel_optimizers(d_model, gan_model, panel, explicit)
            fused = FusedStep(g_model, d_model, gan_model, dataset, panel) if panel["fast"] else None
            run = start_or_resume(models, panel, run_dir, explicit, verbose, fused, dataset)
            lock.claim(panel)  # from here on this process writes the run: the lock file says so, panel.json too
            for epoch in range(run.epoch0, panel["n_epochs"]):
                train_epoch(run, dataset, epoch, verbose)
                end_epoch(run, dataset, epoch, verbose)
            close_mirror(run_dir, panel, run.mirrored, verbose)
    finally:
        if fused is not None:
            fused.sync()  # interrupted mid-epoch on JAX: the models still hold the latest weights
    return run.history


def start_or_resume(models, panel, run_dir, explicit, verbose, fused=None, dataset=None):
    """A fresh Run from the seed, or the Run of run_dir's last checkpoint (models and fused step restored too)."""
    resuming = panel["load_weights"] and bool(list_checkpoints(run_dir))
    monitor = Monitor(dataset, panel) if panel["eval_every"] else None
    if panel["load_weights"] and not resuming:  # on stderr, even when quiet: the user asked for a resume
        print(f"{run_dir} has no checkpoint yet (stopped in its first steps): starting it from the beginning",
              file=sys.stderr)
    if not resuming:
        if panel["load_weights"]:
            apply_panel_optimizers(models[1], models[2], panel, explicit)
        rng = np.random.default_rng(panel["seed"])
        # the same faces every epoch; cgan: one latent point per column, drawn in every class's row (class_grid)
        fixed_z = generate_latent_points(panel["latent_dim"], panel["grid"] ** (1 if n_classes_of(models[0]) else 2), rng)
        best = BestTracker(dataset, panel, run_dir) if panel["best_every"] else None
        return Run(run_dir, panel, models, rng, fixed_z, [], fused=fused, monitor=monitor, best=best)
    # what each step draws, the grid's fixed latent points, and the arithmetic the run was made with
    check_kept(load_panel(run_dir), panel, RESUME_KEPT, run_dir)
    meta, fixed_z, rows, path = restore_checkpoint(run_dir, models, verbose=verbose, extra=fused.variables if fused else [])
    check_epochs(meta, panel, run_dir)
    changed = apply_panel_optimizers(models[1], models[2], panel, explicit)  # after the restore: the panel wins
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    if verbose:
        print(f"resuming {run_dir} from {os.path.basename(path)}: epoch {meta['epoch'] + 1}, batch {meta['batch']}")
        for key, old, new in dict.fromkeys(changed):
            print(f"{key} is now {new:g} (the checkpoint's optimizer had {old:g})")
    history = history_rows(rows)
    best = BestTracker(dataset, panel, run_dir, len(history)) if panel["best_every"] else None
    return Run(run_dir, panel, models, rng, fixed_z, history, meta["epoch"], meta["batch"], fused, monitor, best,
               set(diagnose(history)))  # what held when the run stopped was said then


def train_epoch(run, dataset, epoch, verbose):
    """The batches of one epoch (0-based), from run.batch0 on; checkpoints every checkpoint_every batches."""
    panel, (g_model, d_model, gan_model) = run.panel, run.models
    bat_per_epo = len(images_of(dataset)) // panel["n_batch"]
    progress = Progress(epoch + 1, panel["n_epochs"], bat_per_epo, done=run.batch0, verbose=verbose)
    # what the optimizers really use (read from them, not from the panel), recorded with every batch
    lrs = {key: float(f"{float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)):.7g}")  # float32 digits
           for key, model in (("d_lr", d_model), ("g_lr", gan_model))}
    every, read_every = panel["checkpoint_every"], panel["batchloss"] or 10
    for j in range(run.batch0, bat_per_epo):
        if run.fused is None:
            rows = [train_step(g_model, d_model, gan_model, dataset, panel["latent_dim"], panel["n_batch"], run.rng, panel)]
        else:  # losses stay on the device until a line is printed, a checkpoint is due or the epoch ends
            run.fused(len(run.history) + len(run.fused.pending))  # the run's 0-based step
            done = len(run.history) + len(run.fused.pending)
            due = ((j + 1) % read_every == 0 or j + 1 == bat_per_epo or (every and done % every == 0)
                   or (run.monitor and done % panel["eval_every"] == 0) or (run.best and done % panel["best_every"] == 0)
                   or (verbose and progress.due(j + 1)))
            rows = run.fused.read() if due else []
        for k, row in enumerate(rows):  # batches j + 2 - len(rows) ... j + 1; the bar shows the latest only
            record(run, row, epoch, j + 2 - len(rows) + k, bat_per_epo, lrs, progress if verbose else None,
                   latest=k + 1 == len(rows))
        if rows and run.monitor and len(run.history) % panel["eval_every"] == 0:  # the models are at this step
            run.history[-1].update(run.monitor.measure(g_model, d_model))
            hint(run, epoch, j + 1, progress if verbose else None)
        if rows and run.best and len(run.history) % panel["best_every"] == 0:
            run.best.keep(len(run.history), g_model, run.fused and run.fused.ema, progress if verbose else None)
        if rows and every and len(run.history) % every == 0 and j + 1 < bat_per_epo:
            checkpoint(run, epoch, j + 1)
    if run.history:
        hint(run, epoch, bat_per_epo, progress if verbose else None)  # D's accuracy and the losses: every epoch end
    run.batch0 = 0


def record(run, row, epoch, batch, bat_per_epo, lrs, progress, latest=True):
    """Check one batch's values, add them to the history, show them. Batch is 1-based; progress None = quiet.

    latest=False: a batch read back with later ones (the fused step): its '>epoch, batch' line is printed,
    but the bar waits for the latest, whose elapsed time is the one that ends with it.
    """
    if not all(np.isfinite([row["d_loss_real"], row["d_loss_fake"], row["g_loss"]])):
        bad = ", ".join(f"{k}={row[k]}" for k in ("d_loss_real", "d_loss_fake", "g_loss"))
        diverged(run.run_dir, run.history, f"training diverged at epoch {epoch + 1}, batch {batch}: {bad}")
    run.history.append({"epoch": epoch + 1, "batch": batch, "step": len(run.history) + 1, **row, **lrs,
                        **dict.fromkeys(EVAL_COLUMNS)})  # None: measured every eval_every batches only
    if progress is not None:
        if latest:
            progress.update(batch, row["d_loss_real"], row["d_loss_fake"], row["g_loss"])
        if run.panel["batchloss"] and batch % run.panel["batchloss"] == 0:
            print(f"{progress.line_break()}>{epoch + 1}, {batch}/{bat_per_epo}, d1={row['d_loss_real']:.3f}, "
                  f"d2={row['d_loss_fake']:.3f}, g={row['g_loss']:.3f}")


def hint(run, epoch, batch, progress):
    """Say, once, each sign of trouble that newly holds (diagnosis.py): on screen and in diagnosis.txt."""
    found = diagnose(run.history)
    for kind, line in found.items():
        if kind in run.hints:
            continue
        text = f"epoch {epoch + 1}, batch {batch} (step {len(run.history)}): {line}"
        append_text(os.path.join(run.run_dir, "diagnosis.txt"), text + "\n")
        if progress is not None:
            print(f"{progress.line_break()}hint: {text}")
    run.hints = set(found)  # a sign that stops holding is said again if it comes back


def end_epoch(run, dataset, epoch, verbose):
    """After epoch (0-based): the grid, D's accuracy and the generator files, the curves, a checkpoint."""
    panel, (g_model, d_model, _) = run.panel, run.models
    if panel["save_freq"] and (epoch + 1) % panel["save_freq"] == 0:
        k = n_classes_of(g_model)  # cgan: a row per class, the same latent point down each column
        fixed = class_grid(run.fixed_z, k) if k else run.fixed_z
        fixed_fake = keras.ops.convert_to_numpy(g_model(fixed, training=False))
        save_plot(fixed_fake, epoch, n=panel["grid"], run_dir=run.run_dir, rows=k or None)
    numbered = (epoch + 1) % panel["summarization"] == 0 or epoch + 1 == panel["n_epochs"]
    if numbered:
        summarize_performance(epoch, g_model, d_model, dataset, panel["latent_dim"], panel["n_samples"],
                              run_dir=run.run_dir, rng=run.rng, plot=False, verbose=verbose)
    else:
        save_generator(g_model, epoch, run.run_dir, numbered=False)  # generator.keras: always the latest epoch
    if run.fused is not None and run.fused.ema is not None:  # the EMA of G's weights: what generate and evaluate use
        save_generator(run.fused.ema.model, epoch, run.run_dir, numbered, name="generator_ema")  # + _eNNN
    if run.history:
        plot_history(run.history, os.path.join(run.run_dir, "history.png"))
    checkpoint(run, epoch + 1, 0)


def checkpoint(run, epoch, batch):
    """The full state after `batch` batches of epoch `epoch` (0-based; batch 0 = an epoch end): runs.save_state."""
    meta = {"epoch": epoch, "batch": batch, "rng": run.rng.bit_generator.state}
    run.mirrored = save_state(run.run_dir, run.models, meta, run.fixed_z, run.history, run.panel, extra=run.extra)


def default_run_dir(panel):
    """A new folder in outputs/ named after the panel's dataset: outputs/DATASET-DATE-TIME."""
    return new_run_dir(None, run_name(panel["dataset"]))


def train_from_panel(panel, run_dir=None, verbose=1):
    """Everything `python -m gan_lib train` does: load the panel's dataset, seed, build the models of its arch
    (under its precision, on its devices), train. Returns ((g_model, d_model, gan_model), history).

    panel: a control panel (panel.check_panel), or a resumed run's own with load_weights=True. run_dir:
    the run folder (default: default_run_dir); a new run's must be new or empty.
    """
    panel = check_panel(panel)
    if panel["arch"] == "cyclegan":
        raise ValueError(CYCLEGAN_ELSEWHERE)
    run_dir = run_dir or default_run_dir(panel)
    if not panel["load_weights"] and devices.is_chief():  # the other workers of a multi-worker run write nothing
        check_new_folder(run_dir)
    if panel["load_weights"] and is_run(run_dir):  # before the data is loaded: a resume keeps what defines the run
        check_kept(load_panel(run_dir), panel, RESUME_KEPT, run_dir)
    devices.strategy(panel["devices"])  # first: TensorFlow's multi-worker engine must start before anything else
    chief = devices.is_chief()  # a multi-worker run's other workers write and say nothing
    x = load_training_set(panel, log=print if verbose and chief else None)
    images = images_of(x)
    set_seed(panel["seed"], panel["deterministic"])
    # a conditional GAN knows as many classes as the labels name
    models = build_placed(panel, images.shape[1:], n_classes(x[1]) if images is not x else 10)
    if verbose and chief:
        classes = f" in {n_classes(x[1])} classes" if images is not x else ""
        print(f"training on {panel['dataset']}: {len(images)} images {images.shape[1:]}{classes}, writing to {run_dir}")
    history = train(*models, x, panel=panel, run_dir=run_dir, verbose=verbose)
    return models, history
