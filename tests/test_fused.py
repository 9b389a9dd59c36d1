"""The fused step (panel key fast): the tutorial's semantics in one compiled function, with every guarantee of the loop.

Its SIGKILL-and-resume proof is in test_checkpoint.py, beside the loop's; other backends in test_backends.py.
"""

import os

import keras
import numpy as np
import pytest

import gan_lib
from conftest import changed, snapshot
from gan_lib import backend, devices, fused


def models(seed=3):
    gan_lib.set_seed(seed)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    return g, d, gan_lib.define_gan(g, d)


def test_each_optimizer_updates_only_its_own_model(shapes_small):
    g, d, gan = models()
    given = {}
    for name, model in (("d", d), ("g", gan)):
        real_apply = model.optimizer.apply

        def spy(grads, variables, name=name, real_apply=real_apply):
            given.setdefault(name, []).append([id(v) for v in variables])  # recorded while tracing
            return real_apply(grads, variables)

        model.optimizer.apply = spy
    step = fused.FusedStep(g, d, gan, shapes_small, gan_lib.check_panel(n_batch=32))
    d_before, g_before = snapshot(d), snapshot(g)
    step()
    (row,) = step.read()
    assert given["d"] == [[id(v) for v in d.trainable_variables]] * 2  # two D updates: real, then fake
    assert given["g"] == [[id(v) for v in g.trainable_variables]]  # one G update, G's weights only
    assert changed(d_before, snapshot(d)) and changed(g_before, snapshot(g))
    assert set(row) == set(fused.VALUES) and 0 <= row["d_x"] <= 1 and row["acc_fake"] in (k / 16 for k in range(17))


def test_the_generator_step_leaves_d_alone(shapes_small):
    """G's update goes through D but must not move it: with D's learning rate at zero, only G changes."""
    g, d, gan = models()
    d.optimizer.learning_rate = 0.0
    step = fused.FusedStep(g, d, gan, shapes_small, gan_lib.check_panel(n_batch=32))
    d_trainable = [keras.ops.convert_to_numpy(v) for v in d.trainable_variables]
    g_before = snapshot(g)
    step()
    step.read()
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(v)) for a, v in zip(d_trainable, d.trainable_variables))
    assert changed(g_before, snapshot(g))


def test_labels_are_smoothed_and_flipped_as_the_panel_says(shapes_small):
    g, d, gan = models()
    step = fused.FusedStep(g, d, gan, shapes_small, gan_lib.check_panel(label_smoothing=0.1, label_noise=0.2))
    real = keras.ops.convert_to_numpy(step.labels(1.0, 20000)).ravel()
    fake = keras.ops.convert_to_numpy(step.labels(0.0, 20000)).ravel()
    assert set(np.unique(real)) == {0.0, np.float32(0.9)} and set(np.unique(fake)) == {0.0, 1.0}
    assert abs(np.mean(real == 0) - 0.2) < 0.015 and abs(np.mean(fake == 1) - 0.2) < 0.015  # 20000 draws: sd 0.003


def test_the_loss_is_the_compiled_one():
    y = np.array([[1.0], [0.9], [0.0], [1.0]], "float32")
    p = np.array([[0.8], [0.3], [0.1], [1.0]], "float32")
    compiled = keras.losses.get("binary_crossentropy")
    assert float(gan_lib.losses.bce(y, p)) == pytest.approx(float(keras.ops.mean(compiled(y, p))), rel=1e-6)
    assert float(gan_lib.losses.bce(y, p)) == pytest.approx(float(keras.losses.BinaryCrossentropy()(y, p)), rel=1e-6)


def test_a_fast_run_writes_the_same_files_and_repeats_exactly(shapes_small, tmp_path):
    def run(name):
        g, d, gan = models(11)
        return gan_lib.train(g, d, gan, shapes_small[:96], 100, n_epochs=2, n_batch=32, run_dir=str(tmp_path / name),
                             verbose=0, panel={"fast": True, "n_samples": 8, "batchloss": 2})

    history = run("a")
    assert run("b") == history
    assert [(r["epoch"], r["batch"], r["step"]) for r in history] == [(e, b, 3 * (e - 1) + b) for e in (1, 2) for b in (1, 2, 3)]
    assert list(history[0]) == gan_lib.runs.HISTORY_COLUMNS
    assert {"panel.json", "history.csv", "history.png", "generated_plot_e002.png", "generator.keras",
            "checkpoints"} <= set(os.listdir(tmp_path / "a"))
    assert gan_lib.read_history(str(tmp_path / "a")) == history
    assert gan_lib.load_panel(str(tmp_path / "a"))["fast"] is True


@pytest.mark.parametrize("streamed", [False, True])
def test_uint8_data_stays_uint8_on_the_device_and_trains_as_float32(shapes_small, tmp_path, monkeypatch, streamed):
    """A quarter of the memory on the device (or in each streamed batch), scaled inside the step: the same run."""
    monkeypatch.setattr(devices, "fits_on_device", lambda nbytes: not streamed)
    pixels = gan_lib.make_shapes(64)[0]
    g, d, gan = models()
    step = fused.FusedStep(g, d, gan, pixels, gan_lib.check_panel(n_batch=32))
    held = step.batches.make(0) if streamed else step.data
    assert keras.backend.standardize_dtype(held.dtype) == "uint8"

    def run(name, data):
        g, d, gan = models(11)
        return gan_lib.train(g, d, gan, data, 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / name),
                             verbose=0, panel={"fast": True, "n_samples": 8})

    assert run("uint8", pixels) == run("float32", gan_lib.scale_images(pixels))


def test_divergence_is_caught_and_named(shapes_small, tmp_path, monkeypatch):
    class Poisoned(fused.FusedStep):  # a numerical blow-up seen from outside: NaN in every real image
        def __init__(self, g_model, d_model, gan_model, dataset, panel):
            super().__init__(g_model, d_model, gan_model, dataset * np.nan, panel)

    monkeypatch.setattr(gan_lib.training, "FusedStep", Poisoned)
    g, d, gan = models()
    with pytest.raises(gan_lib.TrainingDiverged, match=r"epoch 1, batch 1: d_loss_real=nan"):
        gan_lib.train(g, d, gan, shapes_small[:96], 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "r"),
                      verbose=0, panel={"fast": True, "n_samples": 8, "batchloss": 3})
    assert not gan_lib.list_checkpoints(str(tmp_path / "r"))


def test_a_run_keeps_its_step_kind(shapes_small, tmp_path):
    g, d, gan = models()
    run_dir = str(tmp_path / "r")
    gan_lib.train(g, d, gan, shapes_small[:32], 100, n_epochs=1, n_batch=32, run_dir=run_dir, verbose=0,
                  panel={"n_samples": 8})
    with pytest.raises(ValueError, match="panel key 'fast' is True but run .* was made with False"):
        gan_lib.train(g, d, gan, shapes_small[:32], 100, n_epochs=2, n_batch=32, run_dir=run_dir, verbose=0,
                      panel={"load_weights": True, "fast": True, "n_samples": 8})


def test_other_backends_are_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "numpy")
    with pytest.raises(ValueError, match="runs on TensorFlow, JAX and torch, not on numpy.* fast=False"):
        backend.compile_step(lambda: None)


def test_a_dataset_too_big_for_the_device_is_streamed_and_resumes_exactly(shapes_small, tmp_path, monkeypatch):
    """When the data does not fit, real half batches come from the host (one made ahead); all else holds."""
    monkeypatch.setattr(devices, "fits_on_device", lambda nbytes: False)
    g, d, gan = models()
    step = fused.FusedStep(g, d, gan, shapes_small, gan_lib.check_panel(n_batch=32))
    assert step.data is None and step.batches is not None
    batch = keras.ops.convert_to_numpy(step.batches.make(5))
    assert batch.shape == (16, 32, 32, 3) and np.array_equal(batch, keras.ops.convert_to_numpy(step.batches.make(5)))
    assert any(np.array_equal(batch[0], x) for x in shapes_small)  # real images, drawn by step number
    d_before, g_before = snapshot(d), snapshot(g)
    step(0)
    step(1)
    assert step.batches.ahead[0] == 2  # step 2's batch is being made while step 1 runs
    rows = step.read()
    assert len(rows) == 2 and all(np.isfinite(list(r.values())).all() for r in rows)
    assert changed(d_before, snapshot(d)) and changed(g_before, snapshot(g))

    def run(run_dir, epochs, resume=False):
        g, d, gan = models(4)
        panel = {"fast": True, "n_samples": 8, "load_weights": resume, "summarization": 1}
        return gan_lib.train(g, d, gan, shapes_small, n_epochs=epochs, n_batch=32, run_dir=str(run_dir), verbose=0, panel=panel)

    straight = run(tmp_path / "a", 2)
    run(tmp_path / "b", 1)
    assert run(tmp_path / "b", 2, resume=True) == straight
