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


def fits_on_device(nbytes):
    """Whether a dataset of nbytes goes on the accelerator: when it takes at most a quarter of its memory.

    On a CPU the data is in host memory already: always. JAX and torch report a GPU's
    memory; TensorFlow does not, so 8 GiB (a 2 GiB budget) is assumed there.
    """
    if not has_gpu():
        return True
    import keras

    name, total = keras.backend.backend(), 8 * 2**30
    if name == "jax":
        import jax

        total = jax.devices()[0].memory_stats().get("bytes_limit", total)
    elif name == "torch":
        import torch

        total = torch.cuda.get_device_properties(0).total_memory
    return nbytes <= total // 4


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


def value_and_gradients(loss_fn, variables, scale=None, aux=False):
    """(loss_fn(), d scale(loss) / d variables): TensorFlow's GradientTape, or torch's autograd.

    scale: the optimizer's scale_loss (mixed_float16 multiplies the loss so small float16
    gradients do not underflow; its LossScaleOptimizer divides them back). The loss returned is unscaled.
    aux=True: loss_fn returns (loss, extra), any structure of tensors wanted besides the loss (not
    differentiated), and the result is (loss, extra, gradients). On JAX this works inside a
    compile_stateful step only (backend_jax.value_and_gradients).
    """
    import keras

    scale = scale or (lambda loss: loss)
    both = loss_fn if aux else (lambda: (loss_fn(), ()))
    name = keras.backend.backend()
    if name == "jax":
        from .backend_jax import value_and_gradients as jax_value_and_gradients

        loss, extra, grads = jax_value_and_gradients(both, variables, scale)
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


def compile_stateful(fn, variables):
    """fn, a step that reads and updates Keras variables (models, optimizers, seeds) in place, compiled:
    compile_step's tf.function on TensorFlow, eager on torch; on JAX a jax.jit of the same code run
    statelessly over `variables`, which must list every variable fn reads or changes (backend_jax.StatefulJit).
    """
    import keras

    if keras.backend.backend() == "jax":
        from .backend_jax import StatefulJit

        return StatefulJit(fn, variables)
    return compile_step(fn)


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


# ---------------------------------------------------------------- several devices, through the framework's engine

_STRATEGIES = {}  # devices -> strategy: one per process (TensorFlow wants its strategies made once, early)


def strategy(devices=1):
    """The framework's engine for data-parallel training on `devices` (0 = all visible), or None for one device.

    TensorFlow: tf.distribute.MirroredStrategy over that many GPUs (logical CPU devices where
    there is no GPU, as the tests set up), or MultiWorkerMirroredStrategy where the TF_CONFIG
    variable names several workers (every local GPU of each worker). JAX:
    keras.distribution.DataParallel. torch: one device only.
    """
    if devices in _STRATEGIES:
        return _STRATEGIES[devices]
    import keras

    name = keras.backend.backend()
    if name == "tensorflow" and _workers() > 1:
        import tensorflow as tf

        made = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        found = _devices(name)
        if devices > len(found):
            raise ValueError(f"panel key 'devices' is {devices} but this machine shows {len(found)} "
                             f"({', '.join(found)}); set devices={len(found)}, or 0 for all of them")
        chosen = found[:devices or len(found)]
        if len(chosen) == 1:
            made = None
        elif name == "tensorflow":
            import tensorflow as tf

            made = tf.distribute.MirroredStrategy(chosen)
        elif name == "jax":
            import jax

            made = keras.distribution.DataParallel(devices=[d for d in jax.devices() if str(d) in chosen])
        else:
            raise ValueError(f"panel key 'devices' > 1 runs on TensorFlow (tf.distribute) and JAX "
                             f"(keras.distribution), not on {name}; set devices=1, or KERAS_BACKEND=tensorflow")
    _STRATEGIES[devices] = made
    return made


def _workers():
    """How many workers the TF_CONFIG variable names (1 without it)."""
    import json

    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) or 1


def _devices(name):
    """The devices data parallelism can use: the GPUs, else the CPU devices (several only where set up so)."""
    if name == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]
    if name == "jax":
        import jax

        return [str(d) for d in jax.devices()]
    return ["the default device"]


@contextlib.contextmanager
def distribute(devices=1):
    """Build models inside this to train them on `devices` (panel key devices; 1 = no distribution).

        with gan_lib.distribute(2):
            d_model = define_discriminator(); g_model = define_generator(100); gan_model = define_gan(g_model, d_model)
    """
    made = strategy(devices)
    if made is None:
        yield
        return
    with made.scope():
        yield


def distribute_like(made):
    """made.scope() (variables made inside live where the strategy's do), or a context that does nothing."""
    return made.scope() if made is not None else contextlib.nullcontext()


def model_strategy(model):
    """The tf.distribute strategy a model's variables were made under, or None (one device, or not TensorFlow)."""
    import keras

    if keras.backend.backend() != "tensorflow" or not model.weights:
        return None
    import tensorflow as tf

    value = model.weights[0].value
    return value.distribute_strategy if isinstance(value, tf.distribute.DistributedValues) else None


def strategy_size(made):
    """How many replicas a strategy (or keras Distribution) trains on; 1 for None."""
    if made is None:
        return 1
    if hasattr(made, "num_replicas_in_sync"):  # tf.distribute
        return made.num_replicas_in_sync
    return made.device_mesh.devices.size  # keras.distribution


def replicas(model):
    """How many devices (replicas, over all workers) a model's variables are spread over."""
    import keras

    if not model.weights:
        return 1
    name = keras.backend.backend()
    if name == "tensorflow":
        made = model_strategy(model)
        return made.num_replicas_in_sync if made else 1
    if name == "jax":
        return len(model.weights[0].value.sharding.device_set)
    return 1


def is_chief():
    """True where this process writes the run: always, except on the non-chief workers of a multi-worker run."""
    import json

    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    if _workers() == 1 or not task:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and task.get("index", 0) == 0


def on_replicas(made, fn, batches):
    """fn(*shares, n) once per device, each on its share (axis 0) of every batch; the sum of what they return.

    n is the number of replicas: fn divides its mean losses by n, so the gradients,
    summed across devices by the optimizer, and the returned losses are those of the
    whole batch. Without a strategy: fn(*batches, 1).
    """
    if made is None:
        return fn(*batches, 1)
    import keras
    import tensorflow as tf

    def share(*batches):
        context = tf.distribute.get_replica_context()
        n, i = context.num_replicas_in_sync, context.replica_id_in_sync_group
        def part(b):  # this replica's share of one batch; [images, labels] part by part (a conditional GAN)
            return keras.tree.map_structure(lambda t: t[i * (t.shape[0] // n):(i + 1) * (t.shape[0] // n)], b)

        return fn(*[part(b) for b in batches], n)

    return made.reduce(tf.distribute.ReduceOp.SUM, made.run(share, args=tuple(batches)), axis=None)
