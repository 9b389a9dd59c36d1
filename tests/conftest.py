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


def tree(folder):
    """Every file under folder (a pathlib.Path) with its bytes: a snapshot to compare before and after."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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


NO_NETWORK = '''\
"""sitecustomize for a test's subprocess: any attempt to reach the network fails at once, and is logged."""
import os
import socket

_LOG = os.environ["GAN_LIB_TEST_NETWORK_LOG"]
_connect = socket.socket.connect


def _refuse(what):
    with open(_LOG, "a") as f:
        f.write(what + "\\n")
    raise OSError(f"network disabled by the test ({what})")


def _getaddrinfo(host, *args, **kwargs):
    _refuse(f"getaddrinfo {host}")


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse(f"connect {address}")
    return _connect(self, address)


socket.getaddrinfo = _getaddrinfo
socket.socket.connect = _guarded_connect
'''


def offline_env(tmp_path):
    """Environment for a subprocess with no network and an empty HOME and Keras cache under tmp_path.

    A sitecustomize.py refuses every internet connection (and logs it to the returned path); proxies point
    at a closed port as a second fence. Returns (env, log path).
    """
    site, home = tmp_path / "no_network_site", tmp_path / "home"
    site.mkdir()
    home.mkdir(exist_ok=True)  # a test may have filled its Keras cache first
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    log = tmp_path / "network_attempts.log"
    closed = "http://127.0.0.1:9"
    env = {"HOME": str(home), "KERAS_HOME": str(home / ".keras"), "PYTHONPATH": os.pathsep.join([str(site), ROOT]),
           "GAN_LIB_TEST_NETWORK_LOG": str(log), "no_proxy": "", "NO_PROXY": ""}
    env.update({name: closed for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy")})
    return env, log


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory):
    """A folder for gan_lib.modes' classifiers (the shapes one trains on first use, about 20 s), shared by the session."""
    return tmp_path_factory.mktemp("classifiers")
