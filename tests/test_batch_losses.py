"""The tutorial loop records each batch's own losses, on every Keras it supports.

Keras before 3.15 (Colab ships 3.13) returns from train_on_batch the running mean of the
loss since the model's first call, not the batch's own loss: a model whose two batches
have losses 1.710 and 0.200 reports 1.710 and 0.955. The loop resets the models' metrics
before each call, so its history, its progress lines and the diagnosis read the batch's own
loss there too. Learning rates 0 here: the weights never move, so each batch's loss can be
computed again afterwards from the same draws and compared.
"""

import keras
import numpy as np
from test_steps import data, tiny_models

import gan_lib
from gan_lib import losses, toy, training
from gan_lib.panel import DEFAULTS


def still(*models):
    for model in models:
        model.optimizer.learning_rate = 0.0


def bce(y, p):
    return float(keras.ops.convert_to_numpy(losses.bce(y, p)))


def test_the_loop_records_each_batchs_own_losses_not_a_running_mean():
    g, d, gan = tiny_models()
    still(d, gan)
    dataset, latent_dim, n_batch, half = data(), 16, 16, 8
    panel = dict(DEFAULTS, latent_dim=latent_dim, n_batch=n_batch)
    rows = [training.train_step(g, d, gan, dataset, latent_dim, n_batch, np.random.default_rng(s), panel)
            for s in range(4)]
    for s, row in enumerate(rows):  # the same draws again, from the same generator state
        rng = np.random.default_rng(s)
        x_real, y_real = gan_lib.generate_real_samples(dataset, half, rng)
        x_fake, y_fake = gan_lib.generate_fake_samples(g, latent_dim, half, rng, training=True)
        z = gan_lib.generate_latent_points(latent_dim, n_batch, rng)
        assert np.isclose(row["d_loss_real"], bce(y_real, d(x_real, training=True)), rtol=1e-5), (s, row)
        assert np.isclose(row["d_loss_fake"], bce(y_fake, d(x_fake, training=True)), rtol=1e-5), (s, row)
        assert np.isclose(row["g_loss"], bce(np.ones((n_batch, 1)), d(g(z, training=True))), rtol=1e-5), (s, row)
    # the draws differ, so the losses do: a running mean would be caught above
    assert len({round(row["d_loss_real"], 6) for row in rows}) == len(rows)


def test_the_toy_loop_records_each_batchs_own_losses_not_a_running_mean():
    gan_lib.set_seed(0)
    d, g = toy.define_toy_discriminator(), toy.define_toy_generator(5)
    gan = gan_lib.define_gan(g, d)
    still(d, gan)
    rows = [toy.train_toy(g, d, gan, 5, 1, n_batch=32, rng=np.random.default_rng(s))[0] for s in range(4)]
    for s, row in enumerate(rows):
        rng = np.random.default_rng(s)
        x_real, y_real = toy.generate_real_points(16, rng)
        x_fake, y_fake = gan_lib.generate_fake_samples(g, 5, 16, rng)
        z = gan_lib.generate_latent_points(5, 32, rng)
        assert np.isclose(row["d_loss_real"], bce(y_real, d(x_real)), rtol=1e-5), (s, row)
        assert np.isclose(row["d_loss_fake"], bce(y_fake, d(x_fake)), rtol=1e-5), (s, row)
        assert np.isclose(row["g_loss"], bce(np.ones((32, 1)), d(g(z))), rtol=1e-5), (s, row)
