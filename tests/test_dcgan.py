"""The DCGAN (gan_lib/dcgan.py): sizes and parameter counts, saving, and BatchNorm done as documented.

The BatchNorm contract (dcgan.py's docstring), proven on the tutorial loop and on the fused step:
- G's step leaves D's weights alone but runs D in training mode: D normalizes G's batch
  with that batch's statistics and updates its moving statistics (PyTorch's DCGAN);
- G's step changes every weight of G (BatchNorm's gamma and beta too), D's step every weight of D;
- the fakes D learns from are made with G in training mode, as G's own step makes them.

The check_* functions below speak Keras only: test_other_backends runs them on torch and JAX
in a fresh process (the backend is fixed when Keras is imported), as test_backends.py does.
"""

import json

import keras
import numpy as np
import pytest

import gan_lib
from conftest import run_on_backend, same
from gan_lib.dcgan import define_dcgan_discriminator, define_dcgan_generator
from gan_lib.fused import FusedStep
from gan_lib.losses import bce

LATENT = 100


def values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def all_changed(before, after):
    """True when every array differs somewhere."""
    return all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def none_changed(before, after):
    return all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def batch_norms(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def tiny(size=16, width=4, seed=0):
    """(g, d, gan) DCGAN models for size x size x 3 images: quick to build and compile."""
    gan_lib.set_seed(seed)
    d = define_dcgan_discriminator((size, size, 3), width=width)
    g = define_dcgan_generator(LATENT, (size, size, 3), width=width)
    return g, d, gan_lib.define_gan(g, d)


def images(size=16, n=64):
    return gan_lib.load_real_samples("shapes", limit=n)[:, :: 32 // size, :: 32 // size]


def state(model):
    """The values of a model's trainable and non-trainable variables, for stateless_call."""
    return [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]


def documented_g_step(g, d, z):
    """What G's step must compute, without side effects: (its loss, D's moving statistics after it).

    G and D both in training mode: D normalizes G's batch with its own statistics and
    updates its moving statistics from them, as PyTorch's DCGAN does.
    """
    x, _ = g.stateless_call(*state(g), z, training=True)
    p, d_stats = d.stateless_call(*state(d), x, training=True)
    loss = bce(keras.ops.ones((len(z), 1)), p)
    return float(keras.ops.convert_to_numpy(loss)), values(d_stats)


def check_loop(first):
    """The tutorial loop's train_on_batch calls, D first (first='d') or G first ('g')."""
    g, d, gan = tiny()
    data, rng = images(), np.random.default_rng(0)
    assert len(batch_norms(d)) == 1 and len(batch_norms(g)) == 2 and d.non_trainable_variables

    def g_step():
        z = gan_lib.generate_latent_points(LATENT, 16, rng)
        loss, d_stats = documented_g_step(g, d, z)
        d_w, d_s, g_w, g_s = (values(m) for m in (d.trainable_variables, d.non_trainable_variables,
                                                  g.trainable_variables, g.non_trainable_variables))
        gan.reset_metrics()  # the batch's own loss on every Keras (before 3.15: a running mean otherwise)
        got = float(gan.train_on_batch(z, np.ones((16, 1), "float32")))
        assert none_changed(d_w, values(d.trainable_variables)), "G's step changed D's weights"
        assert all_changed(d_s, values(d.non_trainable_variables)), "G's step left D's moving statistics alone"
        for want, have in zip(d_stats, values(d.non_trainable_variables), strict=True):
            np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-6,
                                       err_msg="D's moving statistics are not those of a training-mode pass on G's batch")
        assert got == pytest.approx(loss, rel=1e-4), "G's loss is not D's in training mode (batch statistics)"
        assert all_changed(g_w, values(g.trainable_variables)), "G's step left some of G's weights (gamma, beta) alone"
        assert all_changed(g_s, values(g.non_trainable_variables)), "G's step left G's moving statistics alone"

    def d_step(x, y):
        d_w, d_s, g_all = values(d.trainable_variables), values(d.non_trainable_variables), values(g.variables)
        d.train_on_batch(x, y)
        assert all_changed(d_w, values(d.trainable_variables)), "D's step left some of D's weights (gamma, beta) alone"
        assert all_changed(d_s, values(d.non_trainable_variables)), "D's step left D's moving statistics alone"
        assert none_changed(g_all, values(g.variables)), "D's step changed G"

    if first == "g":
        g_step()
    for _ in range(2):
        d_step(*gan_lib.generate_real_samples(data, 8, rng))
        d_step(*gan_lib.generate_fake_samples(g, LATENT, 8, rng, training=True))
        g_step()


def check_loop_fakes():
    """train_step gives D fakes made with G in training mode (batch statistics), as G's step makes them."""
    g, d, gan = tiny()
    data, rng = images(), np.random.default_rng(1)
    seen = []
    train_on_batch = d.train_on_batch
    d.train_on_batch = lambda x, y: seen.append(x) or train_on_batch(x, y)
    twin = np.random.default_rng()
    twin.bit_generator.state = rng.bit_generator.state  # the same draws train_step makes: real half batch, then z
    gan_lib.generate_real_samples(data, 8, twin)
    z = gan_lib.generate_latent_points(LATENT, 8, twin)
    want = keras.ops.convert_to_numpy(g.stateless_call(*state(g), z, training=True)[0])
    g_stats = values(g.non_trainable_variables)
    gan_lib.train_step(g, d, gan, data, LATENT, 16, rng, gan_lib.check_panel(arch="dcgan"))
    np.testing.assert_allclose(seen[1], want, atol=1e-5, err_msg="D's fakes were not made with G in training mode")
    assert all_changed(g_stats, values(g.non_trainable_variables))


def check_fused():
    """The fused step: every weight learns, G's update leaves D's weights alone, and each BatchNorm pass is
    replayed exactly (D: real half, fake half, G's step, all in training mode; G: the fakes for D, G's step)."""
    g, d, gan = tiny()
    step = FusedStep(g, d, gan, images(), gan_lib.check_panel(n_batch=16, arch="dcgan"))
    d_w, g_w = values(d.trainable_variables), values(g.trainable_variables)
    step()
    step.read()
    assert all_changed(d_w, values(d.trainable_variables)), "the fused step left some of D's weights (gamma, beta) alone"
    assert all_changed(g_w, values(g.trainable_variables)), "the fused step left some of G's weights (gamma, beta) alone"

    # The replay needs inputs known in advance: every real image the same, and G's projection zeroed so that
    # G draws one image c whatever z and however many (its BatchNorm then sees the same statistics every time).
    g, d, gan = tiny()
    d.optimizer.learning_rate = 0.0  # D's weights stay put, so its three passes can be replayed; G's update must not move them
    g.layers[0].kernel.assign(np.zeros(g.layers[0].kernel.shape, "float32"))
    real = np.repeat(images()[:1], 64, axis=0)
    (g_tv, g_ntv), (d_tv, d_ntv) = state(g), state(d)
    zeros = np.zeros((16, LATENT), "float32")
    c, g_ntv1 = g.stateless_call(g_tv, g_ntv, zeros[:8], training=True)  # the fakes for D: G as it trains
    _, g_ntv2 = g.stateless_call(g_tv, g_ntv1, zeros, training=True)  # G's step
    _, d_ntv1 = d.stateless_call(d_tv, d_ntv, real[:8], training=True)  # D learns from the real half...
    _, d_ntv2 = d.stateless_call(d_tv, d_ntv1, c, training=True)  # ...the fake half...
    _, d_ntv3 = d.stateless_call(d_tv, d_ntv2, keras.ops.concatenate([c, c]), training=True)  # ...and G's step
    d_w = values(d.trainable_variables)
    step = FusedStep(g, d, gan, real, gan_lib.check_panel(n_batch=16, arch="dcgan"))
    step()
    step.read()
    assert none_changed(d_w, values(d.trainable_variables)), "the fused G step changed D's weights"
    assert not all(np.allclose(a, b, rtol=1e-3) for a, b in zip(values(d_ntv2), values(d_ntv3))), "the replay cannot tell"
    for want, have in zip(values(d_ntv3), values(d.non_trainable_variables), strict=True):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-6, err_msg="D's moving statistics are not those of "
                                   "three training-mode passes: real half, fake half and G's step")
    for want, have in zip(values(g_ntv2), values(g.non_trainable_variables), strict=True):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-6, err_msg="G's moving statistics are not those of "
                                   "two training-mode passes: the fakes for D and G's step")


# ---------------------------------------------------------------- the models


def test_parameter_counts():
    """64 x 64 x 3: PyTorch's DCGAN (2,765,568 and 3,576,704 trainable) plus the biases dcgan.py keeps."""
    for width, d_count, g_count in ((64, 2_767_425, 3_578_627), (16, 175_761, 378_563)):
        d, g = define_dcgan_discriminator(width=width), define_dcgan_generator(width=width)
        assert (d.count_params(), g.count_params()) == (d_count, g_count)
    trainable = sum(int(np.prod(v.shape)) for v in d.trainable_weights), sum(int(np.prod(v.shape)) for v in g.trainable_weights)
    assert trainable == (175_313, 378_083)


@pytest.mark.parametrize("size,strided", [(32, 3), (64, 4), (128, 5)])
def test_the_size_sets_the_depth(size, strided):
    d = define_dcgan_discriminator((size, size, 1), width=2)
    g = define_dcgan_generator(8, (size, size, 1), width=2)
    convs = [layer for layer in d.layers if isinstance(layer, keras.layers.Conv2D)]
    deconvs = [layer for layer in g.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert len(convs) == len(deconvs) == strided  # G projects to 4 x 4 with a Dense layer, then doubles
    assert [c.filters for c in convs] == [2 * 2**i for i in range(strided)] and convs[-1].output.shape[1:3] == (4, 4)
    assert len(batch_norms(d)) == strided - 1 and len(batch_norms(g)) == strided  # after all but D's first, G's last
    assert d.output_shape == (None, 1) and g.output_shape == (None, size, size, 1)
    assert d.layers[-1].dtype_policy.name == g.layers[-1].dtype_policy.name == "float32"


@pytest.mark.parametrize("shape,message", [
    ((48, 48, 3), r"4 \* 2\^k pixels .* got in_shape=\(48, 48, 3\)"),
    ((64, 32, 3), r"square images"),
    ((4, 4, 3), r"8, 16, 32"),
    ((None, None, 3), r"fixed size"),
])
def test_other_sizes_are_refused(shape, message):
    with pytest.raises(ValueError, match=message):
        define_dcgan_discriminator(shape)
    with pytest.raises(ValueError, match=message.replace("in_shape", "out_shape")):
        define_dcgan_generator(100, shape)


def test_bad_width_is_refused():
    with pytest.raises(ValueError, match="width .* at least 1, got 0"):
        define_dcgan_discriminator(width=0)
    with pytest.raises(ValueError, match="width=100000 makes a model"):
        define_dcgan_generator(width=100_000)


def test_initialisation_is_the_papers():
    """Kernels from N(0, 0.02); BatchNorm's gamma from N(1, 0.02), beta 0."""
    gan_lib.set_seed(0)
    d, g = define_dcgan_discriminator(width=16), define_dcgan_generator(width=16)
    for model in (d, g):
        kernels = np.concatenate([keras.ops.convert_to_numpy(v).ravel() for v in model.trainable_weights
                                  if v.path.endswith("kernel")])
        assert abs(kernels.mean()) < 1e-3 and kernels.std() == pytest.approx(0.02, rel=0.02)
        gammas = np.concatenate([keras.ops.convert_to_numpy(b.gamma) for b in batch_norms(model)])
        assert gammas.mean() == pytest.approx(1.0, abs=0.005) and gammas.std() == pytest.approx(0.02, rel=0.2)
        assert all(not keras.ops.convert_to_numpy(b.beta).any() for b in batch_norms(model))


def test_mixed_precision_keeps_the_outputs_float32():
    """Under mixed_bfloat16 the layers compute in bfloat16 (BatchNorm upcasts inside), D's sigmoid and G's tanh
    in float32, weights stay float32; the loop and the fused step both train."""
    gan_lib.set_precision("mixed_bfloat16")
    try:
        g, d, gan = tiny()
    finally:
        gan_lib.set_precision("float32")
    z = gan_lib.generate_latent_points(LATENT, 4, np.random.default_rng(0))
    assert g.layers[1].compute_dtype == "bfloat16" and {v.dtype for v in d.weights + g.weights} == {"float32"}
    assert keras.backend.standardize_dtype(g(z).dtype) == keras.backend.standardize_dtype(d(g(z)).dtype) == "float32"
    panel = gan_lib.check_panel(arch="dcgan", n_batch=16, precision="mixed_bfloat16")
    row = gan_lib.train_step(g, d, gan, images(), LATENT, 16, np.random.default_rng(0), panel)
    step = FusedStep(g, d, gan, images(), panel)
    step()
    assert all(np.isfinite(list(r.values())).all() for r in [row, *step.read()])


def test_models_save_and_load_in_safe_mode(tmp_path):
    g, d, _ = tiny()
    g(np.ones((4, LATENT), "float32"), training=True)  # move the moving statistics off their start
    d.optimizer.build(d.trainable_variables)  # saved with its slots (unbuilt, loading it warns)
    z = gan_lib.generate_latent_points(LATENT, 4, np.random.default_rng(0))
    for model, x in ((g, z), (d, images()[:4])):
        path = str(tmp_path / f"{model.name}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)),
                                   keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-6)
    assert loaded.optimizer is not None and loaded.loss == "binary_crossentropy"  # D comes back compiled


def test_build_models_follows_the_panel():
    g, d, gan = gan_lib.build_models({"arch": "dcgan", "width": 4, "latent_dim": 8, "d_lr": 0.001}, (16, 16, 3))
    assert len(batch_norms(d)) == 1 and g.input_shape == (None, 8) and isinstance(gan, gan_lib.models.CombinedGAN)
    assert float(d.optimizer.learning_rate) == pytest.approx(0.001) and d.layers[0].filters == 4
    g, d, _ = gan_lib.build_models({}, (32, 32, 3))
    assert (d.count_params(), g.count_params()) == (522_497, 1_466_115)  # the tutorial's, by default


# ---------------------------------------------------------------- BatchNorm in the combined model


@pytest.mark.parametrize("first", ["d", "g"])
def test_loop_batchnorm(first):
    check_loop(first)


def test_loop_d_learns_from_training_mode_fakes():
    check_loop_fakes()


def test_fused_step_batchnorm():
    check_fused()


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_other_backends(name):
    checks = {"torch": "t.check_loop('d'); t.check_loop('g'); t.check_loop_fakes(); t.check_fused()",
              "jax": "t.check_loop('g'); t.check_fused()"}[name]  # JAX: fewer builds (slow on a CPU)
    script = f"import sys; sys.path.insert(0, 'tests'); import test_dcgan as t\n{checks}; print('dcgan OK')"
    assert "dcgan OK" in run_on_backend(name, script, timeout=400)


# ---------------------------------------------------------------- training runs


def dcgan_run(data, run_dir, epochs, resume=False):
    panel = {"arch": "dcgan", "width": 8, "n_samples": 8, "grid": 2, "load_weights": resume,
             "checkpoint_every": 1, "summarization": 1}  # summaries every epoch: the same draws straight or resumed
    gan_lib.set_seed(5)
    g, d, gan = gan_lib.build_models(panel, data.shape[1:])
    return gan_lib.train(g, d, gan, data, LATENT, n_epochs=epochs, n_batch=32, run_dir=str(run_dir), verbose=0,
                         panel=panel)


def test_train_a_dcgan_and_resume_exactly(tmp_path):
    """The tutorial loop on 32 x 32 shapes, width 8: 2 epochs straight equal 1 epoch and a resumed one, bit for bit
    (BatchNorm's moving statistics are in the checkpoints); a resume keeps its arch."""
    data = gan_lib.load_real_samples("shapes", 64)
    straight = dcgan_run(data, tmp_path / "a", 2)
    assert len(straight) == 4
    assert all(np.isfinite(v) for row in straight for k, v in row.items() if k not in gan_lib.runs.EVAL_COLUMNS)
    panel = json.load(open(tmp_path / "a" / "panel.json"))
    assert (panel["arch"], panel["width"], panel["label_smoothing"]) == ("dcgan", 8, 0.1)  # dcgan's default, recorded
    g = keras.saving.load_model(str(tmp_path / "a" / "generator.keras"), compile=False, safe_mode=True)
    assert g.output_shape == (None, 32, 32, 3) and len(batch_norms(g)) == 3
    dcgan_run(data, tmp_path / "b", 1)
    assert dcgan_run(data, tmp_path / "b", 2, resume=True) == straight
    last = "checkpoints/ckpt-0002-00000.npz"
    with np.load(tmp_path / "a" / last) as a, np.load(tmp_path / "b" / last) as b:
        assert all(same(a[k], b[k]) for k in a.files), "the resumed state differs"
    g, d, gan = gan_lib.build_models({}, data.shape[1:])
    with pytest.raises(ValueError, match="panel key 'arch' is tutorial but run .* was made with dcgan"):
        gan_lib.train(g, d, gan, data, n_epochs=3, n_batch=32, run_dir=str(tmp_path / "a"), verbose=0,
                      panel={"load_weights": True, "arch": "tutorial", "n_samples": 8})


def test_command_line_trains_a_dcgan(tmp_path, capsys):
    """--arch dcgan: the fused step (the command line's default) on the models build_models makes."""
    from gan_lib.__main__ import build_parser, main, panel_from_args

    def panel_of(*args):
        return panel_from_args(build_parser().parse_args(["train", *args]))

    assert (panel_of("--arch", "dcgan")["label_smoothing"], panel_of("--arch", "dcgan")["width"]) == (0.1, 64)
    assert panel_of("--arch", "dcgan", "--set", "label_smoothing=0")["label_smoothing"] == 0.0  # a set value wins
    with pytest.raises(ValueError, match="panel key 'arch' must be one of tutorial, dcgan, .*got 'gan'"):
        panel_of("--arch", "gan")
    run_dir = tmp_path / "r"
    assert main(["train", "--arch", "dcgan", "--dataset", "shapes", "--limit", "32", "--epochs", "1", "--batch", "32",
                 "--set", "width=4", "--set", "n_samples=8", "--quiet", "--out", str(run_dir)]) == 0, capsys.readouterr().err
    panel = json.load(open(run_dir / "panel.json"))
    assert (panel["arch"], panel["width"], panel["label_smoothing"], panel["fast"]) == ("dcgan", 4, 0.1, True)
    g = keras.saving.load_model(str(run_dir / "generator.keras"), compile=False, safe_mode=True)
    assert len(batch_norms(g)) == 3 and g.output_shape == (None, 32, 32, 3)
    assert panel_of("--resume", str(run_dir))["arch"] == "dcgan"  # a resume keeps its arch
