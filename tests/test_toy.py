"""The one-dimensional toy GAN: real points, the two metrics, the models, and a short training run."""

import keras
import numpy as np
import pytest

import gan_lib
from gan_lib import toy


def weights(model):
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def on_curve(n):
    x = np.linspace(-0.5, 0.5, n)
    return np.stack([x, x**2], axis=1)


def test_real_points_lie_on_the_curve_and_cover_the_range():
    points, labels = toy.generate_real_points(1000, np.random.default_rng(0))
    assert points.shape == (1000, 2) and points.dtype == np.float32
    assert labels.shape == (1000, 1) and (labels == 1).all()
    assert points[:, 0].min() >= -0.5 and points[:, 0].max() <= 0.5
    assert toy.curve_distance(points) < 1e-7  # float32 rounding only
    assert toy.coverage(points) == 1.0


def test_curve_distance_on_known_points():
    assert toy.curve_distance(on_curve(41)) == 0.0
    assert toy.curve_distance(on_curve(41) + [0.0, 0.1]) == pytest.approx(0.1)
    assert toy.curve_distance(on_curve(41) - [0.0, 0.3]) == pytest.approx(0.3)  # below counts the same
    assert toy.curve_distance([[2.0, 0.0], [0.0, 0.0]]) == pytest.approx(2.0)  # (4 + 0) / 2


def test_coverage_on_known_points():
    assert toy.coverage(on_curve(20)) == 1.0  # one point in each of the 20 bins
    assert toy.coverage(np.tile([[0.1, 0.01]], (500, 1))) == 1 / 20  # collapsed: on the curve, one bin
    assert toy.coverage(on_curve(41)[:20]) == 0.5  # x from -0.5 to -0.025: the left half
    assert toy.coverage([[0.9, 0.81], [-2.0, 4.0]]) == 0.0  # outside [-0.5, 0.5] counts nowhere
    assert toy.coverage(on_curve(20), n_bins=40) == 0.5


def test_models_have_the_documented_shapes_and_sizes():
    d = toy.define_toy_discriminator()
    g = toy.define_toy_generator(5)
    assert d.count_params() == 101 and g.count_params() == 122
    z = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    points = keras.ops.convert_to_numpy(g(z))
    assert points.shape == (7, 2)
    p = keras.ops.convert_to_numpy(d(points))
    assert p.shape == (7, 1) and ((p > 0) & (p < 1)).all()


def test_the_combined_model_updates_the_generator_only():
    gan_lib.set_seed(0)
    d = toy.define_toy_discriminator()
    g = toy.define_toy_generator(5)
    gan = gan_lib.define_gan(g, d, lr=0.001, beta_1=0.9)
    d0, g0 = weights(d), weights(g)
    gan.train_on_batch(np.ones((16, 5), np.float32), np.ones((16, 1), np.float32))
    assert changed(g0, weights(g)), "G did not learn through the combined model"
    assert not changed(d0, weights(d)), "the combined model changed D"
    d.train_on_batch(np.zeros((16, 2), np.float32), np.zeros((16, 1), np.float32))
    assert changed(d0, weights(d)), "D did not learn from its own train_on_batch after the combined model trained"


def test_a_short_run_moves_generated_points_toward_the_curve():
    gan_lib.set_seed(1)
    rng = np.random.default_rng(1)
    d = toy.define_toy_discriminator()
    g = toy.define_toy_generator(5)
    gan = gan_lib.define_gan(g, d, lr=0.001, beta_1=0.9)
    z = gan_lib.generate_latent_points(5, 500, rng)
    before = toy.curve_distance(keras.ops.convert_to_numpy(g(z)))
    d0, g0 = weights(d), weights(g)
    history = toy.train_toy(g, d, gan, 5, n_steps=300, n_batch=64, rng=rng)
    after = toy.curve_distance(keras.ops.convert_to_numpy(g(z)))
    assert len(history) == 300 and set(history[0]) == {"d_loss_real", "d_loss_fake", "g_loss"}
    assert np.isfinite([list(row.values()) for row in history]).all()
    assert changed(d0, weights(d)) and changed(g0, weights(g))
    assert after < 0.5 * before, f"distance to the curve went from {before:.3f} to {after:.3f}"
