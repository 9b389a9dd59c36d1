"""Training runs for real: files written, history honest, divergence stopped, runs never overwritten."""

import csv
import json
import os

import keras
import numpy as np
import pytest

import gan_lib
from conftest import changed, snapshot


def test_a_run_writes_its_folder(trained_run):
    run_dir, history = trained_run
    files = set(os.listdir(run_dir))
    assert {"panel.json", "history.csv", "history.png", "generated_plot_e001.png", "generator.keras",
            "generator_model_e001.keras", "checkpoints"} <= files
    assert json.load(open(os.path.join(run_dir, "panel.json")))["n_batch"] == 32
    assert len(history) == 4  # 128 images / 32 per batch
    rows = list(csv.DictReader(open(os.path.join(run_dir, "history.csv"))))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    for row in history:
        assert all(np.isfinite(v) for v in row.values())
        assert 0 <= row["d_x"] <= 1 and 0 <= row["d_g_z"] <= 1
    g = keras.saving.load_model(os.path.join(run_dir, "generator.keras"), compile=False, safe_mode=True)
    assert g.output_shape == (None, 32, 32, 3)
    from PIL import Image

    assert Image.open(os.path.join(run_dir, "generated_plot_e001.png")).size == (4 * 32 * 2, 4 * 32 * 2)
    assert gan_lib.read_history(run_dir) == history


def test_same_seed_same_history(shapes_small, tmp_path):
    def run(name):
        gan_lib.set_seed(11)
        d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
        return gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small[:64], 100, n_epochs=1, n_batch=32,
                             run_dir=str(tmp_path / name), verbose=0, panel={"n_samples": 8})

    assert run("a") == run("b")


def test_summarize_performance_uses_hard_labels(shapes_small, tmp_path):
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    rng = np.random.default_rng(0)
    acc_real, acc_fake = gan_lib.summarize_performance(0, g, d, shapes_small, 100, n_samples=20,
                                                      run_dir=str(tmp_path), rng=rng, verbose=False)
    rng = np.random.default_rng(0)  # the same draws, scored by hand
    x_real, _ = gan_lib.generate_real_samples(shapes_small, 20, rng)
    x_fake, _ = gan_lib.generate_fake_samples(g, 100, 20, rng)
    assert acc_real == np.mean(gan_lib.d_scores(d, x_real) > 0.5)
    assert acc_fake == np.mean(gan_lib.d_scores(d, x_fake) <= 0.5)
    assert (tmp_path / "generated_plot_e001.png").exists() and (tmp_path / "generator.keras").exists()


def test_label_smoothing_and_noise_still_train(shapes_small, tmp_path):
    gan_lib.set_seed(2)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    before = snapshot(d) + snapshot(g)
    history = gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small[:64], 100, n_epochs=1, n_batch=32,
                            run_dir=str(tmp_path / "r"), verbose=0,
                            panel={"label_smoothing": 0.1, "label_noise": 0.1, "n_samples": 8})
    assert changed(before, snapshot(d) + snapshot(g))
    assert all(0 <= row["acc_real"] <= 1 for row in history)


def test_progress_and_tutorial_lines(shapes_small, tmp_path, capsys):
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small[:64], 100, n_epochs=1, n_batch=32,
                  run_dir=str(tmp_path / "r"), panel={"batchloss": 1, "n_samples": 8})
    out = capsys.readouterr().out
    assert ">1, 1/2, d1=" in out and ">1, 2/2, d1=" in out and ", g=" in out
    assert "2/2" in out and ">Accuracy real:" in out


def test_a_run_folder_is_never_overwritten(trained_run, shapes_small):
    run_dir, _ = trained_run
    before = open(os.path.join(run_dir, "history.csv")).read()
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    with pytest.raises(ValueError, match="already holds a run"):
        gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small, 100, n_epochs=1, n_batch=32, run_dir=run_dir)
    assert open(os.path.join(run_dir, "history.csv")).read() == before


def test_models_that_do_not_fit_the_data_or_panel(shapes_small, tmp_path):
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(64)
    gan_model = gan_lib.define_gan(g, d)
    with pytest.raises(ValueError, match="latent points of size 64, but latent_dim is 100"):
        gan_lib.train(g, d, gan_model, shapes_small, 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "a"))
    gray = shapes_small[..., :1]
    with pytest.raises(ValueError, match="shapes do not match"):
        gan_lib.train(g, d, gan_model, gray, 64, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="uint8 images"):
        gan_lib.train(g, d, gan_model, (shapes_small * 127.5 + 127.5).astype(np.uint8), 64, n_epochs=1,
                      n_batch=32, run_dir=str(tmp_path / "c"))
    assert not any((tmp_path / n).exists() for n in "abc")


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(shapes_small, tmp_path, monkeypatch):
    gan_lib.set_seed(4)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan_model = gan_lib.define_gan(g, d)
    run_dir = str(tmp_path / "r")
    gan_lib.train(g, d, gan_model, shapes_small[:64], 100, n_epochs=1, n_batch=32, run_dir=run_dir,
                  verbose=0, panel={"n_samples": 8})
    good = gan_lib.list_checkpoints(run_dir)
    good_bytes = [open(p, "rb").read() for p in good]
    real_samples = gan_lib.training.generate_real_samples

    def exploding(dataset, n, rng):  # what a numerical blow-up looks like from outside: NaN everywhere
        x, y = real_samples(dataset, n, rng)
        return x * np.nan, y

    monkeypatch.setattr(gan_lib.training, "generate_real_samples", exploding)
    with pytest.raises(gan_lib.TrainingDiverged, match=r"epoch 2, batch 1: d_loss_real=nan"):
        gan_lib.train(g, d, gan_model, shapes_small[:64], 100, n_epochs=2, n_batch=32, run_dir=run_dir,
                      verbose=0, panel={"load_weights": True, "n_samples": 8})
    assert gan_lib.list_checkpoints(run_dir) == good
    assert [open(p, "rb").read() for p in good] == good_bytes
    assert len(gan_lib.read_history(run_dir)) == 2  # the history up to the bad step


def test_resume_refuses_a_different_batch_size(trained_run, tmp_path):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(trained_run[0], run_dir)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    with pytest.raises(ValueError, match="'n_batch' is 64 but run .* was made with 32"):
        gan_lib.train(g, d, gan_lib.define_gan(g, d), np.zeros((128, 32, 32, 3), np.float32) - 0.5, 100,
                      n_epochs=2, n_batch=64, run_dir=run_dir, panel={"load_weights": True})


def test_latest_generator_every_epoch_numbered_ones_at_summaries(shapes_small, tmp_path):
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    run_dir = tmp_path / "r"
    gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small[:64], 100, n_epochs=3, n_batch=32,
                  run_dir=str(run_dir), verbose=0, panel={"summarization": 2, "n_samples": 8})
    assert sorted(p.name for p in run_dir.glob("generator*.keras")) == [
        "generator.keras", "generator_model_e002.keras", "generator_model_e003.keras"]
    assert sorted(p.name for p in run_dir.glob("generated_plot_e*.png")) == [
        f"generated_plot_e00{i}.png" for i in (1, 2, 3)]
    gif = gan_lib.make_gif(str(run_dir), max_frames=2)
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 2
        full = Image.open(run_dir / "generated_plot_e003.png").size
        assert im.size == (full[0] // 2, full[1] // 2)  # stored grids are 2x; the GIF is not


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_it(shapes_small, tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "panel.json").write_text('{"n_batch": 32}')  # all a run writes before its first checkpoint
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    history = gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small[:64], 100, n_epochs=1, n_batch=32,
                            run_dir=str(run_dir), verbose=0, panel={"load_weights": True, "n_samples": 8})
    assert len(history) == 2 and gan_lib.list_checkpoints(str(run_dir))


def test_resume_with_nothing_left_to_do_says_so(trained_run):
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    with pytest.raises(ValueError, match="has already trained 1 epochs and n_epochs is 1"):
        gan_lib.train(g, d, gan_lib.define_gan(g, d), np.zeros((128, 32, 32, 3), np.float32) - 0.5, 100,
                      n_epochs=1, n_batch=32, run_dir=trained_run[0], panel={"load_weights": True})


def test_resume_of_a_folder_that_is_not_a_run(shapes_small, tmp_path):
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    with pytest.raises(ValueError, match="not a gan_lib run folder"):
        gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small, 100, n_epochs=1, n_batch=32,
                      run_dir=str(tmp_path), panel={"load_weights": True})
    assert list(tmp_path.iterdir()) == []
