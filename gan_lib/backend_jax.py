"""The fused step on JAX: one jax.jit function over explicit state, part of the backend seam.

JAX cannot update variables inside a compiled function, so the step is pure: it
takes every value training changes (both models' trainable and non-trainable
values, both optimizers' variables, a PRNG key) and returns them updated, using
Keras's `stateless_call` and `optimizer.stateless_apply`. Between calls the values
live in `state`; `sync()` writes them back into the Keras variables, which is
what checkpoints, grids and summaries read.
"""

import jax
import keras
import numpy as np

from .data import images_of
from .fused import bce, generator_loss, pixels


def scaled(optimizer, values, loss):
    """optimizer.scale_loss(loss) with the optimizer's variables read from `values` (the jitted state).

    A LossScaleOptimizer (mixed_float16) multiplies by its dynamic_scale variable, whose current
    value lives in the state, not in the Keras variable; Keras's JAX trainer maps it the same way.
    A plain Adam returns the loss unchanged.
    """
    with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, values))):
        return optimizer.scale_loss(loss)


class JaxStep:
    """Same contract as fused.FusedStep's compiled step: call it, then `values` holds the device vector."""

    def __init__(self, fused):
        self.f = fused
        g, d, gan = fused.g_model, fused.d_model, fused.gan_model
        self.key = keras.Variable(np.array(jax.random.PRNGKey(fused.seed_value)), dtype="uint32",
                                  trainable=False, name="fused_step_key")  # checkpointed
        self.groups = [g.trainable_variables, g.non_trainable_variables, d.trainable_variables,
                       d.non_trainable_variables, d.optimizer.variables, gan.optimizer.variables, [self.key]]
        self.state = None
        self.batch = batch_sharding(d)  # several devices: each batch split over them along axis 0
        self.jitted = jax.jit(self._step)  # no buffer donation: the Keras variables keep valid values between syncs

    def __call__(self, source):
        if self.state is None:  # first call, or after sync(): start from the variables (a restore may have set them)
            self.state = [[v.value for v in group] for group in self.groups]
        self.state, values = self.jitted(self.state, source)  # data an argument, not a constant baked in
        return values

    def sync(self):
        """Write the state back into the Keras variables."""
        if self.state is not None:
            for group, values in zip(self.groups, self.state):
                for v, value in zip(group, values):
                    v.assign(value)
            self.state = None

    def _step(self, state, source):
        f = self.f
        g, d = f.g_model, f.d_model
        g_tv, g_ntv, d_tv, d_ntv, d_opt, g_opt, (key,) = state
        key, k_idx, k_fake, k_gen, k_real_flip, k_fake_flip = jax.random.split(key, 6)
        classes = [None, None]  # a conditional GAN's classes for G's images: the fakes for D, G's step
        if f.n_classes:
            key, *k_classes = jax.random.split(key, 3)
            classes = [jax.random.randint(k, (n,), 0, f.n_classes, dtype="int32")
                       for k, n in zip(k_classes, (f.n_batch // 2, f.n_batch))]
        half = f.n_batch // 2
        if f.batches is None:  # source: the dataset on the device, or this step's streamed half batch
            idx = jax.random.randint(k_idx, (half,), 0, images_of(source).shape[0])
            x_real = jax.tree.map(lambda a: a[idx], source)  # images, or [images, labels]
        else:
            x_real = source
        x_real = jax.tree.map(pixels, x_real)  # uint8 data: scaled here, on the device (labels as they are)
        # G as it trains (BatchNorm on batch statistics, its moving statistics updated), as in fused.FusedStep
        z_fake = f.latent(jax.random.normal(k_fake, (half, f.latent_dim)), classes[0])
        x_fake, g_ntv = g.stateless_call(g_tv, g_ntv, z_fake, training=True)
        x_fake = f.judged(x_fake, z_fake)
        both = jax.tree.map(lambda a, b: keras.ops.concatenate([a, b]), x_real, x_fake)
        scores, _ = d.stateless_call(d_tv, d_ntv, both, training=False)
        scores = scores.reshape(-1)
        y_real = f.labels(1.0, half, jax.random.uniform(k_real_flip, (half, 1)))
        y_fake = f.labels(0.0, half, jax.random.uniform(k_fake_flip, (half, 1)))
        z = f.latent(jax.random.normal(k_gen, (f.n_batch, f.latent_dim)), classes[1])
        if self.batch is not None:  # data parallel: XLA splits the work by these and adds up the gradients
            x_real, x_fake, y_real, y_fake, z = jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, self.batch),
                                                             (x_real, x_fake, y_real, y_fake, z))

        def d_loss(d_tv, d_ntv, d_opt, x, y):
            p, d_ntv = d.stateless_call(d_tv, d_ntv, x, training=True)
            loss = bce(y, p)
            return scaled(d.optimizer, d_opt, loss), (loss, d_ntv)

        def g_loss(g_tv, g_ntv, d_ntv, g_opt, z):
            x, g_ntv = g.stateless_call(g_tv, g_ntv, z, training=True)
            p, d_ntv = d.stateless_call(d_tv, d_ntv, f.judged(x, z), training=True)  # D's weights: not differentiated
            loss = generator_loss(p, f.objective)
            return scaled(f.gan_model.optimizer, g_opt, loss), (loss, g_ntv, d_ntv)

        losses = []
        for x, y in ((x_real, y_real), (x_fake, y_fake)):  # two D updates, as the tutorial does
            (_, (loss, d_ntv)), grads = jax.value_and_grad(d_loss, has_aux=True)(d_tv, d_ntv, d_opt, x, y)
            d_tv, d_opt = d.optimizer.stateless_apply(d_opt, grads, d_tv)  # unscales; skips non-finite steps
            losses.append(loss)
        (_, (loss, g_ntv, d_ntv)), grads = jax.value_and_grad(g_loss, has_aux=True)(g_tv, g_ntv, d_ntv, g_opt, z)
        g_tv, g_opt = f.gan_model.optimizer.stateless_apply(g_opt, grads, g_tv)
        values = f.values(losses[0], losses[1], loss, scores[:half], scores[half:])
        return [g_tv, g_ntv, d_tv, d_ntv, d_opt, g_opt, [key]], values


def batch_sharding(model):
    """A sharding that splits axis 0 over the devices model's variables are replicated on
    (keras.distribution.DataParallel), or None where they live on one device."""
    sharding = model.weights[0].value.sharding
    if len(sharding.device_set) == 1:
        return None
    mesh = sharding.mesh
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(mesh.axis_names[0]))
