"""When to stop: best-so-far tracking (gan_lib/best.py; panel keys best_every, best_n) and --generator."""

import csv
import json
import os

import keras
import numpy as np
import pytest

import gan_lib
from gan_lib import best, inception2015

ARGS = ["train", "--dataset", "shapes", "--limit", "128", "--batch", "32", "--quiet", "--set", "n_samples=8",
        "--set", "best_every=2", "--set", "best_n=64", "--set", "eval_every=0", "--set", "summarization=1"]


def scores(run_dir):
    with open(os.path.join(run_dir, "scores.csv"), newline="") as f:
        return [(int(r["step"]), r["metric"], float(r["score"])) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two epochs straight (a), and one epoch then a resume to two (b), both tracking the best every 2 batches."""
    from gan_lib.__main__ import main
    root = tmp_path_factory.mktemp("best")
    assert main([*ARGS, "--epochs", "2", "--out", str(root / "a")]) == 0
    assert main([*ARGS, "--epochs", "1", "--out", str(root / "b")]) == 0
    with open(root / "b" / "scores.csv", "a") as f:  # a score the checkpoint never saw (killed after scoring it)
        f.write("99,domain_fd,0.001\n")
    assert main(["train", "--resume", str(root / "b"), "--epochs", "2", "--quiet"]) == 0
    return root / "a", root / "b"


def test_the_best_generator_is_kept_with_its_score(runs):
    a, _ = runs
    rows = scores(a)
    assert [step for step, _, _ in rows] == [2, 4, 6, 8] and {m for _, m, _ in rows} == {"domain_fd"}
    with open(a / "best.json") as f:
        kept = json.load(f)
    low = min(rows, key=lambda r: r[2])
    assert (kept["step"], kept["score"], kept["metric"]) == (low[0], low[2], "domain_fd")
    g = keras.saving.load_model(a / "generator_best.keras", safe_mode=True)  # loads in safe mode
    # it is the generator of that step: scored again, the same number
    panel = gan_lib.check_panel(dataset="shapes", limit=128, best_n=64)
    tracker = best.BestTracker(gan_lib.load_real_samples("shapes", limit=128), panel, str(a / "scratch"))
    assert tracker.score(g) == pytest.approx(kept["score"], rel=1e-4)


def test_a_resume_keeps_the_scores_its_checkpoint_saw_and_scores_the_same(runs):
    a, b = runs
    assert scores(b) == scores(a)  # the stray step-99 row is gone; every score repeats exactly
    with open(a / "best.json") as f, open(b / "best.json") as g:
        assert json.load(f) == json.load(g)


def test_generate_and_evaluate_say_which_generator(runs, in_process):
    a, _ = runs
    result = in_process("generate", str(a), "--n", "2", "--generator", "best", "--out", str(a / "best.png"))
    assert result.returncode == 0 and "generator_best.keras" in result.stdout
    result = in_process("generate", str(a), "--n", "2", "--out", str(a / "latest.png"))  # no EMA: the latest
    assert result.returncode == 0 and os.sep + "generator.keras" in result.stdout
    result = in_process("generate", str(a), "--generator", "ema")
    assert result.returncode == 1 and "holds no generator_ema.keras" in result.stderr and "ema=0.999" in result.stderr
    result = in_process("evaluate", str(a), "--metrics", "domain_fd", "--n", "32", "--generator", "best")
    assert result.returncode == 0 and "generator_best.keras against shapes" in result.stdout


def test_a_metric_that_cannot_run_is_said_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(inception2015, "available", lambda: False)  # no standard network: Keras's InceptionV3 ...
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # ... whose weights are not here, and offline:

    def offline(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    data = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "photos.npz", x=data)  # no classifier for it: KID
    panel = gan_lib.check_panel(dataset=str(tmp_path / "photos.npz"), best_every=10)
    with pytest.raises(ValueError, match="panel key 'best_every' cannot score this run: .*Inception"):
        best.BestTracker(data, panel, str(tmp_path / "run"))


@pytest.mark.parametrize("settings, message", [({"best_every": -1}, "'best_every' must be at least 0"),
                                               ({"best_n": 1}, "'best_n' must be at least 2")])
def test_bad_best_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        gan_lib.check_panel(**settings)
