"""Faults in the middle of a long run: a lost mirror, a model too big, a full disk, two processes on one run."""

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import gan_lib
from conftest import ROOT, run_cli
from gan_lib.__main__ import main
from gan_lib.runs import RunLock


def models(seed=7):
    gan_lib.set_seed(seed)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    return g, d, gan_lib.define_gan(g, d)


def unwritable(tmp_path):
    """A folder path that can never be created: its parent is a file (as when a Drive mount drops)."""
    (tmp_path / "not_a_folder").write_text("x")
    return str(tmp_path / "not_a_folder" / "gan_lib_runs")


def test_a_mirror_that_cannot_be_written_is_refused_before_training(shapes_small, tmp_path, capsys):
    g, d, gan = models()
    with pytest.raises(ValueError, match="mirror_dir .* cannot be written .* mount Google Drive"):
        gan_lib.train(g, d, gan, shapes_small[:64], 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "r"),
                      panel={"mirror_dir": unwritable(tmp_path)}, verbose=0)
    assert not (tmp_path / "r").exists()
    code = main(["train", "--dataset", "shapes", "--limit", "64", "--batch", "32", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "c"), "--set", f"mirror_dir={unwritable(tmp_path)}"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "mirror_dir" in err
    assert not (tmp_path / "c").exists()


def test_a_mirror_lost_mid_run_warns_and_catches_up(shapes_small, tmp_path, monkeypatch, capsys):
    mirror, calls = tmp_path / "drive", []
    real_mirror = gan_lib.checkpoint.mirror_run

    def flaky(run_dir, root):  # the mount drops for the first two checkpoints, then comes back
        calls.append(run_dir)
        if len(calls) <= 2:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return real_mirror(run_dir, root)

    monkeypatch.setattr(gan_lib.checkpoint, "mirror_run", flaky)
    g, d, gan = models()
    run_dir = tmp_path / "r"
    history = gan_lib.train(g, d, gan, shapes_small[:64], 100, n_epochs=2, n_batch=32, run_dir=str(run_dir),
                            panel={"mirror_dir": str(mirror), "checkpoint_every": 1, "n_samples": 8}, verbose=0)
    assert len(history) == 4 and len(calls) == 4  # training went on: 4 batches, 4 checkpoints
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: could not mirror")]
    assert len(warnings) == 2
    copy = mirror / "r"
    assert sorted(os.listdir(copy / "checkpoints")) == sorted(os.listdir(run_dir / "checkpoints"))
    assert (copy / "history.csv").read_bytes() == (run_dir / "history.csv").read_bytes()  # caught up
    assert (copy / "generator.keras").exists() and not (copy / ".lock").exists()


def test_an_impossible_model_size_is_one_clear_error(capsys):
    with pytest.raises(ValueError, match=r"latent_dim=100000000 .* GiB .* lower latent_dim"):
        gan_lib.define_generator(100_000_000)
    assert main(["train", "--dataset", "shapes", "--limit", "64", "--latent-dim", "100000000", "--quiet",
                 "--out", "/nonexistent/never-made"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: latent_dim=100000000") and err.count("\n") == 1


def test_out_of_memory_while_training_is_one_line(tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    def exhausted(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[128,4096]")

    monkeypatch.setattr(gan_lib.training, "train", exhausted)
    code = main(["train", "--dataset", "shapes", "--limit", "64", "--batch", "32", "--quiet", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "out of memory (ResourceExhaustedError); lower --batch" in err


def test_a_full_disk_during_a_checkpoint_keeps_the_last_one(shapes_small, tmp_path, monkeypatch):
    g, d, gan = models()
    run_dir = tmp_path / "r"
    real_savez, saves = np.savez, []

    def savez_until_full(path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 3:  # the third checkpoint: the disk is full halfway through the file
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(path, *args, **kwargs)

    monkeypatch.setattr(gan_lib.checkpoint.np, "savez", savez_until_full)
    with pytest.raises(OSError, match=rf"could not write to {run_dir} \(No space left on device\); its last "
                                      rf"checkpoint is intact: .* --resume {run_dir}"):
        gan_lib.train(g, d, gan, shapes_small[:64], 100, n_epochs=2, n_batch=32, run_dir=str(run_dir),
                      panel={"checkpoint_every": 1, "n_samples": 8}, verbose=0)
    monkeypatch.undo()
    names = sorted(os.listdir(run_dir / "checkpoints"))
    assert names == ["ckpt-0000-00001.npz", "ckpt-0001-00000.npz"]  # no half-written file left beside them
    g2, d2, gan2 = models(8)
    meta, *_ = gan_lib.restore_checkpoint(str(run_dir), (g2, d2, gan2), verbose=False)
    assert (meta["epoch"], meta["batch"]) == (1, 0)
    # and the run resumes from it
    history = gan_lib.train(g2, d2, gan2, shapes_small[:64], 100, n_epochs=2, n_batch=32, run_dir=str(run_dir),
                            panel={**gan_lib.load_panel(str(run_dir)), "load_weights": True}, verbose=0)
    assert len(history) == 4


def test_a_full_disk_from_the_command_line_is_one_line(tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gan_lib.checkpoint.np, "savez", full)
    run_dir = str(tmp_path / "r")
    code = main(["train", "--dataset", "shapes", "--limit", "64", "--batch", "32", "--epochs", "1", "--quiet",
                 "--out", run_dir])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and f"could not write to {run_dir}" in err


def test_the_lock_refuses_a_second_holder_and_is_released(tmp_path):
    with RunLock(str(tmp_path)) as lock:
        lock.claim()
        with pytest.raises(ValueError, match=rf"is being trained by process {os.getpid()} \(started"):
            with RunLock(str(tmp_path)):
                pass
    with RunLock(str(tmp_path)):  # free again once the first holder is done
        pass


def test_two_processes_on_one_run(tmp_path):
    """A second `train --resume` while the first still trains refuses, naming it; SIGKILL leaves no stale lock."""
    run_dir = str(tmp_path / "r")
    args = ["--dataset", "shapes", "--limit", "64", "--batch", "32", "--quiet", "--set", "n_samples=8"]
    first = subprocess.Popen([sys.executable, "-m", "gan_lib", "train", "--out", run_dir, "--epochs", "1000", *args],
                             cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not gan_lib.list_checkpoints(run_dir):  # training for real, lock held
            assert first.poll() is None, first.stderr.read()
            assert time.time() < deadline, "the first run wrote no checkpoint in 2 minutes"
            time.sleep(0.5)
        second = run_cli("train", "--resume", run_dir, "--quiet", timeout=120)
        assert second.returncode == 1
        assert second.stderr.strip() == second.stderr.strip().splitlines()[0]  # one line
        assert f"is being trained by process {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    done = int(os.path.basename(gan_lib.list_checkpoints(run_dir)[-1])[5:9])  # epochs completed
    third = run_cli("train", "--resume", run_dir, "--epochs", str(done + 1), "--quiet")
    assert third.returncode == 0, third.stderr
    assert gan_lib.read_history(run_dir)[-1]["epoch"] == done + 1


def test_a_new_run_that_cannot_write_its_first_file_leaves_no_folder(shapes_small, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gan_lib.runs, "save_panel", full)
    g, d, gan = models()
    with pytest.raises(OSError, match="it has no checkpoint yet: free some space"):
        gan_lib.train(g, d, gan, shapes_small[:64], 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "r"), verbose=0)
    assert not (tmp_path / "r").exists()  # so --out can use the name again


def test_the_lock_message_never_names_a_process_that_has_ended(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    with RunLock(str(tmp_path)):  # held, not yet claimed: the file still has the last holder's line
        (tmp_path / ".lock").write_text(f"process {ended.pid} (started 2026-01-01 00:00:00)\n")
        with pytest.raises(ValueError, match="is being trained by another process;"):
            with RunLock(str(tmp_path)):
                pass
