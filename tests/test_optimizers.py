"""The panel is the one truth about learning rates and beta_1: train() applies them, records them, refuses to guess."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

import gan_lib
from conftest import snapshot
from gan_lib.__main__ import main


def lr(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def biggest_step(before, after):
    """The largest change of any single weight."""
    return max(float(np.max(np.abs(a - b))) for a, b in zip(before, after))


def fresh(seed=5):
    gan_lib.set_seed(seed)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    return g, d, gan_lib.define_gan(g, d)


def test_panel_learning_rates_reach_the_optimizers(shapes_small, tmp_path):
    g, d, gan = fresh()
    d_before = snapshot(d)
    run_dir = str(tmp_path / "r")
    # 32 images, n_batch 32: one batch, so D takes exactly two Adam steps (real half, fake half)
    history = gan_lib.train(g, d, gan, shapes_small[:32], 100, n_epochs=1, n_batch=32, run_dir=run_dir, verbose=0,
                            panel={"d_lr": 0.001, "g_lr": 0.0005, "beta_1": 0.6, "n_samples": 8})
    assert lr(d) == pytest.approx(0.001) and lr(gan) == pytest.approx(0.0005)
    assert d.optimizer.beta_1 == 0.6 and gan.optimizer.beta_1 == 0.6
    # Adam moves a weight by at most about lr per step: two steps at the default 0.0002 cannot move any
    # weight by 0.001, two steps at 0.001 do
    step = biggest_step(d_before, snapshot(d))
    assert 0.001 < step <= 0.0021, step
    saved = json.load(open(os.path.join(run_dir, "panel.json")))
    assert (saved["d_lr"], saved["g_lr"], saved["beta_1"]) == (0.001, 0.0005, 0.6)
    assert [(r["d_lr"], r["g_lr"]) for r in history] == [(0.001, 0.0005)]
    assert gan_lib.read_history(run_dir)[0]["d_lr"] == 0.001


def test_models_compiled_otherwise_and_a_default_panel_is_an_error(shapes_small, tmp_path):
    gan_lib.set_seed(5)
    d = gan_lib.define_discriminator(lr=0.001)
    g = gan_lib.define_generator(100)
    gan = gan_lib.define_gan(g, d)
    with pytest.raises(ValueError, match=r"learning rate 0\.001 but panel key 'd_lr' is 0\.0002"):
        gan_lib.train(g, d, gan, shapes_small[:32], 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "r"), verbose=0)
    assert not (tmp_path / "r").exists()
    # said explicitly, the compiled value is kept and recorded
    gan_lib.train(g, d, gan, shapes_small[:32], 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "r"),
                  verbose=0, panel={"d_lr": 0.001, "n_samples": 8})
    assert lr(d) == pytest.approx(0.001)
    assert json.load(open(tmp_path / "r" / "panel.json"))["d_lr"] == 0.001


def test_resume_with_a_new_learning_rate_takes_effect_and_is_recorded(shapes_small, tmp_path, capsys):
    x = shapes_small[:32]
    g, d, gan = fresh()
    gan_lib.train(g, d, gan, x, 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "a"), verbose=0,
                  panel={"n_samples": 8})
    shutil.copytree(tmp_path / "a", tmp_path / "b")

    def resume(name, **change):
        """Resume run `name` for one more epoch in a new session; returns (models, D's biggest weight change)."""
        g, d, gan = fresh(6)
        gan_lib.training.restore_checkpoint(str(tmp_path / name), (g, d, gan), verbose=False)
        before = snapshot(d)  # D as the checkpoint left it
        g, d, gan = fresh(6)
        panel = {**gan_lib.load_panel(str(tmp_path / name)), "load_weights": True, "n_epochs": 2, **change}
        history = gan_lib.train(g, d, gan, x, 100, run_dir=str(tmp_path / name), verbose=1, panel=panel)
        return d, history, biggest_step(before, snapshot(d))

    d, history, step_new = resume("a", d_lr=0.001)
    assert "d_lr is now 0.001 (the checkpoint's optimizer had 0.0002)" in capsys.readouterr().out
    _, _, step_old = resume("b")  # the same resumed batch at the old rate
    assert 3 < step_new / step_old < 7, (step_new, step_old)  # Adam's steps scale with the rate: 5x
    assert lr(d) == pytest.approx(0.001)
    assert [r["d_lr"] for r in history] == [0.0002, 0.001]
    assert [r["d_lr"] for r in gan_lib.read_history(str(tmp_path / "a"))] == [0.0002, 0.001]
    assert gan_lib.load_panel(str(tmp_path / "a"))["d_lr"] == 0.001


def test_resume_from_python_keeps_the_runs_own_settings(shapes_small, tmp_path):
    g, d, gan = fresh()
    run_dir = str(tmp_path / "r")
    x = shapes_small[:32]
    gan_lib.train(g, d, gan, x, 100, n_epochs=1, n_batch=32, run_dir=run_dir, verbose=0,
                  panel={"d_lr": 0.001, "grid": 3, "n_samples": 8})
    g, d, gan = fresh()
    history = gan_lib.train(g, d, gan, x, 100, n_epochs=2, run_dir=run_dir, verbose=0, panel={"load_weights": True})
    assert [r["d_lr"] for r in history] == [0.001, 0.001] and lr(d) == pytest.approx(0.001)
    panel = gan_lib.load_panel(run_dir)
    assert (panel["d_lr"], panel["grid"], panel["n_batch"], panel["n_samples"]) == (0.001, 3, 32, 8)


def test_a_resume_applies_the_rate_its_panel_json_records(shapes_small, tmp_path, capsys):
    """A resume that changed d_lr and was killed before its next checkpoint: panel.json already says the new rate,
    the checkpoint's optimizer the old one. Resuming again (from Python, as from the command line) applies panel.json."""
    g, d, gan = fresh()
    run_dir = tmp_path / "r"
    x = shapes_small[:32]
    gan_lib.train(g, d, gan, x, 100, n_epochs=1, n_batch=32, run_dir=str(run_dir), verbose=0, panel={"n_samples": 8})
    saved = json.loads((run_dir / "panel.json").read_text())
    (run_dir / "panel.json").write_text(json.dumps({**saved, "d_lr": 0.0001}))
    g, d, gan = fresh()
    history = gan_lib.train(g, d, gan, x, 100, n_epochs=2, run_dir=str(run_dir), verbose=1, panel={"load_weights": True})
    assert "d_lr is now 0.0001 (the checkpoint's optimizer had 0.0002)" in capsys.readouterr().out
    assert [r["d_lr"] for r in history] == [0.0002, 0.0001] and lr(d) == pytest.approx(0.0001)


def test_command_line_resume_with_set_d_lr(tmp_path, capsys):
    run_dir = str(tmp_path / "r")
    common = ["--dataset", "shapes", "--limit", "32", "--batch", "32", "--quiet", "--set", "n_samples=8"]
    assert main(["train", "--out", run_dir, "--epochs", "1", *common]) == 0
    assert main(["train", "--resume", run_dir, "--epochs", "2", "--set", "d_lr=0.0005", *common]) == 0
    assert [r["d_lr"] for r in gan_lib.read_history(run_dir)] == [0.0002, 0.0005]
    assert gan_lib.load_panel(run_dir)["d_lr"] == 0.0005


def test_a_new_beta_1_retraces_the_train_step(shapes_small, tmp_path):
    g, d, gan = fresh()
    x = shapes_small[:32]
    d.train_on_batch(x[:16], np.ones((16, 1), "float32"))  # traced with beta_1 = 0.5
    traced = d.train_function
    assert traced is not None
    gan_lib.train(g, d, gan, x, 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "r"), verbose=0,
                  panel={"beta_1": 0.8, "n_samples": 8})
    assert d.optimizer.beta_1 == 0.8 and d.train_function is not traced
