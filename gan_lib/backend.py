"""The one backend-specific seam: seeding for exact repeats, and naming the accelerator.

Everything else in gan_lib speaks Keras 3 only, so it runs on TensorFlow, JAX and torch.
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


def gpu_names():
    """The GPUs the backend will use, by name; [] on a CPU-only machine."""
    import keras

    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if name == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    if name == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def has_gpu():
    """True when the backend has a GPU to run on (mixed_float16 needs one)."""
    return bool(gpu_names())


def describe_device():
    """One line naming the backend and the accelerator it will use, with advice when there is none."""
    import keras

    name, gpus = keras.backend.backend(), gpu_names()
    if gpus:
        return f"backend {name}, accelerator: {', '.join(gpus)}"
    return (f"backend {name}, no GPU: training will be slow. In Colab choose "
            "Runtime > Change runtime type > T4 GPU, then run the notebook again")


def compile_step(fn):
    """fn compiled by the backend's own means: a tf.function on TensorFlow; plain eager code on torch
    (each op already runs as one kernel; torch.compile has not been measured to help here).

    JAX is not compiled here: its fused step is pure, over explicit state (backend_jax.py).
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


def value_and_gradients(loss_fn, variables, scale=None):
    """(loss_fn(), d scale(loss) / d variables): TensorFlow's GradientTape, or torch's autograd.

    scale: the optimizer's scale_loss (mixed_float16 multiplies the loss so small float16
    gradients do not underflow; its LossScaleOptimizer divides them back). The loss returned is unscaled.
    """
    import keras

    scale = scale or (lambda loss: loss)
    if keras.backend.backend() == "torch":
        import torch

        with torch.enable_grad():  # the step runs under no_grad; only the loss is differentiated
            loss = loss_fn()
            return loss.detach(), list(torch.autograd.grad(scale(loss), [v.value for v in variables]))
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = loss_fn()
        scaled = scale(loss)
    return loss, tape.gradient(scaled, variables)


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
