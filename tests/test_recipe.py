"""The modern recipe: its panel keys, its losses and penalties, D's split head and spectral norm, the EMA of G,
and the fused step that trains with them (TensorFlow here; torch and JAX in test_backends.py)."""

import json
import os

import keras
import numpy as np
import pytest

import gan_lib
from gan_lib import losses, recipe
from gan_lib.fused import FusedStep


def snap(model):
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


def changed(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(a, b))


def test_the_recipes_set_their_keys_and_anything_set_wins():
    tutorial = gan_lib.check_panel()
    assert (tutorial["recipe"], tutorial["loss"], tutorial["ema"], tutorial["augment"]) == ("tutorial", "bce", 0.0, "")
    modern = gan_lib.check_panel(recipe="modern")
    assert modern["fast"] and modern["loss"] == "hinge" and modern["spectral_norm"] and modern["ema"] == 0.999
    assert modern["augment"] == "color,translation,cutout" and (modern["d_lr"], modern["g_lr"]) == (0.0004, 0.0001)
    assert gan_lib.check_panel(recipe="modern", loss="wgan_gp", d_lr=0.0001)["loss"] == "wgan_gp"
    dcgan = gan_lib.check_panel(recipe="modern", arch="dcgan")
    assert dcgan["label_smoothing"] == 0.0  # the DCGAN's smoothing is bce's; the recipe's loss has no labels


@pytest.mark.parametrize("settings, message", [
    ({"loss": "hinge"}, "needs the fused step"),  # the tutorial loop keeps the tutorial's cross-entropy
    ({"loss": "l2", "fast": True}, "'loss' must be one of bce, hinge, wgan_gp"),
    ({"ema": 1.0, "fast": True}, r"'ema' must be in \[0, 1\)"),
    ({"gp_weight": -1.0}, "'gp_weight' must be 0 or more"),
    ({"augment": "colour", "fast": True}, "got 'colour'"),
    ({"recipe": "best"}, "'recipe' must be one of tutorial, modern"),
    ({"recipe": "modern", "arch": "cgan"}, "recipe 'modern' .its 'loss'. is for arch tutorial or dcgan"),
    ({"recipe": "modern", "fast": False}, "recipe 'modern' .its 'loss'. needs the fused step .* not --tutorial-loop"),
    ({"recipe": "modern", "devices": 2}, "runs on one device"),
    ({"recipe": "modern", "label_noise": 0.05}, "label_smoothing and label_noise change bce's labels"),
])
def test_bad_recipe_settings_are_one_clear_error(settings, message):
    with pytest.raises(ValueError, match=message):
        gan_lib.check_panel(**settings)


def test_hinge_and_wasserstein_parts():
    s_real = keras.ops.convert_to_tensor([[2.0], [0.5], [-1.0]])
    s_fake = keras.ops.convert_to_tensor([[-2.0], [0.0], [1.0]])
    real, fake = (float(v) for v in losses.critic_parts("hinge", s_real, s_fake))
    assert (real, fake) == pytest.approx(((0 + 0.5 + 2) / 3, (0 + 1 + 2) / 3))  # relu(1 - s), relu(1 + s)
    real, fake = (float(v) for v in losses.critic_parts("wgan_gp", s_real, s_fake))
    assert (real, fake) == pytest.approx((-0.5, -1 / 3))
    assert float(losses.score_generator_loss(s_fake)) == pytest.approx(1 / 3)


def test_the_gradient_penalty_draws_one_point_per_image_and_is_finite_at_zero():
    import tensorflow as tf
    real = np.ones((3, 2, 2, 1), np.float32)
    fake = np.zeros((3, 2, 2, 1), np.float32)
    eps = np.array([0.0, 0.5, 1.0], np.float32).reshape(3, 1, 1, 1)
    # critic sum(x^2) / 2: its gradient is x_hat itself, of norm 2 * eps (4 pixels of value eps)
    got = float(losses.gradient_penalty(lambda x: keras.ops.sum(x * x, axis=(1, 2, 3)) / 2, real, fake, eps))
    assert got == pytest.approx(np.mean((2 * eps.ravel() - 1) ** 2), rel=1e-5)  # (1 + 0 + 1) / 3, per image
    # a critic whose gradient is 0 everywhere: the penalty is 1 and its own gradient finite (sqrt's is not at 0)
    w = tf.Variable(0.0)
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(lambda x: w * keras.ops.sum(x * x, axis=(1, 2, 3)), real, fake, eps)
    assert float(penalty) == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(float(tape.gradient(penalty, w)))


def test_r1_is_the_mean_squared_gradient_norm_on_real_images():
    x = np.arange(8, dtype=np.float32).reshape(2, 2, 2, 1) / 8
    got = float(losses.r1_penalty(lambda t: keras.ops.sum(t * t, axis=(1, 2, 3)) / 2, x))
    assert got == pytest.approx(np.mean(np.sum(x ** 2, axis=(1, 2, 3))), rel=1e-5)


def test_the_modern_discriminator_splits_its_head_and_wraps_its_layers():
    panel = gan_lib.check_panel(recipe="modern")
    g, d, gan_model = gan_lib.build_models(panel, (16, 16, 3))
    assert recipe.has_score_head(d) and not recipe.has_score_head(gan_lib.define_discriminator((16, 16, 3)))
    wrapped = [layer for layer in d.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    assert len(wrapped) == 5  # four Conv2D and the Dense head
    x = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    p = keras.ops.convert_to_numpy(d(x, training=False))
    s = keras.ops.convert_to_numpy(recipe.scores(d, x, training=False))
    assert np.allclose(p, 1 / (1 + np.exp(-s)), atol=1e-6)  # D still outputs the probability of its score
    assert d.loss == "binary_crossentropy" and float(d.optimizer.learning_rate) == pytest.approx(0.0004)
    plain = gan_lib.build_models(gan_lib.check_panel(), (16, 16, 3))[1]
    assert not any(isinstance(layer, keras.layers.SpectralNormalization) for layer in plain.layers)


def test_a_raw_score_loss_refuses_a_d_without_the_split_head():
    data = gan_lib.load_real_samples("shapes", limit=32)[:, ::2, ::2]
    d, g = gan_lib.define_discriminator((16, 16, 3)), gan_lib.define_generator(100, (16, 16, 3))
    with pytest.raises(ValueError, match="build_models"):
        FusedStep(g, d, gan_lib.define_gan(g, d), data, gan_lib.check_panel(fast=True, loss="hinge", n_batch=8))


@pytest.mark.parametrize("settings", [
    {"loss": "hinge"},
    {"loss": "wgan_gp", "spectral_norm": True},
    {"r1_gamma": 1.0, "augment": "color,translation,cutout"},
    {"recipe": "modern"},
])
def test_each_piece_trains_in_the_fused_step(settings):
    gan_lib.set_seed(0)
    data = gan_lib.load_real_samples("shapes", limit=64)[:, ::2, ::2]
    panel = gan_lib.check_panel(fast=True, n_batch=16, **settings)
    g, d, gan_model = gan_lib.build_models(panel, (16, 16, 3))
    step = FusedStep(g, d, gan_model, data, panel)
    bd, bg = snap(d), snap(g)
    step()
    row = step.read()[0]
    assert changed(bd, snap(d)) and changed(bg, snap(g)) and np.isfinite(list(row.values())).all()
    if panel["loss"] == "hinge":  # d_loss_real and d_loss_fake are the hinge's two parts, each >= 0
        assert row["d_loss_real"] >= 0 and row["d_loss_fake"] >= 0
    d.optimizer.learning_rate = 0.0
    bd = snap(d)
    step()
    step.read()
    assert not changed(bd, snap(d)) or panel["spectral_norm"], "G's update moved D"


def test_the_ema_follows_g_warmed_up_then_by_its_decay():
    gan_lib.set_seed(1)
    data = gan_lib.load_real_samples("shapes", limit=32)[:, ::2, ::2]
    panel = gan_lib.check_panel(fast=True, n_batch=8, ema=0.9)
    g, d, gan_model = gan_lib.build_models(panel, (16, 16, 3))
    step = FusedStep(g, d, gan_model, data, panel)
    start = snap(g)
    assert not changed(start, snap(step.ema.model))  # the average starts as G
    averaged = start
    for t in (1, 2):  # warmed up: decay min(0.9, (1 + t) / (10 + t)), 2/11 then 3/12
        step()
        step.read()
        decay, now = min(0.9, (1 + t) / (10 + t)), snap(g)
        averaged = [decay * a + (1 - decay) * w for a, w in zip(averaged, now)]
        for e, want in zip(snap(step.ema.model), averaged):
            assert np.allclose(e, want, atol=1e-6)
    state = {id(v) for v in step.variables}  # checkpointed with the step's state
    assert len(step.ema.variables) == len(g.weights) + 1 and all(id(v) in state for v in step.ema.variables)
    assert float(step.ema.count) == 2.0
    late = recipe.EMA(g, 0.999)
    late.count.assign(100000.0)  # long after the warm-up: the decay asked for
    before = snap(late.model)
    g.weights[0].assign(g.weights[0] + 1.0)
    late.update()
    assert np.allclose(snap(late.model)[0], 0.999 * before[0] + 0.001 * snap(g)[0], atol=1e-6)


def test_train_modern_writes_the_ema_resumes_exactly_and_generate_uses_it(tmp_path, in_process):
    args = ["train", "--dataset", "shapes", "--limit", "64", "--batch", "16", "--recipe", "modern", "--quiet",
            "--set", "n_samples=8", "--set", "eval_every=0", "--set", "summarization=1"]  # the same draws either way
    assert in_process(*args, "--epochs", "2", "--out", str(tmp_path / "a")).returncode == 0
    assert in_process(*args, "--epochs", "1", "--out", str(tmp_path / "b")).returncode == 0
    result = in_process("train", "--resume", str(tmp_path / "b"), "--epochs", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "a" / "panel.json") as f:
        assert json.load(f)["recipe"] == "modern"
    last = os.path.join("checkpoints", "ckpt-0002-00000.npz")
    with np.load(tmp_path / "a" / last) as a, np.load(tmp_path / "b" / last) as b:
        bad = [k for k in a.files if not np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f")]
        assert a.files == b.files and not bad, f"resumed state differs in {bad}"  # the EMA's weights too
    ema = keras.saving.load_model(tmp_path / "a" / "generator_ema.keras", safe_mode=True)  # loads in safe mode
    assert ema.output_shape == (None, 32, 32, 3)
    numbered = keras.saving.load_model(tmp_path / "a" / "generator_ema_e002.keras", safe_mode=True)  # epoch 2's EMA
    assert all(np.array_equal(u, v) for u, v in zip(numbered.get_weights(), ema.get_weights()))
    first = keras.saving.load_model(tmp_path / "a" / "generator_ema_e001.keras", safe_mode=True)  # epoch 1's: older
    assert not all(np.array_equal(u, v) for u, v in zip(first.get_weights(), ema.get_weights()))
    result = in_process("generate", str(tmp_path / "a"), "--n", "2")
    assert result.returncode == 0 and "generator_ema.keras" in result.stdout
    for setting in ("loss=wgan_gp", "gp_weight=5.0", "ema=0.9"):  # what the run was made with stays
        result = in_process("train", "--resume", str(tmp_path / "b"), "--epochs", "3", "--set", setting)
        key = setting.split("=")[0]
        assert result.returncode == 1 and f"panel key {key!r}" in result.stderr and "resumes with its own" in result.stderr
