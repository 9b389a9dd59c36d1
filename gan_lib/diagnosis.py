"""Is training going well? Cheap measurements during training, and a diagnosis in plain words.

A GAN's losses do not say whether it is learning. Every `eval_every` batches (panel
key; 0 = never) the Monitor measures, on fixed latent points drawn from their own
generator (so the run's random stream, and an exact resume, are untouched):

  g_grad_norm  the norm of the gradient of G's loss (the one it trains with, panel key
               g_objective) with respect to G's weights, both models in inference mode;
  diversity    mean distance between two of N_EVAL generated images, divided by the
               same for N_EVAL real ones: about 1 = as varied as the data, near 0 = one image;
  modes        how many of the dataset's 10 classes the N_EVAL images fall in (shapes,
               and mnist / fashion_mnist where their classifier can be made: modes.py);
  domain_fd    the Frechet distance between the classifier's features of the N_EVAL
               generated and N_EVAL real images (lower is better; biased by the small N,
               so compare it within a run, not with FID).

They go into the history (None where not measured: an empty cell in history.csv).
diagnose(history) reads them and the per-batch columns, and says in one line each what
looks wrong: D winning outright, G collapsing, G's gradient vanishing, losses swinging
without progress, G stuck on nearly one image D always rejects. Training never stops for a hint.
"""

import keras
import numpy as np

from . import metrics, modes
from .backend import value_and_gradients
from .batches import images_of, n_classes_of, scale_batch
from .losses import generator_loss

N_EVAL = 256  # images generated per measurement (diversity, modes, domain_fd)
N_GRAD = 64  # latent points for the gradient norm
EVAL_SEED = 20261124  # with the run's seed: the measurements' own latent points and real images

# "for a while": how many batches a sign must hold
SATURATED_BATCHES = 50  # D's accuracy on both halves >= 95% and D(G(z)) <= 0.05 over this many batches
STRONG_GRADIENT = 1.0  # a stuck G whose gradient norm is at least this is not starved of a signal (stuck())
SWING_BLOCKS, SWING_BATCHES = 8, 50  # oscillation: g_loss averaged over 8 blocks of 50 batches


def mean_distance(x):
    """Mean Euclidean distance between two different rows of x (N, ...) flattened: float."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    sq = (x * x).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)  # (N, N) squared distances
    n = len(x)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean()) if n > 1 else 0.0


def generator_gradients(g_model, d_model, z, objective="non_saturating"):
    """d(G's loss) / d(G's trainable weights), as NumPy arrays; both models in inference mode.

    G's loss is losses.generator_loss (objective: panel key g_objective). Inference mode:
    no dropout draws and no BatchNorm statistics updates, so measuring changes nothing
    the training depends on. z: float32 (n, latent_dim); a conditional GAN's [z, classes (n,)],
    the classes given to D too.
    """
    classes = keras.ops.convert_to_tensor(z[1]) if isinstance(z, (list, tuple)) else None  # beside G's tensor

    def judged(x):  # D's input: G's images, with their classes for a conditional GAN
        return x if classes is None else [x, classes]

    variables = g_model.trainable_variables
    _, grads = value_and_gradients(
        lambda: generator_loss(d_model(judged(g_model(z, training=False)), training=False), objective), variables)
    return [np.zeros(v.shape) if g is None else keras.ops.convert_to_numpy(g) for v, g in zip(variables, grads)]


def generator_gradient_norm(g_model, d_model, z, objective="non_saturating"):
    """The global (Euclidean) norm of generator_gradients: one number for how much G can learn from D now."""
    grads = generator_gradients(g_model, d_model, z, objective)
    return float(np.sqrt(sum(np.sum(np.square(g.astype(np.float64))) for g in grads)))


class Monitor:
    """Measures a generator during training (runs.EVAL_COLUMNS) on fixed points, the same every time.

    dataset: the run's images (N, H, W, C), float32 in [-1, 1] or uint8, or [images, labels] for
    a conditional GAN; panel: the run's panel (seed, latent_dim, dataset name). A conditional G
    is measured on the same points with the classes in turn (0, 1, ..., K-1, 0, ...), so every
    class is drawn equally often. The classifier, where the dataset has one, is made on the
    first measurement (about 10 s the first time, then read from its cache).
    """

    def __init__(self, dataset, panel):
        dataset = images_of(dataset)  # the images: the measurements compare G's with them
        rng = np.random.default_rng([panel["seed"], EVAL_SEED])  # never the run's own generator
        self.z = rng.standard_normal((N_EVAL, panel["latent_dim"]), dtype=np.float32)
        self.real = scale_batch(dataset[np.sort(rng.choice(len(dataset), min(N_EVAL, len(dataset)), replace=False))])
        self.spread = mean_distance(self.real)  # the data's own diversity, the unit of `diversity`
        self.dataset, self.objective = panel["dataset"], panel["g_objective"]
        self.model, self.real_stats, self.note = None, None, None  # the classifier, made on first use

    def _classifier(self):
        """The dataset's classifier and the real images' feature statistics, or None (and self.note says why)."""
        if self.model is not None or self.note is not None:
            return self.model
        if self.dataset not in modes.CHANNELS:
            self.note = f"no classifier for {self.dataset!r} (shapes, mnist and fashion_mnist have one): no modes, domain_fd"
            return None
        try:
            model = modes.classifier(self.dataset, verbose=False)
            self.real_stats = metrics.feature_stats(modes.features(self.real, self.dataset, model))
        except (OSError, ValueError) as e:  # offline (mnist), or images of another size than the classifier's
            self.note = f"no modes, domain_fd: {e}"
            return None
        self.model = model
        return model

    def measure(self, g_model, d_model):
        """runs.EVAL_COLUMNS now, as a dict of floats (None for those this dataset cannot have)."""
        k = n_classes_of(g_model)
        z = [self.z, np.arange(N_EVAL, dtype=np.int32) % k] if k else self.z  # cgan: the classes in turn

        def part(a, b):
            return [p[a:b] for p in z] if k else z[a:b]

        fake = np.concatenate([keras.ops.convert_to_numpy(g_model(part(i, i + 128), training=False))
                               for i in range(0, N_EVAL, 128)]).astype(np.float32)
        row = {
            "g_grad_norm": generator_gradient_norm(g_model, d_model, part(0, N_GRAD), self.objective),
            "diversity": mean_distance(fake) / self.spread if self.spread > 0 else None,
            "modes": None, "domain_fd": None,
        }
        model = self._classifier()
        if model is not None and np.isfinite(fake).all():
            row["modes"] = float(modes.mode_count(fake, self.dataset, model)["classes_found"])
            row["domain_fd"] = metrics.frechet_distance(
                *metrics.feature_stats(modes.features(fake, self.dataset, model)), *self.real_stats)
        return row


def _measured(history, key):
    """(steps, values) of the rows where `key` was measured."""
    pairs = [(row["step"], row[key]) for row in history if row.get(key) is not None and np.isfinite(row[key])]
    return [p[0] for p in pairs], np.array([p[1] for p in pairs], dtype=np.float64)


def _column(history, key):
    return np.array([row.get(key) for row in history], dtype=np.float64)  # None -> NaN


def d_saturated(history):
    """D wins outright: it tells real from fake almost always, for SATURATED_BATCHES batches."""
    if len(history) < SATURATED_BATCHES:
        return None
    last = history[-SATURATED_BATCHES:]
    acc_real, acc_fake = np.mean(_column(last, "acc_real")), np.mean(_column(last, "acc_fake"))
    d_x, d_g_z = np.mean(_column(last, "d_x")), np.mean(_column(last, "d_g_z"))
    if acc_real >= 0.95 and acc_fake >= 0.95 and d_g_z <= 0.05:
        return (f"D is winning: over the last {SATURATED_BATCHES} batches it told real from fake almost every time "
                f"(D(x) {d_x:.2f}, D(G(z)) {d_g_z:.3f}), so G learns little from it; try label_smoothing=0.1, "
                "label_noise=0.05 or a lower d_lr")
    return None


def collapsing(history):
    """G's samples losing variety, or classes, over the last two measurements."""
    steps, div = _measured(history, "diversity")
    if len(div) >= 3:
        peak = int(np.argmax(div[:-2])) if len(div) > 2 else 0
        if div[peak] >= 0.3 and (div[-2:] < 0.5 * div[peak]).all():
            return (f"G may be collapsing: its samples are now {div[-1]:.2f} as varied as the data, down from "
                    f"{div[peak]:.2f} at step {steps[peak]}; look at the latest grid, and try a lower g_lr or "
                    "label_smoothing=0.1 (or resume an earlier checkpoint)")
    steps, found = _measured(history, "modes")
    if len(found) >= 3:
        best = int(np.argmax(found[:-2]))
        if (found[-2:] <= found[best] - 3).all():
            return (f"G may be collapsing: its samples now fall in {found[-1]:.0f} classes (modes), down from "
                    f"{found[best]:.0f} at step {steps[best]}; try a lower g_lr or label_smoothing=0.1")
    return None


def vanishing(history):
    """G's gradient norm below 1% of its largest, at the last two measurements."""
    steps, norm = _measured(history, "g_grad_norm")
    if len(norm) >= 3:
        top = int(np.argmax(norm[:-2]))
        if norm[top] > 0 and (norm[-2:] < 0.01 * norm[top]).all():
            return (f"G's gradient has nearly vanished: its norm is {norm[-1]:.2g}, under 1% of its {norm[top]:.2g} "
                    f"at step {steps[top]}, so G barely changes; D is too sure (see D(G(z))): try a lower d_lr "
                    "or label_smoothing=0.1")
    return None


def oscillating(history):
    """g_loss swinging up and down over SWING_BLOCKS blocks, with no progress where domain_fd measures it."""
    n = SWING_BLOCKS * SWING_BATCHES
    if len(history) < n:
        return None
    g = _column(history[-n:], "g_loss").reshape(SWING_BLOCKS, SWING_BATCHES).mean(axis=1)
    turns = int(np.sum(np.diff(np.sign(np.diff(g))) != 0))  # changes of direction between block means
    swing = (g.max() - g.min()) / max(abs(g.mean()), 1e-12)
    if turns < SWING_BLOCKS // 2 or swing < 0.3:
        return None
    steps, fd = _measured(history, "domain_fd")
    first = history[-n]["step"]
    before = fd[np.array(steps) < first] if len(fd) else fd
    during = fd[np.array(steps) >= first] if len(fd) else fd
    where = f"g_loss swings between {g.min():.2f} and {g.max():.2f} over the last {n} batches"
    if len(before) and len(during):
        if during.min() < 0.9 * before.min():
            return None  # swinging, but the samples got better: progress
        return (f"oscillating without progress: {where} while domain_fd stayed at {during.min():.3g} (best before: "
                f"{before.min():.3g}); try lower learning rates, or resume an earlier checkpoint")
    return (f"oscillating: {where}; nothing measures quality on this dataset, so compare the latest grids: "
            "if they change without getting better, try lower learning rates")


def stuck(history):
    """G draws nearly one image at the last two measurements while D rejects its images with certainty.

    Not a death sentence: the tutorial's recipe on CIFAR-10 (seed 3, one thread, 2026-12-04) was stuck at steps 200
    and 300 (diversity 0.011, 0.005) and as varied as the data by step 500 (0.92); others stay stuck. So the hint says
    what to watch, and it goes once the variety comes back (the last two measurements decide)."""
    _, div = _measured(history, "diversity")
    if len(div) < 2 or len(history) < SATURATED_BATCHES or not (div[-2:] < 0.05).all():
        return None
    d_g_z = float(np.mean(_column(history[-SATURATED_BATCHES:], "d_g_z")))
    if d_g_z >= 0.01:
        return None
    line = (f"G is stuck: it draws nearly one image (diversity {div[-1]:.2f}) and D rejects it with certainty "
            f"(D(G(z)) {d_g_z:.4f})")
    _, norm = _measured(history, "g_grad_norm")
    # Stuck runs measured here had G's gradient norm at 0.002 (MNIST) to 0.05 (CIFAR-10), healthy ones 1 to 10, and
    # notebook 09's G at a learning rate of 1e-6 58 to 91: told loudly what is wrong, and not moving.
    if len(norm) and norm[-1] >= STRONG_GRADIENT:
        return (f"{line}, yet G still gets a strong gradient (norm {norm[-1]:.3g}): its steps are too small to act on "
                "it; check that g_lr is not far below d_lr")
    return (f"{line}, usually because G's tanh output saturated (most pixels -1 or 1; data that is mostly background, "
            "such as MNIST, pushes it there) and almost no gradient reaches G. It may stay so (some runs come back "
            "within a few hundred batches): if the next measurements say the same, start again with "
            "label_smoothing=0.1 or lower learning rates")


CHECKS = {"d_saturated": d_saturated, "collapsing": collapsing, "vanishing": vanishing, "oscillating": oscillating,
          "stuck": stuck}


def diagnose(history):
    """What looks wrong at the end of `history` (rows as train() returns them): {kind: one line of plain words}.

    An empty dict means none of the signs holds, not that training is good: look at the samples too.
    """
    found = {}
    for kind, check in CHECKS.items():
        line = check(history)
        if line:
            found[kind] = line
    if "stuck" in found:  # D winning, a vanished gradient, a lost variety: its symptoms, whose advice would not help
        for symptom in ("d_saturated", "vanishing", "collapsing"):
            found.pop(symptom, None)
    return found
