"""A finite-difference check of diagnosis.generator_gradients, for any backend (imported by test scripts too)."""

import keras
import numpy as np

from gan_lib import diagnosis
from gan_lib.losses import bce


def directional_derivative(g_model, d_model, z, eps=1e-3):
    """(the gradient's norm, the loss's slope along the gradient by central differences); they should agree.

    G's weights are moved by +-eps along the unit gradient direction, then put back. In float32 a
    smaller eps drowns in round-off and a larger one in curvature: with 64 points and eps 1e-3 the
    two agree within about 1% for gan_lib's models.
    """
    grads = [np.asarray(x, dtype=np.float64) for x in diagnosis.generator_gradients(g_model, d_model, z)]
    norm = float(np.sqrt(sum(np.sum(x * x) for x in grads)))
    ones = np.ones((len(z), 1), dtype=np.float32)
    start = [keras.ops.convert_to_numpy(v) for v in g_model.trainable_variables]
    losses = []
    for sign in (1.0, -1.0):
        for v, w, x in zip(g_model.trainable_variables, start, grads):
            v.assign((w + sign * eps * x / norm).astype(w.dtype))
        losses.append(float(keras.ops.convert_to_numpy(bce(ones, d_model(g_model(z, training=False), training=False)))))
    for v, w in zip(g_model.trainable_variables, start):
        v.assign(w)
    return norm, (losses[0] - losses[1]) / (2 * eps)
