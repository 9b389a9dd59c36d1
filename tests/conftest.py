import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import gan_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, env=None, timeout=300):
    """python -m gan_lib ARGS in a fresh process; returns the CompletedProcess."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run([sys.executable, "-m", "gan_lib", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(model):
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


def changed(before, after):
    """True when any array differs."""
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.fixture(scope="session")
def shapes_small():
    return gan_lib.load_real_samples("shapes", limit=128)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, shapes_small):
    """One short real run (1 epoch, 4 batches of 32) shared by tests that only read its folder."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "run")
    gan_lib.set_seed(3)
    d = gan_lib.define_discriminator()
    g = gan_lib.define_generator(100)
    gan = gan_lib.define_gan(g, d)
    history = gan_lib.train(g, d, gan, shapes_small, 100, n_epochs=1, n_batch=32, run_dir=run_dir,
                            panel={"checkpoint_every": 2, "grid": 4, "n_samples": 16}, verbose=0)
    return run_dir, history
