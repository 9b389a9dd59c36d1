"""The one backend-specific seam: seeding for exact repeats, and naming the accelerator.

Everything else in gan_lib speaks Keras 3 only, so it runs on TensorFlow, JAX and torch.
"""

import keras


def set_seed(seed, deterministic=True):
    """Seed Python, NumPy and the backend; call before building models.

    TensorFlow needs op determinism switched on for bit-identical results; JAX and
    torch on a CPU are deterministic already.
    """
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def describe_device():
    """One line naming the backend and the accelerator it will use, with advice when there is none."""
    name = keras.backend.backend()
    gpus = []
    if name == "tensorflow":
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    elif name == "jax":
        import jax

        gpus = [str(d) for d in jax.devices() if d.platform != "cpu"]
    elif name == "torch":
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if gpus:
        return f"backend {name}, accelerator: {', '.join(gpus)}"
    return (f"backend {name}, no GPU: training will be slow. In Colab choose "
            "Runtime > Change runtime type > T4 GPU, then run the notebook again")
