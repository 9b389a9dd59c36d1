"""The tutorial's architectures, and the Keras 3 freezing trap proven absent."""

import keras
import numpy as np
import pytest

import gan_lib
from conftest import changed, snapshot


def test_parameter_counts_match_the_tutorial():
    assert gan_lib.define_discriminator().count_params() == 522_497
    assert gan_lib.define_generator(100).count_params() == 1_466_115


def test_shapes_and_ranges():
    g, d = gan_lib.define_generator(100), gan_lib.define_discriminator()
    x, y = gan_lib.generate_fake_samples(g, 100, 6, np.random.default_rng(0))
    assert x.shape == (6, 32, 32, 3) and y.shape == (6, 1) and (y == 0).all()
    assert -1 <= x.min() and x.max() <= 1  # tanh
    p = gan_lib.d_scores(d, x)
    assert p.shape == (6,) and ((0 <= p) & (p <= 1)).all()  # sigmoid


def test_grayscale_models():
    g = gan_lib.define_generator(16, out_shape=(32, 32, 1))
    d = gan_lib.define_discriminator((32, 32, 1))
    assert g.output_shape == (None, 32, 32, 1) and d.output_shape == (None, 1)
    with pytest.raises(ValueError, match="multiples of 8"):
        gan_lib.define_generator(16, out_shape=(28, 28, 1))


@pytest.mark.parametrize("first", ["discriminator", "combined"])
def test_tutorial_loop_trains_both_models_in_any_order(first):
    """The loop exactly as students write it, with gan_lib's models: D learns on both of its
    steps, the combined step leaves every D weight alone and changes G."""
    gan_lib.set_seed(0)
    d = gan_lib.define_discriminator()
    g = gan_lib.define_generator(100)
    gan_model = gan_lib.define_gan(g, d)
    dataset = gan_lib.load_real_samples("shapes", limit=64)
    rng = np.random.default_rng(0)

    def d_step(x, y):
        before = snapshot(d)
        d.train_on_batch(x, y)
        return changed(before, snapshot(d))

    def gan_step():
        d_before, g_before = snapshot(d), snapshot(g)
        x_gan = gan_lib.generate_latent_points(100, 16, rng)
        gan_model.train_on_batch(x_gan, np.ones((16, 1)))
        return changed(d_before, snapshot(d)), changed(g_before, snapshot(g))

    if first == "combined":  # the classic recipe freezes D in this order, and in the other one
        d_moved, g_moved = gan_step()
        assert not d_moved and g_moved
    for _ in range(2):
        x_real, y_real = gan_lib.generate_real_samples(dataset, 8, rng)
        assert d_step(x_real, y_real), "D did not learn from the real half batch"
        x_fake, y_fake = gan_lib.generate_fake_samples(g, 100, 8, rng)
        assert d_step(x_fake, y_fake), "D did not learn from the fake half batch"
        d_moved, g_moved = gan_step()
        assert not d_moved, "the combined step changed D"
        assert g_moved, "the combined step did not change G"


def test_combined_model_reports_only_generator_weights_as_trainable():
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan_model = gan_lib.define_gan(g, d)
    assert [id(v) for v in gan_model.trainable_variables] == [id(v) for v in g.trainable_variables]
    assert {id(v) for v in d.weights} <= {id(v) for v in gan_model.non_trainable_weights}
    assert d.trainable and len(d.trainable_variables) == 10  # D itself is never frozen


def test_combined_model_sees_the_discriminators_latest_weights():
    """The combined step must judge G with D as it is now, not a copy from when it was first traced."""
    gan_lib.set_seed(1)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan_model = gan_lib.define_gan(g, d)
    dataset = gan_lib.load_real_samples("shapes", limit=32)
    z = gan_lib.generate_latent_points(100, 16, np.random.default_rng(0))
    ones = np.ones((16, 1), dtype=np.float32)
    for _ in range(3):
        d.train_on_batch(dataset[:16], np.zeros((16, 1)))  # move D
        p = np.clip(gan_lib.d_scores(d, keras.ops.convert_to_numpy(g(z))), 1e-7, 1 - 1e-7)
        gan_model.reset_metrics()  # this batch's loss, not a running mean (Keras before 3.15)
        assert gan_model.test_on_batch(z, ones) == pytest.approx(float(-np.log(p).mean()), rel=1e-4)
        gan_model.train_on_batch(z, ones)
