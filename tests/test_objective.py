"""Panel key g_objective: G trained with the non-saturating loss (the tutorial's labels 1) or the saturating
minimax loss log(1 - D(G(z))), in the tutorial loop and the fused step (torch and JAX: test_backends.py)."""

import keras
import numpy as np
import pytest

import gan_lib
from conftest import changed, snapshot
from gan_lib import diagnosis, losses
from gan_lib.fused import FusedStep
from gan_lib.losses import generator_loss


def tiny(seed=0, objective="non_saturating"):
    """G: 4 -> 8 numbers, D: 8 numbers -> probability; no dropout, so train_on_batch's loss can be recomputed."""
    gan_lib.set_seed(seed)
    g = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh")])
    d = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    d.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(0.0002, beta_1=0.5))
    return g, d, gan_lib.define_gan(g, d, loss=losses.saturating_loss if objective == "saturating" else "binary_crossentropy")


def test_the_two_losses_on_known_scores():
    p = np.array([[0.9], [0.5], [0.01]], dtype=np.float32)
    ns = float(keras.ops.convert_to_numpy(generator_loss(p)))
    sat = float(keras.ops.convert_to_numpy(generator_loss(p, "saturating")))
    assert ns == pytest.approx(-np.mean(np.log(p)), rel=1e-5)
    assert sat == pytest.approx(np.mean(np.log(1 - p)), rel=1e-5)
    per_image = keras.ops.convert_to_numpy(losses.saturating_loss(np.ones_like(p), p))  # what the loop compiles
    assert per_image == pytest.approx(np.log(1 - p[:, 0]), rel=1e-5)


def test_the_saturating_gradient_vanishes_when_d_is_sure_and_the_other_does_not():
    gan_lib.set_seed(3)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    z = np.random.default_rng(0).standard_normal((32, 100)).astype(np.float32)
    before = {o: diagnosis.generator_gradient_norm(g, d, z, o) for o in ("non_saturating", "saturating")}
    assert min(before.values()) > 1e-3  # D unsure (D(G(z)) near 0.5): both losses teach G
    bias = d.layers[-1].bias
    bias.assign(keras.ops.full(bias.shape, -20.0))  # D sure every image is fake: D(G(z)) about 2e-9
    sure = {o: diagnosis.generator_gradient_norm(g, d, z, o) for o in ("non_saturating", "saturating")}
    assert sure["saturating"] < 1e-6 * before["saturating"]  # log(1 - D) is flat there: G learns nothing
    assert sure["non_saturating"] > before["non_saturating"]  # -log D is steepest there


@pytest.mark.parametrize("first", ["d", "g"])
def test_the_loop_trains_g_with_the_saturating_loss(first):
    g, d, gan = tiny(1, "saturating")
    assert losses.objective_of(gan) == "saturating"
    rng = np.random.default_rng(0)
    if first == "d":  # D's own step first, as the tutorial's loop does
        d.train_on_batch(rng.standard_normal((8, 8)).astype(np.float32), np.ones((8, 1), np.float32))
    z = rng.standard_normal((16, 4)).astype(np.float32)
    p = keras.ops.convert_to_numpy(d(g(z)))
    bg, bd = snapshot(g), snapshot(d)
    loss = gan.train_on_batch(z, np.ones((16, 1), np.float32))  # labels are not used by this loss
    assert float(loss) == pytest.approx(np.mean(np.log(1 - p)), rel=1e-4)
    assert changed(bg, snapshot(g)) and not changed(bd, snapshot(d))


def test_the_fused_step_uses_the_panels_objective(shapes_small):
    losses = {}
    for objective in ("non_saturating", "saturating"):
        gan_lib.set_seed(2)
        d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
        gan = gan_lib.define_gan(g, d)  # the fused step computes G's loss itself, from the panel
        step = FusedStep(g, d, gan, shapes_small, gan_lib.check_panel(n_batch=16, g_objective=objective))
        bg = snapshot(g)
        step()
        losses[objective] = step.read()[0]["g_loss"]
        assert changed(bg, snapshot(g))
    # the same first step (same seed, same draws): -mean log p against mean log(1 - p), p near 0.5
    assert losses["non_saturating"] > 0 > losses["saturating"]
    assert losses["non_saturating"] == pytest.approx(np.log(2), abs=0.05)
    assert losses["saturating"] == pytest.approx(-np.log(2), abs=0.05)


def test_train_refuses_a_combined_model_compiled_for_the_other_objective(shapes_small, tmp_path):
    for compiled, asked in (("non_saturating", "saturating"), ("saturating", "non_saturating")):
        gan_lib.set_seed(0)
        d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
        gan = gan_lib.define_gan(g, d, loss=gan_lib.saturating_loss if compiled == "saturating" else "binary_crossentropy")
        fix = "loss=gan_lib.saturating_loss" if asked == "saturating" else r"define_gan\(g_model, d_model\)"
        with pytest.raises(ValueError, match=f"compiled for g_objective '{compiled}' but panel key 'g_objective' "
                                             f"is '{asked}'.*{fix}"):
            gan_lib.train(g, d, gan, shapes_small, 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "r"),
                          panel={"g_objective": asked}, verbose=0)
        assert not (tmp_path / "r").exists()


def test_the_panel_key_build_models_and_the_monitor(shapes_small):
    with pytest.raises(ValueError, match="'g_objective' must be one of non_saturating, saturating, got 'minimax'"):
        gan_lib.check_panel(g_objective="minimax")
    panel = gan_lib.check_panel(g_objective="saturating", latent_dim=100)
    g, d, gan = gan_lib.build_models(panel, (32, 32, 3))
    assert losses.objective_of(gan) == "saturating"
    monitor = diagnosis.Monitor(shapes_small, panel)  # measures the gradient G trains with
    measured = monitor.measure(g, d)["g_grad_norm"]
    assert measured == pytest.approx(diagnosis.generator_gradient_norm(g, d, monitor.z[:diagnosis.N_GRAD], "saturating"))
    assert measured != pytest.approx(diagnosis.generator_gradient_norm(g, d, monitor.z[:diagnosis.N_GRAD]))
