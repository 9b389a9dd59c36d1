"""gan_lib.augment: DiffAugment's color, translation and cutout, on whichever backend KERAS_BACKEND names."""

import keras
import numpy as np
import pytest

from gan_lib import backend
from gan_lib.augment import POLICIES, augment, check_policy

ALL = POLICIES


def run(x, policy, seed=0):
    """augment(x) with a SeedGenerator(seed), as a NumPy array."""
    out = augment(keras.ops.convert_to_tensor(x), policy, keras.random.SeedGenerator(seed))
    return keras.ops.convert_to_numpy(out)


def images(n=8, h=32, w=24, c=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, h, w, c)).astype("float32")


def close(a, b):
    np.testing.assert_allclose(a, np.broadcast_to(b, a.shape), atol=1e-5)


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), ALL])
def test_shape_and_dtype_kept(policy, c):
    x = images(c=c)
    for dtype in ("float32", "float16"):
        out = augment(keras.ops.convert_to_tensor(x.astype(dtype)), policy, keras.random.SeedGenerator(1))
        assert tuple(out.shape) == x.shape
        assert keras.backend.standardize_dtype(out.dtype) == dtype
        assert not np.allclose(keras.ops.convert_to_numpy(out), x, atol=1e-2)  # it did something


def test_empty_policy_is_identity():
    x = keras.ops.convert_to_tensor(images())
    assert augment(x, (), keras.random.SeedGenerator(1)) is x
    assert augment(x, check_policy(""), keras.random.SeedGenerator(1)) is x


def test_a_seed_repeats_and_two_seeds_differ():
    x = images()
    np.testing.assert_array_equal(run(x, ALL, seed=5), run(x, ALL, seed=5))
    assert not np.allclose(run(x, ALL, seed=5), run(x, ALL, seed=6))
    # the text of a policy does what its tuple does
    np.testing.assert_array_equal(run(x, "cutout, color", seed=5), run(x, ("color", "cutout"), seed=5))


def test_each_call_draws_anew():
    x, seed = keras.ops.convert_to_tensor(images()), keras.random.SeedGenerator(2)
    first, second = (keras.ops.convert_to_numpy(augment(x, ALL, seed)) for _ in range(2))
    assert not np.allclose(first, second)


def test_translation_moves_one_pixel_by_whole_pixels_with_zero_fill():
    n, h, w = 64, 32, 16  # shifts up to 4 rows and 2 columns
    x = np.zeros((n, h, w, 1), "float32")
    x[:, 16, 8] = 1.0  # in the middle: never leaves
    x[:, 1, 14] = 1.0  # near a corner: leaves when shifted up 2+ rows or right 2 columns
    out = run(x, ("translation",), seed=3)
    assert set(np.unique(out)) <= {0.0, 1.0}  # moved whole pixels, nothing blended
    offsets, left = set(), 0
    for img in out[..., 0]:
        ys, xs = np.nonzero(img)
        assert len(ys) in (1, 2)  # each pixel kept or gone, never duplicated or wrapped round
        dy, dx = ys[np.argmin(abs(ys - 16))] - 16, xs[np.argmin(abs(ys - 16))] - 8  # the middle pixel's move
        assert abs(dy) <= h // 8 and abs(dx) <= w // 8
        offsets.add((dy, dx))
        if len(ys) == 2:
            assert (ys.min(), xs[np.argmin(ys)]) == (1 + dy, 14 + dx)  # the corner pixel moved the same way
        left += len(ys) == 1
    assert len(offsets) > 10  # images move differently
    assert 0 < left < n  # zero fill: the corner pixel left some images, not all


def test_translation_is_a_shift_of_the_whole_image():
    n, h, w = 16, 32, 16
    x = np.tile((np.arange(h * w, dtype="float32").reshape(1, h, w, 1) + 1) / (h * w), (n, 1, 1, 3))  # every pixel unique
    out = run(x, ("translation",), seed=4)
    for src, img in zip(x, out):
        r, c = np.argwhere(img[..., 0] > 0)[0]
        k = round(float(img[r, c, 0]) * h * w) - 1  # where that value was
        dy, dx = r - k // w, c - k % w
        want = np.zeros_like(src)
        want[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = src[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
        np.testing.assert_array_equal(img, want)


def test_cutout_zeroes_one_square_per_image():
    n, h, w = 64, 32, 24  # a 16 x 12 square
    out = run(np.ones((n, h, w, 3), "float32"), ("cutout",), seed=5)
    assert set(np.unique(out)) <= {0.0, 1.0}
    places, whole = set(), 0
    for img in out:
        zero = img == 0
        assert (zero == zero[..., :1]).all()  # the same pixels in every channel
        rows, cols = np.nonzero(zero[..., 0].any(1))[0], np.nonzero(zero[..., 0].any(0))[0]
        assert len(rows) and len(cols)  # the square's centre is always in the image
        assert zero[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all() and zero.sum() == 3 * len(rows) * len(cols)  # a rectangle
        assert len(rows) == h // 2 or rows[0] == 0 or rows[-1] == h - 1  # full height unless clipped at a border
        assert len(cols) == w // 2 or cols[0] == 0 or cols[-1] == w - 1
        assert len(rows) >= h // 4 and len(cols) >= w // 4  # at most half of it outside
        whole += len(rows) == h // 2 and len(cols) == w // 2
        places.add((rows[0], cols[0]))
    assert 0 < whole < n  # some squares clipped, some whole
    assert len(places) > n // 2


def test_color_on_a_flat_grey_image_shifts_its_brightness_by_at_most_half():
    out = run(np.full((64, 8, 8, 3), 0.2, "float32"), ("color",), seed=6)
    shift = out.mean(axis=(1, 2, 3)) - 0.2
    close(out, shift[:, None, None, None] + 0.2)  # still flat: saturation, contrast do nothing
    assert np.abs(shift).max() <= 0.5 + 1e-6
    assert shift.max() > 0.3 and shift.min() < -0.3  # each image its own draw, over the whole range


def gain(before, after):
    """How much each image's deviations grew: the least-squares factor k in after = k * before."""
    axes = tuple(range(1, before.ndim))
    return (before * after).sum(axis=axes) / (before * before).sum(axis=axes)


def test_color_saturation_and_contrast_ranges():
    n, h, w = 64, 8, 8
    grey = np.random.default_rng(0).uniform(-0.4, 0.4, (1, h, w, 1)).astype("float32")
    grey -= grey.mean()
    tint = np.array([-0.2, 0.0, 0.2], "float32")  # each pixel's deviation from its mean over the channels
    x = np.tile(grey + tint, (n, 1, 1, 1))
    out = run(x, ("color",), seed=7)
    pixel_mean = out.mean(axis=-1, keepdims=True)  # (n, h, w, 1)
    shift = out.mean(axis=(1, 2, 3))  # brightness: x's mean is 0
    contrast = gain(np.broadcast_to(grey, (n, h, w, 1))[..., 0], pixel_mean[..., 0] - shift[:, None, None])
    saturation = gain(np.broadcast_to(tint, (n, h, w, 3)), out - pixel_mean) / contrast  # contrast scales the tint too
    close(out - pixel_mean, saturation[:, None, None, None] * contrast[:, None, None, None] * tint)  # the tint only scaled
    assert np.abs(shift).max() <= 0.5 + 1e-6
    assert 0.5 - 1e-5 <= contrast.min() and contrast.max() <= 1.5 + 1e-5 and contrast.min() < 0.7 and contrast.max() > 1.3
    assert -1e-5 <= saturation.min() and saturation.max() <= 2 + 1e-5 and saturation.min() < 0.3 and saturation.max() > 1.7


def test_color_on_a_grey_batch():
    n = 64
    grey = np.tile(np.linspace(-0.5, 0.5, 64, dtype="float32").reshape(1, 8, 8, 1), (n, 1, 1, 1))
    out = run(grey, ("color",), seed=8)
    assert out.shape == grey.shape
    shift = out.mean(axis=(1, 2, 3))
    contrast = gain(grey[..., 0], out[..., 0] - shift[:, None, None])
    close(out, contrast[:, None, None, None] * grey + shift[:, None, None, None])
    assert np.abs(shift).max() <= 0.5 + 1e-6 and 0.5 - 1e-5 <= contrast.min() and contrast.max() <= 1.5 + 1e-5
    assert len(np.unique(contrast.round(4))) > n // 2


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), ALL])
def test_gradients_flow(policy):
    x = keras.Variable(images(n=4))
    weights = keras.ops.convert_to_tensor(images(n=4, seed=1))  # so that color's gradient is not just 1
    seed = keras.random.SeedGenerator(9)
    for loss_fn in (lambda: keras.ops.sum(augment(x, policy, seed)), lambda: keras.ops.sum(weights * augment(x, policy, seed))):
        _, (grad,) = backend.value_and_gradients(loss_fn, [x])
        grad = keras.ops.convert_to_numpy(grad)
        assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
        if policy == ("cutout",):
            assert (grad == 0).any()  # the square's pixels get none (with color, every pixel moves every mean)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's GradientTape")
def test_gradients_flow_through_a_tape():
    import tensorflow as tf

    x = tf.constant(images(n=4))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras.ops.sum(augment(x, ALL, keras.random.SeedGenerator(10)))
    grad = tape.gradient(loss, x).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a tf.function")
def test_it_compiles_in_a_tf_function_with_any_batch_size():
    import tensorflow as tf

    seed = keras.random.SeedGenerator(11)
    step = tf.function(lambda x: augment(x, ALL, seed), input_signature=[tf.TensorSpec((None, 32, 24, 3), tf.float32)])
    first, second = step(images(n=8)).numpy(), step(images(n=8)).numpy()
    assert first.shape == (8, 32, 24, 3) and not np.allclose(first, second)  # the seed's state moves on
    assert step(images(n=3)).shape == (3, 32, 24, 3)


def test_it_compiles_as_a_stateful_step():
    """backend.compile_stateful: a tf.function on TensorFlow, one jax.jit on JAX, eager on torch."""
    seed = keras.random.SeedGenerator(12)
    step = backend.compile_stateful(lambda x: augment(x, ALL, seed), [seed.state])
    x = keras.ops.convert_to_tensor(images())
    first, second = (keras.ops.convert_to_numpy(step(x)) for _ in range(2))
    assert first.shape == x.shape and not np.allclose(first, second)
    close(first, run(images(), ALL, seed=12))  # compiled or not, the same draws (JAX's fused ops round a little differently)
    step.sync()  # JAX: the seed's state comes back from the compiled step, and the next draws are new ones
    assert not np.allclose(keras.ops.convert_to_numpy(augment(x, ALL, seed)), first)


def test_check_policy():
    assert check_policy("") == () and check_policy("  ") == ()
    assert check_policy("cutout, color") == ("color", "cutout")  # POLICIES' order
    assert check_policy("color,translation,cutout") == POLICIES


@pytest.mark.parametrize("text, bad", [("colour", "'colour'"), ("color,color", "repeated 'color'"),
                                       ("color,,cutout", "''"), ("Color", "'Color'")])
def test_check_policy_errors_are_one_clear_line(text, bad):
    with pytest.raises(ValueError) as info:
        check_policy(text)
    message = str(info.value)
    assert "\n" not in message and message.endswith("got " + bad)
    assert "comma-separated list from color, translation, cutout, or empty" in message
