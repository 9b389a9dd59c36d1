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
from .fused import discriminator_loss, generator_loss, joined, pixels
from .models import real_part


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
        half, n_d = f.n_batch // 2, f.d_steps

        def step_key(base, k):  # step 0 draws with the base key itself: d_steps = g_steps = 1 is the same run as before
            return base if k == 0 else jax.random.fold_in(base, k)

        def classes(base, k, n):  # a conditional GAN's classes for n of G's images (step k), else None
            return jax.random.randint(step_key(base, k), (n,), 0, f.n_classes, dtype="int32") if f.n_classes else None

        k_fake_class = k_gen_class = None
        if f.n_classes:  # keys of their own: an unconditional run draws what it drew before
            key, k_fake_class, k_gen_class = jax.random.split(key, 3)
        if f.batches is None:  # source: the dataset on the device, or this step's streamed half batches
            idx = jax.random.randint(k_idx, (half * n_d,), 0, images_of(source).shape[0])
            x_real = jax.tree.map(lambda a: a[idx], source)  # images, or [images, labels]
        else:
            x_real = source
        x_real = jax.tree.map(pixels, x_real)  # uint8 data: scaled here, on the device (labels as they are)
        draws = []  # per D step: real, fake (each images or [images, labels]), their 0/1 targets
        for k in range(n_d):
            real = jax.tree.map(lambda a: a[k * half:(k + 1) * half], x_real)
            z_fake = f.latent(jax.random.normal(step_key(k_fake, k), (half, f.latent_dim)),
                              classes(k_fake_class, k, half))
            # G as it trains (BatchNorm on batch statistics, its moving statistics updated), as in fused.FusedStep
            x_fake, g_ntv = g.stateless_call(g_tv, g_ntv, z_fake, training=True)
            x_fake = f.judged(x_fake, z_fake)
            if k == 0:
                scores, _ = d.stateless_call(d_tv, d_ntv, joined(real, x_fake), training=False)
                scores = real_part(scores).reshape(-1)
            draws.append((real, x_fake,
                          f.labels(1.0, half, jax.random.uniform(step_key(k_real_flip, k), (half, 1))),
                          f.labels(0.0, half, jax.random.uniform(step_key(k_fake_flip, k), (half, 1)))))
        zs = [f.latent(jax.random.normal(step_key(k_gen, k), (f.n_batch, f.latent_dim)),
                       classes(k_gen_class, k, f.n_batch)) for k in range(f.g_steps)]
        if self.batch is not None:  # data parallel: XLA splits the work by these and adds up the gradients
            draws, zs = jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, self.batch), (draws, zs))

        def d_loss(d_tv, d_ntv, d_opt, x, y):
            p, d_ntv = d.stateless_call(d_tv, d_ntv, x, training=True)
            loss = discriminator_loss(y, p)
            return scaled(d.optimizer, d_opt, loss), (loss, d_ntv)

        def g_loss(g_tv, g_ntv, d_ntv, g_opt, z):
            x, g_ntv = g.stateless_call(g_tv, g_ntv, z, training=True)
            p, d_ntv = d.stateless_call(d_tv, d_ntv, f.judged(x, z), training=True)  # D's weights: not differentiated
            loss = generator_loss(p, f.objective)
            return scaled(f.gan_model.optimizer, g_opt, loss), (loss, g_ntv, d_ntv)

        def d_update(x, y):  # one D update on (x, y); returns its loss
            nonlocal d_tv, d_ntv, d_opt
            (_, (loss, d_ntv)), grads = jax.value_and_grad(d_loss, has_aux=True)(d_tv, d_ntv, d_opt, x, y)
            d_tv, d_opt = d.optimizer.stateless_apply(d_opt, grads, d_tv)  # unscales; skips non-finite steps
            return loss

        d1, d2, gl = [], [], []
        for x_r, x_f, y_r, y_f in draws:
            if f.mixed:  # one update on both halves, reported as both losses
                d1.append(d_update(joined(x_r, x_f), joined(y_r, y_f)))
                d2.append(d1[-1])
            else:  # two D updates, as the tutorial does
                d1.append(d_update(x_r, y_r))
                d2.append(d_update(x_f, y_f))
        for z in zs:
            (_, (loss, g_ntv, d_ntv)), grads = jax.value_and_grad(g_loss, has_aux=True)(g_tv, g_ntv, d_ntv, g_opt, z)
            g_tv, g_opt = f.gan_model.optimizer.stateless_apply(g_opt, grads, g_tv)
            gl.append(loss)
        mean = [keras.ops.mean(keras.ops.stack(losses)) for losses in (d1, d2, gl)]
        values = f.values(*mean, scores[:half], scores[half:])
        return [g_tv, g_ntv, d_tv, d_ntv, d_opt, g_opt, [key]], values


def batch_sharding(model):
    """A sharding that splits axis 0 over the devices model's variables are replicated on
    (keras.distribution.DataParallel), or None where they live on one device."""
    sharding = model.weights[0].value.sharding
    if len(sharding.device_set) == 1:
        return None
    mesh = sharding.mesh
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(mesh.axis_names[0]))


# ---------------------------------------------------------------- eager-style steps, run statelessly (cyclegan)


class StatefulJit:
    """fn(*args), written like a TensorFlow or torch step (model calls, optimizer.apply, variable.assign,
    keras.random with a SeedGenerator), run as one jax.jit over the values of `variables`.

    Inside, a keras.StatelessScope maps each variable to its traced value and collects what fn
    assigns; after each call the new values are written back into the variables, so they are always
    current (no sync needed). `variables` must hold every variable fn reads or changes: one left out
    would be baked into the compiled function as a constant.
    """

    def __init__(self, fn, variables):
        self.fn, self.variables = fn, list(variables)
        self.jitted = jax.jit(self._pure)

    def _pure(self, values, *args):
        with keras.StatelessScope(state_mapping=list(zip(self.variables, values))) as scope:
            out = self.fn(*args)
        return [scope.get_current_value(v) for v in self.variables], out

    def __call__(self, *args):
        values, out = self.jitted([v.value for v in self.variables], *args)
        for v, value in zip(self.variables, values):
            v.assign(value)
        return out


def value_and_gradients(loss_fn, variables, scale):
    """backend.value_and_gradients inside a StatefulJit step: (loss, extra, gradients) of loss_fn() -> (loss, extra).

    jax.value_and_grad differentiates a function of the variables' values: it runs loss_fn in a
    scope that maps `variables` to those values and every other variable to its current value in the
    step's scope. Updates loss_fn makes to variables (BatchNorm statistics, seeds) are dropped: a loss
    must not change state here (cyclegan's models have none to change).
    """
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    outer = get_stateless_scope()
    if outer is None:
        raise RuntimeError("on JAX, value_and_gradients runs inside a step made by backend.compile_stateful")

    def pure(values):
        with keras.StatelessScope() as inner:
            inner.state_mapping = dict(outer.state_mapping)
            inner.state_mapping.update({id(v): value for v, value in zip(variables, values)})
            loss, extra = loss_fn()
        return scale(loss), (loss, extra)

    (_, (loss, extra)), grads = jax.value_and_grad(pure, has_aux=True)([v.value for v in variables])
    return loss, extra, grads
