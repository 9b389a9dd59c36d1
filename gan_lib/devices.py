"""Where training runs: the accelerator, the precision, the memory it has, and data parallelism over several devices.

Part of the backend seam with backend.py: the framework imports (TensorFlow, JAX, torch) are
here and there only, each made when first needed. Several devices go through each framework's
own engine: tf.distribute on TensorFlow (one machine or several workers), keras.distribution
on JAX; torch trains on one device.
"""

import contextlib
import json
import os

import keras

from .panel import PRECISIONS


def gpu_names():
    """The GPUs the backend will use, by name; [] on a CPU-only machine."""
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
    name, gpus = keras.backend.backend(), gpu_names()
    if gpus:
        return f"backend {name}, accelerator: {', '.join(gpus)}"
    return (f"backend {name}, no GPU: training will be slow. In Colab choose "
            "Runtime > Change runtime type > T4 GPU, then run the notebook again")


def set_precision(name):
    """Make the models built from now on compute in `name`: float32, mixed_bfloat16 or mixed_float16.

    Sets Keras's global dtype policy (keras.mixed_precision): under the mixed ones
    layers compute in 16 bits while weights (and optimizer slots) stay float32.
    Call it before define_discriminator, define_generator and define_gan, with the
    value of panel key 'precision'; call set_precision("float32") to go back.
    """
    check_precision(name)
    keras.mixed_precision.set_global_policy(name)


def check_precision(name):
    """ValueError for an unknown name, and for mixed_float16 without a GPU."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "mixed_float16" and not has_gpu():
        raise ValueError("mixed_float16 needs a GPU (float16 is slow or unsupported on a CPU, and loss scaling "
                         "is for GPUs); on a CPU use mixed_bfloat16 or float32")


def check_memory(n_weights, key, value):
    """ValueError naming the setting when n_weights float32 weights, trained with Adam, need
    more memory than this machine has in all (an estimate; the exact need also depends on the batch)."""
    need = 16 * n_weights  # bytes: weight, gradient and two Adam moments, 4 bytes each
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: no estimate
        return
    if need > have:
        raise ValueError(
            f"{key}={value} makes a model of about {n_weights / 1e9:.1f} billion weights, which needs about "
            f"{need / 2**30:.0f} GiB to train, but this machine has {have / 2**30:.0f} GiB; lower {key}"
        )


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
    import tensorflow as tf

    def share(*batches):
        context = tf.distribute.get_replica_context()
        n, i = context.num_replicas_in_sync, context.replica_id_in_sync_group
        def part(b):  # this replica's share of one batch; [images, labels] part by part (a conditional GAN)
            return keras.tree.map_structure(lambda t: t[i * (t.shape[0] // n):(i + 1) * (t.shape[0] // n)], b)

        return fn(*[part(b) for b in batches], n)

    return made.reduce(tf.distribute.ReduceOp.SUM, made.run(share, args=tuple(batches)), axis=None)


def check_models_precision(models, precision):
    """ValueError when a model was built under another dtype policy than panel key 'precision' asks for.

    The model's own policy is the global one when it was built; its last layer is float32
    under any policy (models.py), so it is the model's policy that tells.
    """
    check_precision(precision)  # mixed_float16 on a CPU: refused here too
    for model in models:
        if model.dtype_policy.name != precision:
            raise ValueError(
                f"the {model.name} model was built with precision {model.dtype_policy.name} but panel key "
                f"'precision' is {precision}; call gan_lib.set_precision({precision!r}) before define_discriminator/"
                f"define_generator/define_gan, or set precision={model.dtype_policy.name!r}"
            )


def check_devices(g_model, d_model, panel):
    """ValueError when the models were not built for the panel's devices, or the batch cannot be split over them."""
    made = strategy(panel["devices"])
    want = strategy_size(made)
    if want > 1 and not panel["fast"]:
        raise ValueError(f"panel key 'devices' is {panel['devices']}: several devices need the fused step; "
                         "set fast=True (--fast), or devices=1 for the tutorial loop")
    for name, model in (("discriminator", d_model), ("generator", g_model)):
        have = replicas(model)
        if have != want:
            raise ValueError(
                f"the {name} was built for {have} device(s) but panel key 'devices' is {panel['devices']} "
                f"({want} device(s)); build the models inside `with gan_lib.distribute({panel['devices']}):` "
                f"with the same value, or set devices to match"
            )
    if panel["n_batch"] % (2 * want):
        raise ValueError(f"panel key 'n_batch' is {panel['n_batch']}: each half batch must split evenly over "
                         f"{want} devices; use a multiple of {2 * want}")


def batch_sharding(model):
    """On JAX, where the model's variables are replicated over several devices (keras.distribution.DataParallel):
    a sharding that splits axis 0 over them; else None."""
    if keras.backend.backend() != "jax" or not model.weights:
        return None
    import jax

    sharding = model.weights[0].value.sharding
    if len(sharding.device_set) == 1:
        return None
    mesh = sharding.mesh
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(mesh.axis_names[0]))


def split_batch(batches, sharding):
    """Inside a compiled JAX step: ask XLA to split every array of `batches` along axis 0 over the devices of
    `sharding` (batch_sharding), so each device works on its share and the gradients are added up. None: as it is."""
    if sharding is None:
        return batches
    import jax

    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, sharding), batches)
