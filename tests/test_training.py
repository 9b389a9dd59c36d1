"""Training runs for real: files written, history honest, divergence stopped, runs never overwritten."""

import contextlib
import csv
import io
import json
import os
import re
import shutil

import keras
import numpy as np
import pytest

import gan_lib
from conftest import ROOT, tree
from gan_lib import default_outputs
from gan_lib.panel import panel_json


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
        assert all(np.isfinite(v) for k, v in row.items() if k not in gan_lib.runs.EVAL_COLUMNS)
        assert all(row[k] is None for k in gan_lib.runs.EVAL_COLUMNS)  # eval_every 100: not measured yet
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


def test_uint8_data_trains_exactly_as_its_float32_scaling(tmp_path):
    """train() keeps uint8 images as they are (a quarter of the memory) and scales each batch: same run, bit for bit."""
    pixels = gan_lib.make_shapes(64)[0]  # uint8 (64, 32, 32, 3)

    def run(name, data):
        gan_lib.set_seed(11)
        d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
        return gan_lib.train(g, d, gan_lib.define_gan(g, d), data, 100, n_epochs=1, n_batch=32,
                             run_dir=str(tmp_path / name), verbose=0, panel={"n_samples": 8, "eval_every": 1})

    history = run("uint8", pixels)
    assert history == run("float32", gan_lib.scale_images(pixels))
    assert all(r["diversity"] is not None for r in history)  # the monitor's real images were scaled too


FAKE_PIXEL = 0.123  # every pixel of a StubG image: no real image looks like this


class StubG:
    """A generator that draws flat grey images, FAKE_PIXEL everywhere."""

    def __call__(self, z, training=False):
        return np.full((len(z), 32, 32, 3), FAKE_PIXEL, np.float32)


class StubD:
    """A discriminator with known scores that records the labels it is trained on."""

    def __init__(self, dataset, real_score=0.5, fake_score=0.5):
        self.rows = {row.tobytes() for row in dataset}
        self.real_score, self.fake_score = real_score, fake_score
        self.labels = {"real": [], "fake": []}

    def is_real(self, x):
        return np.array([row.tobytes() in self.rows for row in x])

    def __call__(self, x, training=False):
        return np.where(self.is_real(x), self.real_score, self.fake_score).astype(np.float32)[:, None]

    def reset_metrics(self):  # the loop resets before each train_on_batch (a Keras model's running mean)
        pass

    def train_on_batch(self, x, y):
        real = self.is_real(x)
        assert real.all() or not real.any(), "D learns from all-real or all-fake half batches"
        self.labels["real" if real.all() else "fake"].append(np.asarray(y, np.float32).ravel())
        return 0.5, 0.5


class StubGAN:
    def __init__(self):
        self.labels = []

    def train_on_batch(self, z, y):
        self.labels.append(np.asarray(y, np.float32).ravel())
        return 0.5

    def reset_metrics(self):
        pass


@pytest.mark.parametrize("scores,expected", [((0.85, 0.15), (1.0, 1.0)), ((0.45, 0.55), (0.0, 0.0)),
                                             ((0.95, 0.7), (1.0, 0.0))])
def test_summarize_performance_uses_hard_labels(shapes_small, tmp_path, scores, expected):
    """0.85 for a real image is right (score > 0.5 means real), though it is below a smoothed label of 0.9."""
    d = StubD(shapes_small, *scores)
    acc = gan_lib.summarize_performance(0, gan_lib.define_generator(100), d, shapes_small, 100, n_samples=20,
                                        run_dir=str(tmp_path), rng=np.random.default_rng(0), verbose=False)
    assert acc == expected
    # the trap this avoids: Keras's accuracy against the 0.9 labels D was trained on calls every real wrong
    assert float(keras.ops.mean(keras.metrics.binary_accuracy(np.full((4, 1), 0.9), np.full((4, 1), 0.85)))) == 0
    assert (tmp_path / "generated_plot_e001.png").exists() and (tmp_path / "generator.keras").exists()


def test_labels_d_learns_from_smoothing_and_noise(shapes_small):
    """Real labels are 1 - label_smoothing; label_noise flips that fraction of real and of fake labels."""
    half, steps = 1000, 20  # 20,000 labels a side: the flip rate's standard error is under 0.003
    for smoothing, noise in [(0.0, 0.0), (0.1, 0.0), (0.0, 0.2), (0.1, 0.2)]:
        d, gan = StubD(shapes_small), StubGAN()
        panel = gan_lib.check_panel({"label_smoothing": smoothing, "label_noise": noise})
        rng = np.random.default_rng(7)
        for _ in range(steps):
            gan_lib.train_step(StubG(), d, gan, shapes_small, 100, 2 * half, rng, panel)
        real, fake = np.concatenate(d.labels["real"]), np.concatenate(d.labels["fake"])
        assert len(real) == len(fake) == half * steps
        target = np.float32(0.9) if smoothing else np.float32(1.0)
        assert set(np.unique(real)) <= {0.0, target} and set(np.unique(fake)) <= {0.0, 1.0}
        flipped_real, flipped_fake = np.mean(real == 0.0), np.mean(fake == 1.0)
        if noise:
            assert abs(flipped_real - noise) < 0.02 and abs(flipped_fake - noise) < 0.02, (flipped_real, flipped_fake)
        else:
            assert flipped_real == flipped_fake == 0.0 and np.all(real == target)
        assert np.all(np.concatenate(gan.labels) == 1.0)  # G's labels are never smoothed or flipped


def test_history_accuracy_is_against_hard_labels_while_d_learns_0_9(shapes_small, tmp_path, monkeypatch):
    """A real train() with label_smoothing=0.1: D sees 0.9 for reals; acc_real counts scores above 0.5."""
    gan_lib.set_seed(2)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    dataset = shapes_small[:64]
    rows = {row.tobytes() for row in dataset}
    seen = []
    real_train_on_batch = d.train_on_batch

    def recording_train_on_batch(x, y, *args, **kwargs):
        seen.append((all(row.tobytes() in rows for row in x), np.asarray(y)))
        return real_train_on_batch(x, y, *args, **kwargs)

    # D's opinion before each step, fixed: reals 12 x 0.85 and 4 x 0.2, fakes 8 x 0.1 and 8 x 0.7
    fixed = np.array([0.85] * 12 + [0.2] * 4 + [0.1] * 8 + [0.7] * 8, np.float32)

    def fixed_scores(model, x):
        assert model is d and len(x) == 32
        return fixed

    monkeypatch.setattr(d, "train_on_batch", recording_train_on_batch)
    monkeypatch.setattr(gan_lib.training, "d_scores", fixed_scores)
    history = gan_lib.train(g, d, gan_lib.define_gan(g, d), dataset, 100, n_epochs=1, n_batch=32,
                            run_dir=str(tmp_path / "r"), verbose=0, panel={"label_smoothing": 0.1, "n_samples": 8})
    assert [real for real, _ in seen] == [True, False, True, False]
    for real, y in seen:
        assert np.allclose(y, 0.9 if real else 0.0, rtol=0, atol=1e-6)
    assert len(history) == 2
    for row in history:
        assert row["acc_real"] == 0.75 and row["acc_fake"] == 0.5  # 12 of 16 reals above 0.5; 8 of 16 fakes at or below
        assert row["d_x"] == pytest.approx(0.6875) and row["d_g_z"] == pytest.approx(0.4)


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
    with pytest.raises(ValueError, match="float in \\[-1, 1\\] or uint8 in \\[0, 255\\], got dtype int64"):
        gan_lib.train(g, d, gan_model, (shapes_small * 127.5 + 127.5).astype(np.int64), 64, n_epochs=1,
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
    (run_dir / "panel.json").write_text(panel_json(gan_lib.check_panel(n_batch=32)))  # written before any checkpoint
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


@pytest.fixture(scope="module")
def quiet_run(tmp_path_factory):
    """2 epochs of 2 batches with save_freq=0, batchloss=0, checkpoint_every=0; verbose, stdout captured."""
    run_dir = tmp_path_factory.mktemp("quiet") / "run"
    gan_lib.set_seed(6)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        gan_lib.train(g, d, gan_lib.define_gan(g, d), gan_lib.load_real_samples("shapes", limit=64), 100,
                      n_epochs=2, n_batch=32, run_dir=str(run_dir), verbose=1,
                      panel={"save_freq": 0, "batchloss": 0, "checkpoint_every": 0, "keep_checkpoints": 5,
                             "summarization": 1, "n_samples": 8})
    return run_dir, out.getvalue()


def test_save_freq_0_saves_no_grids(quiet_run):
    run_dir, _ = quiet_run
    assert (run_dir / "generator_model_e002.keras").exists()  # the epochs ran and summarized
    assert list(run_dir.glob("generated_plot*")) == []


def test_batchloss_0_prints_no_batch_lines(quiet_run):
    """batchloss=1 prints '>1, 1/2, d1=...' (test_progress_and_tutorial_lines); 0 prints none."""
    _, out = quiet_run
    assert out.count(">Accuracy real:") == 2  # the output was captured
    assert "epoch 2/2  2/2 [####################]" in out  # the progress lines ran
    assert ">1, " not in out and ">2, " not in out  # no '>1, 1/2, d1=..., d2=..., g=...'


def test_checkpoint_every_0_checkpoints_at_epoch_ends_only(quiet_run):
    run_dir, _ = quiet_run
    names = [os.path.basename(p) for p in gan_lib.list_checkpoints(str(run_dir))]
    assert names == ["ckpt-0001-00000.npz", "ckpt-0002-00000.npz"]


def test_resume_checks_the_epochs_it_was_told(trained_run, shapes_small, tmp_path):
    """Panel key 'epochs' that disagrees with the checkpoint names both numbers; the right one resumes."""
    run_dir = str(tmp_path / "run")
    shutil.copytree(trained_run[0], run_dir)
    before = tree(tmp_path / "run")

    def resume(epochs):
        d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
        panel = dict(gan_lib.load_panel(run_dir), load_weights=True, epochs=epochs, n_epochs=2)
        return gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small[:64], panel=panel, run_dir=run_dir,
                             verbose=0)

    with pytest.raises(ValueError, match=r"'epochs' is 3 but the last checkpoint of .* has 1 epochs completed"):
        resume(3)
    assert tree(tmp_path / "run") == before  # refused before writing anything
    history = resume(1)
    assert [(row["epoch"], row["batch"]) for row in history][-2:] == [(2, 1), (2, 2)]


def test_resume_with_another_grid_is_refused_up_front_or_works(trained_run, shapes_small, tmp_path):
    """The run was made with grid=4 (16 fixed latent points in its checkpoint); resume with the default 7."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run[0], run_dir)
    panel_before = (run_dir / "panel.json").read_bytes()
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    try:
        history = gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small[:64], 100, n_epochs=2, n_batch=32,
                                run_dir=str(run_dir), verbose=0, panel={"load_weights": True, "n_samples": 8})
    except ValueError as e:  # refused like n_batch and latent_dim: naming the key, before training or writing
        assert "'grid'" in str(e) and (run_dir / "panel.json").read_bytes() == panel_before, str(e)
    else:  # or the resumed run draws its grids some other way
        assert len(history) == 6 and (run_dir / "generated_plot_e002.png").exists()


@pytest.mark.parametrize("text,message", [("{\"n_batch\": 32,", "cannot be read"),
                                          ("{\"n_batch\": 3}", "'n_batch' must be even"),
                                          ("{\"no_such_key\": 1}", "unknown panel key")])
def test_a_damaged_panel_json_is_one_error_naming_the_file(trained_run, shapes_small, tmp_path, text, message):
    run_dir = str(tmp_path / "run")
    shutil.copytree(trained_run[0], run_dir)
    path = os.path.join(run_dir, "panel.json")
    with open(path, "w") as f:
        f.write(text)
    with pytest.raises(ValueError) as info:
        gan_lib.load_panel(run_dir)
    assert path in str(info.value) and message in str(info.value) and "\n" not in str(info.value)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    with pytest.raises(ValueError, match=re.escape(path)):
        gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small[:64], 100, n_epochs=2, n_batch=32,
                      run_dir=run_dir, verbose=0, panel={"load_weights": True})
    assert open(path).read() == text  # left for the user to look at


def test_default_outputs_is_the_checkouts_inside_it_and_relative_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_outputs() == "outputs"
    monkeypatch.chdir(os.path.join(ROOT, "notebooks"))
    assert default_outputs() == os.path.join(ROOT, "outputs")
    monkeypatch.chdir(ROOT)
    assert default_outputs() == os.path.join(ROOT, "outputs")


def test_history_plot_shows_the_epoch_means_of_d_scores():
    history = [{"epoch": e, "batch": b, "step": 3 * (e - 1) + b, "d_loss_real": 0.5, "d_loss_fake": 0.5, "g_loss": 1.0,
                "d_x": 0.1 * b + 0.3 * e, "d_g_z": 0.1 * e} for e in (1, 2) for b in (1, 2, 3)]
    fig = gan_lib.plot_history(history)
    lines = {line.get_label(): line for line in fig.axes[1].lines}
    for key, means in (("D(x), real", [0.5, 0.8]), ("D(G(z)), fake", [0.1, 0.2])):
        assert list(lines[key + ", epoch mean"].get_xdata()) == [3, 6]  # at each epoch's last batch
        np.testing.assert_allclose(lines[key + ", epoch mean"].get_ydata(), means)
        assert len(lines[key].get_xdata()) == 6  # and every batch
