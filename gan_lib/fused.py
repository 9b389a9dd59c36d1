"""The fused step: one compiled function per iteration that does what the tutorial loop does.

The loop makes three train_on_batch calls, a generator call and a D forward pass
per batch, each a separate dispatch with NumPy batches copied in and losses
copied out. The fused step keeps the dataset on the device, draws the batch and
the latent points there from a seeded Keras SeedGenerator (saved in checkpoints),
and runs all of one iteration as one compiled function (a dataset too big for the
device stays on the host instead: batches.Batches feeds it, one step ahead):

1. D's scores on a real and a fake half batch, before it learns (history only);
2. D learns from the real half batch, labels 1 (smoothed, flipped as the panel says);
3. D learns from the fake half batch, labels 0 (flipped as the panel says);
4. G learns through D from n_batch latent points labelled 1, updating G only.

Two D updates, then one G update, with binary cross-entropy and each model's own
compiled optimizer: the tutorial's semantics, without the host round trips.
The modern recipe's panel keys (panel.RECIPES) change steps 2-4: loss hinge or wgan_gp makes steps 2-3 one
update on both halves with that loss on D's raw scores (recipe.scores; wgan_gp adds the gradient penalty),
r1_gamma adds the R1 penalty on the real images, augment passes every image D sees through DiffAugment
(augment.py; in G's step too), and ema updates an average of G's weights after each G update (recipe.EMA). As in
the loop, panel keys d_steps and g_steps repeat steps 2-3 and step 4 (new draws each
time), and mixed_batch makes steps 2-3 one update on both half batches.
A conditional GAN (cgan.py; dataset [images, labels]) does the same with the class beside
every image: the real images' own, drawn uniformly on the device for G's images.
Losses stay on the device until the caller reads them (FusedStep.read).

The step is written once against Keras variables and compiled by backend.compile_stateful: a
tf.function on TensorFlow (over several devices with tf.distribute: devices.on_replicas), eager on
torch, one jax.jit on JAX (over several devices with keras.distribution: devices.split_batch).
"""

import keras
import numpy as np

from . import backend, devices, recipe
from .augment import augment, check_policy
from .batches import Batches, images_of, joined, n_classes_of, pixels, stacked, step_k
from .losses import (
    critic_parts,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    r1_penalty,
    real_part,
    score_generator_loss,
)

# what one step returns, in this order: the history's per-batch values
VALUES = ("d_loss_real", "d_loss_fake", "g_loss", "d_x", "d_g_z", "acc_real", "acc_fake")


class FusedStep:
    """Call it once per iteration; `read()` brings the values back. `variables`: its RNG state, for checkpoints.

    Between reads, on JAX, the new weights live in the compiled step's state: read() or sync()
    writes them into the Keras variables.
    """

    def __init__(self, g_model, d_model, gan_model, dataset, panel):
        self.g_model, self.d_model, self.gan_model = g_model, d_model, gan_model
        self.n_classes = n_classes_of(g_model)  # 0, or a conditional GAN's classes: dataset is [images, labels]
        if devices.fits_on_device(sum(np.asarray(a).nbytes for a in keras.tree.flatten(dataset))):
            # (N, H, W, C), or [images, labels (N,)], on the device once
            self.data, self.batches = keras.tree.map_structure(keras.ops.convert_to_tensor, dataset), None
        else:  # too big: real half batches come from the host, each made while the step before it runs
            self.data, self.batches = None, Batches(dataset, panel["n_batch"] // 2 * panel["d_steps"], panel["seed"])
        self.latent_dim, self.n_batch = panel["latent_dim"], panel["n_batch"]
        self.smoothing, self.noise = panel["label_smoothing"], panel["label_noise"]
        self.objective = panel["g_objective"]  # G's loss (losses.generator_loss)
        self.d_steps, self.g_steps, self.mixed = panel["d_steps"], panel["g_steps"], panel["mixed_batch"]
        self.loss, self.gp, self.r1 = panel["loss"], panel["gp_weight"], panel["r1_gamma"]  # the modern recipe's
        self.policy = check_policy(panel["augment"])
        if recipe.needs_scores(panel) and not recipe.has_score_head(d_model):
            raise ValueError(f"loss {self.loss!r} and r1_gamma read D's raw scores, but this D ends in its sigmoid: "
                             "build the models with gan_lib.build_models(panel, ...) (recipe.modern_discriminator)")
        self.strategy = devices.model_strategy(d_model)  # TensorFlow's tf.distribute engine, or None
        self.sharding = devices.batch_sharding(d_model)  # JAX's keras.distribution over devices, or None
        with devices.distribute_like(self.strategy):  # new variables live where the models' do
            for model in (d_model, gan_model):  # optimizer variables must exist before tracing
                if not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
            self.seed = keras.random.SeedGenerator(panel["seed"], name="fused_step_seed")
            self.ema = recipe.EMA(g_model, panel["ema"]) if panel["ema"] else None  # G's weights averaged
        # checkpointed beside the models and optimizers
        self.variables = [self.seed.state] + (self.ema.variables if self.ema else [])
        every = (list(g_model.variables) + list(d_model.variables) + list(d_model.optimizer.variables)
                 + list(gan_model.optimizer.variables) + self.variables)  # all a step reads or changes (JAX)
        self.step = backend.compile_stateful(self._step, every)
        self.pending = []  # device vectors not yet read back

    def labels(self, value, n):
        """n labels of `value` (1 or 0), flipped at random where label_noise says; real ones smoothed."""
        y = keras.ops.full((n, 1), value * (1.0 - self.smoothing) if value else 0.0)
        if self.noise > 0:
            y = keras.ops.where(keras.random.uniform((n, 1), seed=self.seed) < self.noise, 0.0 if value else 1.0, y)
        return y

    def values(self, d1, d2, g_loss, real_scores, fake_scores):
        """The history's per-batch values, in VALUES order, as one device vector."""
        real_right = keras.ops.mean(keras.ops.cast(real_scores > 0.5, "float32"))
        fake_right = keras.ops.mean(keras.ops.cast(fake_scores <= 0.5, "float32"))
        return keras.ops.stack([d1, d2, g_loss, keras.ops.mean(real_scores), keras.ops.mean(fake_scores),
                                real_right, fake_right])

    def _learn(self, model, variables, loss_fn, aux=False):
        """One update of `variables` by the model's optimizer; returns the (unscaled) loss, and with aux=True
        what loss_fn returns beside it (loss_fn then returns (loss, extra)).

        The gradients are of optimizer.scale_loss(loss), as in Keras's own train step: a plain
        Adam returns the loss as it is; under mixed_float16, compile() made the optimizer a
        LossScaleOptimizer, whose apply divides the scale back out and skips non-finite steps.
        """
        *out, grads = backend.value_and_gradients(loss_fn, variables, scale=model.optimizer.scale_loss, aux=aux)
        backend.apply_gradients(model.optimizer, grads, variables)
        return out if aux else out[0]

    def augmented(self, x):
        """x through DiffAugment as panel key augment says (a new draw at each call), or x as it is."""
        return augment(x, self.policy, self.seed) if self.policy else x

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
            draws.append((real, x_fake, self.labels(1.0, half), self.labels(0.0, half)))
        zs = [self.latent(keras.random.normal((self.n_batch, self.latent_dim), seed=self.seed), self._classes(self.n_batch))
              for _ in range(self.g_steps)]
        # (batch, steps, ...): the batch stays on axis 0, which on_replicas splits over the devices
        batches = devices.split_batch([stacked(parts) for parts in zip(*draws)] + [stacked(zs)], self.sharding)
        # the updates: once per device on its share of each batch (on one device, all of it)
        d1, d2, g_loss = keras.ops.unstack(devices.on_replicas(self.strategy, self._updates, batches))
        return self.values(d1, d2, g_loss, scores[:half], scores[half:])

    def _updates(self, x_real, x_fake, y_real, y_fake, z, n):
        """d_steps times D (real then fake share, or both at once), then g_steps times G through D.

        Arguments are (share, steps, ...); each loss is a mean / n (n devices add them up), averaged over the steps.
        """
        g, d = self.g_model, self.d_model
        d_vars, aug = d.trainable_variables, self.augmented

        def score(x):  # D's raw scores (n, 1): the modern losses'
            return recipe.scores(d, x)

        def still(x):  # the penalties': D in inference mode, whose spectral norm does not assign its kernel again
            return recipe.scores(d, x, training=False)  # (torch cannot differentiate through a twice-assigned kernel)

        def d_loss(x, y, real=None):  # binary cross-entropy; R1 on `real`, the real images among x
            def loss():
                value = discriminator_loss(y, d(aug(x), training=True))
                return (value + self.r1 / 2 * r1_penalty(still, aug(real)) if self.r1 and real is not None else value) / n
            return loss

        def critic_loss(xr, xf):  # hinge or wgan_gp, on both halves at once; returns (loss, its two parts)
            def loss():
                real, fake = aug(xr), aug(xf)
                h = keras.ops.shape(real)[0]
                both = score(joined(real, fake))  # one call: D's training-mode layers run once per loss
                part_real, part_fake = critic_parts(self.loss, both[:h], both[h:])
                total = part_real + part_fake
                if self.loss == "wgan_gp":  # eps: one number per image
                    eps = keras.random.uniform((h, 1, 1, 1), seed=self.seed)
                    total = total + self.gp * gradient_penalty(still, real, fake, eps)
                if self.r1:
                    total = total + self.r1 / 2 * r1_penalty(still, real)
                return total / n, keras.ops.stack([part_real, part_fake])
            return loss

        def g_loss(z):
            if self.loss != "bce":
                return lambda: score_generator_loss(score(aug(g(z, training=True)))) / n
            return lambda: generator_loss(d(aug(self.judged(g(z, training=True), z)), training=True), self.objective) / n

        d1, d2, gl = [], [], []
        for k in range(self.d_steps):
            xr, xf, yr, yf = (step_k(a, k) for a in (x_real, x_fake, y_real, y_fake))
            if self.loss != "bce":  # d_loss_real and d_loss_fake report the loss's two parts
                _, parts = self._learn(d, d_vars, critic_loss(xr, xf), aux=True)
                d1.append(parts[0])
                d2.append(parts[1])
            elif self.mixed:  # one update on both halves: d_loss_real and d_loss_fake both report it
                d1.append(self._learn(d, d_vars, d_loss(joined(xr, xf), joined(yr, yf), real=xr)))
                d2.append(d1[-1])
            else:
                d1.append(self._learn(d, d_vars, d_loss(xr, yr, real=xr)))
                d2.append(self._learn(d, d_vars, d_loss(xf, yf)))
        for k in range(self.g_steps):
            gl.append(self._learn(self.gan_model, g.trainable_variables, g_loss(step_k(z, k))))
            if self.ema:
                self.ema.update()
        return keras.ops.stack([keras.ops.mean(keras.ops.stack(losses)) for losses in (d1, d2, gl)])

    def __call__(self, step=0):
        """One iteration; step (0-based, over the whole run) picks the streamed half batch, if any."""
        source = self.data if self.batches is None else self.batches(step)
        with backend.no_grad():  # torch: nothing outside value_and_gradients is recorded
            self.pending.append(self.step(source))

    def sync(self):
        """Make the Keras variables current (JAX: write the compiled step's state back; elsewhere nothing to do)."""
        self.step.sync()

    def read(self):
        """The values of the steps run since the last read, as dicts; one host transfer for all of them.

        The models' variables are made current too (sync), so what follows (a checkpoint, a grid,
        a summary) sees the latest weights.
        """
        self.sync()
        if not self.pending:
            return []
        values = keras.ops.convert_to_numpy(keras.ops.stack(self.pending)).astype(np.float64)
        self.pending = []
        return [dict(zip(VALUES, map(float, row))) for row in values]
