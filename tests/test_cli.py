"""The command line end to end on the embedded dataset, and its one-line errors."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import offline_env, run_cli, tree
from gan_lib.__main__ import main


def assert_one_line_error(result, text):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and text in lines[0], lines[0]


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("cli") / "run")
    result = run_cli("train", "--dataset", "shapes", "--epochs", "1", "--limit", "64", "--batch", "32",
                     "--latent-dim", "20", "--seed", "3", "--set", "n_samples=8", "--set", "grid=3",
                     "--out", run_dir)
    assert result.returncode == 0, result.stderr
    return run_dir, result


def test_train_writes_a_run(cli_run):
    run_dir, result = cli_run
    assert "training on shapes: 64 images (32, 32, 3)" in result.stdout
    assert ">Accuracy real:" in result.stdout and "done: " in result.stdout
    for name in ("panel.json", "history.csv", "history.png", "generator.keras", "generated_plot_e001.png"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert result.stderr.strip() == ""


def test_generate_from_the_run_and_from_the_model(cli_run, tmp_path, in_process):
    run_dir, _ = cli_run
    result = in_process("generate", run_dir, "--n", "3", "--seed", "1", "--out", str(tmp_path / "a.png"))
    assert result.returncode == 0, result.stderr
    a = np.asarray(Image.open(tmp_path / "a.png"))
    assert a.shape == (3 * 32 * 2, 3 * 32 * 2, 3) and a.std() > 0
    result = in_process("generate", os.path.join(run_dir, "generator.keras"), "--n", "3", "--seed", "1",
                        "--out", str(tmp_path / "b.png"))
    assert result.returncode == 0, result.stderr
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "b.png")))  # same seed, same images


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for flag in ("--dataset", "--epochs", "--batch", "--latent-dim", "--limit", "--out", "--seed", "--set", "--resume",
                 "--arch"):
        assert flag in out
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    out = capsys.readouterr().out
    for flag in ("--n", "--out", "--seed", "RUN_DIR_OR_MODEL"):
        assert flag in out


@pytest.mark.parametrize(
    "args,text",
    [
        (["train", "--dataset", "no_such_thing"], "neither a known name"),
        (["train", "--dataset", "shapes", "--batch", "3"], "'n_batch' must be even"),
        (["train", "--dataset", "shapes", "--set", "n_epoch=3"], "Did you mean 'n_epochs'"),
        (["train", "--dataset", "shapes", "--set", "label_smoothing=lots"], "wants a number"),
        (["train", "--dataset", "shapes", "--limit", "16", "--batch", "32"], "'n_batch' is 32 but the dataset has only 16"),
        (["train", "--dataset", "shapes", "--arch", "gan"], "'arch' must be one of tutorial, dcgan"),
        (["train", "--dataset", "shapes", "--arch", "dcgan", "--set", "width=0"], "'width' must be at least 1"),
    ],
)
def test_bad_train_input_is_one_line_and_writes_nothing(args, text, tmp_path, in_process, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a default run folder would land (outputs/ here, outside the checkout)
    result = in_process(*args, "--out", str(tmp_path / "out"))
    assert_one_line_error(result, text)
    assert list(tmp_path.iterdir()) == [], "bad input must write nothing"


# Each bad generate call, and the good call it differs from: RUN is a copy of a finished run.
BAD_GENERATE = [
    (["generate", "no_such_run"], "neither a run folder nor a .keras file", ["generate", "RUN"]),
    (["generate", "RUN", "--n", "0"], "--n must be at least 1", ["generate", "RUN", "--n", "1"]),
    (["generate", "RUN", "--seed", "-1"], "--seed must be between 0 and 2**32 - 1", ["generate", "RUN", "--seed", "1"]),
    (["generate", "RUN", "--out", "grid.gif"], "--out must name a .png or .jpg file",
     ["generate", "RUN", "--out", "grid.png"]),
]


@pytest.mark.parametrize("args,text,good", BAD_GENERATE)
def test_bad_generate_input_is_one_line_and_writes_nothing(args, text, good, cli_run, tmp_path, in_process, monkeypatch):
    """Nothing changes beside the model (generate's default --out) or in the working folder (a relative --out)."""
    shutil.copytree(cli_run[0], tmp_path / "RUN")
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    assert_one_line_error(in_process(*args), text)
    assert tree(tmp_path) == before, "bad input must write nothing"
    result = in_process(*good)  # the check above can fail: the good call does write there
    assert result.returncode == 0, result.stderr
    written = set(tree(tmp_path)) - set(before)
    assert written == {"grid.png" if "grid.png" in good else os.path.join("RUN", "generated.png")}


def test_offline_cifar10_default_names_the_alternatives(tmp_path):
    """The default dataset with no network: one line naming the alternatives; no download, no run folder."""
    env, attempts = offline_env(tmp_path)
    out = tmp_path / "out"
    # --epochs/--limit: should the network fence ever fail, this still could not start a long run
    result = run_cli("train", "--epochs", "1", "--limit", "64", "--out", str(out), env=env, timeout=120)
    assert_one_line_error(result, "could not download CIFAR-10")
    assert "--dataset shapes" in result.stderr and "--dataset PATH" in result.stderr
    assert attempts.read_text().strip()  # it did try to download, and the fence stopped it
    assert not out.exists()
    cache = tmp_path / "home" / ".keras" / "datasets"
    assert not [p for p in cache.rglob("*") if p.is_file()]  # no partial download left in the cache


def test_a_real_process_prints_one_line_too(tmp_path):
    """No TensorFlow notices around the error, in a fresh interpreter."""
    assert_one_line_error(run_cli("train", "--resume", str(tmp_path)), "not a gan_lib run folder")


def test_refuses_to_overwrite_and_checks_resume(cli_run, tmp_path, in_process):
    run_dir, _ = cli_run
    before = open(os.path.join(run_dir, "history.csv")).read()
    assert_one_line_error(in_process("train", "--dataset", "shapes", "--out", run_dir), "is not an empty folder")
    assert_one_line_error(in_process("train", "--resume", run_dir, "--latent-dim", "30"), "was made with 20")
    assert open(os.path.join(run_dir, "history.csv")).read() == before


def test_out_that_is_a_file(tmp_path, in_process):
    (tmp_path / "afile").write_text("keep me")
    result = in_process("train", "--dataset", "shapes", "--out", str(tmp_path / "afile"))
    assert_one_line_error(result, "exists and is not an empty folder")
    assert (tmp_path / "afile").read_text() == "keep me"


def test_ctrl_c_names_the_folder_to_resume(tmp_path, in_process, monkeypatch):
    from gan_lib import training

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    monkeypatch.chdir(tmp_path)  # the default run folder lands here
    result = in_process("train", "--dataset", "shapes", "--limit", "64", "--batch", "32")
    assert result.returncode == 130
    assert "continue with: python -m gan_lib train --resume " in result.stderr and "None" not in result.stderr


def test_generate_refuses_a_model_that_is_not_a_generator(tmp_path, in_process):
    import gan_lib

    gan_lib.define_discriminator().save(tmp_path / "d.keras")
    assert_one_line_error(in_process("generate", str(tmp_path / "d.keras")), "is not an image generator")


def test_corrupt_model_file(tmp_path, in_process):
    bad = tmp_path / "generator.keras"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert_one_line_error(in_process("generate", str(bad)), "cannot be loaded as a Keras model")
    assert_one_line_error(in_process("generate", str(tmp_path / "nothing")), "neither a run folder")


def test_resume_trains_on(cli_run, tmp_path, in_process):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(cli_run[0], run_dir)
    result = in_process("train", "--resume", run_dir, "--epochs", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert os.path.exists(os.path.join(run_dir, "generated_plot_e002.png"))
    assert len(open(os.path.join(run_dir, "history.csv")).read().splitlines()) == 1 + 4


def test_new_runs_are_fast_unless_told_and_a_resume_keeps_its_kind(cli_run, tmp_path, in_process, capsys):
    from gan_lib.__main__ import build_parser, panel_from_args

    def panel(*args):
        return panel_from_args(build_parser().parse_args(["train", *args]))

    assert panel()["fast"] is True and panel("--fast")["fast"] is True
    assert panel("--tutorial-loop")["fast"] is False and panel("--set", "fast=false")["fast"] is False
    with pytest.raises(SystemExit):
        panel("--fast", "--tutorial-loop")
    assert "not allowed with argument --fast" in capsys.readouterr().err
    assert json_panel(cli_run[0])["fast"] is True  # the module's run was made without a flag
    assert panel("--resume", cli_run[0])["fast"] is True
    run_dir = str(tmp_path / "run")
    shutil.copytree(cli_run[0], run_dir)
    result = in_process("train", "--resume", run_dir, "--epochs", "2", "--tutorial-loop", "--quiet")
    assert_one_line_error(result, "panel key 'fast' is False but run")


def json_panel(run_dir):
    import json

    with open(os.path.join(run_dir, "panel.json")) as f:
        return json.load(f)


@pytest.fixture
def evaluated(cli_run, classifier_cache, tmp_path, in_process, monkeypatch):
    """`evaluate` on a copy of the module's run, offline: the shapes classifier from the session's cache."""
    import keras

    from gan_lib import modes

    modes.classifier("shapes", cache_dir=classifier_cache, verbose=False)  # trained once per session
    home = tmp_path / "keras_home"
    (home / "gan_lib").mkdir(parents=True)
    shutil.copy(modes.classifier_path("shapes", cache_dir=classifier_cache), home / "gan_lib")
    monkeypatch.setenv("KERAS_HOME", str(home))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    run_dir = str(tmp_path / "run")
    shutil.copytree(cli_run[0], run_dir)
    return run_dir, in_process("evaluate", run_dir, "--n", "40", "--inception", "keras")  # Keras's: offline here


def test_evaluate_scores_a_run_offline_and_says_why_inception_cannot_run(evaluated):
    import json

    run_dir, result = evaluated
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
    assert set(lines) == {"modes", "domain_fd", "memorisation", "kid", "fid"}
    assert "classes_found" in lines["modes"] and "not run" not in lines["domain_fd"]
    for metric in ("kid", "fid"):
        assert "not run:" in lines[metric] and "--weights PATH" in lines[metric], lines[metric]
    with open(os.path.join(run_dir, "metrics.json")) as f:
        saved = json.load(f)
    assert set(saved["scores"]) == {"modes", "domain_fd", "memorisation"} and set(saved["not_run"]) == {"kid", "fid"}
    assert 0 <= saved["scores"]["modes"]["classes_found"] <= 10 and saved["scores"]["domain_fd"] > 0
    assert 0.0 <= saved["scores"]["memorisation"] <= 1.0 and saved["n"] == 40


def test_evaluate_bad_input_is_one_line(evaluated, in_process, tmp_path):
    import pathlib

    run_dir, _ = evaluated
    before = tree(pathlib.Path(run_dir))
    assert_one_line_error(in_process("evaluate", run_dir, "--metrics", "modes,bogus"), "unknown metric 'bogus'")
    assert_one_line_error(in_process("evaluate", run_dir, "--n", "1"), "--n must be at least 2")
    assert_one_line_error(in_process("evaluate", os.path.join(run_dir, "generator.keras").replace("run", "nowhere")),
                          "neither a run folder")
    assert tree(pathlib.Path(run_dir)) == before  # a refused evaluate writes nothing


def photos(folder):
    """Three photos of different sizes and one file that only looks like a JPEG."""
    folder.mkdir()
    for i, (w, h) in enumerate([(50, 80), (120, 90), (64, 64)]):
        Image.new("RGB", (w, h), (40 * i, 100, 200)).save(folder / f"{i}.png")
    (folder / "3.jpg").write_text("not a photo")
    return folder


def test_train_brings_a_folder_of_photos_to_the_panels_size(tmp_path, in_process, monkeypatch):
    from gan_lib import training

    seen = {}
    monkeypatch.setattr(training, "train", lambda g, d, gan, x, **kwargs: seen.update(x=x))
    folder = photos(tmp_path / "photos")
    result = in_process("train", "--dataset", str(folder), "--set", "image_size=16", "--set", "resize=stretch",
                        "--batch", "2", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert seen["x"].shape == (3, 16, 16, 3) and seen["x"].dtype == np.uint8  # scaled per batch by train()
    assert "4 image files, 1 skipped -> uint8 (3, 16, 16, 3) (stretch)" in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipped 1 of 4 files in ") and "3.jpg" in lines[0]
    assert in_process("train", "--dataset", str(folder), "--batch", "2", "--set", "channels=1",
                      "--out", str(tmp_path / "run2")).returncode == 0
    assert seen["x"].shape == (3, 32, 32, 1)  # image_size 0: the tutorial models' 32


def test_evaluate_loads_a_folder_at_the_generators_size(tmp_path, in_process, monkeypatch):
    import gan_lib
    from gan_lib import evaluate

    seen = {}

    def fake_scores(g_model, real, dataset, metrics, *args):
        seen.update(real=real)
        return {m: 0.5 for m in metrics}, {}

    monkeypatch.setattr(evaluate, "evaluate_generator", fake_scores)
    gan_lib.define_generator(8, out_shape=(16, 16, 3)).save(tmp_path / "g.keras")
    folder = photos(tmp_path / "photos")
    result = in_process("evaluate", str(tmp_path / "g.keras"), "--dataset", str(folder), "--metrics", "kid")
    assert result.returncode == 0, result.stderr
    assert seen["real"].shape == (3, 16, 16, 3)
