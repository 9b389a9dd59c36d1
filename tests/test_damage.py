"""Faults found by trying the newer commands (issue 22): each of these failed before its fix.

A run folder that vanishes or is replaced mid-run, a mirror short of space, a damaged panel.json, a run of
another kind, an invalid backend, NaN settings, an unwritable Keras cache, messages a quiet run hid.
"""

import errno
import os
import shutil

import numpy as np
import pytest

import gan_lib
from conftest import run_cli
from gan_lib import checkpoint, modes, progress, toy_training, training
from gan_lib.data import generate_fake_samples, sample_images
from gan_lib.panel import check_cycle_panel, panel_json


def models(seed=7):
    gan_lib.set_seed(seed)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    return g, d, gan_lib.define_gan(g, d)


def one_line(result, *words):
    """A command that failed with one line on stderr holding every word, and no traceback."""
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def copy_of(trained_run, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(trained_run[0], run_dir)
    return run_dir


# ---------------------------------------------------------------- a run writes only into the folder it started with


@pytest.mark.parametrize("replace", [False, True], ids=["vanished", "replaced"])
def test_a_run_folder_gone_mid_run_ends_the_run_and_is_not_made_again(shapes_small, tmp_path, monkeypatch, replace):
    run_dir = str(tmp_path / "run")
    real_end_epoch = training.end_epoch

    def then_gone(run, dataset, epoch, verbose):  # after the first epoch's files, the folder goes (a Drive mount drops)
        real_end_epoch(run, dataset, epoch, verbose)
        if epoch == 0:
            os.makedirs(run_dir + "-other")  # made while the run's exists: another folder (inode), as a remount's
            shutil.rmtree(run_dir)
            if replace:
                os.rename(run_dir + "-other", run_dir)  # another folder of the same name, e.g. a remount, empty

    monkeypatch.setattr(training, "end_epoch", then_gone)
    g, d, gan = models()
    with pytest.raises(OSError, match="vanished" if not replace else "replaced") as info:
        gan_lib.train(g, d, gan, shapes_small[:64], 100, n_epochs=2, n_batch=32, run_dir=run_dir, verbose=0,
                      panel={"n_samples": 8, "checkpoint_every": 1})
    assert run_dir in str(info.value) and "--resume" in str(info.value) and "\n" not in str(info.value)
    if replace:
        assert os.listdir(run_dir) == []  # the folder that replaced the run's is left as it was
    else:
        assert not os.path.exists(run_dir)  # nothing wrote a new one


def test_a_vanished_run_folder_is_one_line_and_a_failed_exit(tmp_path, monkeypatch, in_process):
    out = str(tmp_path / "run")
    real_end_epoch = training.end_epoch

    def then_gone(run, dataset, epoch, verbose):
        real_end_epoch(run, dataset, epoch, verbose)
        shutil.rmtree(out)

    monkeypatch.setattr(training, "end_epoch", then_gone)
    result = in_process("train", "--dataset", "shapes", "--limit", "64", "--batch", "32", "--epochs", "2", "--quiet",
                        "--out", out, "--set", "n_samples=8")
    one_line(result, "vanished", out)
    assert "done" not in result.stdout and not os.path.exists(out)


# ---------------------------------------------------------------- a mirror that ran short of space catches up


def test_the_mirror_drops_old_checkpoints_before_it_copies_new_ones(tmp_path, monkeypatch):
    run, mirror = tmp_path / "run", tmp_path / "drive"
    (run / "checkpoints").mkdir(parents=True)
    (mirror / "run" / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "ckpt-0002-00000.npz").write_bytes(b"new")
    stale = mirror / "run" / "checkpoints" / "ckpt-0001-00000.npz"
    stale.write_bytes(b"old")
    seen = []

    def full(src, dst):  # the mirror has room only once the stale checkpoint is gone
        seen.append(stale.exists())
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "copy_file", full)
    with pytest.raises(OSError):
        checkpoint.mirror_run(str(run), str(mirror))
    assert seen == [False], "the stale checkpoint was still there when the copy began"


def test_a_failed_last_mirror_is_tried_again_and_the_run_says_whether_it_is_current(shapes_small, tmp_path,
                                                                                        monkeypatch, capsys):
    mirror, calls = tmp_path / "drive", []
    real = checkpoint.mirror_run

    def once_down(run_dir, root):  # the epoch end's mirror fails (the drive drops); the retry at the end works
        calls.append(run_dir)
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error")
        return real(run_dir, root)

    monkeypatch.setattr(checkpoint, "mirror_run", once_down)
    g, d, gan = models()
    run_dir = str(tmp_path / "run")
    gan_lib.train(g, d, gan, shapes_small[:64], 100, n_epochs=1, n_batch=32, run_dir=run_dir, verbose=1,
                  panel={"n_samples": 8, "checkpoint_every": 0, "mirror_dir": str(mirror), "batchloss": 0})
    captured = capsys.readouterr()
    assert len(calls) == 2 and "could not mirror" in captured.err
    assert f"mirror {mirror / 'run'}: current" in captured.out
    assert sorted(os.listdir(mirror / "run" / "checkpoints")) == sorted(os.listdir(os.path.join(run_dir, "checkpoints")))


def test_a_mirror_left_behind_is_said_even_by_a_quiet_run(shapes_small, tmp_path, monkeypatch, capsys):
    def down(run_dir, root):  # the drive never comes back
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(checkpoint, "mirror_run", down)
    g, d, gan = models()
    gan_lib.train(g, d, gan, shapes_small[:64], 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "run"), verbose=0,
                  panel={"n_samples": 8, "mirror_dir": str(tmp_path / "drive")})
    assert f"mirror {tmp_path / 'drive' / 'run'}: behind the run" in capsys.readouterr().err  # quiet hid it


# ---------------------------------------------------------------- a run's panel is a whole object of its kind


@pytest.mark.parametrize("text", ["[]", "3", "null", "{}", '{"n_batch": 32}'])
def test_a_damaged_panel_that_is_still_json_is_one_line(trained_run, tmp_path, in_process, text):
    run_dir = copy_of(trained_run, tmp_path)
    path = os.path.join(run_dir, "panel.json")
    with open(path, "w") as f:
        f.write(text)
    for args in (["train", "--resume", run_dir, "--quiet"], ["evaluate", run_dir, "--metrics", "modes"],
                 ["cyclegan", "--resume", run_dir, "--quiet"]):
        one_line(in_process(*args), path, "damaged")  # cyclegan said "'dataset_b' is empty: give two folders"
    assert open(path).read() == text  # left for the user to look at
    # a damaged CycleGAN run (no generator.keras): evaluate said "holds no generator.keras; ... finished an epoch?"
    cycle_dir = tmp_path / "cycle"
    cycle_dir.mkdir()
    (cycle_dir / "panel.json").write_text(text)
    (cycle_dir / "generator_ab.keras").write_bytes(b"")
    for command in ("evaluate", "generate"):
        one_line(in_process(command, str(cycle_dir)), str(cycle_dir / "panel.json"), "damaged")


def test_a_resume_keeps_its_dataset(trained_run, tmp_path, in_process):
    run_dir = copy_of(trained_run, tmp_path)
    before = open(os.path.join(run_dir, "panel.json")).read()
    one_line(in_process("train", "--resume", run_dir, "--dataset", "mnist", "--epochs", "2"), "panel key 'dataset'",
             "a run resumes with its own value")
    assert open(os.path.join(run_dir, "panel.json")).read() == before


def test_a_cyclegan_run_is_named_as_one_by_the_other_commands(tmp_path, in_process):
    run_dir = tmp_path / "cycle"
    run_dir.mkdir()
    (run_dir / "panel.json").write_text(panel_json(check_cycle_panel(dataset="shapes-warm", dataset_b="shapes-cool")))
    one_line(in_process("train", "--resume", str(run_dir)), "is a CycleGAN run", "cyclegan --resume")
    for command in ("generate", "evaluate"):
        one_line(in_process(command, str(run_dir)), "is a CycleGAN run", "generator_ab.keras")


def test_evaluate_refuses_what_is_not_an_image_generator(tmp_path, in_process):
    path = str(tmp_path / "d.keras")
    gan_lib.define_discriminator().save(path)
    one_line(in_process("evaluate", path, "--dataset", "shapes", "--metrics", "modes"), "is not an image generator")


# ---------------------------------------------------------------- no NaN, no infinity, no silent guesses


@pytest.mark.parametrize("key", ["label_smoothing", "label_noise", "d_lr", "beta_1"])
def test_non_finite_panel_values_are_refused(key):
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"panel key '{key}' must be a finite number"):
            gan_lib.check_panel({key: bad})


def test_a_toy_refuses_an_infinite_scale_and_stops_when_it_diverges(in_process, monkeypatch):
    one_line(in_process("toy", "ring", "--steps", "1", "--set", "scale=inf"), "scale must be a number above 0")
    nan = {"d_loss_real": float("nan"), "d_loss_fake": 0.7, "g_loss": 0.7, "d_x": 0.5, "d_g_z": 0.5, "acc_real": 0.5,
           "acc_fake": 0.5}
    monkeypatch.setattr(toy_training, "train_step", lambda *args: dict(nan))
    panel, model = toy_training.toy_settings("ring", {"fast": False, "n_batch": 32, "units": 8})
    with pytest.raises(gan_lib.TrainingDiverged, match="toy ring diverged at step 1: d_loss_real=nan"):
        toy_training.train_named_toy("ring", 3, panel, model)


def test_an_invalid_or_missing_backend_is_one_line_for_every_command(tmp_path):
    result = run_cli("--help", env={"KERAS_BACKEND": "nope"})
    one_line(result, "KERAS_BACKEND='nope'", "installed here", "tensorflow")
    (tmp_path / "jax.py").write_text('raise ModuleNotFoundError("No module named \'jax\'")')  # JAX asked for, not there
    result = run_cli("train", "--help", env={"KERAS_BACKEND": "jax", "PYTHONPATH": str(tmp_path)})
    one_line(result, "KERAS_BACKEND='jax'", "No module named 'jax'")


def test_an_unwritable_keras_cache_is_a_warning_and_the_classifier_still_serves(tmp_path, monkeypatch):
    monkeypatch.setattr(modes, "N_LABELLED", 600)
    monkeypatch.setattr(modes, "EPOCHS", 1)
    (tmp_path / "file").write_text("x")
    with pytest.warns(UserWarning, match="could not cache the shapes classifier .* set KERAS_HOME"):
        model = modes.classifier("shapes", cache_dir=str(tmp_path / "file" / "cache"), verbose=False)
    assert model.output_shape == (None, 10)
    # the next metric of the same evaluate asks again: the one in memory serves (it was trained once per metric)
    monkeypatch.setattr(modes, "_train", lambda *a: pytest.fail("trained again"))
    assert modes.classifier("shapes", cache_dir=str(tmp_path / "file" / "cache"), verbose=False) is model


def test_a_quiet_resume_still_says_it_starts_from_the_beginning(tmp_path, in_process):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    panel = gan_lib.check_panel(dataset="shapes", limit=64, n_batch=32, n_epochs=1, fast=False, n_samples=8)
    (run_dir / "panel.json").write_text(panel_json(panel))  # killed before its first checkpoint
    result = in_process("train", "--resume", str(run_dir), "--quiet")
    assert result.returncode == 0 and "has no checkpoint yet" in result.stderr, result.stderr


def test_evaluate_says_when_a_history_is_too_short_and_refuses_no_metrics(trained_run, tmp_path, in_process):
    run_dir = copy_of(trained_run, tmp_path)
    result = in_process("evaluate", run_dir, "--metrics", "modes", "--n", "16", "--dataset", "shapes")
    assert result.returncode == 0 and "too short to judge (4 batches, none measured)" in result.stdout, result.stdout
    one_line(in_process("evaluate", run_dir, "--metrics", ",", "--dataset", "shapes"), "--metrics names no metric")
    assert open(os.path.join(trained_run[0], ".lock")).read() == ""  # a finished run's lock names nobody


# ---------------------------------------------------------------- memory flat in N: G called in batches


@pytest.mark.parametrize("arch", ["tutorial", "cgan"])
def test_sampling_in_batches_draws_the_very_images_of_one_call(arch):
    gan_lib.set_seed(4)
    g, _, _ = gan_lib.build_models({"arch": arch, "latent_dim": 8}, (32, 32, 3), 10)
    classes = np.arange(23) % 10 if arch == "cgan" else None
    one, _ = generate_fake_samples(g, 8, 23, np.random.default_rng(1), classes=classes)
    many, drawn = sample_images(g, 8, 23, np.random.default_rng(1), classes=classes, batch=5)
    one = one[0] if arch == "cgan" else one
    assert many.shape == (23, 32, 32, 3) and np.allclose(many, one, atol=1e-6)
    assert (drawn is None) == (arch != "cgan")


def test_a_flag_is_named_and_a_cyclegan_batch_needs_no_halves(tmp_path, in_process):
    one_line(in_process("train", "--dataset", "shapes", "--seed", "-1"), "error: --seed: panel key 'seed' must be at least 0")
    one_line(in_process("toy", "ring", "--seed", "-1", "--steps", "1"), "error: --seed: panel key 'seed'")
    one_line(in_process("evaluate", str(tmp_path), "--seed", "-1"), "error: --seed must be between 0 and 2**32 - 1")
    assert check_cycle_panel(dataset="a", dataset_b="b", n_batch=3, pool_size=0)["n_batch"] == 3  # a domain's images


def test_a_failed_write_names_the_file_not_its_temporary_name(tmp_path):
    from gan_lib.files import atomic_path

    target = tmp_path / "generator.keras"
    with pytest.raises(OSError) as info:
        with atomic_path(target) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", tmp)  # what a full disk raises mid-write
    assert info.value.filename == str(target) and info.value.errno == errno.ENOSPC and ".tmp-" not in str(info.value)
    assert os.listdir(tmp_path) == []  # and nothing half-written is left


@pytest.mark.parametrize("fast", [True, False], ids=["fused", "loop"])
def test_progress_lines_come_as_their_batches_finish(shapes_small, tmp_path, monkeypatch, fast):
    # 10 batches an epoch, a log line each (not a terminal): the fused step holds its values on the device, and
    # it read them only every 10 batches, so all 10 lines came at the epoch end, each with elapsed / k "s/batch"
    steps, shown = [], []
    real_call, real_step, real_text = training.FusedStep.__call__, training.train_step, training.Progress.text
    monkeypatch.setattr(training.FusedStep, "__call__", lambda self, step=0: (steps.append(step), real_call(self, step)))
    monkeypatch.setattr(training, "train_step", lambda *a, **k: (steps.append(len(steps)), real_step(*a, **k))[1])
    monkeypatch.setattr(training.Progress, "text",
                        lambda self, done, *a: (shown.append((done, len(steps))), real_text(self, done, *a))[1])
    g, d, gan = models()
    gan_lib.train(g, d, gan, shapes_small[:120], 100, n_epochs=1, n_batch=12, run_dir=str(tmp_path / "run"),
                  verbose=1, panel={"n_samples": 8, "batchloss": 0, "fast": fast, "eval_every": 0})
    lines = [(done, ran) for done, ran in shown if done]  # the bar's lines after a batch (not its opening text)
    assert [done for done, _ in lines] == list(range(1, 11))
    assert all(done == ran for done, ran in lines), lines  # each printed when its batch was the latest to run


def test_the_progress_rate_leaves_out_the_first_batchs_compile(monkeypatch, capsys):
    # the first batch also compiles the step (seconds); the rate was elapsed / k, so epoch 1 read 4.7 s/batch after
    # one batch and 1.3 after five, where each batch took 0.4 s
    now = [100.0]
    monkeypatch.setattr(progress.time, "time", lambda: now[0])
    bar = progress.Progress(1, 2, total=10, verbose=1)  # not a terminal: a line per batch
    for done in range(1, 11):
        now[0] += 10.0 if done == 1 else 0.4
        bar.update(done, 0.5, 0.5, 1.0)
    lines = capsys.readouterr().out.splitlines()
    assert "s/batch" not in lines[0] and "10 s" in lines[0]  # after one batch: no rate yet
    assert all(line.split(", ")[1].startswith("0.40 s/batch") for line in lines[1:]), lines


@pytest.mark.parametrize("replace", [False, True], ids=["vanished", "replaced"])
def test_a_folder_gone_during_a_write_is_named_as_gone(tmp_path, replace):
    # the folder went while a file was being written (a save in progress): the write failed with a plain
    # "No such file or directory", and the message said "could not write ... check that the folder exists"
    from gan_lib.files import guard
    from gan_lib.runs import writing

    run_dir, other = tmp_path / "run", tmp_path / "other"
    run_dir.mkdir()
    other.mkdir()  # made while the run's folder exists, so it is another folder (inode), as a remount's would be
    with pytest.raises(OSError, match="vanished" if not replace else "replaced") as info, guard(str(run_dir)):
        with writing(str(run_dir)):
            shutil.rmtree(run_dir)
            if replace:
                other.rename(run_dir)
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(run_dir / ".tmp-1-generator.keras"))
    assert "--resume" in str(info.value) and "could not write" not in str(info.value)


def test_a_write_that_fails_outside_a_run_names_the_file_and_the_fix(trained_run, tmp_path, in_process):
    # generate --out onto a folder printed "[Errno 21] Is a directory: '.../grid.png'", and nothing more
    (tmp_path / "grid.png").mkdir()
    one_line(in_process("generate", trained_run[0], "--n", "2", "--out", str(tmp_path / "grid.png")),
             f"could not write {tmp_path / 'grid.png'} (Is a directory); give --out a path")


def test_a_toys_metrics_json_is_strict_json_when_no_mode_is_found(tmp_path, in_process):
    # after one step no mode is found and the reverse KL is infinite: metrics.json held `Infinity`, not JSON
    import json

    out = tmp_path / "toy"
    assert in_process("toy", "ring", "--steps", "1", "--out", str(out), "--quiet").returncode == 0
    scores = json.loads((out / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))["scores"]
    assert scores["modes"] == 0 and scores["reverse_kl"] is None
