"""The backend seam: seeding for exact repeats, compiling a training step, and differentiating a loss.

Everything else in gan_lib speaks Keras 3 only, so it runs on TensorFlow, JAX and torch; this
module and devices.py (accelerators, precision, several devices) are where the frameworks are
imported, each when first needed. A step is written once, against Keras variables (model calls,
optimizer updates, keras.random with a SeedGenerator), and compiled here: a tf.function on
TensorFlow, eager on torch, and on JAX one jax.jit of the same code run statelessly over the
variables' values (StatefulJit), since JAX cannot change a variable inside a compiled function.

Keras is imported inside the functions: gan_lib/__init__.py imports quiet_fd2 before Keras, to hide
TensorFlow's start-up notices.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_fd2():
    """Hide what C++ code writes straight to file descriptor 2 (stderr) meanwhile.

    TensorFlow prints start-up notices (oneDNN, CUDA drivers) when it is first
    imported, whatever TF_CPP_MIN_LOG_LEVEL says; they bury real messages and
    break nbval's stderr comparison. Set GAN_LIB_IMPORT_NOTICES=1 to see them.
    """
    if os.environ.get("GAN_LIB_IMPORT_NOTICES"):
        yield
        return
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


BACKENDS = ("tensorflow", "jax", "torch")  # the backends gan_lib runs on


def tensorflow_quirks():
    """Work around what a TensorFlow release gets wrong; gan_lib/__init__.py calls it once Keras is imported.

    TensorFlow 2.20 (Colab's) on a CPU: its graph optimizer's remapper pass fails on the models'
    training graphs (conv, bias, LeakyReLU and their gradients) and logs one 'E0000 ... remapper
    failed: INVALID_ARGUMENT' line to stderr for each, whatever TF_CPP_MIN_LOG_LEVEL says; the
    graph then runs without that pass anyway. Switching the pass off there removes the line; the
    loop's step time stayed within the noise of two runs each (1.1-1.3 s per iteration either way).
    Nothing changes on other versions, on GPUs, or on the other backends.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    if tf.__version__.startswith("2.20.") and not tf.config.list_physical_devices("GPU"):
        tf.config.optimizer.set_experimental_options({"remapping": False})


def backend_error(error):
    """One line for a failed `import keras`: the KERAS_BACKEND asked for, what went wrong, the backends installed."""
    import importlib.util

    asked = os.environ.get("KERAS_BACKEND", "tensorflow")
    installed = [name for name in BACKENDS if importlib.util.find_spec(name) is not None]
    fix = (f"set KERAS_BACKEND to one of the backends installed here: {', '.join(installed)}" if installed else
           "install one: pip install tensorflow (or jax, or torch)")
    return f"Keras cannot start with KERAS_BACKEND={asked!r} ({type(error).__name__}: {error}); {fix}"


def set_seed(seed, deterministic=True):
    """Seed Python, NumPy and the backend; call before building models.

    TensorFlow needs op determinism switched on for bit-identical results; JAX and
    torch on a CPU are deterministic already.
    """
    import keras

    with quiet_fd2():  # Keras seeds TensorFlow too when it is installed, importing it on any backend
        keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def compile_step(fn):
    """fn compiled by the backend's own means: a tf.function on TensorFlow; plain eager code on torch
    (each op already runs as one kernel; torch.compile has not been measured to help here).

    JAX cannot run fn as it is (it changes variables in place): use compile_stateful.
    """
    import keras

    name = keras.backend.backend()
    if name == "torch":
        return fn
    if name != "tensorflow":
        raise ValueError(f"panel key 'fast' runs on TensorFlow, JAX and torch, not on {name}; "
                         "set KERAS_BACKEND=tensorflow, or fast=False for the tutorial loop")
    import tensorflow as tf

    return tf.function(fn)


def compile_stateful(fn, variables):
    """fn, a step that reads and updates Keras variables (models, optimizers, seeds) in place, compiled: an object
    to call like fn, whose sync() makes the Keras variables current.

    TensorFlow and torch: compile_step(fn), which changes the variables as it runs (sync does nothing).
    JAX: StatefulJit, one jax.jit over the values of `variables`, which must list every variable fn
    reads or changes; the values stay on the device between calls and sync() writes them back.
    """
    import keras

    if keras.backend.backend() == "jax":
        return StatefulJit(fn, variables)
    return InPlace(compile_step(fn))


class InPlace:
    """A compiled step whose variables are always current (TensorFlow, torch): sync() has nothing to do."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)

    def sync(self):
        pass


_TRACKED = []  # the variables of the StatefulJit step being traced (value_and_gradients hands their updates on)


class StatefulJit:
    """fn(*args), written like a TensorFlow or torch step (model calls, optimizer updates, variable.assign,
    keras.random with a SeedGenerator), run as one jax.jit over the values of `variables`.

    Inside, a keras.StatelessScope maps each variable to its traced value and collects what fn assigns.
    Between calls the values stay on the device (in `values`); sync() writes them into the variables, and
    the next call reads the variables again. So between a call and the next sync() the Keras variables are
    stale: read them, or change one (a learning rate, a restore), only after sync(), or the step's copy wins.
    A variable left out of `variables` would be baked into the compiled function as a constant.
    """

    def __init__(self, fn, variables):
        import jax

        self.fn, self.variables = fn, list(variables)
        self.values = None  # on the device, between syncs
        self.jitted = jax.jit(self._pure)  # no buffer donation: the Keras variables keep valid values between syncs

    def _pure(self, values, *args):
        import keras

        _TRACKED.append(self.variables)
        try:
            with keras.StatelessScope(state_mapping=list(zip(self.variables, values))) as scope:
                out = self.fn(*args)
        finally:
            _TRACKED.pop()
        return [scope.get_current_value(v) for v in self.variables], out

    def __call__(self, *args):
        if self.values is None:
            self.values = [v.value for v in self.variables]
        self.values, out = self.jitted(self.values, *args)
        return out

    def sync(self):
        """Write the values back into the Keras variables."""
        if self.values is not None:
            for v, value in zip(self.variables, self.values):
                v.assign(value)
            self.values = None


def value_and_gradients(loss_fn, variables, scale=None, aux=False):
    """(loss_fn(), d scale(loss) / d variables): TensorFlow's GradientTape, torch's autograd, or jax.value_and_grad.

    scale: the optimizer's scale_loss (mixed_float16 multiplies the loss so small float16
    gradients do not underflow; its LossScaleOptimizer divides them back). The loss returned is unscaled.
    aux=True: loss_fn returns (loss, extra), any structure of tensors wanted besides the loss (not
    differentiated), and the result is (loss, extra, gradients). What loss_fn changes besides
    (BatchNorm statistics, dropout seeds) is kept inside a compiled step on every backend; outside one,
    JAX drops it (a measurement in inference mode changes nothing).
    """
    import keras

    scale = scale or (lambda loss: loss)
    both = loss_fn if aux else (lambda: (loss_fn(), ()))
    name = keras.backend.backend()
    if name == "jax":
        loss, extra, grads = _jax_value_and_gradients(both, variables, scale)
    elif name == "torch":
        import torch

        with torch.enable_grad():  # the step runs under no_grad; only the loss is differentiated
            loss, extra = both()
            grads = list(torch.autograd.grad(scale(loss), [v.value for v in variables]))
        loss, extra = loss.detach(), keras.tree.map_structure(lambda t: t.detach(), extra)
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, extra = both()
            scaled = scale(loss)
        grads = tape.gradient(scaled, variables)
    return (loss, extra, grads) if aux else (loss, grads)


def input_gradients(fn, x):
    """d sum(fn(x)) / d x, the same shape as x, itself differentiable (a gradient penalty is differentiated again).

    TensorFlow: a GradientTape inside the outer one; torch: autograd.grad with create_graph; JAX: jax.grad, whose
    trace reads the Keras variables through the step's stateless scope.
    """
    import keras

    name = keras.backend.backend()
    x = keras.ops.convert_to_tensor(x)
    if name == "jax":
        import jax

        return jax.grad(lambda t: keras.ops.sum(fn(t)))(x)
    if name == "torch":
        import torch

        with torch.enable_grad():
            t = x.detach().requires_grad_(True)  # images are not trained: their gradient starts here
            return torch.autograd.grad(keras.ops.sum(fn(t)), t, create_graph=True)[0]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        y = keras.ops.sum(fn(x))
    return tape.gradient(y, x)


def _jax_value_and_gradients(both, variables, scale):
    """jax.value_and_grad of both() -> (loss, extra) as a function of the variables' values.

    It runs in a scope that maps `variables` to those values and every other variable to its current
    value: the step's (inside a StatefulJit) or the variable's own (eager code, e.g. a measurement).
    What both() assigns to the step's other variables (BatchNorm statistics, seeds) is assigned in the
    step's scope afterwards, as the other backends change them in place.
    """
    import jax
    import keras
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    outer = get_stateless_scope()
    known = dict(outer.state_mapping) if outer is not None else {}
    differentiated = {id(v) for v in variables}
    others = [v for v in (_TRACKED[-1] if _TRACKED and outer is not None else []) if id(v) not in differentiated]

    def pure(values):
        with keras.StatelessScope() as inner:
            inner.state_mapping = {**known, **{id(v): value for v, value in zip(variables, values)}}
            loss, extra = both()
        return scale(loss), (loss, extra, [inner.get_current_value(v) for v in others])

    (_, (loss, extra, updates)), grads = jax.value_and_grad(pure, has_aux=True)([v.value for v in variables])
    for v, value in zip(others, updates):
        if value is not None and value is not known.get(id(v)):
            v.assign(value)  # recorded by the step's scope
    return loss, extra, grads


def apply_gradients(optimizer, grads, variables):
    """optimizer.apply(grads, variables), on JAX inside a StatefulJit step through optimizer.stateless_apply
    (a LossScaleOptimizer's cond over stateful branches cannot be traced there)."""
    import keras

    if keras.backend.backend() == "jax":
        from keras.src.backend.common.stateless_scope import in_stateless_scope
    if keras.backend.backend() != "jax" or not in_stateless_scope():
        with no_grad():
            optimizer.apply(grads, variables)
        return
    new_values, new_slots = optimizer.stateless_apply([v.value for v in optimizer.variables], grads,
                                                      [v.value for v in variables])
    for v, value in zip(list(variables) + list(optimizer.variables), list(new_values) + list(new_slots)):
        v.assign(value)


def no_grad():
    """A context in which optimizer updates are not recorded for differentiation (torch needs it)."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def global_rng_state():
    """The backend's global random state where Keras layers draw from it, as a uint8 array; else None.

    On torch, Dropout layers built without a seed draw their masks from torch's global
    generator, so an exact resume needs its state; TensorFlow and JAX keep theirs in
    Keras SeedGenerator variables, which checkpoints hold already.
    """
    import keras

    if keras.backend.backend() != "torch":
        return None
    import torch

    return torch.get_rng_state().numpy().copy()


def set_global_rng_state(state):
    import torch

    torch.set_rng_state(torch.from_numpy(state.copy()))
