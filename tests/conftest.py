import atexit
import os
import shutil
import subprocess
import sys
import tempfile

# Every process of the session (test subprocesses and notebook kernels too) caches in one temporary
# Keras home instead of ~/.keras: the shapes classifier (modes.py) is trained once per session, and
# the machine is left as it was found.
KERAS_HOME = tempfile.mkdtemp(prefix="gan_lib-tests-keras-")
os.environ["KERAS_HOME"] = KERAS_HOME
atexit.register(shutil.rmtree, KERAS_HOME, ignore_errors=True)
# JAX's persistent compilation cache, there too: every JAX test runs in a fresh process, which otherwise compiles
# each eager op and each identical step again (the fused-step test: 100 s with a cold cache, 32 s with a warm one).
os.environ.update(JAX_COMPILATION_CACHE_DIR=os.path.join(KERAS_HOME, "jax-cache"),
                  JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")

import keras  # noqa: E402  (after KERAS_HOME: Keras reads it when imported)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gan_lib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, env=None, timeout=300):
    """python -m gan_lib ARGS in a fresh process; returns the CompletedProcess."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run([sys.executable, "-m", "gan_lib", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def run_on_backend(name, script, *args, timeout=300):
    """python -c SCRIPT ARGS with KERAS_BACKEND=name in a fresh process (Keras fixes its backend when imported).

    Skips the test when that backend is not installed; fails it with the end of the script's stderr when the script
    fails. Returns the script's stdout.
    """
    import importlib.util

    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (pip install {name})")
    env = dict(os.environ, KERAS_BACKEND=name, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def in_process(capsys):
    """main(argv) in this process: the same code path as `python -m gan_lib`, without a 5 s start-up."""
    from gan_lib.__main__ import main

    def call(*args):
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call


def tree(folder):
    """Every file under folder (a pathlib.Path) with its bytes: a snapshot to compare before and after."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def snapshot(model):
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


def same(a, b):
    """Arrays equal bit for bit, NaN matching NaN (a history's measurements not taken are NaN in checkpoints)."""
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc")


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
    """gan_lib.modes' default cache in the session's Keras home: the shapes classifier trains there once
    (about 20 s), then every test, subprocess and notebook of the session reads it."""
    return os.path.join(KERAS_HOME, "gan_lib")
