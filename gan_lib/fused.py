"""The fused step: one compiled function per iteration that does what the tutorial loop does.

The loop makes three train_on_batch calls, a generator call and a D forward pass
per batch, each a separate dispatch with NumPy batches copied in and losses
copied out. The fused step keeps the dataset on the device, draws the batch and
the latent points there from a seeded Keras SeedGenerator (saved in checkpoints),
and runs all of one iteration as one compiled function (a dataset too big for the
device stays on the host instead: Batches below feeds it, one step ahead):

1. D's scores on a real and a fake half batch, before it learns (history only);
2. D learns from the real half batch, labels 1 (smoothed, flipped as the panel says);
3. D learns from the fake half batch, labels 0 (flipped as the panel says);
4. G learns through D from n_batch latent points labelled 1, updating G only.

Two D updates, then one G update, with binary cross-entropy and each model's own
compiled optimizer: the tutorial's semantics, without the host round trips. As in
the loop, panel keys d_steps and g_steps repeat steps 2-3 and step 4 (new draws each
time), and mixed_batch makes steps 2-3 one update on both half batches.
A conditional GAN (cgan.py; dataset [images, labels]) does the same with the class beside
every image: the real images' own, drawn uniformly on the device for G's images.
Losses stay on the device until the caller reads them (FusedStep.read).
"""

import concurrent.futures

import keras
import numpy as np

from . import backend
from .data import images_of, n_classes_of
from .models import class_loss, real_part

# what one step returns, in this order: the history's per-batch values
VALUES = ("d_loss_real", "d_loss_fake", "g_loss", "d_x", "d_g_z", "acc_real", "acc_fake")


PIXELS = np.arange(256, dtype=np.float32) / 127.5 - 1.0  # uint8 value -> float32 pixel in [-1, 1]


def pixels(x):
    """Real images as the models take them, on the device: uint8 [0, 255] -> float32 [-1, 1]; float as it is.

    A uint8 dataset sits on the device (or streams from the host) at a quarter of float32's size.
    """
    if keras.backend.standardize_dtype(x.dtype) == "uint8":
        # a lookup in a 256-entry table made by NumPy: exactly scale_images' values on every backend
        # (XLA may turn / 127.5 into * (1 / 127.5), one rounding off)
        return keras.ops.take(PIXELS, keras.ops.cast(x, "int32"))
    return x


def bce(y, p):
    """Binary cross-entropy averaged over the batch: what train_on_batch reports for these models."""
    return keras.ops.mean(keras.losses.binary_crossentropy(y, p))


def discriminator_loss(y, out):
    """D's loss on one batch, targets y (n, 1): binary cross-entropy of its scores, what train_on_batch
    reports; an ACGAN's D (output [P(real), q]) adds the class's cross-entropy (models.acgan_loss)."""
    return bce(y, real_part(out)) + keras.ops.mean(class_loss(out))


def generator_loss(p, objective="non_saturating"):
    """G's loss from D's scores p (n, 1) for G's images.

    non_saturating: -mean log D(G(z)), binary cross-entropy against label 1: how the tutorial
    trains G. saturating: mean log(1 - D(G(z))), the minimax objective of Goodfellow et al.
    (2014), minus the cross-entropy against label 0; its gradient vanishes when D is sure
    the images are fake (D(G(z)) near 0), which is why nobody trains with it.
    An ACGAN's D gives (n, 2), [P(real), q]: either one plus the class's cross-entropy, -mean log q.
    """
    p, classes = real_part(p), keras.ops.mean(class_loss(p))
    if objective == "saturating":
        return -bce(keras.ops.zeros_like(p), p) + classes
    return bce(keras.ops.ones_like(p), p) + classes


def joined(a, b):
    """a and b end to end along the batch: arrays, or [images, labels] part by part (a conditional GAN)."""
    return keras.tree.map_structure(lambda x, y: keras.ops.concatenate([x, y]), a, b)


def stacked(parts):
    """The steps' batches (each an array or [images, labels]) stacked on axis 1: (batch, steps, ...)."""
    return keras.tree.map_structure(lambda *a: keras.ops.stack(a, axis=1), *parts)


def step_k(batch, k):
    """Step k's batch out of a stacked one (stacked): batch[:, k], part by part."""
    return keras.tree.map_structure(lambda a: a[:, k], batch)


class FusedStep:
    """Call it once per iteration; `read()` brings the values back. `variables`: its RNG state, for checkpoints.

    TensorFlow and torch run `_step` below (a tf.function; eager torch), updating the
    Keras variables in place; JAX runs the pure equivalent in backend_jax.JaxStep.
    """

    def __init__(self, g_model, d_model, gan_model, dataset, panel):
        self.g_model, self.d_model, self.gan_model = g_model, d_model, gan_model
        self.n_classes = n_classes_of(g_model)  # 0, or a conditional GAN's classes: dataset is [images, labels]
        if backend.fits_on_device(sum(np.asarray(a).nbytes for a in keras.tree.flatten(dataset))):
            # (N, H, W, C), or [images, labels (N,)], on the device once
            self.data, self.batches = keras.tree.map_structure(keras.ops.convert_to_tensor, dataset), None
        else:  # too big: real half batches come from the host, each made while the step before it runs
            self.data, self.batches = None, Batches(dataset, panel["n_batch"] // 2 * panel["d_steps"], panel["seed"])
        self.seed_value = panel["seed"]
        self.latent_dim, self.n_batch = panel["latent_dim"], panel["n_batch"]
        self.smoothing, self.noise = panel["label_smoothing"], panel["label_noise"]
        self.objective = panel["g_objective"]  # G's loss (generator_loss)
        self.d_steps, self.g_steps, self.mixed = panel["d_steps"], panel["g_steps"], panel["mixed_batch"]
        self.strategy = backend.model_strategy(d_model)  # TensorFlow's tf.distribute engine, or None
        with backend.distribute_like(self.strategy):  # new variables live where the models' do
            for model in (d_model, gan_model):  # optimizer variables must exist before tracing
                if not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
            self._make_step(panel)
        self.pending = []  # device vectors not yet read back

    def _make_step(self, panel):
        if keras.backend.backend() == "jax":
            from .backend_jax import JaxStep

            self.jax = JaxStep(self)
            self.step, self.variables = self.jax, [self.jax.key]
        else:
            self.jax = None
            self.seed = keras.random.SeedGenerator(panel["seed"], name="fused_step_seed")
            self.step, self.variables = backend.compile_step(self._step), [self.seed.state]

    def labels(self, value, n, uniform):
        """n labels of `value` (1 or 0), flipped where uniform (n, 1) < label_noise; real ones smoothed."""
        y = keras.ops.full((n, 1), value * (1.0 - self.smoothing) if value else 0.0)
        if self.noise > 0:
            y = keras.ops.where(uniform < self.noise, 0.0 if value else 1.0, y)
        return y

    def values(self, d1, d2, g_loss, real_scores, fake_scores):
        """The history's per-batch values, in VALUES order, as one device vector."""
        real_right = keras.ops.mean(keras.ops.cast(real_scores > 0.5, "float32"))
        fake_right = keras.ops.mean(keras.ops.cast(fake_scores <= 0.5, "float32"))
        return keras.ops.stack([d1, d2, g_loss, keras.ops.mean(real_scores), keras.ops.mean(fake_scores),
                                real_right, fake_right])

    def _labels(self, value, n):
        return self.labels(value, n, keras.random.uniform((n, 1), seed=self.seed) if self.noise > 0 else None)

    def _learn(self, model, variables, loss_fn):
        """One update of `variables` by the model's optimizer; returns the (unscaled) loss.

        The gradients are of optimizer.scale_loss(loss), as in Keras's own train step: a plain
        Adam returns the loss as it is; under mixed_float16, compile() made the optimizer a
        LossScaleOptimizer, whose apply() divides the scale back out and skips non-finite steps.
        """
        loss, grads = backend.value_and_gradients(loss_fn, variables, scale=model.optimizer.scale_loss)
        with backend.no_grad():
            model.optimizer.apply(grads, variables)
        return loss

    def latent(self, z, classes):
        """G's input: the latent points z (n, latent_dim), or for a conditional GAN [z, classes]."""
        return [z, classes] if self.n_classes else z

    def judged(self, x, z):
        """D's input for G's images x made from latent input z: x, or for a conditional GAN [x, z's classes]."""
        return [x, z[1]] if self.n_classes else x

    def _classes(self, n):
        """n classes drawn uniformly for G's images (a conditional GAN), else None (nothing drawn)."""
        return keras.random.randint((n,), 0, self.n_classes, seed=self.seed, dtype="int32") if self.n_classes else None

    def _step(self, source):
        """source: the whole dataset on the device, or this step's real half batches (streamed from the host);
        a conditional GAN's: [images, labels]."""
        half, n_d = self.n_batch // 2, self.d_steps
        g, d = self.g_model, self.d_model
        if self.batches is None:
            idx = keras.random.randint((half * n_d,), 0, keras.ops.shape(images_of(source))[0], seed=self.seed)
            x_real = keras.tree.map_structure(lambda a: keras.ops.take(a, idx, axis=0), source)
        else:
            x_real = source
        # (d_steps * half, H, W, C) float32 in [-1, 1]; a conditional GAN's labels as they are
        x_real = keras.tree.map_structure(pixels, x_real)
        draws = []  # per D step: real, fake (each images or [images, labels]), their 0/1 targets
        for k in range(n_d):
            real = keras.tree.map_structure(lambda a: a[k * half:(k + 1) * half], x_real)
            z_fake = self.latent(keras.random.normal((half, self.latent_dim), seed=self.seed), self._classes(half))
            x_fake = self.judged(g(z_fake, training=True), z_fake)  # G as it trains (dcgan.py)
            if k == 0:  # D's scores before it learns in this iteration (history only)
                scores = keras.ops.reshape(real_part(d(joined(real, x_fake), training=False)), (-1,))
            draws.append((real, x_fake, self._labels(1.0, half), self._labels(0.0, half)))
        zs = [self.latent(keras.random.normal((self.n_batch, self.latent_dim), seed=self.seed), self._classes(self.n_batch))
              for _ in range(self.g_steps)]
        # (batch, steps, ...): the batch stays on axis 0, which on_replicas splits over the devices
        batches = [stacked(parts) for parts in zip(*draws)] + [stacked(zs)]
        # the updates: once per device on its share of each batch (on one device, all of it)
        d1, d2, g_loss = keras.ops.unstack(backend.on_replicas(self.strategy, self._updates, batches))
        return self.values(d1, d2, g_loss, scores[:half], scores[half:])

    def _updates(self, x_real, x_fake, y_real, y_fake, z, n):
        """d_steps times D (real then fake share, or both at once), then g_steps times G through D.

        Arguments are (share, steps, ...); each loss is a mean / n (n devices add them up), averaged over the steps.
        """
        g, d = self.g_model, self.d_model
        d_vars = d.trainable_variables

        def d_loss(x, y):
            return lambda: discriminator_loss(y, d(x, training=True)) / n

        def g_loss(z):
            return lambda: generator_loss(d(self.judged(g(z, training=True), z), training=True), self.objective) / n

        d1, d2, gl = [], [], []
        for k in range(self.d_steps):
            xr, xf, yr, yf = (step_k(a, k) for a in (x_real, x_fake, y_real, y_fake))
            if self.mixed:  # one update on both halves: d_loss_real and d_loss_fake both report it
                d1.append(self._learn(d, d_vars, d_loss(joined(xr, xf), joined(yr, yf))))
                d2.append(d1[-1])
            else:
                d1.append(self._learn(d, d_vars, d_loss(xr, yr)))
                d2.append(self._learn(d, d_vars, d_loss(xf, yf)))
        for k in range(self.g_steps):
            gl.append(self._learn(self.gan_model, g.trainable_variables, g_loss(step_k(z, k))))
        return keras.ops.stack([keras.ops.mean(keras.ops.stack(losses)) for losses in (d1, d2, gl)])

    def __call__(self, step=0):
        """One iteration; step (0-based, over the whole run) picks the streamed half batch, if any."""
        source = self.data if self.batches is None else self.batches(step)
        with backend.no_grad():  # torch: nothing outside value_and_gradients is recorded
            self.pending.append(self.step(source))

    def sync(self):
        """JAX: write the jitted state back into the Keras variables (elsewhere they are always current)."""
        if self.jax is not None:
            self.jax.sync()

    def read(self):
        """The values of the steps run since the last read, as dicts; one host transfer for all of them.

        On JAX the state goes back into the Keras variables too, so what follows (a
        checkpoint, a grid, a summary) sees the latest weights.
        """
        self.sync()
        if not self.pending:
            return []
        values = keras.ops.convert_to_numpy(keras.ops.stack(self.pending)).astype(np.float64)
        self.pending = []
        return [dict(zip(VALUES, map(float, row))) for row in values]


class Batches:
    """Real half batches drawn on the host, for a dataset too big for the device; one made ahead in a thread.

    Step k's images come from a NumPy generator seeded with (seed, k), so any step's batch
    can be made again (a resumed run) without saving a random state.
    """

    def __init__(self, dataset, half, seed):
        self.dataset, self.half, self.seed = dataset, half, seed
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gan_lib-batches")
        self.ahead = None  # (k, future of step k's batch)

    def make(self, k):
        """Step k's half batch, (half, H, W, C) (a conditional GAN's: [images, labels (half,)]), copied to the device."""
        idx = np.random.default_rng([self.seed, k]).integers(0, len(images_of(self.dataset)), self.half)
        return keras.tree.map_structure(lambda a: keras.ops.convert_to_tensor(a[idx]), self.dataset)

    def __call__(self, k):
        batch = self.ahead[1].result() if self.ahead and self.ahead[0] == k else self.make(k)
        self.ahead = (k + 1, self.pool.submit(self.make, k + 1))  # the next one, while this step runs
        return batch
