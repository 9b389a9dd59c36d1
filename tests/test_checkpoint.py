"""Training survives: SIGKILL at any point, then --resume, ends bit-identical to an unbroken run."""

import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import gan_lib
from conftest import ROOT, changed, run_cli, same, snapshot, tree
from gan_lib import checkpoint

# 96 images / 32 per batch = 3 batches an epoch, 2 epochs, a checkpoint after every batch
TINY = ["train", "--dataset", "shapes", "--limit", "96", "--batch", "32", "--epochs", "2", "--seed", "5",
        "--quiet", "--set", "checkpoint_every=1", "--set", "keep_checkpoints=3", "--set", "n_samples=8"]
FINAL = "ckpt-0002-00000.npz"


def final_state(run_dir):
    with np.load(os.path.join(run_dir, "checkpoints", FINAL)) as z:
        return {k: z[k] for k in z.files}


# the fused step with every piece of the modern recipe (hinge, spectral norm, the EMA, DiffAugment's draws) and the
# best generator kept (scored every 2 batches): all of it must resume exactly
MODERN = ["--recipe", "modern", "--set", "best_every=2", "--set", "best_n=16"]


@pytest.fixture(scope="module", params=[["--tutorial-loop"], MODERN], ids=["loop", "modern"])
def reference(request, tmp_path_factory):
    """An unbroken tiny run with the tutorial loop, and one of the modern recipe on the fused step: (run folder,
    its arguments)."""
    args = TINY + request.param
    run_dir = str(tmp_path_factory.mktemp("ref") / "run")
    result = run_cli(*args, "--out", run_dir)
    assert result.returncode == 0, result.stderr
    assert gan_lib.load_panel(run_dir)["fast"] == ("--tutorial-loop" not in args)  # the step kind this case is about
    return run_dir, args


def kill_after(args, run_dir, target, extra_delay):
    """Start the run and SIGKILL it once checkpoint `target` exists, plus a delay (mid-step, mid-save...)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = [] if "--resume" in args else ["--out", run_dir]
    path, start = os.path.join(run_dir, "checkpoints", target), time.time()
    proc = subprocess.Popen([sys.executable, "-m", "gan_lib", *args, *out], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(path) and os.path.getmtime(path) >= start:  # written by this process
            break
        time.sleep(0.02)
    time.sleep(extra_delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.returncode


# where each kill lands: right after a checkpoint, mid-step (0.15 s on), at an epoch's end, mid-save (0.05 s on)
KILLS = [("ckpt-0000-00001.npz", 0.0), ("ckpt-0000-00002.npz", 0.15), ("ckpt-0001-00000.npz", 0.0),
         ("ckpt-0001-00001.npz", 0.05)]


def test_killed_run_resumes_bit_identical(reference, tmp_path):
    """Every variable (the fused step's RNG state too), the history and the meta, after SIGKILLs and --resume.

    One run is killed at each point of KILLS in turn, resumed after each kill (the resume is the process
    killed next), and finished by a last resume: any resume that was not exact shows in the final state.
    """
    reference, args = reference
    run_dir = str(tmp_path / "run")
    for i, (target, delay) in enumerate(KILLS):
        code = kill_after(args if i == 0 else ["train", "--resume", run_dir, "--quiet"], run_dir, target, delay)
        assert code == -signal.SIGKILL, f"the run finished before it could be killed at {target}; the test proves nothing"
        assert not os.path.exists(os.path.join(run_dir, "checkpoints", FINAL))
    result = run_cli("train", "--resume", run_dir, "--quiet")
    assert result.returncode == 0, result.stderr
    expected, got = final_state(reference), final_state(run_dir)
    assert expected.keys() == got.keys()
    for key in expected:
        assert same(expected[key], got[key]), f"{key} differs after resume"
    assert gan_lib.read_history(run_dir) == gan_lib.read_history(reference)
    assert not [f for f in os.listdir(run_dir) if f.startswith(".tmp-")]
    if "modern" in args:  # the best generator's scores too; the EMA and the best generator load in safe mode
        with open(os.path.join(reference, "scores.csv")) as a, open(os.path.join(run_dir, "scores.csv")) as b:
            assert a.read() == b.read(), "the best generator's scores differ after resume"
        for name in ("generator_ema.keras", "generator_best.keras"):
            g = keras.saving.load_model(os.path.join(run_dir, name), safe_mode=True)
            assert g.output_shape == (None, 32, 32, 3)


def test_a_failed_save_leaves_the_previous_checkpoint(trained_run, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "copy")
    shutil.copytree(trained_run[0], run_dir)
    before = {p: open(p, "rb").read() for p in gan_lib.list_checkpoints(run_dir)}
    real_savez = np.savez

    def dies_halfway(path, **arrays):
        real_savez(path, **{k: arrays[k] for k in list(arrays)[:3]})  # part of the file is on disk...
        raise KeyboardInterrupt  # ...when the user (or Colab) stops it

    monkeypatch.setattr(checkpoint.np, "savez", dies_halfway)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(run_dir, (g, d, gan_lib.define_gan(g, d)), {"epoch": 9, "batch": 0},
                                   np.zeros((4, 100), np.float32), np.zeros((0, 10)))
    assert {p: open(p, "rb").read() for p in gan_lib.list_checkpoints(run_dir)} == before
    assert not [f for f in os.listdir(os.path.join(run_dir, "checkpoints")) if f.startswith(".tmp-")]


def test_keeps_the_newest_k(tmp_path):
    """Six saves with keep=3: after each, the newest (at most) three remain, and they are the right files."""
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(8)
    models = (g, d, gan_lib.define_gan(g, d))
    run_dir = str(tmp_path)
    saved = [(0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (2, 0)]  # training order
    for i, (epoch, batch) in enumerate(saved):
        checkpoint.save_checkpoint(run_dir, models, {"epoch": epoch, "batch": batch},
                                   np.zeros((4, 8), np.float32), np.full((i + 1, 10), float(i)), keep=3)
        expected = [checkpoint.checkpoint_name(e, b) for e, b in saved[max(0, i - 2): i + 1]]
        assert [os.path.basename(p) for p in gan_lib.list_checkpoints(run_dir)] == expected
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == expected  # nothing else left behind
    for path, (epoch, batch) in zip(gan_lib.list_checkpoints(run_dir), saved[-3:]):
        meta, _, history, _ = checkpoint.read_checkpoint(path)
        assert (meta["epoch"], meta["batch"]) == (epoch, batch) and len(history) == saved.index((epoch, batch)) + 1


def test_train_prunes_to_keep_checkpoints_and_mirrors_each(shapes_small, tmp_path, monkeypatch):
    """mirror_dir during train(): MIRROR/RUN_NAME holds the run, and only the checkpoints the run kept."""
    run_dir, drive = tmp_path / "run", tmp_path / "drive"
    gan_lib.set_seed(8)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    mirrored_after_each = []
    real_mirror = gan_lib.checkpoint.mirror_run

    def watching_mirror(src, dest):
        out = real_mirror(src, dest)
        mirrored_after_each.append(sorted(os.listdir(os.path.join(out, "checkpoints"))))
        return out

    monkeypatch.setattr(gan_lib.checkpoint, "mirror_run", watching_mirror)
    gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small, 100, n_epochs=1, n_batch=32, run_dir=str(run_dir),
                  verbose=0, panel={"checkpoint_every": 1, "keep_checkpoints": 3, "mirror_dir": str(drive),
                                    "n_samples": 8})
    # 4 batches: checkpoints after batches 1, 2, 3 and at the epoch end; the newest 3 are kept, here and there
    first3 = ["ckpt-0000-00001.npz", "ckpt-0000-00002.npz", "ckpt-0000-00003.npz"]
    kept = first3[1:] + ["ckpt-0001-00000.npz"]
    assert [os.path.basename(p) for p in gan_lib.list_checkpoints(str(run_dir))] == kept
    assert mirrored_after_each == [first3[:1], first3[:2], first3, kept]
    mirror = drive / "run"
    assert sorted(os.listdir(mirror / "checkpoints")) == kept
    local = {k: v for k, v in tree(run_dir).items() if k != ".lock"}  # the lock belongs to this machine
    assert tree(mirror) == local
    resume(str(mirror))  # the mirror is a run that can be resumed


def resume(run_dir, latent_dim=100, shape=(32, 32, 3)):
    d, g = gan_lib.define_discriminator(shape), gan_lib.define_generator(latent_dim, out_shape=shape)
    return checkpoint.restore_checkpoint(run_dir, (g, d, gan_lib.define_gan(g, d)), verbose=False)


def test_corrupt_checkpoints(trained_run, tmp_path):
    run_dir = str(tmp_path / "copy")
    shutil.copytree(trained_run[0], run_dir)
    older, newest = gan_lib.list_checkpoints(run_dir)
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) // 2)
    meta, _, _, used = resume(run_dir)  # falls back to the one before
    assert used == older and (meta["epoch"], meta["batch"]) == (0, 2)
    # the unreadable one is set aside, so pruning can never keep it and drop the good one
    assert gan_lib.list_checkpoints(run_dir) == [older] and os.path.exists(newest + ".unreadable")
    with open(older, "wb") as f:
        f.write(b"garbage")
    with pytest.raises(ValueError, match="no readable checkpoint.*truncated or corrupt"):
        resume(run_dir)


def test_checkpoint_of_another_architecture(trained_run):
    with pytest.raises(ValueError, match="another architecture"):
        resume(trained_run[0], latent_dim=64)
    with pytest.raises(ValueError, match="another architecture"):
        resume(trained_run[0], shape=(32, 32, 1))


def test_not_a_run_folder(tmp_path):
    with pytest.raises(ValueError, match="not a gan_lib run folder"):
        resume(str(tmp_path))
    (tmp_path / "panel.json").write_text("{}")
    with pytest.raises(ValueError, match="has no checkpoints yet"):
        resume(str(tmp_path))


def test_mirror_copies_the_run_and_drops_old_checkpoints(trained_run, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(trained_run[0], run_dir)
    drive = tmp_path / "drive"
    mirrored = gan_lib.checkpoint.mirror_run(run_dir, str(drive))
    for name in ("generator.keras", "history.csv", "panel.json"):
        assert open(os.path.join(mirrored, name), "rb").read() == open(os.path.join(run_dir, name), "rb").read()
    os.remove(gan_lib.list_checkpoints(run_dir)[0])
    gan_lib.checkpoint.mirror_run(run_dir, str(drive))
    assert sorted(os.listdir(os.path.join(mirrored, "checkpoints"))) == ["ckpt-0001-00000.npz"]
    resume(mirrored)  # the mirror is a run that can be resumed


def test_a_resume_past_a_corrupt_checkpoint_with_keep_1_keeps_a_good_one(trained_run, shapes_small, tmp_path,
                                                                         monkeypatch):
    run_dir = str(tmp_path / "copy")
    shutil.copytree(trained_run[0], run_dir)
    newest = gan_lib.list_checkpoints(run_dir)[-1]  # ckpt-0001-00000, after ckpt-0000-00002
    with open(newest, "r+b") as f:
        f.truncate(os.path.getsize(newest) // 2)

    def killed(*args, **kwargs):  # the runtime dies after the epoch's last batch, before its end-of-epoch save
        raise KeyboardInterrupt

    monkeypatch.setattr(gan_lib.training, "end_epoch", killed)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    with pytest.raises(KeyboardInterrupt):  # resumes at batch 3: saves ckpt-0000-00003 and prunes to one
        gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small, 100, n_epochs=2, run_dir=run_dir, verbose=0,
                      panel={"load_weights": True, "keep_checkpoints": 1, "checkpoint_every": 1})
    (kept,) = gan_lib.list_checkpoints(run_dir)
    assert os.path.basename(kept) == "ckpt-0000-00003.npz"  # not the unreadable ckpt-0001-00000
    checkpoint.read_checkpoint(kept)  # readable: the run can go on


def test_a_fused_runs_checkpoint_restores_into_plain_models(shapes_small, tmp_path):
    """restore_checkpoint without extra= (as a notebook calls it) loads a fused run's models and optimizers."""
    gan_lib.set_seed(5)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small, 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "run"),
                  verbose=0, panel={"fast": True, "n_samples": 8})
    trained = snapshot(g) + snapshot(d)
    g2, d2 = gan_lib.define_generator(100), gan_lib.define_discriminator()
    gan2 = gan_lib.define_gan(g2, d2)
    meta, _, rows, _ = checkpoint.restore_checkpoint(str(tmp_path / "run"), (g2, d2, gan2), verbose=False)
    assert meta["extra"] == 1 and len(rows) == 4
    assert not changed(trained, snapshot(g2) + snapshot(d2))
    assert int(keras.ops.convert_to_numpy(d2.optimizer.iterations)) == 8  # two D updates a batch, restored too
