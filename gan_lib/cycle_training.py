"""Training a CycleGAN: its panel, its two domains, the compiled step, and the run loop.

One step, per batch of n images of A and n of B (drawn on the device from a seeded
SeedGenerator, with replacement, like fused.FusedStep):
1. G and F learn together (one Adam): least-squares adversarial losses through D_B and D_A,
   plus cycle_weight * cycle loss and identity_weight * identity loss (cyclegan.py);
2. D_A and D_B learn together (one Adam) from the real batches and the fakes of step 1 (made
   before G and F moved, as in the paper's code), passed through the image pools (pool_size).
The step is one compiled function on TensorFlow (tf.function), eager on torch, and one
jax.jit on JAX (backend.compile_stateful), written once against Keras variables.

A run folder holds what a `train` run's does (panel.json, history.csv and history.png,
checkpoints/, an image grid per epoch) plus generator_ab.keras (G: A -> B), generator_ba.keras
(F: B -> A) and metrics.json, the latest epoch's measurements: the cycle errors (mean |F(G(a)) - a|
and |G(F(b)) - b| in [-1, 1] pixel units) and, on the shapes task, the translation scores.
"""

import dataclasses
import json
import os
import shutil

import keras
import numpy as np

from . import backend, data
from .checkpoint import check_mirror, list_checkpoints, mirror_or_warn, restore_checkpoint, save_checkpoint
from .cyclegan import CycleGAN, ImagePool, l1, lsgan_loss
from .files import atomic_path, write_text
from .fused import pixels
from .panel import DEFAULTS, check_panel, parse_setting
from .plots import plot_cycle_history, save_cycle_grid
from .progress import Progress
from .runs import RunLock, history_array, is_run, new_run_dir, save_panel, write_history
from .training import TrainingDiverged, _writing  # _writing: a full disk reads as in a train run

# ---------------------------------------------------------------- the panel

# The keys only a CycleGAN has; the others are the shared panel's (panel.py) that a CycleGAN run uses.
CYCLE_DEFAULTS = {
    "dataset_b": "",  # domain B (panel key dataset is domain A): a folder of images, or a shapes-* name
    "cycle_weight": 10.0,  # lambda, the cycle-consistency loss's weight (the paper's 10)
    "identity_weight": 5.0,  # the identity loss's weight: 0.5 * lambda, as in the paper; 0 = off
    "pool_size": 50,  # fakes kept for D (the paper's 50); 0 = D sees only the newest; else at least n_batch
    "res_blocks": 3,  # residual blocks in each generator (the paper: 6 at 128 x 128, 9 at 256 x 256)
}
SHARED_KEYS = ("dataset", "limit", "image_size", "resize", "channels", "seed", "deterministic", "arch", "width",
               "n_epochs", "n_batch", "d_lr", "g_lr", "beta_1", "grid", "save_freq", "batchloss",
               "checkpoint_every", "keep_checkpoints", "mirror_dir", "load_weights", "epochs")
KEYS = SHARED_KEYS + tuple(CYCLE_DEFAULTS)
# Keys a resumed run must keep: what each step draws and the shapes of what the checkpoint holds.
FIXED = ("dataset", "dataset_b", "limit", "image_size", "resize", "channels", "width", "res_blocks", "n_batch",
         "pool_size", "grid")

# The offline task: A = warm shapes, B = cool ones (data.make_shapes). CycleGAN changes how things look and keeps
# where they are, so a colour change with the shape kept is the translation it can do (the paper's own failures are
# changes of geometry, such as dog to cat), and gan_lib's shapes classifier can check both halves of it.
TASKS = {"shapes": {"dataset": "shapes-warm", "dataset_b": "shapes-cool", "limit": 2000, "n_epochs": 3}}
SHAPES_DOMAINS = {"shapes-warm": 0, "shapes-cool": 5}  # first class of each colour family in data.SHAPES_CLASSES
EVAL_N = 256  # images of each domain the cycle errors and translation scores are measured on (the first ones)

VALUES = ("g_loss", "g_adv", "cycle_loss", "identity_loss", "d_a_loss", "d_b_loss",
          "d_a_real", "d_a_fake", "d_b_real", "d_b_fake")  # what one step returns, in this order
EVAL_COLUMNS = ("cycle_error_a", "cycle_error_b", "translation_ab", "translation_ba")  # epoch ends only
COLUMNS = ("epoch", "batch", "step", *VALUES, *EVAL_COLUMNS)


def check_cycle_panel(panel=None, **overrides):
    """The shared panel's checks for the keys a CycleGAN uses (arch 'cyclegan' defaults), and CYCLE_DEFAULTS'.

    Returns a new dict of exactly KEYS; ValueError for any other key, a wrong type or an impossible value.
    """
    given = {**(panel or {}), **overrides}
    if given.get("arch", "cyclegan") != "cyclegan":
        raise ValueError(f"a CycleGAN panel has arch 'cyclegan', got {given['arch']!r}")
    for key in given:
        if key not in KEYS:
            raise ValueError(f"panel key {key!r} does not apply to a CycleGAN; its keys: {', '.join(KEYS)}")
    cycle = {**CYCLE_DEFAULTS, **{k: v for k, v in given.items() if k in CYCLE_DEFAULTS}}
    merged = check_panel({k: v for k, v in given.items() if k in SHARED_KEYS}, arch="cyclegan")
    for key, value in cycle.items():
        want = type(CYCLE_DEFAULTS[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = cycle[key] = float(value)
        if type(value) is not want:
            raise ValueError(f"panel key {key!r} must be {want.__name__}, got {type(value).__name__} {value!r}")
    for key in ("cycle_weight", "identity_weight", "pool_size", "res_blocks"):
        if cycle[key] < 0 or not np.isfinite(cycle[key]):
            raise ValueError(f"panel key {key!r} must be a number of at least 0, got {cycle[key]!r}")
    if cycle["pool_size"] and cycle["pool_size"] < merged["n_batch"]:
        raise ValueError(f"panel key 'pool_size' is {cycle['pool_size']} but n_batch is {merged['n_batch']}: the pool "
                         "swaps a whole batch into distinct slots, so use a pool_size of at least n_batch, or 0 for none")
    if not cycle["dataset_b"]:
        raise ValueError("panel key 'dataset_b' (domain B) is empty: give two folders, DIR_A DIR_B, or --task shapes")
    return {**{k: merged[k] for k in SHARED_KEYS}, **cycle}


def load_cycle_panel(run_dir):
    """The panel a CycleGAN run was made with, checked; ValueError if it is not a CycleGAN run."""
    path = os.path.join(run_dir, "panel.json")
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} cannot be read ({e}); is {run_dir!r} a gan_lib run folder?") from None
    if saved.get("arch") != "cyclegan":
        raise ValueError(f"{run_dir!r} is a {saved.get('arch', 'tutorial')} run, not a CycleGAN one; resume it with "
                         "python -m gan_lib train --resume")
    try:
        return check_cycle_panel(saved)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def parse_cycle_setting(text):
    """'KEY=VALUE' for a CycleGAN panel -> (key, value) typed like its default."""
    key, sep, raw = text.partition("=")
    if key.strip() in CYCLE_DEFAULTS and sep:
        want = type(CYCLE_DEFAULTS[key.strip()])
        try:
            return key.strip(), want(raw)
        except ValueError:
            raise ValueError(f"--set {key.strip()}= wants {'a number' if want is float else text}, got {raw!r}") from None
    if key.strip() not in DEFAULTS:
        raise ValueError(f"unknown panel key {key.strip()!r}; a CycleGAN's keys: {', '.join(KEYS)}")
    return parse_setting(text)


# ---------------------------------------------------------------- the two domains


def load_domain(name, panel, which, log=None):
    """One domain's images -> (uint8 (N, H, W, C), int64 shapes classes (N,) or None).

    name: 'shapes-warm' or 'shapes-cool' (data.make_shapes' colour families, made here), or anything
    data.load_images takes (a folder of photos of any sizes, an .npz, a named dataset). Folders are
    brought to image_size (0: 64); limit keeps the first N images.
    """
    limit = panel["limit"]
    try:
        if name in SHAPES_DOMAINS:
            first = SHAPES_DOMAINS[name]
            want = limit or TASKS["shapes"]["limit"]
            n = 2 * want + 64
            while True:  # image i depends on i alone, so a larger set starts with the smaller one
                x, y = data.make_shapes(n)
                keep = (y >= first) & (y < first + 5)
                if keep.sum() >= want:
                    break
                n *= 2
            x, y = x[keep][:want], y[keep][:want]
            if panel["image_size"] or panel["channels"]:
                x = data.resize_images(x, panel["image_size"], panel["resize"], panel["channels"], log=log)
            return x, y
        options = data.panel_load_options({**panel, "dataset": name})
        return data.check_images(data.load_images(name, limit, **options, log=log), name=name, scaled=False), None
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
        a, b = (data.resize_images(x, 0, channels=3) for x in (a, b))
    for which, x in (("A", a), ("B", b)):
        if len(x) < panel["n_batch"]:
            raise ValueError(f"domain {which} has {len(x)} images but n_batch is {panel['n_batch']}; lower --batch "
                             "or give more images")
    return a, b, labels_a, labels_b


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
        return pixels(keras.ops.take(images, idx, axis=0))  # fused.pixels: scale_images' values exactly

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
        c.g_optimizer.apply(grads, c.g_variables)
        if self.pools:
            fake_a, fake_b = self.pools[0](fake_a, self.seed), self.pools[1](fake_b, self.seed)

        def d_loss():
            scores = c.d_a(a), c.d_a(fake_a), c.d_b(b), c.d_b(fake_b)
            loss_a = 0.5 * (lsgan_loss(scores[0], 1.0) + lsgan_loss(scores[1], 0.0))  # halved, as in the paper
            loss_b = 0.5 * (lsgan_loss(scores[2], 1.0) + lsgan_loss(scores[3], 0.0))
            return loss_a + loss_b, (loss_a, loss_b, *[ops.mean(s) for s in scores])

        _, d_values, grads = backend.value_and_gradients(d_loss, c.d_variables, aux=True)
        c.d_optimizer.apply(grads, c.d_variables)
        return ops.stack([g_total, adv, cyc, idt, *d_values])

    def __call__(self):
        with backend.no_grad():  # torch: nothing outside value_and_gradients is recorded
            self.pending.append(self.step(*self.data))

    def read(self):
        """The values of the steps run since the last read, as dicts; one host transfer for all of them."""
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
    if panel["load_weights"] and not is_run(run_dir):
        raise ValueError(f"{run_dir!r} is not a gan_lib run folder (no panel.json), so there is nothing to resume")
    if not panel["load_weights"] and is_run(run_dir):
        raise ValueError(f"{run_dir!r} already holds a run; resume it with --resume or choose another folder")
    check_mirror(panel["mirror_dir"])
    step = CycleStep(cycle, data_a, data_b, panel)
    classifier = None
    if all(label is not None for label in labels) and cycle.shape_a == cycle.shape_b == (32, 32, 3):
        from .modes import classifier as shapes_classifier

        classifier = shapes_classifier("shapes", verbose=bool(verbose))
    n_eval = [min(EVAL_N, len(x)) for x in (data_a, data_b)]
    evals = [data.scale_images(x[:n]) for x, n in zip((data_a, data_b), n_eval)]  # float32 in [-1, 1]
    run = CycleRun(run_dir, panel, cycle, step, *evals,
                   tuple(None if label is None else np.asarray(label)[:n] for label, n in zip(labels, n_eval)),
                   classifier, [])
    created = not os.path.exists(run_dir)
    try:
        with RunLock(run_dir) as lock, _writing(run_dir, "cyclegan"):
            resume(run, verbose)
            lock.claim()
            save_panel(run_dir, panel)
            for epoch in range(run.epoch0, panel["n_epochs"]):
                train_epoch(run, epoch, max(len(data_a), len(data_b)) // panel["n_batch"], verbose)
                end_epoch(run, epoch, verbose)
    except BaseException:
        if created and not is_run(run_dir):  # failed before it wrote anything: leave no folder
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run.history


def resume(run, verbose):
    """Restore run's models, optimizers, step state and history from its last checkpoint, when resuming one."""
    panel = run.panel
    if not (panel["load_weights"] and list_checkpoints(run.run_dir)):
        if panel["load_weights"] and verbose:
            print(f"{run.run_dir} has no checkpoint yet: starting it from the beginning")
        return
    saved = load_cycle_panel(run.run_dir)
    for key in FIXED:
        if saved[key] != panel[key]:
            raise ValueError(f"panel key {key!r} is {panel[key]!r} but run {run.run_dir!r} was made with {saved[key]!r}; "
                             "a run resumes with its own value (drop the override)")
    meta, _, rows, path = restore_checkpoint(run.run_dir, run.cycle, verbose=verbose, extra=run.step.variables)
    if panel["epochs"] and panel["epochs"] != meta["epoch"]:
        raise ValueError(f"panel key 'epochs' is {panel['epochs']} but the last checkpoint of {run.run_dir!r} has "
                         f"{meta['epoch']} epochs completed; set epochs=0 to resume from wherever it stopped")
    if meta["epoch"] >= panel["n_epochs"]:
        raise ValueError(f"run {run.run_dir!r} has already trained {meta['epoch']} epochs and n_epochs is "
                         f"{panel['n_epochs']}; ask for more (--epochs {meta['epoch'] + 10})")
    run.cycle.g_optimizer.learning_rate = panel["g_lr"]  # the panel wins: --set g_lr=... changes it from here on
    run.cycle.d_optimizer.learning_rate = panel["d_lr"]
    run.history = [{k: int(v) if k in ("epoch", "batch", "step") else None if np.isnan(v) else float(v)
                    for k, v in zip(COLUMNS, row)} for row in rows]
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
        if not ((j + 1) % read_every == 0 or j + 1 == batches or (every and done % every == 0)):
            continue
        rows = run.step.read()
        for k, row in enumerate(rows):
            record(run, row, epoch, j + 2 - len(rows) + k, batches, progress if verbose else None)
        if every and len(run.history) % every == 0 and j + 1 < batches:
            checkpoint(run, epoch, j + 1)
    run.batch0 = 0


def record(run, row, epoch, batch, batches, progress):
    """Check one batch's values, add them to the history, show them (batch is 1-based; progress None = quiet)."""
    if not all(np.isfinite(list(row.values()))):
        write_history(run.run_dir, run.history, COLUMNS)
        raise TrainingDiverged(f"training diverged at epoch {epoch + 1}, batch {batch}: "
                               + ", ".join(f"{k}={v:.4g}" for k, v in row.items())
                               + f". History so far is in {run.run_dir}/history.csv; the last good checkpoint is "
                               "untouched (try lower learning rates, --set g_lr=0.0001 --set d_lr=0.0001)")
    run.history.append({"epoch": epoch + 1, "batch": batch, "step": len(run.history) + 1, **row,
                        **dict.fromkeys(EVAL_COLUMNS)})
    if progress is not None:
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
    """The full state after `batch` batches of epoch `epoch` (0-based; batch 0 = an epoch end), then history.csv
    (at epoch ends) and the mirror."""
    try:
        save_checkpoint(run.run_dir, run.cycle, {"epoch": epoch, "batch": batch}, np.zeros(0, np.float32),
                        history_array(run.history, COLUMNS), keep=run.panel["keep_checkpoints"], extra=run.step.variables)
    except FloatingPointError as e:  # NaN weights: one line, as train's, not a traceback; the last checkpoint stays
        write_history(run.run_dir, run.history, COLUMNS)
        raise TrainingDiverged(f"training diverged before epoch {epoch + 1}, batch {batch}: {e}. The last good "
                               f"checkpoint in {run.run_dir} is untouched (try lower learning rates)") from None
    if batch == 0:
        write_history(run.run_dir, run.history, COLUMNS)
    if run.panel["mirror_dir"]:
        mirror_or_warn(run.run_dir, run.panel["mirror_dir"])


def train_cyclegan(panel=None, run_dir=None, verbose=1, log=print):
    """Everything `python -m gan_lib cyclegan` does: load both domains, seed, build, train. Returns (cycle, history).

    panel: a CycleGAN panel (check_cycle_panel), e.g. {**TASKS['shapes'], 'n_epochs': 2}, or a resumed
    run's own with load_weights=True.
    """
    panel = check_cycle_panel(panel)
    a, b, labels_a, labels_b = load_domains(panel, log)
    backend.set_seed(panel["seed"], panel["deterministic"])
    cycle = build_cyclegan(panel, a.shape[1:], b.shape[1:])
    if log and verbose:
        log(f"CycleGAN: A {panel['dataset']} {len(a)} images, B {panel['dataset_b']} {len(b)} images {a.shape[1:]}; "
            f"G and F {cycle.g_ab.count_params():,} parameters each, D_A and D_B {cycle.d_a.count_params():,}")
    history = train_cycle(cycle, a, b, panel, run_dir, (labels_a, labels_b), verbose)
    return cycle, history

