"""CycleGAN: the models' shapes and sizes, each model learning on its own step only, the losses, the image pool,
a tiny offline run from the command line, exact resume, bad input, and the torch and JAX backends."""

import json
import os
import re

import keras
import numpy as np
import pytest

import gan_lib
from conftest import run_on_backend, snapshot
from gan_lib import cycle_training as ct
from gan_lib.checkpoint import list_checkpoints
from gan_lib.cyclegan import (
    CycleGAN,
    ImagePool,
    define_cyclegan_discriminator,
    define_cyclegan_generator,
    instance_norm,
)
from gan_lib.data import load_domains
from gan_lib.panel import CYCLE_TASKS, check_cycle_panel

TINY = {"width": 4, "res_blocks": 1, "n_batch": 8, "pool_size": 8, "grid": 4}  # quick to build and to compile


def tiny_panel(**overrides):
    return check_cycle_panel({**CYCLE_TASKS["shapes"], **TINY, "limit": 16, "n_epochs": 1, **overrides})


def changed(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(a, b))


def test_instance_norm_is_group_norm_with_a_group_per_channel():
    x = np.random.default_rng(0).normal(1.0, 3.0, (4, 8, 8, 6)).astype(np.float32)
    ref = (x - x.mean(axis=(1, 2), keepdims=True)) / np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)
    layer = instance_norm()
    assert np.abs(keras.ops.convert_to_numpy(layer(x)) - ref).max() < 1e-4
    assert layer.groups == 6  # -1 became one group per channel


def test_shapes_and_parameter_counts():
    g, d = define_cyclegan_generator((32, 32, 3)), define_cyclegan_discriminator((32, 32, 3))
    assert (g.output_shape, d.output_shape) == ((None, 32, 32, 3), (None, 8, 8, 1))
    assert (g.count_params(), d.count_params()) == (1_080_643, 167_841)  # the docstrings' figures
    small = define_cyclegan_generator((32, 32, 3), width=16), define_cyclegan_discriminator((32, 32, 3), width=16)
    assert [m.count_params() for m in small] == [273_059, 42_961]
    assert define_cyclegan_discriminator((64, 64, 3)).output_shape == (None, 16, 16, 1)  # a patch map at 64 x 64 too
    assert define_cyclegan_generator((64, 64, 1), out_channels=3).output_shape == (None, 64, 64, 3)
    cycle = CycleGAN((16, 16, 3), width=4, res_blocks=1)
    assert [m.name for m in cycle.models] == ["generator_ab", "generator_ba", "discriminator_a", "discriminator_b"]
    assert not any(m.non_trainable_weights for m in cycle.models)  # no state but weights: outputs depend on them alone
    for bad in ((30, 32, 3), (32, 32, 2), (32, 32)):
        with pytest.raises(ValueError, match="CycleGAN generator"):
            define_cyclegan_generator(bad)
    with pytest.raises(ValueError, match="one size"):
        CycleGAN((16, 16, 3), (32, 32, 3))


def test_models_save_and_load_in_safe_mode(tmp_path):
    cycle = CycleGAN((16, 16, 3), width=4, res_blocks=1)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    for model in cycle.models:
        path = str(tmp_path / f"{model.name}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        assert np.allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)


def step_for(cycle, **overrides):
    panel = tiny_panel(**overrides)
    a, b = (np.random.default_rng(i).integers(0, 256, (16, 16, 16, 3), dtype=np.uint8) for i in (2, 3))
    return ct.CycleStep(cycle, a, b, panel)


def test_each_model_learns_on_its_own_step_only():
    """One step moves all four models; with the D optimizer's rate 0 the generators' update alone moves G and F
    and leaves both Ds exactly as they were, and with G's rate 0 the Ds' update leaves G and F alone."""
    keras.utils.set_random_seed(0)
    cycle = CycleGAN((16, 16, 3), width=4, res_blocks=1)
    step = step_for(cycle)
    before = [snapshot(m) for m in cycle.models]
    step()
    step.sync()  # JAX keeps the step's state on the device until a sync (elsewhere the variables are current)
    assert all(changed(b, snapshot(m)) for b, m in zip(before, cycle.models)), "a model did not learn"
    for frozen, moving in ((cycle.d_optimizer, cycle.g_optimizer), (cycle.g_optimizer, cycle.d_optimizer)):
        frozen.learning_rate, moving.learning_rate = 0.0, 0.0002
        before = [snapshot(m) for m in cycle.models]
        step()
        step.sync()
        moved = [changed(b, snapshot(m)) for b, m in zip(before, cycle.models)]
        assert moved == ([True, True, False, False] if frozen is cycle.d_optimizer else [False, False, True, True])
    values = step.read()
    assert len(values) == 3 and all(np.isfinite(list(v.values())).all() for v in values)
    for v in values:  # G's loss is the paper's sum: adversarial + 10 * cycle + 5 * identity
        assert v["g_loss"] == pytest.approx(v["g_adv"] + 10 * v["cycle_loss"] + 5 * v["identity_loss"], rel=1e-5)


def test_image_pool_fills_then_swaps_half():
    pool, seed = ImagePool(4, (1, 1, 1), "test_pool"), keras.random.SeedGenerator(0)
    first = np.arange(1, 4, dtype=np.float32).reshape(3, 1, 1, 1)
    out = keras.ops.convert_to_numpy(pool(first, seed))
    assert np.array_equal(out, first) and int(pool.count.value) == 3  # filling: passed on and stored
    out = keras.ops.convert_to_numpy(pool(np.array([[[[4.0]]], [[[5.0]]]], np.float32), seed))
    assert np.array_equal(out.ravel(), [4, 5]) and int(pool.count.value) == 4  # 4 fills the last slot, 5 finds it full
    stored = sorted(keras.ops.convert_to_numpy(pool.images.value).ravel())
    assert stored == [1, 2, 3, 4]
    swapped = 0
    for k in range(20):  # full: each new image is swapped for a stored one with probability 1/2
        new = np.full((4, 1, 1, 1), 100.0 + k, np.float32)
        held = list(keras.ops.convert_to_numpy(pool.images.value).ravel())
        out = keras.ops.convert_to_numpy(pool(new, seed)).ravel()
        for x in out[out != 100 + k]:  # a stored image went to D: the new one took its slot
            held.remove(x)  # ValueError if D got an image the pool did not hold
            held.append(100.0 + k)
            swapped += 1
        assert sorted(keras.ops.convert_to_numpy(pool.images.value).ravel()) == sorted(held)
    assert 20 < swapped < 60  # about half of 80


def test_cli_shapes_task_runs_offline_and_resumes(tmp_path, in_process):
    run = tmp_path / "run"
    args = ["--limit", "16", "--batch", "8", "--out", str(run), "--set", "width=4", "--set", "res_blocks=1",
            "--set", "pool_size=8", "--set", "grid=4", "--set", "identity_weight=0", "--quiet"]
    result = in_process("cyclegan", "--task", "shapes", "--epochs", "1", *args)
    assert result.returncode == 0, result.stderr
    for name in ("panel.json", "history.csv", "history.png", "metrics.json", "cycle_e001.png",
                 "generator_ab.keras", "generator_ba.keras"):
        assert (run / name).exists(), name
    panel = json.loads((run / "panel.json").read_text())
    assert (panel["arch"], panel["dataset"], panel["dataset_b"], panel["cycle_weight"]) == (
        "cyclegan", "shapes-warm", "shapes-cool", 10.0)
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["cycle_error_a"] < 2 and 0 <= metrics["translation_ab"] <= 1
    g = keras.saving.load_model(str(run / "generator_ab.keras"), compile=False, safe_mode=True)
    assert g.output_shape == (None, 32, 32, 3)
    result = in_process("cyclegan", "--resume", str(run), "--epochs", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    from gan_lib.runs import read_history

    history = read_history(str(run))
    assert [(r["epoch"], r["batch"]) for r in history] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for r in history:  # identity_weight 0: G's loss is the adversarial one + 10 * cycle (the step's arithmetic)
        assert r["identity_loss"] == 0 and r["g_loss"] == pytest.approx(r["g_adv"] + 10 * r["cycle_loss"], rel=1e-5)
    assert [r["cycle_error_a"] is None for r in history] == [True, False, True, False]  # measured at epoch ends
    assert os.path.basename(list_checkpoints(str(run))[-1]) == "ckpt-0002-00000.npz"
    assert (run / "cycle_e002.png").exists()


def test_nan_weights_at_a_checkpoint_end_the_run_in_one_line(tmp_path, in_process, monkeypatch):
    """checkpoint.save_checkpoint refuses NaN weights with FloatingPointError; the command says so in one line."""
    def refuse(*args, **kwargs):
        raise FloatingPointError("a model or optimizer variable holds NaN or inf (g_ab/conv/kernel)")

    monkeypatch.setattr(gan_lib.runs, "save_checkpoint", refuse)
    result = in_process("cyclegan", "--task", "shapes", "--epochs", "1", "--limit", "16", "--batch", "8", "--out",
                        str(tmp_path / "run"), "--set", "width=4", "--set", "res_blocks=1", "--quiet")
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "training diverged" in lines[0] and "NaN" in lines[0], \
        result.stderr


def test_resume_is_exact_after_a_kill_mid_epoch(tmp_path):
    """A run killed after batch 1 of epoch 2 and resumed ends bit for bit where the run that was never stopped
    does: history and the whole final state (models, optimizers, pools, seed)."""
    rng = np.random.default_rng(5)
    a, b = (rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8) for _ in "ab")

    def run(folder, resume=False):
        keras.utils.set_random_seed(1)
        cycle = CycleGAN((16, 16, 3), width=4, res_blocks=1)
        panel = tiny_panel(dataset="A", dataset_b="B", n_epochs=2, load_weights=resume, checkpoint_every=1,
                           keep_checkpoints=10)
        return ct.train_cycle(cycle, a, b, panel, str(folder), verbose=0)

    straight = run(tmp_path / "a")
    assert len(straight) == 4
    for kill_after in ("ckpt-0001-00001.npz",):  # what a run killed mid-epoch 2 leaves (an epoch end: the torch test)
        killed = tmp_path / kill_after
        (killed / "checkpoints").mkdir(parents=True)
        (killed / "panel.json").write_text((tmp_path / "a" / "panel.json").read_text())
        (killed / "checkpoints" / kill_after).write_bytes((tmp_path / "a" / "checkpoints" / kill_after).read_bytes())
        assert run(killed, resume=True) == straight
        last = "checkpoints/ckpt-0002-00000.npz"
        with np.load(tmp_path / "a" / last) as x, np.load(killed / last) as y:
            assert x.files == y.files and all(np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f")
                                              for k in x.files), kill_after


def write_images(folder, n, size=(40, 30), mode="RGB"):
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(n)
    for i in range(n):
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


@pytest.mark.parametrize("args, text", [
    (["cyclegan", "A_MISSING", "B"], "domain A .*neither a known name"),
    (["cyclegan", "B", "A_MISSING"], "domain B .*neither a known name"),
    (["cyclegan", "EMPTY", "B"], "domain A .*holds no images"),
    (["cyclegan", "B"], "give two folders"),
    (["cyclegan", "B", "B"], "the same"),
    (["cyclegan", "--task", "horses"], "unknown task"),
    (["cyclegan", "--task", "shapes", "B", "B"], "not both"),
    (["cyclegan", "--task", "shapes", "--set", "cycle_weight=-1"], "cycle_weight.*at least 0"),
    (["cyclegan", "--task", "shapes", "--set", "pool_size=4"], "pool_size.*at least n_batch"),
    (["cyclegan", "--task", "shapes", "--set", "latent_dim=10"], "does not apply to a CycleGAN"),
    (["cyclegan", "--task", "shapes", "--set", "cycle_weight=lots"], "wants a number"),
    (["cyclegan", "--task", "shapes", "--batch", "1"], "--batch: panel key 'n_batch' must be at least 2"),
    (["cyclegan", "--resume", "B"], "not a gan_lib run folder"),
    (["train", "--arch", "cyclegan", "--dataset", "shapes"], "python -m gan_lib cyclegan"),
])
def test_bad_input_is_one_line_and_writes_nothing(args, text, tmp_path, in_process, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_images(tmp_path / "B", 10)
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "EMPTY" / "notes.txt").write_text("no images here")
    before = sorted(os.listdir(tmp_path))
    result = in_process(*args, "--out", str(tmp_path / "run")) if args[0] == "cyclegan" and "--resume" not in args \
        else in_process(*args)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr


    assert re.search(text, result.stderr), result.stderr
    assert sorted(os.listdir(tmp_path)) == before


def test_domains_of_other_sizes_and_modes(tmp_path):
    """Photos of any sizes are brought to one size; a greyscale domain beside an RGB one is made RGB; arrays of
    different sizes (an .npz keeps its own) are refused, naming the fix."""
    write_images(tmp_path / "grey", 8, (50, 20), "L")
    write_images(tmp_path / "rgb", 8, (33, 61))
    logged = []
    panel = check_cycle_panel(dataset=str(tmp_path / "grey"), dataset_b=str(tmp_path / "rgb"), image_size=16)
    a, b, la, lb = load_domains(panel, logged.append)
    assert a.shape == b.shape == (8, 16, 16, 3) and la is None and lb is None
    assert any("greyscale" in line for line in logged)
    np.savez(tmp_path / "small.npz", x=np.zeros((8, 16, 16, 3), np.uint8))
    np.savez(tmp_path / "large.npz", x=np.zeros((8, 24, 24, 3), np.uint8))
    with pytest.raises(ValueError, match="image_size"):
        load_domains(check_cycle_panel(dataset=str(tmp_path / "small.npz"), dataset_b=str(tmp_path / "large.npz")))
    a, b, _, _ = load_domains(check_cycle_panel(dataset=str(tmp_path / "small.npz"),
                                                      dataset_b=str(tmp_path / "large.npz"), image_size=16))
    assert a.shape == b.shape == (8, 16, 16, 3)


def test_the_shapes_domains_and_the_translation_score():
    """A = warm shapes, B = cool ones; the score counts G's images the classifier puts in the same shape, other colours."""
    panel = tiny_panel(limit=40)
    a, b, la, lb = load_domains(panel)
    assert a.shape == b.shape == (40, 32, 32, 3) and (la < 5).all() and (lb >= 5).all()
    assert (a[..., 0].astype(int) - a[..., 2]).max() > 150 and (b[..., 2].astype(int) - b[..., 0]).max() > 150

    from gan_lib.modes import classifier

    def by_position(pool, pool_labels, wanted):  # a translator that knows the answer: image i of the wanted class
        return lambda x, training=False: pool[[np.flatnonzero(pool_labels == k)[0] for k in wanted[:len(x)]]]

    x_a, x_b = gan_lib.scale_images(a), gan_lib.scale_images(b)

    class Perfect:  # G: each a becomes a b of its shape; F: each b an a of its shape
        g_ab, g_ba = by_position(x_b, lb, la + 5), by_position(x_a, la, lb - 5)

    class Unchanged:
        g_ab = g_ba = staticmethod(lambda x, training=False: x)

    clf = classifier("shapes", verbose=False)
    found = ct.measure(Perfect, x_a, x_b, la, lb, classifier=clf)
    assert found["translation_ab"] > 0.9 and found["translation_ba"] > 0.9, found
    found = ct.measure(Unchanged, x_a, x_b, la, lb, classifier=clf)
    assert found["translation_ab"] < 0.1 and found["translation_ba"] < 0.1 and found["cycle_error_a"] == 0, found


BACKEND_SCRIPT = r'''
import os, sys
import numpy as np
import keras
import gan_lib
from gan_lib import cycle_training as ct
from gan_lib.cyclegan import CycleGAN
from gan_lib.panel import check_cycle_panel
assert keras.backend.backend() == os.environ["KERAS_BACKEND"]

def snap(m):
    return [keras.ops.convert_to_numpy(v) for v in m.weights]

def changed(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(a, b))

rng = np.random.default_rng(0)
a, b = rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8), rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8)
tiny = dict(width=4, res_blocks=1, n_batch=8, pool_size=8, grid=4, dataset="A", dataset_b="B")
gan_lib.set_seed(0)
cycle = CycleGAN((16, 16, 3), width=4, res_blocks=1)
step = ct.CycleStep(cycle, a, b, check_cycle_panel(tiny))
for frozen, moving, want in ((cycle.d_optimizer, cycle.g_optimizer, [True, True, False, False]),
                             (cycle.g_optimizer, cycle.d_optimizer, [False, False, True, True])):
    frozen.learning_rate, moving.learning_rate = 0.0, 0.0002
    before = [snap(m) for m in cycle.models]
    step()
    step.sync()  # JAX: the step's state back into the variables (elsewhere they are current already)
    assert [changed(x, snap(m)) for x, m in zip(before, cycle.models)] == want, want
assert all(np.isfinite(list(v.values())).all() for v in step.read())
if keras.backend.backend() == "jax":  # each run compiles its step again (about 40 s on a CPU): resume is proven on the
    print("cyclegan OK")               # other two backends, and JAX's step makes the variables current at each read
    sys.exit(0)

def run(folder, epochs, resume=False):
    gan_lib.set_seed(1)
    cycle = CycleGAN((16, 16, 3), width=4, res_blocks=1)
    panel = check_cycle_panel(tiny, n_epochs=epochs, load_weights=resume, checkpoint_every=1)
    return ct.train_cycle(cycle, a, b, panel, folder, verbose=0)

straight = run(sys.argv[1] + "-a", 2)
run(sys.argv[1] + "-b", 1)
assert run(sys.argv[1] + "-b", 2, resume=True) == straight
last = "checkpoints/ckpt-0002-00000.npz"
with np.load(os.path.join(sys.argv[1] + "-a", last)) as x, np.load(os.path.join(sys.argv[1] + "-b", last)) as y:
    assert all(np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f") for k in x.files)
print("cyclegan OK")
'''


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_other_backends_learn_and_resume_exactly(name, tmp_path):
    """The same step on torch (eager) and JAX (one jax.jit over the variables): each model learns on its own update
    only; on torch, two epochs straight equal one and a resume, bit for bit."""
    assert "cyclegan OK" in run_on_backend(name, BACKEND_SCRIPT, tmp_path / "run")
