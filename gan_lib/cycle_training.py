"""Training a CycleGAN: the compiled step, its measurements, and the run loop.

One step, per batch of n images of A and n of B (drawn on the device from a seeded
SeedGenerator, with replacement, like fused.FusedStep):
1. G and F learn together (one Adam): least-squares adversarial losses through D_B and D_A,
   plus cycle_weight * cycle loss and identity_weight * identity loss (cyclegan.py);
2. D_A and D_B learn together (one Adam) from the real batches and the fakes of step 1 (made
   before G and F moved, as in the paper's code), passed through the image pools (pool_size).
The step is one compiled function on TensorFlow (tf.function), eager on torch, and one
jax.jit on JAX (backend.compile_stateful), written once against Keras variables. Its panel is
panel.check_cycle_panel's, its two domains come from data.load_domains, and its run lives through
runs.py like a `train` run.

A run folder holds what a `train` run's does (panel.json, history.csv and history.png,
checkpoints/, an image grid per epoch) plus generator_ab.keras (G: A -> B), generator_ba.keras
(F: B -> A) and metrics.json, the latest epoch's measurements: the cycle errors (mean |F(G(a)) - a|
and |G(F(b)) - b| in [-1, 1] pixel units) and, on the shapes task, the translation scores.
"""

import dataclasses
import json
import os
import sys

import keras
import numpy as np

from . import backend, modes
from .batches import pixels
from .checkpoint import check_mirror, list_checkpoints, restore_checkpoint
from .cyclegan import CycleGAN, ImagePool
from .data import load_domains
from .datasets import scale_images
from .files import atomic_path, write_text
from .losses import l1, lsgan_loss
from .panel import CYCLE_DEFAULTS, CYCLE_RUN_KEYS, CYCLE_TASKS, check_cycle_panel, parse_setting
from .plots import plot_cycle_history, save_cycle_grid
from .progress import Progress
from .runs import (
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

RESUME_KEPT = CYCLE_RUN_KEYS  # a resume keeps what each step draws and the shapes the checkpoint holds
EVAL_N = 256  # images of each domain the cycle errors and translation scores are measured on (the first ones)

VALUES = ("g_loss", "g_adv", "cycle_loss", "identity_loss", "d_a_loss", "d_b_loss",
          "d_a_real", "d_a_fake", "d_b_real", "d_b_fake")  # what one step returns, in this order
EVAL_COLUMNS = ("cycle_error_a", "cycle_error_b", "translation_ab", "translation_ba")  # epoch ends only
COLUMNS = ("epoch", "batch", "step", *VALUES, *EVAL_COLUMNS)
ADVICE = "try lower learning rates, --set g_lr=0.0001 --set d_lr=0.0001"  # after a NaN loss


def load_cycle_panel(run_dir):
    """The panel a CycleGAN run was made with, checked; ValueError if it is not a CycleGAN run."""
    if not is_run(run_dir):
        raise ValueError(f"{run_dir!r} is not a gan_lib run folder (no panel.json)")
    arch = load_panel(run_dir, check=lambda saved: saved.get("arch"), required=())
    if arch is None:  # no arch at all: a damaged panel, said by the full check below
        return load_panel(run_dir, check=check_cycle_panel, required=CYCLE_RUN_KEYS)
    if arch != "cyclegan":
        raise ValueError(f"{run_dir!r} is a {arch} run, not a CycleGAN one; resume it with "
                         "python -m gan_lib train --resume")
    return load_panel(run_dir, check=check_cycle_panel, required=CYCLE_RUN_KEYS)


def cycle_panel(domains=(), task=None, resume=None, settings=(), **flags):
    """The CycleGAN panel `python -m gan_lib cyclegan` asks for: two domains (folders, .npz files, named sets),
    or a task (CYCLE_TASKS), or a run folder to resume (its own panel.json); then flags (panel keys such as
    n_epochs, n_batch, limit, seed; None = not given) and settings ('KEY=VALUE' texts, as --set takes them)."""
    if resume:
        if domains or task:
            raise ValueError("--resume continues a run with its own domains; leave out DIR_A DIR_B and --task")
        panel = {**load_cycle_panel(resume), "load_weights": True, "epochs": 0}
    elif task:
        if domains:
            raise ValueError(f"give either two folders or --task {task}, not both")
        if task not in CYCLE_TASKS:
            raise ValueError(f"unknown task {task!r}; choose {', '.join(CYCLE_TASKS)}")
        panel = dict(CYCLE_TASKS[task])
    elif len(domains) == 2:
        panel = {"dataset": domains[0], "dataset_b": domains[1]}
    else:
        raise ValueError(f"give two folders of images, DIR_A DIR_B (got {len(domains)}), or --task shapes, "
                         "or --resume RUN_DIR")
    panel.update({k: v for k, v in flags.items() if v is not None})
    panel.update(parse_setting(text, extra=CYCLE_DEFAULTS) for text in settings)
    return check_cycle_panel(panel)


def default_cycle_dir(panel):
    """A new folder in outputs/ named after the two domains: outputs/cyclegan-A-B-DATE-TIME."""
    return new_run_dir(None, "cyclegan-" + run_name(panel["dataset"], panel["dataset_b"]))


def build_cyclegan(panel, shape_a, shape_b=None):
    """The panel's CycleGAN (width, res_blocks, g_lr for G and F... Adam's beta_1) for images of these shapes."""
    cycle = CycleGAN(shape_a, shape_b, panel["width"], panel["res_blocks"], panel["g_lr"], panel["beta_1"])
    cycle.d_optimizer.learning_rate = panel["d_lr"]
    return cycle


# ---------------------------------------------------------------- the step


class CycleStep:
    """Call it once per batch; `read()` brings the values back (VALUES). `variables`: its seed and pools, for checkpoints."""

    def __init__(self, cycle, data_a, data_b, panel):
        self.cycle = cycle
        self.data = [keras.ops.convert_to_tensor(np.asarray(x, np.uint8)) for x in (data_a, data_b)]  # on the device, uint8
        self.n_batch = panel["n_batch"]
        self.cycle_weight, self.identity_weight = panel["cycle_weight"], panel["identity_weight"]
        if self.identity_weight and cycle.shape_a[2] != cycle.shape_b[2]:
            raise ValueError("the identity loss gives G images of B, so A and B need the same channels: "
                             "set identity_weight=0, or load both as RGB (channels=3)")
        self.seed = keras.random.SeedGenerator(panel["seed"], name="cycle_step_seed")
        size = panel["pool_size"]
        self.pools = [ImagePool(size, cycle.shape_a, "pool_a"), ImagePool(size, cycle.shape_b, "pool_b")] if size else []
        self.variables = [self.seed.state] + [v for pool in self.pools for v in pool.variables]
        self.step = backend.compile_stateful(self._step, cycle.training_variables() + self.variables)
        self.pending = []

    def batch(self, images):
        """n_batch random images (with replacement) of a uint8 domain on the device -> float32 in [-1, 1]."""
        idx = keras.random.randint((self.n_batch,), 0, keras.ops.shape(images)[0], seed=self.seed)
        return pixels(keras.ops.take(images, idx, axis=0))  # batches.pixels: scale_images' values exactly

    def _step(self, data_a, data_b):
        c, ops = self.cycle, keras.ops
        a, b = self.batch(data_a), self.batch(data_b)

        def g_loss():
            fake_b, fake_a = c.g_ab(a, training=True), c.g_ba(b, training=True)  # G(a), F(b)
            adv = lsgan_loss(c.d_b(fake_b), 1.0) + lsgan_loss(c.d_a(fake_a), 1.0)  # fool both Ds
            cyc = l1(c.g_ba(fake_b, training=True), a) + l1(c.g_ab(fake_a, training=True), b)  # there and back
            idt = ops.zeros(())
            if self.identity_weight:
                idt = l1(c.g_ab(b, training=True), b) + l1(c.g_ba(a, training=True), a)
            return adv + self.cycle_weight * cyc + self.identity_weight * idt, (fake_a, fake_b, adv, cyc, idt)

        g_total, (fake_a, fake_b, adv, cyc, idt), grads = backend.value_and_gradients(g_loss, c.g_variables, aux=True)
        backend.apply_gradients(c.g_optimizer, grads, c.g_variables)
        if self.pools:
            fake_a, fake_b = self.pools[0](fake_a, self.seed), self.pools[1](fake_b, self.seed)

        def d_loss():
            scores = c.d_a(a), c.d_a(fake_a), c.d_b(b), c.d_b(fake_b)
            loss_a = 0.5 * (lsgan_loss(scores[0], 1.0) + lsgan_loss(scores[1], 0.0))  # halved, as in the paper
            loss_b = 0.5 * (lsgan_loss(scores[2], 1.0) + lsgan_loss(scores[3], 0.0))
            return loss_a + loss_b, (loss_a, loss_b, *[ops.mean(s) for s in scores])

        _, d_values, grads = backend.value_and_gradients(d_loss, c.d_variables, aux=True)
        backend.apply_gradients(c.d_optimizer, grads, c.d_variables)
        return ops.stack([g_total, adv, cyc, idt, *d_values])

    def __call__(self):
        with backend.no_grad():  # torch: nothing outside value_and_gradients is recorded
            self.pending.append(self.step(*self.data))

    def sync(self):
        """Make the models' variables current (JAX: write the compiled step's state back; elsewhere nothing to do)."""
        self.step.sync()

    def read(self):
        """The values of the steps run since the last read, as dicts; one host transfer for all of them. The models'
        variables are made current too (sync), for the checkpoint or the measurements that follow."""
        self.sync()
        if not self.pending:
            return []
        values = keras.ops.convert_to_numpy(keras.ops.stack(self.pending)).astype(np.float64)
        self.pending = []
        return [dict(zip(VALUES, map(float, row))) for row in values]


# ---------------------------------------------------------------- measuring


def translate(model, x, batch=64):
    """model's images for x, float32 numpy, in batches (called directly: predict() is slow per call)."""
    return np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + batch], training=False))
                           for i in range(0, len(x), batch)])


def measure(cycle, eval_a, eval_b, labels_a=None, labels_b=None, classifier=None):
    """The cycle errors and, given shapes classes, the translation scores, as a dict of floats (None: not measured).

    cycle_error_a: mean |F(G(a)) - a| over eval_a (float32 in [-1, 1]; 0 is a perfect round trip, 2 the
    worst); cycle_error_b: mean |G(F(b)) - b|. translation_ab: the share of G(a) that the shapes
    classifier (modes.classifier) puts in a's shape with the other colour family; translation_ba: F's.
    """
    fake_b, fake_a = translate(cycle.g_ab, eval_a), translate(cycle.g_ba, eval_b)
    found = {"cycle_error_a": float(np.mean(np.abs(translate(cycle.g_ba, fake_b) - eval_a))),
             "cycle_error_b": float(np.mean(np.abs(translate(cycle.g_ab, fake_a) - eval_b))),
             "translation_ab": None, "translation_ba": None}
    if labels_a is not None and labels_b is not None and classifier is not None:
        for key, fakes, labels in (("translation_ab", fake_b, labels_a), ("translation_ba", fake_a, labels_b)):
            predicted = translate(classifier, fakes).argmax(axis=1)
            found[key] = float(np.mean(predicted == (labels + 5) % 10))  # same shape, the other colour family
    return found


# ---------------------------------------------------------------- the run


@dataclasses.dataclass
class CycleRun:
    run_dir: str
    panel: dict
    cycle: CycleGAN
    step: CycleStep
    eval_a: np.ndarray  # float32 (<= EVAL_N, H, W, C): the images measured, and (the first `grid`) shown
    eval_b: np.ndarray
    labels: tuple  # (labels_a, labels_b) of the eval images, or (None, None)
    classifier: object  # the shapes classifier, or None
    history: list
    epoch0: int = 0
    batch0: int = 0
    mirrored: bool = True  # whether the last mirror (panel key mirror_dir) succeeded


def train_cycle(cycle, data_a, data_b, panel=None, run_dir=None, labels=(None, None), verbose=1):
    """Train a CycleGAN on two domains; returns the per-batch history (list of dicts, COLUMNS).

    data_a, data_b: uint8 (N, H, W, C) images of each domain (load_domains). labels: their shapes classes,
    for the translation scores (the shapes task), or None. Writes run_dir (default a new folder in outputs/);
    with panel['load_weights'] it resumes run_dir from its last checkpoint instead.
    """
    panel = check_cycle_panel(panel)
    for which, x, shape in (("A", data_a, cycle.shape_a), ("B", data_b, cycle.shape_b)):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != shape:
            raise ValueError(f"domain {which}: want uint8 images {shape}, as the models take, got {x.dtype} {x.shape}")
        if len(x) < panel["n_batch"]:
            raise ValueError(f"domain {which} has {len(x)} images but n_batch is {panel['n_batch']}")
    run_dir = run_dir or new_run_dir(None, "cyclegan")
    check_mirror(panel["mirror_dir"])
    step = CycleStep(cycle, data_a, data_b, panel)
    classifier = None
    if all(label is not None for label in labels) and cycle.shape_a == cycle.shape_b == (32, 32, 3):
        classifier = modes.classifier("shapes", verbose=bool(verbose))
    n_eval = [min(EVAL_N, len(x)) for x in (data_a, data_b)]
    evals = [scale_images(x[:n]) for x, n in zip((data_a, data_b), n_eval)]  # float32 in [-1, 1]
    run = CycleRun(run_dir, panel, cycle, step, *evals,
                   tuple(None if label is None else np.asarray(label)[:n] for label, n in zip(labels, n_eval)),
                   classifier, [])
    try:
        with open_run(run_dir, panel["load_weights"], "cyclegan") as lock:
            resume(run, verbose)
            lock.claim(panel)
            for epoch in range(run.epoch0, panel["n_epochs"]):
                train_epoch(run, epoch, max(len(data_a), len(data_b)) // panel["n_batch"], verbose)
                end_epoch(run, epoch, verbose)
            close_mirror(run_dir, panel, run.mirrored, verbose)
    finally:
        step.sync()  # interrupted mid-epoch on JAX: the models still hold the latest weights
    return run.history


def resume(run, verbose):
    """Restore run's models, optimizers, step state and history from its last checkpoint, when resuming one."""
    panel = run.panel
    if not (panel["load_weights"] and list_checkpoints(run.run_dir)):
        if panel["load_weights"]:  # on stderr, even when quiet: the user asked for a resume
            print(f"{run.run_dir} has no checkpoint yet: starting it from the beginning", file=sys.stderr)
        return
    check_kept(load_cycle_panel(run.run_dir), panel, RESUME_KEPT, run.run_dir)
    meta, _, rows, path = restore_checkpoint(run.run_dir, run.cycle, verbose=verbose, extra=run.step.variables)
    check_epochs(meta, panel, run.run_dir)
    run.cycle.g_optimizer.learning_rate = panel["g_lr"]  # the panel wins: --set g_lr=... changes it from here on
    run.cycle.d_optimizer.learning_rate = panel["d_lr"]
    run.history = history_rows(rows, COLUMNS, measured=COLUMNS)
    run.epoch0, run.batch0 = meta["epoch"], meta["batch"]
    if verbose:
        print(f"resuming {run.run_dir} from {os.path.basename(path)}: epoch {meta['epoch'] + 1}, batch {meta['batch']}")


def train_epoch(run, epoch, batches, verbose):
    """The batches of one epoch (0-based), from run.batch0 on; checkpoints every checkpoint_every batches."""
    panel = run.panel
    progress = Progress(epoch + 1, panel["n_epochs"], batches, done=run.batch0, verbose=verbose,
                        names=("d_a", "d_b", "g"))
    every, read_every = panel["checkpoint_every"], panel["batchloss"] or 10
    for j in range(run.batch0, batches):
        run.step()
        done = len(run.history) + len(run.step.pending)
        if not ((j + 1) % read_every == 0 or j + 1 == batches or (every and done % every == 0)
                or (verbose and progress.due(j + 1))):
            continue
        rows = run.step.read()
        for k, row in enumerate(rows):  # the bar shows the latest only (training.record)
            record(run, row, epoch, j + 2 - len(rows) + k, batches, progress if verbose else None,
                   latest=k + 1 == len(rows))
        if every and len(run.history) % every == 0 and j + 1 < batches:
            checkpoint(run, epoch, j + 1)
    run.batch0 = 0


def record(run, row, epoch, batch, batches, progress, latest=True):
    """Check one batch's values, add them to the history, show them (batch is 1-based; progress None = quiet;
    latest=False: read back with later batches, so only its '>epoch, batch' line is printed)."""
    if not all(np.isfinite(list(row.values()))):
        diverged(run.run_dir, run.history, f"training diverged at epoch {epoch + 1}, batch {batch}: "
                 + ", ".join(f"{k}={v:.4g}" for k, v in row.items()), COLUMNS, ADVICE)
    run.history.append({"epoch": epoch + 1, "batch": batch, "step": len(run.history) + 1, **row,
                        **dict.fromkeys(EVAL_COLUMNS)})
    if progress is not None:
        if latest:
            progress.update(batch, row["d_a_loss"], row["d_b_loss"], row["g_loss"])
        if run.panel["batchloss"] and batch % run.panel["batchloss"] == 0:
            print(f"{progress.line_break()}>{epoch + 1}, {batch}/{batches}, d_a={row['d_a_loss']:.3f}, "
                  f"d_b={row['d_b_loss']:.3f}, g={row['g_loss']:.3f} (adversarial {row['g_adv']:.3f}, "
                  f"cycle {row['cycle_loss']:.3f}, identity {row['identity_loss']:.3f})")


def end_epoch(run, epoch, verbose):
    """After epoch (0-based): the measurements, the grid, the generators, the curves, metrics.json, a checkpoint."""
    panel, cycle = run.panel, run.cycle
    found = measure(cycle, run.eval_a, run.eval_b, *run.labels, classifier=run.classifier)
    if run.history:
        run.history[-1].update(found)
    if panel["save_freq"] and (epoch + 1) % panel["save_freq"] == 0:
        a, b = run.eval_a[:panel["grid"]], run.eval_b[:panel["grid"]]
        fake_b, fake_a = translate(cycle.g_ab, a), translate(cycle.g_ba, b)
        rows = [a, fake_b, translate(cycle.g_ba, fake_b), b, fake_a, translate(cycle.g_ab, fake_a)]
        save_cycle_grid(rows, os.path.join(run.run_dir, f"cycle_e{epoch + 1:03d}.png"))
    for model, name in ((cycle.g_ab, "generator_ab.keras"), (cycle.g_ba, "generator_ba.keras")):
        with atomic_path(os.path.join(run.run_dir, name)) as tmp:
            model.save(tmp)
    if run.history:
        plot_cycle_history(run.history, os.path.join(run.run_dir, "history.png"))
    write_text(os.path.join(run.run_dir, "metrics.json"),
               json.dumps({"epoch": epoch + 1, "steps": len(run.history), "eval_images": [len(run.eval_a), len(run.eval_b)],
                           **found}, indent=2) + "\n")
    if verbose:
        print(f"epoch {epoch + 1}: {describe(found)}")
    checkpoint(run, epoch + 1, 0)


def describe(found):
    """'cycle error A->B->A 0.041, B->A->B 0.038; translated A->B 92%, B->A 90%' (what was measured)."""
    text = (f"cycle error A->B->A {found['cycle_error_a']:.3f}, B->A->B {found['cycle_error_b']:.3f} "
            "(mean |error|, [-1, 1] pixels)")
    if found["translation_ab"] is not None:
        text += (f"; translated A->B {found['translation_ab']:.0%}, B->A {found['translation_ba']:.0%} "
                 "(the classifier's share: same shape, other colour family)")
    return text


def checkpoint(run, epoch, batch):
    """The full state after `batch` batches of epoch `epoch` (0-based; batch 0 = an epoch end): runs.save_state."""
    run.mirrored = save_state(run.run_dir, run.cycle, {"epoch": epoch, "batch": batch}, np.zeros(0, np.float32),
                              run.history, run.panel, extra=run.step.variables, columns=COLUMNS, advice=ADVICE)


def train_cyclegan(panel=None, run_dir=None, verbose=1, log=print):
    """Everything `python -m gan_lib cyclegan` does: load both domains, seed, build, train. Returns (cycle, history).

    panel: a CycleGAN panel (check_cycle_panel), e.g. {**CYCLE_TASKS['shapes'], 'n_epochs': 2}, or a resumed
    run's own with load_weights=True. run_dir: the run folder (default: default_cycle_dir); a new run's must be
    new or empty.
    """
    panel = check_cycle_panel(panel)
    run_dir = run_dir or default_cycle_dir(panel)
    if not panel["load_weights"]:
        check_new_folder(run_dir)
    a, b, labels_a, labels_b = load_domains(panel, log)
    backend.set_seed(panel["seed"], panel["deterministic"])
    cycle = build_cyclegan(panel, a.shape[1:], b.shape[1:])
    if log and verbose:
        log(f"CycleGAN: A {panel['dataset']} {len(a)} images, B {panel['dataset_b']} {len(b)} images {a.shape[1:]}; "
            f"G and F {cycle.g_ab.count_params():,} parameters each, D_A and D_B {cycle.d_a.count_params():,}")
    history = train_cycle(cycle, a, b, panel, run_dir, (labels_a, labels_b), verbose)
    return cycle, history

