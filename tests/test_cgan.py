"""The conditional GAN and the ACGAN (gan_lib/cgan.py): sizes and parameter counts, the label is used, the ACGAN's
losses, who learns in which step, labelled data from every source, exact resume on the loop and the fused step, the
command line, and bad input.

The torch and JAX fused steps on a conditional GAN run in tests/test_backends.py (FUSED_SCRIPT).
"""

import json

import keras
import numpy as np
import pytest

import gan_lib
from conftest import changed, same, snapshot
from gan_lib import losses
from gan_lib.batches import class_grid, n_classes_of
from gan_lib.cgan import acgan_classifier, define_acgan_discriminator, define_cgan_discriminator, define_cgan_generator
from gan_lib.data import generate_fake_samples, generate_latent_points, generate_real_samples, load_labelled_samples
from gan_lib.fused import FusedStep
from gan_lib.losses import acgan_loss
from gan_lib.photos import read_image_folder

LATENT = 100


def assert_one_line_error(result, text):
    """The command failed with one line on stderr, `error: ...` holding text (as tests/test_cli.py checks)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], result.stderr


@pytest.fixture(scope="module")
def labelled():
    """64 shapes at 16 x 16 (the same code paths as 32 x 32, quicker) and their classes 0..9."""
    x, y = load_labelled_samples("shapes", 64)
    return [x[:, ::2, ::2], y]


def tiny(seed=0, size=16, n_classes=10, arch="cgan"):
    gan_lib.set_seed(seed)
    return gan_lib.build_models({"arch": arch}, (size, size, 3), n_classes)


# ---------------------------------------------------------------- the models


def test_parameter_counts_and_shapes():
    """The tutorial's models (522,497 and 1,466,115) plus the label branches and one more input map each."""
    d, g = define_cgan_discriminator(), define_cgan_generator()
    assert (d.count_params(), g.count_params()) == (616_757, 1_469_479)
    book = define_cgan_discriminator(projection=False)  # Brownlee's D: no projection
    assert book.count_params() - 522_497 == 10 * 50 + 50 * 1024 + 1024 + 3 * 3 * 64  # embedding, Dense, 4th channel
    assert d.count_params() - book.count_params() == 10 * 4096  # the projection: one vector per class
    assert g.count_params() - 1_466_115 == 10 * 50 + 50 * 16 + 16 + 4 * 4 * 128  # embedding, Dense, 257th map
    z, classes = generate_latent_points(LATENT, 5, np.random.default_rng(0), n_classes=10)
    assert z.shape == (5, LATENT) and classes.dtype == np.int32 and classes.shape == (5,)
    images = keras.ops.convert_to_numpy(g([z, classes]))  # Keras refuses a list of a tensor and an array: NumPy both
    assert images.shape == (5, 32, 32, 3) and d([images, classes]).shape == (5, 1)
    assert n_classes_of(g) == n_classes_of(d) == 10 and n_classes_of(gan_lib.define_generator(LATENT)) == 0
    d1, g1 = define_cgan_discriminator((32, 32, 1), n_classes=3), define_cgan_generator(8, 3, (32, 32, 1))
    assert g1.output_shape == (None, 32, 32, 1) and n_classes_of(g1) == n_classes_of(d1) == 3
    with pytest.raises(ValueError, match="n_classes, an integer of at least 2, got 1"):
        define_cgan_generator(n_classes=1)


def test_the_label_changes_what_both_models_do():
    g, d, _ = tiny()
    z = np.repeat(generate_latent_points(LATENT, 1, np.random.default_rng(0)), 2, axis=0)
    images = keras.ops.convert_to_numpy(g([z, np.array([0, 7], np.int32)]))
    assert not np.allclose(images[0], images[1]), "G ignores its label"
    same_image = np.repeat(images[:1], 2, axis=0)
    scores = keras.ops.convert_to_numpy(d([same_image, np.array([0, 7], np.int32)]))
    assert scores[0, 0] != scores[1, 0], "D ignores its label"


def test_the_projection_adds_the_class_vector_dot_the_features():
    """D's logit is Dense(1) of the features plus e_y . features (Miyato and Koyama): moving class 7's vector by v
    moves the logit of (image, 7) by v . features and leaves (image, 0) alone."""
    _, d, _ = tiny()
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    labels = np.array([0, 7], np.int32)
    logit = keras.Model(d.inputs, d.get_layer("d_logit").output)  # D's output before the sigmoid, (n, 1)
    features = keras.Model(d.inputs, d.get_layer("d_projection_score").input[0])  # (n, 4096) after the dropout
    table = d.get_layer("d_projection").embeddings
    before = keras.ops.convert_to_numpy(logit([images, labels], training=False))[:, 0]
    v = np.sign(np.random.default_rng(1).normal(size=table.shape[1])).astype("float32")  # +-1 for each feature
    table.assign(keras.ops.convert_to_numpy(table) + np.outer(np.arange(10) == 7, v))
    after = keras.ops.convert_to_numpy(logit([images, labels], training=False))[:, 0]
    f = keras.ops.convert_to_numpy(features([images, labels], training=False))
    assert abs(f[1] @ v) > 0.1  # a move the check below cannot miss
    np.testing.assert_allclose(after - before, [0.0, f[1] @ v], rtol=1e-4, atol=1e-5)


def test_the_projection_is_float32_under_mixed_precision():
    """Under mixed_bfloat16 the features are bfloat16; the projection's table, its score and D's output stay float32."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        d = define_cgan_discriminator((16, 16, 3), n_classes=10)
        out = d([np.zeros((2, 16, 16, 3), "float32"), np.array([1, 2], np.int32)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert d.get_layer("d_projection").embeddings.dtype == "float32"
    assert keras.backend.standardize_dtype(out.dtype) == "float32" and np.isfinite(keras.ops.convert_to_numpy(out)).all()


def test_the_acgan_discriminator_sees_the_image_alone_and_names_its_class():
    """563,467 parameters: the tutorial's D plus a softmax head of 10; output [P(real), q], q the probability the
    class head gives the label, so the label changes q and nothing else."""
    d = define_acgan_discriminator()
    assert d.count_params() == 522_497 + 4096 * 10 + 10 and d.output_shape == (None, 2) and n_classes_of(d) == 10
    images = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype("float32")
    probs = keras.ops.convert_to_numpy(acgan_classifier(d)(images))  # (3, 10), each row sums to 1
    outs = [keras.ops.convert_to_numpy(d([images, np.full(3, label, np.int32)])) for label in (0, 7)]
    for label, out in zip((0, 7), outs):
        np.testing.assert_allclose(out[:, 1], probs[:, label], rtol=1e-5)
    assert not np.allclose(outs[0][:, 1], outs[1][:, 1])  # the label picks another class's probability
    np.testing.assert_allclose(outs[0][:, 0], outs[1][:, 0])  # and leaves P(real) alone


def test_acgan_losses_add_the_class_cross_entropy():
    """D's and G's loss: binary cross-entropy of P(real) plus sparse categorical cross-entropy of the class asked
    for, in Keras's compiled loss (the loop) and in the fused step's; the saturating objective adds it too."""
    g, d, gan = tiny(arch="acgan")
    images = np.random.default_rng(1).uniform(-1, 1, (6, 16, 16, 3)).astype("float32")
    labels = np.array([0, 1, 2, 7, 8, 9], np.int32)
    out = d([images, labels], training=False)
    y = np.array([[1], [1], [1], [0], [0], [0]], "float32")
    bce = float(keras.losses.BinaryCrossentropy()(y, out[:, :1]))
    ce = float(keras.losses.SparseCategoricalCrossentropy()(labels, acgan_classifier(d)(images, training=False)))
    assert ce > 0.5 and float(losses.discriminator_loss(y, out)) == pytest.approx(bce + ce, rel=1e-5)
    assert float(keras.ops.mean(acgan_loss(y, out))) == pytest.approx(bce + ce, rel=1e-5)  # what train_on_batch uses
    ones = np.ones((6, 1), "float32")
    assert float(losses.generator_loss(out)) == pytest.approx(float(keras.losses.BinaryCrossentropy()(ones, out[:, :1])) + ce,
                                                             rel=1e-5)
    saturating = -float(keras.losses.BinaryCrossentropy()(0 * ones, out[:, :1])) + ce
    assert float(losses.generator_loss(out, "saturating")) == pytest.approx(saturating, rel=1e-5)
    assert float(keras.ops.mean(gan_lib.saturating_loss(ones, out))) == pytest.approx(saturating, rel=1e-5)
    assert gan.loss is acgan_loss and d.loss is acgan_loss


@pytest.mark.parametrize("arch", ["cgan", "acgan"])
def test_models_save_and_load_in_safe_mode(tmp_path, arch):
    g, d, gan = tiny(arch=arch)
    assert isinstance(gan, gan_lib.models.ConditionalGAN)
    d.optimizer.build(d.trainable_variables)  # saved with its slots (unbuilt, loading it warns)
    inputs = class_grid(generate_latent_points(LATENT, 3, np.random.default_rng(0)), 10)  # 30 = a row per class
    for model, x in ((g, inputs), (d, [np.zeros((4, 16, 16, 3), "float32"), np.arange(4, dtype=np.int32)])):
        path = str(tmp_path / f"{model.name}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)),
                                   keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-6)
        assert n_classes_of(loaded) == 10


# ---------------------------------------------------------------- who learns in which step


@pytest.mark.parametrize("arch, first", [("cgan", "d"), ("cgan", "g"), ("acgan", "d")])
def test_d_learns_in_its_step_and_only_g_in_the_combined_one(labelled, arch, first):
    g, d, gan = tiny(arch=arch)
    rng = np.random.default_rng(0)

    def g_step():
        before_d, before_g = snapshot(d), snapshot(g)
        z = generate_latent_points(LATENT, 16, rng, n_classes=10)
        gan.train_on_batch(z, np.ones((16, 1), "float32"))
        assert not changed(before_d, snapshot(d)), "the combined step changed D"
        assert all(not np.array_equal(a, b) for a, b in zip(before_g, snapshot(g))), "the combined step left part of G"

    if first == "g":
        g_step()
    for x, y in (generate_real_samples(labelled, 8, rng), generate_fake_samples(g, LATENT, 8, rng, training=True)):
        assert isinstance(x, list) and x[1].shape == (8,)
        before_d, before_g = snapshot(d), snapshot(g)
        d.train_on_batch(x, y)
        assert all(not np.array_equal(a, b) for a, b in zip(before_d, snapshot(d))), "D's step left part of D"
        assert not changed(before_g, snapshot(g)), "D's step changed G"
    g_step()


def test_the_real_images_keep_their_own_classes(labelled):
    rng = np.random.default_rng(3)
    (x, classes), y = generate_real_samples(labelled, 20, rng)
    index = [int(np.flatnonzero((labelled[0] == image).all(axis=(1, 2, 3)))[0]) for image in x]
    assert (labelled[1][index] == classes).all() and (y == 1).all()


@pytest.mark.parametrize("arch", ["cgan", "acgan"])
def test_fused_step_learns_and_leaves_d_alone_in_gs_update(labelled, arch):
    g, d, gan = tiny(arch=arch)
    step = FusedStep(g, d, gan, labelled, gan_lib.check_panel(arch=arch, n_batch=16, label_noise=0.1))
    before_d, before_g = snapshot(d), snapshot(g)
    step()
    assert all(np.isfinite(list(row.values())).all() for row in step.read())
    assert changed(before_d, snapshot(d)) and changed(before_g, snapshot(g)), "the fused step: a model did not learn"
    d.optimizer.learning_rate = 0.0
    before_d, before_g = snapshot(d), snapshot(g)
    step()
    step.read()
    assert not changed(before_d, snapshot(d)), "the fused step's G update moved D"
    assert changed(before_g, snapshot(g))


@pytest.mark.parametrize("fast", [False, True], ids=["loop", "fused"])
def test_d_steps_g_steps_and_a_mixed_batch(labelled, fast, monkeypatch):
    """Panel keys d_steps, g_steps, mixed_batch (tests/test_steps.py) on a conditional GAN: 2 mixed D updates, each on
    [images, labels] of both halves, and 3 G updates."""
    g, d, gan = tiny()
    seen = []
    learn = d.train_on_batch
    monkeypatch.setattr(d, "train_on_batch", lambda x, y: seen.append((x, y)) or learn(x, y))
    panel = gan_lib.check_panel(arch="cgan", n_batch=16, d_steps=2, g_steps=3, mixed_batch=True)
    if fast:
        step = FusedStep(g, d, gan, labelled, panel)
        step()
        row = step.read()[0]
    else:
        row = gan_lib.training.train_step(g, d, gan, labelled, LATENT, 16, np.random.default_rng(0), panel)
        assert [(x[0].shape, x[1].shape, y.shape) for x, y in seen] == [((16, 16, 16, 3), (16,), (16, 1))] * 2
    count = [int(keras.ops.convert_to_numpy(m.optimizer.iterations)) for m in (d, gan)]
    assert count == [2, 3] and row["d_loss_real"] == row["d_loss_fake"] and np.isfinite(list(row.values())).all()


# ---------------------------------------------------------------- labelled data


def test_labelled_samples_and_latent_points():
    x, y = load_labelled_samples("shapes", 30)
    assert x.shape == (30, 32, 32, 3) and y.dtype == np.int32 and (y == gan_lib.make_shapes(30)[1]).all()
    z = generate_latent_points(LATENT, 4, np.random.default_rng(0))
    assert isinstance(z, np.ndarray)  # unconditional: unchanged
    grid_z, grid_classes = class_grid(np.ones((3, 2), "float32"), 4)
    assert grid_z.shape == (12, 2) and grid_classes.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    g, _, _ = tiny()
    (images, classes), _ = generate_fake_samples(g, LATENT, 6, np.random.default_rng(0), classes=4)
    assert images.shape == (6, 16, 16, 3) and classes.tolist() == [4] * 6
    with pytest.raises(ValueError, match="label 10 is out of range for a model of 10 classes"):
        generate_fake_samples(g, LATENT, 2, classes=10)
    with pytest.raises(ValueError, match="not conditional"):
        generate_fake_samples(gan_lib.define_generator(LATENT), LATENT, 2, classes=1)


def write_images(folder, names, size=12):
    from PIL import Image

    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((size, size + 4, 3), 20 * i, np.uint8)).save(path)


def test_a_folder_of_class_subfolders_is_labelled_and_cached(tmp_path):
    write_images(tmp_path / "photos", ["dogs/a.png", "cats/b.png", "cats/c.png", "dogs/d.png", "emus/e.png"])
    (tmp_path / "photos" / "cats" / "broken.png").write_bytes(b"not a png")  # skipped: its label must go too
    for cache in (True, True, False):  # written, then read from the cache, then decoded again
        with pytest.warns(UserWarning, match="skipped 1 of 6"):
            x, y = read_image_folder(str(tmp_path / "photos"), 8, cache=cache, labels=True)
        assert x.shape == (5, 8, 8, 3) and y.tolist() == [0, 0, 1, 1, 2]  # cats, dogs, emus: sorted names
        assert x[:, 0, 0, 0].tolist() == [20, 40, 0, 60, 80]  # cats/b, cats/c, dogs/a, dogs/d, emus/e
    with pytest.warns(UserWarning):
        x, y = load_labelled_samples(str(tmp_path / "photos"), limit=3)
    assert x.shape == (3, 32, 32, 3) and y.tolist() == [0, 0, 1]


def test_unlabelled_data_is_refused_with_one_clear_error(tmp_path):
    write_images(tmp_path / "flat", ["a.png", "b.png"])
    with pytest.raises(ValueError, match="has no subfolders of images, so its images have no classes"):
        load_labelled_samples(str(tmp_path / "flat"))
    write_images(tmp_path / "mixed", ["cats/a.png", "b.png"])
    with pytest.raises(ValueError, match="lies outside the class subfolders"):
        load_labelled_samples(str(tmp_path / "mixed"))
    np.savez(tmp_path / "x.npz", x=np.zeros((4, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="holds images `x` but no labels `y`"):
        load_labelled_samples(str(tmp_path / "x.npz"))
    np.savez(tmp_path / "xy.npz", x=np.zeros((4, 8, 8, 3), np.uint8), y=np.array([0, 1, 2, 1]))
    assert load_labelled_samples(str(tmp_path / "xy.npz"))[1].tolist() == [0, 1, 2, 1]
    np.savez(tmp_path / "short.npz", x=np.zeros((4, 8, 8, 3), np.uint8), y=np.array([0, 1]))
    with pytest.raises(ValueError, match="2 labels for 4 images"):
        load_labelled_samples(str(tmp_path / "short.npz"))


@pytest.mark.parametrize("labels,message", [
    (None, "need a class label per image"),
    (np.arange(10) % 10, "10 labels for 64 images"),
    (np.full(64, 10), "label 10 is out of range for a model of 10 classes"),
    (np.full(64, -1), "class indices 0..K-1, got -1"),
    (np.full(64, 0.5), "whole class indices"),
    (np.zeros((64, 10)), "one-hot labels need y.argmax"),
])
def test_bad_labels_are_refused_before_training(labelled, tmp_path, labels, message):
    g, d, gan = tiny()
    data = labelled[0] if labels is None else [labelled[0], labels]
    with pytest.raises(ValueError, match=message):
        gan_lib.train(g, d, gan, data, LATENT, n_epochs=1, n_batch=16, run_dir=str(tmp_path / "r"), verbose=0,
                      panel={"arch": "cgan"})
    assert not (tmp_path / "r").exists()


def test_labels_for_models_that_take_none_are_refused(labelled, tmp_path):
    plain = gan_lib.build_models({}, (16, 16, 3))
    with pytest.raises(ValueError, match="the dataset has labels but the models are not conditional"):
        gan_lib.train(*plain, labelled, LATENT, n_epochs=1, n_batch=16, run_dir=str(tmp_path / "r"), verbose=0)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- training runs and exact resume


def cgan_run(data, run_dir, epochs, fast=False, resume=False, arch="cgan"):
    panel = {"arch": arch, "n_samples": 8, "grid": 2, "load_weights": resume, "checkpoint_every": 1, "fast": fast,
             "summarization": 1, "eval_every": 2}  # summaries every epoch: the same draws straight or resumed
    gan_lib.set_seed(5)
    g, d, gan = gan_lib.build_models(panel, data[0].shape[1:], 10)
    return gan_lib.train(g, d, gan, data, LATENT, n_epochs=epochs, n_batch=32, run_dir=str(run_dir), verbose=0,
                         panel=panel)


@pytest.mark.parametrize("fast, arch", [(False, "cgan"), (True, "acgan")], ids=["loop-cgan", "fused-acgan"])
def test_train_a_cgan_and_resume_exactly(labelled, tmp_path, fast, arch):
    """2 epochs straight equal 1 epoch and a resumed one, bit for bit: weights, optimizers, dropout and RNG state.
    (Both archs take both paths; one each keeps the test short: the resume code does not look at the arch.)"""
    straight = cgan_run(labelled, tmp_path / "a", 2, fast, arch=arch)
    assert len(straight) == 4 and straight[1]["g_grad_norm"] > 0  # measured with labels (diagnosis.Monitor)
    assert all(np.isfinite(v) for row in straight for k, v in row.items() if v is not None)
    cgan_run(labelled, tmp_path / "b", 1, fast, arch=arch)
    assert cgan_run(labelled, tmp_path / "b", 2, fast, resume=True, arch=arch) == straight
    last = "checkpoints/ckpt-0002-00000.npz"
    with np.load(tmp_path / "a" / last) as a, np.load(tmp_path / "b" / last) as b:
        assert all(same(a[k], b[k]) for k in a.files), "the resumed state differs"
        assert a["fixed_z"].shape == (2, LATENT)  # the grid's columns; its rows are the classes
    from PIL import Image

    assert Image.open(tmp_path / "a" / "generated_plot_e002.png").size == (2 * 2 * 16, 10 * 2 * 16)  # a row per class
    assert (tmp_path / "a" / "history.png").exists()


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    from gan_lib.__main__ import main

    run_dir = tmp_path_factory.mktemp("cgan") / "run"  # the ACGAN: its G is the cGAN's; --arch cgan: the last test
    assert main(["train", "--arch", "acgan", "--dataset", "shapes", "--limit", "64", "--epochs", "1", "--batch", "32",
                 "--set", "n_samples=8", "--set", "grid=3", "--quiet", "--out", str(run_dir)]) == 0
    return run_dir


def test_command_line_trains_an_acgan(cli_run):
    panel = json.loads((cli_run / "panel.json").read_text())
    assert (panel["arch"], panel["fast"], panel["label_smoothing"]) == ("acgan", True, 0.0)
    g = keras.saving.load_model(str(cli_run / "generator.keras"), compile=False, safe_mode=True)
    assert n_classes_of(g) == 10 and g.output_shape == (None, 32, 32, 3)


def test_generate_draws_a_row_per_class_or_one_class(cli_run, in_process, tmp_path):
    from PIL import Image

    result = in_process("generate", str(cli_run), "--n", "4", "--out", str(tmp_path / "all.png"))
    assert result.returncode == 0 and "a row per class" in result.stdout, result.stderr
    assert Image.open(tmp_path / "all.png").size == (4 * 64, 10 * 64)  # 4 columns, 10 rows, pixels drawn 2x2
    result = in_process("generate", str(cli_run), "--n", "3", "--label", "3", "--out", str(tmp_path / "3.png"))
    assert result.returncode == 0 and "of class 3" in result.stdout, result.stderr
    assert Image.open(tmp_path / "3.png").size == (3 * 64, 3 * 64)
    assert_one_line_error(in_process("generate", str(cli_run), "--label", "10"), "0 to 9, got 10")
    assert_one_line_error(in_process("generate", str(cli_run), "--label", "-1"), "0 to 9, got -1")


def test_label_on_a_generator_that_is_not_conditional(trained_run, in_process):
    assert_one_line_error(in_process("generate", trained_run[0], "--label", "3"), "is not a conditional generator")


def test_evaluate_reports_the_conditional_accuracy(cli_run, in_process, classifier_cache):
    result = in_process("evaluate", str(cli_run), "--metrics", "modes,conditional_accuracy", "--n", "40")
    assert result.returncode == 0, result.stderr
    scores = json.loads((cli_run / "metrics.json").read_text())["scores"]
    assert 0 <= scores["conditional_accuracy"]["accuracy"] <= 1 and len(scores["conditional_accuracy"]["per_class"]) == 10
    assert "classes_found" in scores["modes"]
    lines = [line for line in result.stdout.splitlines() if line.split()[:1] in (["modes"], ["conditional_accuracy"])]
    columns = {len(line) - len(line.split(maxsplit=1)[1]) for line in lines}  # where each value starts
    assert len(lines) == 2 and len(columns) == 1, "the metrics' values are not in one column:\n" + "\n".join(lines)


def test_cgan_needs_labelled_data_on_the_command_line(in_process, tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((8, 32, 32, 3), np.uint8))
    result = in_process("train", "--arch", "cgan", "--dataset", str(tmp_path / "x.npz"), "--out", str(tmp_path / "r"))
    assert_one_line_error(result, "no labels `y`")
    assert not (tmp_path / "r").exists()
