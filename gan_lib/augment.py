"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

With little data, D memorises the real images and G's training collapses. Augmenting only the real
images would teach G to draw the augmentations (D would see them as "real"); DiffAugment instead applies
the same kind of random, differentiable augmentation T to real and fake images alike, in D's step
(D(T(x)) against D(T(G(z)))) and in G's (D(T(G(z)))). D cannot tell real from fake by the augmentation,
and since every op of T is differentiable, G still gets its gradients through T.

Images are (N, H, W, C) floats in [-1, 1] (C = 1 or 3); each image gets its own random draw, from a
keras.random.SeedGenerator, with keras.ops only, so it runs on TensorFlow, JAX and torch, inside a
compiled step too (a tf.function; on JAX a jax.jit that maps the SeedGenerator's state, backend.compile_stateful).

- color: brightness (add U(-0.5, 0.5)), saturation (scale each pixel's deviation from its mean over the
  channels by U(0, 2); skipped for C = 1), contrast (scale the deviation from the image's mean by U(0.5, 1.5));
- translation: shift by whole pixels, up to H // 8 rows and W // 8 columns either way, zeros shifted in
  (a gather from the zero-padded batch);
- cutout: zero one (H // 2, W // 2) square (clipped at the borders) centred anywhere in the image, via a mask.

check_policy turns the text a user writes ("color,translation,cutout", "" for off) into a tuple for augment.
"""

import keras
from keras import ops

from .panel import POLICIES, check_policy  # noqa: F401  (augment.check_policy: what a user writes -> a policy)


def per_image(x, low, high, seed):
    """One U(low, high) number per image, (N, 1, 1, 1), in x's dtype."""
    u = keras.random.uniform((ops.shape(x)[0], 1, 1, 1), low, high, seed=seed)
    return ops.cast(u, x.dtype)


def color(x, seed):
    x = x + per_image(x, -0.5, 0.5, seed)  # brightness
    if x.shape[-1] > 1:  # saturation: (N, H, W, 1) mean over the channels
        mean = ops.mean(x, axis=-1, keepdims=True)
        x = (x - mean) * per_image(x, 0.0, 2.0, seed) + mean
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)  # contrast: (N, 1, 1, 1) mean of each image
    return (x - mean) * per_image(x, 0.5, 1.5, seed) + mean


def translation(x, seed):
    n, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
    sh, sw = h // 8, w // 8
    dy = keras.random.randint((n, 1), -sh, sh + 1, seed=seed)  # (N, 1) rows down
    dx = keras.random.randint((n, 1), -sw, sw + 1, seed=seed)  # (N, 1) columns right
    padded = ops.pad(x, ((0, 0), (sh, sh), (sw, sw), (0, 0)))  # (N, H + 2 sh, W + 2 sw, C), zero borders
    rows = ops.arange(h, dtype="int32")[None, :] + sh - dy  # (N, H): output row r reads padded row r + sh - dy
    cols = ops.arange(w, dtype="int32")[None, :] + sw - dx  # (N, W)
    x = ops.take_along_axis(padded, rows[:, :, None, None], axis=1)  # (N, H, W + 2 sw, C)
    return ops.take_along_axis(x, cols[:, None, :, None], axis=2)  # (N, H, W, C)


def cutout(x, seed):
    n, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
    ch, cw = h // 2, w // 2  # the square's side
    top = keras.random.randint((n, 1), 0, h + 1, seed=seed) - ch // 2  # (N, 1): centre row 0..H, so top ch // 2 above
    left = keras.random.randint((n, 1), 0, w + 1, seed=seed) - cw // 2  # (N, 1)
    r, c = ops.arange(h, dtype="int32")[None, :], ops.arange(w, dtype="int32")[None, :]  # (1, H), (1, W)
    in_rows = ops.logical_and(r >= top, r < top + ch)  # (N, H)
    in_cols = ops.logical_and(c >= left, c < left + cw)  # (N, W)
    inside = ops.logical_and(in_rows[:, :, None], in_cols[:, None, :])  # (N, H, W)
    return x * ops.cast(ops.logical_not(inside), x.dtype)[..., None]  # (N, H, W, 1) mask: 0 in the square


def augment(x, policy, seed):
    """x (N, H, W, C) in [-1, 1] -> the same shape and dtype, each policy in turn (a tuple from check_policy,
    or its text); seed: a keras.random.SeedGenerator. An empty policy returns x itself."""
    if isinstance(policy, str):
        policy = check_policy(policy)
    steps = {"color": color, "translation": translation, "cutout": cutout}
    for name in policy:
        x = steps[name](x, seed)
    return x
