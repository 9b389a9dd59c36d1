"""Mixed precision (panel key precision): 16-bit compute, float32 weights and outputs, loss scaling, resumes.

mixed_float16 is refused on a CPU; its tests pretend a GPU (float16 kernels do run on TensorFlow's CPU, slowly).
"""

import keras
import numpy as np
import pytest

import gan_lib
from conftest import changed, snapshot
from gan_lib import fused
from gan_lib.__main__ import main


@pytest.fixture(autouse=True)
def float32_afterwards():
    """Other tests in this process build float32 models: put the global policy back whatever happens."""
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def pretend_gpu(monkeypatch):
    monkeypatch.setattr(gan_lib.devices, "has_gpu", lambda: True)


def models(policy, seed=5, size=32):
    """(g, d, gan) built under `policy`, set directly: set_precision refuses mixed_float16 on a CPU.

    size 16: the tutorial's models for 16 x 16 images, the same layers and code paths; float16's convolutions
    are emulated on a CPU, so its tests use these (and images16) to run in seconds, not half a minute.
    """
    gan_lib.set_seed(seed)
    keras.mixed_precision.set_global_policy(policy)
    try:
        d, g = gan_lib.define_discriminator((size, size, 3)), gan_lib.define_generator(100, (size, size, 3))
        return g, d, gan_lib.define_gan(g, d)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def images16(images):
    """The shapes images at 16 x 16 (every other pixel), for the size-16 models."""
    return images[:, ::2, ::2]


def test_bad_names_and_float16_without_a_gpu_are_refused(shapes_small, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="'precision' must be one of float32, mixed_bfloat16, mixed_float16, got 'float16'"):
        gan_lib.check_panel(precision="float16")
    with pytest.raises(ValueError, match="precision must be one of float32, mixed_bfloat16, mixed_float16, got 'bf16'"):
        gan_lib.set_precision("bf16")
    monkeypatch.setattr(gan_lib.devices, "has_gpu", lambda: False)
    no_gpu = "mixed_float16 needs a GPU .*; on a CPU use mixed_bfloat16 or float32"
    with pytest.raises(ValueError, match=no_gpu):
        gan_lib.set_precision("mixed_float16")
    assert keras.mixed_precision.global_policy().name == "float32"
    g, d, gan = models("mixed_float16")
    with pytest.raises(ValueError, match=no_gpu):
        gan_lib.train(g, d, gan, shapes_small[:32], 100, n_epochs=1, n_batch=16, run_dir=str(tmp_path / "r"),
                      verbose=0, panel={"precision": "mixed_float16"})
    assert not (tmp_path / "r").exists()


def test_bfloat16_compute_with_float32_weights_and_outputs(shapes_small):
    gan_lib.set_precision("mixed_bfloat16")
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan_lib.set_precision("float32")
    assert d.layers[0].compute_dtype == g.layers[-3].compute_dtype == "bfloat16"  # convolutions
    assert d.layers[-1].compute_dtype == g.layers[-1].compute_dtype == "float32"  # the sigmoid and the tanh
    assert {v.dtype for v in d.weights + g.weights} == {"float32"}
    assert (d.count_params(), g.count_params()) == (522_497, 1_466_115)  # the same models as under float32
    assert keras.ops.convert_to_numpy(d(shapes_small[:4])).dtype == np.float32
    assert keras.ops.convert_to_numpy(g(np.zeros((2, 100), "float32"))).dtype == np.float32


# mixed_float16's loop is Keras's own train_on_batch (slow on a CPU): its fused step is the one gan_lib scales
@pytest.mark.parametrize("precision, fast", [("mixed_bfloat16", False), ("mixed_bfloat16", True), ("mixed_float16", True)],
                         ids=["bfloat16-loop", "bfloat16-fast", "float16-fast"])
def test_a_mixed_run_trains(precision, fast, shapes_small, tmp_path, pretend_gpu):
    g, d, gan = models(precision, size=16)
    before_d, before_g = snapshot(d), snapshot(g)
    history = gan_lib.train(g, d, gan, images16(shapes_small)[:32], 100, n_epochs=1, n_batch=16, run_dir=str(tmp_path / "r"),
                            verbose=0, panel={"fast": fast, "precision": precision, "n_samples": 8})
    assert len(history) == 2 and all(np.isfinite([r["d_loss_real"], r["d_loss_fake"], r["g_loss"]]).all() for r in history)
    assert changed(before_d, snapshot(d)) and changed(before_g, snapshot(g))
    assert gan_lib.load_panel(str(tmp_path / "r"))["precision"] == precision


def test_the_fused_step_scales_the_loss(shapes_small):
    """mixed_float16: compile() wraps Adam in a LossScaleOptimizer; the fused step differentiates the scaled loss,
    so a scale too large for float16 makes infinite gradients: the step is skipped and the scale halved."""
    g, d, gan = models("mixed_float16", size=16)
    assert all(isinstance(m.optimizer, keras.optimizers.LossScaleOptimizer) for m in (d, gan))
    step = fused.FusedStep(g, d, gan, images16(shapes_small), gan_lib.check_panel(n_batch=16))
    before = snapshot(d), snapshot(g)
    step()
    (row,) = step.read()
    assert np.isfinite(list(row.values())).all() and changed(before[0], snapshot(d)) and changed(before[1], snapshot(g))
    assert (int(d.optimizer.step_counter), int(gan.optimizer.step_counter)) == (2, 1)  # two D updates, one G update
    for m in (d, gan):
        m.optimizer.dynamic_scale.assign(2.0**60)  # finite in float32; its gradients overflow float16
    before = snapshot(d), snapshot(g)
    step()
    step.read()
    assert not changed(before[0], snapshot(d)) and not changed(before[1], snapshot(g))
    assert (float(d.optimizer.dynamic_scale), float(gan.optimizer.dynamic_scale)) == (2.0**58, 2.0**59)


def test_panel_settings_reach_the_adam_inside_a_loss_scale_optimizer():
    g, d, gan = models("mixed_float16")
    panel = gan_lib.check_panel(d_lr=0.001, g_lr=0.003, beta_1=0.9)
    gan_lib.archs.apply_panel_optimizers(d, gan, panel, explicit={"d_lr", "g_lr", "beta_1"})
    for model, lr in ((d, 0.001), (gan, 0.003)):
        inner = model.optimizer.inner_optimizer
        assert float(inner.learning_rate) == pytest.approx(lr) and inner.beta_1 == 0.9


def test_models_of_another_precision_are_refused(shapes_small, tmp_path):
    g, d, gan = models("float32")
    with pytest.raises(ValueError, match=r"the generator model was built with precision float32 but panel key 'precision' "
                       r"is mixed_bfloat16; call gan_lib.set_precision\('mixed_bfloat16'\) before define_discriminator/"
                       r"define_generator/define_gan, or set precision='float32'"):
        gan_lib.train(g, d, gan, shapes_small[:32], 100, n_epochs=1, n_batch=16, run_dir=str(tmp_path / "r"),
                      verbose=0, panel={"precision": "mixed_bfloat16"})


def test_the_command_line_trains_and_resumes_in_its_precision(tmp_path, capsys):
    """--set precision=mixed_bfloat16; a resume builds its models in the run's precision and refuses another."""
    common = ["--quiet", "--set", "deterministic=false", "--set", "n_samples=8", "--set", "summarization=1"]
    new = ["train", "--dataset", "shapes", "--limit", "32", "--batch", "16", *common]
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    assert main([*new, "--epochs", "2", "--out", straight, "--set", "precision=mixed_bfloat16"]) == 0
    assert main([*new, "--epochs", "1", "--out", resumed, "--set", "precision=mixed_bfloat16"]) == 0
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after building the models
    assert main(["train", "--resume", resumed, "--epochs", "2", *common]) == 0
    assert gan_lib.read_history(resumed) == gan_lib.read_history(straight)  # summarization=1: the same draws
    saved = keras.saving.load_model(f"{resumed}/generator.keras", compile=False)  # built by the resume
    assert saved.layers[0].dtype_policy.name == "mixed_bfloat16" and saved.layers[-1].dtype_policy.name == "float32"
    capsys.readouterr()
    assert main(["train", "--resume", resumed, "--epochs", "3", "--set", "precision=float32", *common]) == 1
    assert "panel key 'precision' is float32 but run" in capsys.readouterr().err
    assert keras.mixed_precision.global_policy().name == "float32"


def test_the_fused_step_trains_models_whose_head_is_16_bit():
    # the toy's models, built under mixed_bfloat16, output bfloat16 (no float32 head): the fused step's losses added
    # a float32 term to a bfloat16 one and TensorFlow refused ("AddV2 ... float32 that does not match bfloat16")
    gan_lib.set_seed(0)
    gan_lib.set_precision("mixed_bfloat16")
    d, g = gan_lib.toy.define_toy_discriminator(), gan_lib.toy.define_toy_generator(5)
    gan = gan_lib.define_gan(g, d)
    gan_lib.set_precision("float32")
    assert keras.ops.convert_to_numpy(d(np.zeros((2, 2), "float32"))).dtype != np.float32
    points, _ = gan_lib.toy.generate_real_points(256, np.random.default_rng(0))
    step = fused.FusedStep(g, d, gan, points, gan_lib.check_panel(n_batch=32, latent_dim=5))
    before = snapshot(d), snapshot(g)
    step()
    (row,) = step.read()
    assert np.isfinite(list(row.values())).all() and changed(before[0], snapshot(d)) and changed(before[1], snapshot(g))
