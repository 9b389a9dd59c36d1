"""Panel keys d_steps, g_steps and mixed_batch: how many updates each model makes per iteration, and on what batch.

The loop and the fused step (TensorFlow here; torch and JAX in test_backends.py) count the same updates,
a mixed batch is one update on both halves, and runs with these keys resume exactly.
"""

import keras
import numpy as np
import pytest

import gan_lib
from gan_lib import devices, fused


def tiny_models(seed=0, size=8):
    """A D without dropout (its training-mode output depends only on its input) and a small G."""
    gan_lib.set_seed(seed)
    d = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")])
    d.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(0.0002, beta_1=0.5), metrics=["accuracy"])
    g = keras.Sequential([keras.Input((16,)), keras.layers.Dense(size * size * 3, activation="tanh"),
                          keras.layers.Reshape((size, size, 3))])
    return g, d, gan_lib.define_gan(g, d)


def data(n=64, size=8):
    return gan_lib.scale_images(gan_lib.make_shapes(n, size=size)[0])


def iterations(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def one_iteration(fast, still=False, **keys):
    """(row, D's updates, G's updates) of one iteration with these panel keys, from the same seed.

    still: both learning rates 0, so no update moves anything (the updates still run and count).
    """
    g, d, gan = tiny_models()
    if still:
        d.optimizer.learning_rate, gan.optimizer.learning_rate = 0.0, 0.0
    panel = gan_lib.check_panel(n_batch=16, latent_dim=16, **keys)
    if fast:
        step = fused.FusedStep(g, d, gan, data(), panel)
        step()
        row = step.read()[0]
    else:
        row = gan_lib.training.train_step(g, d, gan, data(), 16, 16, np.random.default_rng(0), panel)
    return row, iterations(d), iterations(gan)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("d_steps, g_steps, mixed, d_updates", [(1, 1, False, 2), (3, 2, False, 6), (3, 2, True, 3)])
def test_each_model_updates_as_often_as_the_panel_says(fast, d_steps, g_steps, mixed, d_updates):
    row, d_n, g_n = one_iteration(fast, d_steps=d_steps, g_steps=g_steps, mixed_batch=mixed)
    assert (d_n, g_n) == (d_updates, g_steps)
    assert all(np.isfinite(list(row.values())))
    assert (row["d_loss_real"] == row["d_loss_fake"]) == mixed  # a mixed batch has one loss, reported twice


@pytest.mark.parametrize("fast", [False, True])
def test_a_mixed_batch_is_one_update_on_both_halves(fast):
    """With D's learning rate 0 nothing moves, and the draws are the same: the mixed batch's loss is the mean of
    the two half batches' losses (the same images and labels, smoothed and flipped alike)."""
    keys = {"still": True, "label_smoothing": 0.1, "label_noise": 0.2}
    apart, _, _ = one_iteration(fast, **keys)
    mixed, _, _ = one_iteration(fast, mixed_batch=True, **keys)
    assert mixed["d_loss_real"] == pytest.approx((apart["d_loss_real"] + apart["d_loss_fake"]) / 2, rel=1e-6)
    assert apart["d_loss_real"] != pytest.approx(apart["d_loss_fake"], rel=1e-3)  # the halves do differ
    assert mixed["d_x"] == apart["d_x"] and mixed["d_g_z"] == apart["d_g_z"]  # scored before D learns: same draws


def test_the_loop_gives_d_one_batch_of_both_halves(monkeypatch):
    g, d, gan = tiny_models()
    seen = []
    learn = d.train_on_batch
    monkeypatch.setattr(d, "train_on_batch", lambda x, y: seen.append((x, y)) or learn(x, y))
    panel = gan_lib.check_panel(n_batch=16, latent_dim=16, mixed_batch=True, d_steps=2)
    gan_lib.training.train_step(g, d, gan, data(), 16, 16, np.random.default_rng(0), panel)
    assert len(seen) == 2  # one call per D step
    real = data()
    for x, y in seen:
        assert x.shape == (16, 8, 8, 3) and y.ravel().tolist() == [1.0] * 8 + [0.0] * 8
        assert all(any(np.array_equal(a, b) for b in real) for a in x[:8])  # real images first...
        assert not any(any(np.array_equal(a, b) for b in real) for a in x[8:])  # ...then G's


def test_streamed_batches_hold_one_half_batch_per_d_step(monkeypatch):
    monkeypatch.setattr(devices, "fits_on_device", lambda nbytes: False)
    g, d, gan = tiny_models()
    step = fused.FusedStep(g, d, gan, data(), gan_lib.check_panel(n_batch=16, latent_dim=16, d_steps=3))
    assert tuple(step.batches.make(0).shape) == (24, 8, 8, 3)
    step(0)
    assert len(step.read()) == 1 and iterations(d) == 6


@pytest.mark.parametrize("fast", [False, True])
def test_runs_with_more_steps_resume_exactly(fast, tmp_path):
    keys = {"fast": fast, "d_steps": 2, "g_steps": 3, "mixed_batch": True, "n_samples": 8, "summarization": 1}

    def run(run_dir, epochs, resume=False):
        g, d, gan = tiny_models(5)
        return gan_lib.train(g, d, gan, data(), 16, n_epochs=epochs, n_batch=16, run_dir=str(run_dir), verbose=0,
                             panel={**keys, "load_weights": resume})

    straight = run(tmp_path / "a", 2)
    run(tmp_path / "b", 1)
    assert run(tmp_path / "b", 2, resume=True) == straight


@pytest.mark.parametrize("keys, message", [
    ({"d_steps": 0}, "'d_steps' must be at least 1"),
    ({"g_steps": 21}, "'g_steps' must be at most 20"),
    ({"mixed_batch": "yes"}, "'mixed_batch' must be bool"),
    ({"d_steps": 2.0}, "'d_steps' must be int"),
])
def test_bad_values_are_refused(keys, message):
    with pytest.raises(ValueError, match=message):
        gan_lib.check_panel(**keys)
