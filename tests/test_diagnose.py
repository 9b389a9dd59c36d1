"""Measurements during training (eval_every) and the diagnosis in plain words (gan_lib/diagnosis.py)."""

import json
import os

import keras
import numpy as np
import pytest
from gradcheck import directional_derivative

import gan_lib
from conftest import snapshot
from gan_lib import diagnosis
from gan_lib.runs import EVAL_COLUMNS


def models(seed=3):
    gan_lib.set_seed(seed)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    return g, d, gan_lib.define_gan(g, d)


# ---------------------------------------------------------------- the measurements


def test_mean_distance_is_the_mean_over_distinct_pairs():
    x = np.random.default_rng(0).normal(size=(7, 3, 2, 1))
    flat = x.reshape(7, -1)
    brute = np.mean([np.linalg.norm(flat[i] - flat[j]) for i in range(7) for j in range(7) if i != j])
    assert diagnosis.mean_distance(x) == pytest.approx(brute, rel=1e-9)
    assert diagnosis.mean_distance(np.ones((5, 4))) == pytest.approx(0.0, abs=1e-6)  # one image repeated


def test_the_gradient_norm_vanishes_when_d_ignores_its_input_and_measuring_changes_nothing():
    """D blind to its input (last layer's kernel zeroed): nothing flows back to G, the norm is exactly 0."""
    g, d, _ = models()
    z = np.random.default_rng(1).standard_normal((16, 100)).astype(np.float32)
    before = snapshot(g) + snapshot(d)
    healthy = diagnosis.generator_gradient_norm(g, d, z)
    assert healthy > 1e-3
    assert all(np.array_equal(a, b) for a, b in zip(before, snapshot(g) + snapshot(d)))
    kernel = d.layers[-1].kernel
    kernel.assign(keras.ops.zeros(kernel.shape))  # D(x) = sigmoid(bias) whatever x is
    assert diagnosis.generator_gradient_norm(g, d, z) == 0.0


def test_the_gradient_norm_is_the_slope_along_the_gradient():
    """Central differences along the gradient's direction give its norm (torch and JAX: test_backends.py)."""
    g, d, _ = models()
    z = np.random.default_rng(2).standard_normal((64, 100)).astype(np.float32)  # 64 points: a smoother loss
    norm, slope = directional_derivative(g, d, z)
    assert norm == pytest.approx(diagnosis.generator_gradient_norm(g, d, z), rel=1e-9)
    assert slope == pytest.approx(norm, rel=0.02)


@pytest.fixture(scope="module")
def measured_run(shapes_small, classifier_cache, tmp_path_factory):
    """A fused run on 'shapes' measured every 2 batches (the session's classifier), and one without measuring."""
    gan_lib.modes.classifier("shapes", verbose=False)  # trained once per session in its Keras home
    runs = {}
    for every in (2, 0):
        run_dir = str(tmp_path_factory.mktemp("measured") / "run")
        g, d, gan = models(5)
        panel = {"eval_every": every, "dataset": "shapes", "fast": True, "n_samples": 8, "grid": 2}
        runs[every] = run_dir, gan_lib.train(g, d, gan, shapes_small, 100, n_epochs=1, n_batch=32, run_dir=run_dir,
                                             panel=panel, verbose=0)
    return runs


def test_measurements_land_in_the_history_every_eval_every_batches(measured_run):
    run_dir, history = measured_run[2]
    assert [row["step"] for row in history if row["g_grad_norm"] is not None] == [2, 4]
    for row in history:
        measured = row["step"] % 2 == 0
        assert all((row[k] is not None) == measured for k in EVAL_COLUMNS), row
        if measured:
            assert row["g_grad_norm"] > 0 and row["diversity"] > 0 and row["domain_fd"] > 0
            assert row["modes"] in range(11)
    assert gan_lib.read_history(run_dir) == history  # empty cells in history.csv come back as None
    header = open(os.path.join(run_dir, "history.csv")).readline().strip().split(",")
    assert header[-4:] == list(EVAL_COLUMNS)


def test_measuring_does_not_change_the_training(measured_run):
    """Fixed latent points of its own, inference mode: the losses are those of a run that never measures."""
    strip = [{k: v for k, v in row.items() if k not in EVAL_COLUMNS} for row in measured_run[2][1]]
    assert strip == [{k: v for k, v in row.items() if k not in EVAL_COLUMNS} for row in measured_run[0][1]]
    assert all(row["g_grad_norm"] is None for row in measured_run[0][1])


def test_a_dataset_without_a_classifier_measures_what_it_can(shapes_small, tmp_path):
    g, d, gan = models(6)
    history = gan_lib.train(g, d, gan, shapes_small[:64], 100, n_epochs=1, n_batch=32, run_dir=str(tmp_path / "r"),
                            panel={"eval_every": 2, "dataset": "cifar10", "n_samples": 8, "grid": 2}, verbose=0)
    last = history[-1]
    assert last["g_grad_norm"] > 0 and last["diversity"] > 0 and last["modes"] is None and last["domain_fd"] is None


def test_old_checkpoints_without_the_columns_read_back_as_not_measured():
    rows = gan_lib.runs.history_rows(np.array([[1, 1, 1, 0.5, 0.6, 0.7, 0.5, 0.5, 1, 0, 2e-4, 2e-4]]))
    assert all(rows[0][k] is None for k in EVAL_COLUMNS) and rows[0]["g_loss"] == 0.7


# ---------------------------------------------------------------- the diagnosis


def rows(n, **columns):
    """n history rows of a quiet, healthy run, with `columns` (a value, or a function of the 0-based row) over it."""
    out = []
    for i in range(n):
        row = {"epoch": 1, "batch": i + 1, "step": i + 1, "d_loss_real": 0.6, "d_loss_fake": 0.6, "g_loss": 0.9,
               "d_x": 0.6, "d_g_z": 0.4, "acc_real": 0.7, "acc_fake": 0.7, "d_lr": 2e-4, "g_lr": 2e-4,
               **dict.fromkeys(EVAL_COLUMNS)}
        row.update({k: v(i) if callable(v) else v for k, v in columns.items()})
        out.append(row)
    return out


def every(k, values):
    """A column measured every k rows, taking `values` in turn, None between."""
    return lambda i: values[i // k] if (i + 1) % k == 0 and i // k < len(values) else None


def test_a_healthy_history_has_no_hint():
    history = rows(400, diversity=every(100, [0.5, 0.7, 0.8, 0.8]), g_grad_norm=every(100, [1, 2, 1.5, 2]),
                   modes=every(100, [6, 9, 10, 10]), g_loss=lambda i: 0.8 + i / 1000)
    assert diagnosis.diagnose(history) == {}


def test_d_winning_for_a_while():
    winning = {"acc_real": 1.0, "acc_fake": 1.0, "d_x": 0.98, "d_g_z": 0.01}
    assert "D is winning" in diagnosis.diagnose(rows(60, **winning))["d_saturated"]
    assert diagnosis.diagnose(rows(40, **winning)) == {}  # not for long enough yet
    assert diagnosis.diagnose(rows(60, **{**winning, "acc_real": 0.8})) == {}  # real images still fool it


def test_collapse_by_diversity_or_by_classes():
    found = diagnosis.diagnose(rows(400, diversity=every(100, [0.6, 0.9, 0.3, 0.2])))
    assert "collapsing" in found["collapsing"] and "0.20" in found["collapsing"] and "step 200" in found["collapsing"]
    assert diagnosis.diagnose(rows(400, diversity=every(100, [0.6, 0.9, 0.3, 0.8]))) == {}  # one low reading only
    assert diagnosis.diagnose(rows(400, diversity=every(100, [0.02, 0.05, 0.02, 0.01]))) == {}  # never varied: untrained
    found = diagnosis.diagnose(rows(400, modes=every(100, [8, 10, 5, 4])))
    assert "fall in 4 classes (modes), down from" in found["collapsing"]


def test_vanishing_gradient():
    found = diagnosis.diagnose(rows(400, g_grad_norm=every(100, [1.0, 3.0, 0.02, 0.001])))
    assert "vanished" in found["vanishing"] and "step 200" in found["vanishing"]
    assert diagnosis.diagnose(rows(400, g_grad_norm=every(100, [1.0, 3.0, 0.5, 0.2]))) == {}


def test_stuck_on_one_image_that_d_always_rejects():
    """As the tutorial's models on MNIST (gan_lib train --dataset mnist --limit 2048 --batch 64 --epochs 7 measured
    diversity 0.0013 and 0.0004, D(G(z)) 0.0002 and 0.00004, g_grad_norm 0.008 and 0.002 at steps 100 and 200)."""
    rejected = {"acc_real": 1.0, "acc_fake": 1.0, "d_x": 0.999, "d_g_z": 0.0002}

    def found(diversity, norm=(0.008, 0.002, 0.002, 0.002), **columns):
        return diagnosis.diagnose(rows(100 * len(diversity), diversity=every(100, diversity),
                                       g_grad_norm=every(100, norm), **{**rejected, **columns}))

    stuck = found([0.0013, 0.0004])
    assert set(stuck) == {"stuck"} and "G is stuck" in stuck["stuck"] and "label_smoothing=0.1" in stuck["stuck"]
    # healthy, then stuck: one hint, not D winning, a vanished gradient and a collapse as well
    assert set(found([0.5, 0.6, 0.01, 0.01], norm=(1.0, 2.0, 0.001, 0.001))) == {"stuck"}
    assert set(found([0.04, 0.04])) == {"stuck"}
    assert set(found([0.06, 0.06])) == {"d_saturated"}  # some variety left: D winning, not stuck
    assert set(found([0.01, 0.01], d_g_z=0.02, acc_fake=0.9)) == set()  # one image, but D is not sure of it yet
    assert set(found([0.3, 0.01])) == {"d_saturated"}  # one low reading only
    # G's learning rate far too low (notebook 09's 1e-6): stuck, but its gradient grows; the hint must not call it
    # starved or advise lower learning rates
    small_steps = found([0.02, 0.02], norm=(58.0, 91.0))["stuck"]
    assert "strong gradient (norm 91" in small_steps and "g_lr" in small_steps and "lower learning" not in small_steps


def test_a_stuck_run_that_comes_back_is_no_longer_called_stuck():
    """The tutorial's recipe on CIFAR-10, seed 3 (benchmarks/equal_time.py, one thread, 2026-12-04): G's diversity at
    steps 100-500 was 0.16, 0.011, 0.005, 0.65, 0.92 and D(G(z)) 0.33, 0.0005, 0.009, 0.13, 0.18: stuck at 300, back by
    500. The hint must not promise that such a run is lost, and must go when the variety comes back."""
    history = rows(500, diversity=every(100, [0.159, 0.011, 0.0046, 0.651, 0.915]))
    for row in history:  # D rejects G's images with certainty from step 150 to 350, then no longer
        sure = 150 <= row["step"] <= 350
        row.update(d_g_z=0.001 if sure else 0.2, acc_real=1.0 if sure else 0.7, acc_fake=1.0 if sure else 0.8)
    at_300 = diagnosis.diagnose(history[:300])
    assert set(at_300) == {"stuck"}
    assert "not recover" not in at_300["stuck"] and "some runs come back" in at_300["stuck"]
    assert "stuck" not in diagnosis.diagnose(history)  # by step 500 it is varied again


def swinging(i):
    return 0.5 if (i // 50) % 2 else 1.5  # g_loss block means alternate 1.5, 0.5, 1.5, ...


def test_oscillation_with_and_without_progress():
    flat = diagnosis.diagnose(rows(800, g_loss=swinging, domain_fd=every(100, [90, 80, 70, 60, 62, 61, 63, 60])))
    assert "oscillating without progress" in flat["oscillating"]
    better = rows(800, g_loss=swinging, domain_fd=every(100, [90, 80, 70, 60, 50, 40, 30, 20]))
    assert diagnosis.diagnose(better) == {}
    unmeasured = diagnosis.diagnose(rows(800, g_loss=swinging))
    assert "compare the latest grids" in unmeasured["oscillating"]
    assert diagnosis.diagnose(rows(800, g_loss=lambda i: 0.5 + i / 400)) == {}  # a trend, not a swing


def test_hints_are_said_once_while_they_hold_and_written_to_the_run(shapes_small, tmp_path, monkeypatch, capsys):
    """Each new sign: one 'hint:' line and a line in diagnosis.txt; training goes on to the end."""
    said = iter([{}, {"d_saturated": "D is winning (test)"}, {"d_saturated": "D is winning (test)"}, {},
                 {"d_saturated": "D is winning (test)"}] + [{}] * 100)
    monkeypatch.setattr(gan_lib.training, "diagnose", lambda history: next(said))
    monkeypatch.setattr(diagnosis.Monitor, "measure", lambda self, g, d: dict.fromkeys(EVAL_COLUMNS, 1.0))  # quick
    g, d, gan = models(7)
    history = gan_lib.train(g, d, gan, shapes_small[:64], 100, n_epochs=1, n_batch=16, run_dir=str(tmp_path / "r"),
                            panel={"eval_every": 1, "n_samples": 8, "grid": 2, "batchloss": 0}, verbose=1)
    assert len(history) == 4
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("hint:")]
    assert lines == ["hint: epoch 1, batch 2 (step 2): D is winning (test)",
                     "hint: epoch 1, batch 4 (step 4): D is winning (test)"]
    with open(tmp_path / "r" / "diagnosis.txt") as f:
        assert f.read().splitlines() == [line[len("hint: "):] for line in lines]


def test_eval_every_is_checked():
    with pytest.raises(ValueError, match="eval_every"):
        gan_lib.check_panel(eval_every=-1)
    assert gan_lib.check_panel()["eval_every"] == 100


def test_evaluate_prints_the_diagnosis_of_a_runs_history(measured_run, tmp_path, in_process):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(measured_run[2][0], run_dir)
    history = gan_lib.read_history(run_dir)
    for row in history:  # make D win outright for the whole run, G's images varied (not stuck): the history says so
        row.update(acc_real=1.0, acc_fake=1.0, d_g_z=0.001)
        if row["diversity"] is not None:
            row["diversity"] = 0.5
    gan_lib.runs.write_history(run_dir, history * 20)
    result = in_process("evaluate", run_dir, "--metrics", "modes", "--n", "20")
    assert result.returncode == 0, result.stderr
    assert "D is winning" in result.stdout
    with open(os.path.join(run_dir, "metrics.json")) as f:
        assert "D is winning" in json.load(f)["diagnosis"]["d_saturated"]
