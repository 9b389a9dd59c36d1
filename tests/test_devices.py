"""Several devices through the framework's own engine (panel key devices; the fused step only).

Two logical CPU devices stand in for two GPUs: TensorFlow's MirroredStrategy over
tf.config logical devices, JAX's keras.distribution.DataParallel over
XLA_FLAGS=--xla_force_host_platform_device_count=2 host devices. Devices are fixed
when the backend starts, so each check runs in a fresh process. The multi-worker
test starts two TensorFlow workers on 127.0.0.1 (TF_CONFIG), as two machines would.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

# Run with KERAS_BACKEND set; argv[1] is a scratch folder.
SCRIPT = r'''
import os, sys
if os.environ["KERAS_BACKEND"] == "tensorflow":  # two logical CPU devices, before TensorFlow starts
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
import gan_lib
from gan_lib import backend, fused
from gan_lib import devices as placement

data = gan_lib.load_real_samples("shapes", limit=128)[:, ::2, ::2]  # 16 x 16 images: a quicker compile

def build(devices, dropout=True):
    gan_lib.set_seed(0)
    with gan_lib.distribute(devices):
        d, g = gan_lib.define_discriminator((16, 16, 3)), gan_lib.define_generator(100, (16, 16, 3))
        gan = gan_lib.define_gan(g, d)
    if not dropout:  # dropout masks depend on how the batch is split; without them the maths is the same
        for layer in d.layers:
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
    return g, d, gan

def weights(*models):
    return [keras.ops.convert_to_numpy(v) for m in models for v in m.weights]

# one step on two devices is one step on one device, within float round-off
results = []
for devices in (1, 2):
    g, d, gan = build(devices, dropout=False)
    assert placement.replicas(d) == placement.replicas(g) == devices, (devices, placement.replicas(d))
    before = weights(g, d)
    step = fused.FusedStep(g, d, gan, data, gan_lib.check_panel(n_batch=32, label_noise=0.1))
    step()
    (row,) = step.read()
    after = weights(g, d)
    assert all(not np.array_equal(a, b) for a, b in zip(before[:1] + before[-2:], after[:1] + after[-2:])), "no learning"
    results.append((row, after))
(row1, w1), (row2, w2) = results
for key in row1:
    assert abs(row1[key] - row2[key]) < 1e-5, (key, row1[key], row2[key])
worst = max(float(np.abs(a - b).max()) for a, b in zip(w1, w2))
assert worst < 1e-5, f"2 devices differ from 1 by {worst}"
print(f"one step: 2 devices match 1 within {worst:.1e}")

# a real 2-device run, dropout on: train() on TensorFlow (and a resume); on JAX, whose compiles are slow on a
# CPU, fused steps and train()'s device check
run = os.path.join(sys.argv[1], "run")
g, d, gan = build(2)
if os.environ["KERAS_BACKEND"] == "tensorflow":
    panel = {"fast": True, "devices": 2, "n_batch": 32, "n_epochs": 1, "n_samples": 8}
    history = gan_lib.train(g, d, gan, data, panel=panel, run_dir=run, verbose=0)
    assert os.path.exists(os.path.join(run, "generator.keras")) and os.path.exists(os.path.join(run, "history.csv"))
    for devices, epochs in ((1, 2), (2, 3)):  # checkpoints hold plain arrays: resume on one device, then on two
        g, d, gan = build(devices)
        history = gan_lib.train(g, d, gan, data, panel={"load_weights": True, "n_epochs": epochs, "devices": devices},
                                run_dir=run, verbose=0)
        assert len(history) == 4 * epochs and history[-1]["epoch"] == epochs
else:
    from gan_lib.devices import check_devices
    check_devices(g, d, gan_lib.check_panel(fast=True, devices=2, n_batch=32))
    step = fused.FusedStep(g, d, gan, data, gan_lib.check_panel(n_batch=32))
    for _ in range(4):
        step()
    history = step.read()
assert len(history) >= 4 and all(np.isfinite([r["d_loss_real"], r["d_loss_fake"], r["g_loss"]]).all() for r in history)

# what is refused, each with one clear error
g1, d1, gan1 = build(1)
for bad, where in (({"devices": 2}, "several devices need the fused step"),
                   ({"devices": 2, "fast": True, "n_batch": 34}, "split evenly over 2 devices"),
                   ({"devices": 3, "fast": True}, "shows 2")):
    try:
        gan_lib.train(g, d, gan, data, panel={**bad, "n_epochs": 1}, run_dir=os.path.join(sys.argv[1], "no"), verbose=0)
    except ValueError as e:
        assert where in str(e), str(e)
    else:
        raise AssertionError(f"{bad} was accepted")
try:
    gan_lib.train(g1, d1, gan1, data, panel={"devices": 2, "fast": True, "n_epochs": 1}, verbose=0,
                  run_dir=os.path.join(sys.argv[1], "no"))
except ValueError as e:
    assert "built for 1 device(s)" in str(e) and "gan_lib.distribute(2)" in str(e), str(e)
else:
    raise AssertionError("models built for one device were trained on two")
assert not os.path.exists(os.path.join(sys.argv[1], "no"))

if os.environ["KERAS_BACKEND"] == "tensorflow":  # the command line builds the models under the strategy
    from gan_lib.__main__ import main
    out = os.path.join(sys.argv[1], "cli")
    rc = main(["train", "--dataset", "shapes", "--limit", "128", "--batch", "32", "--epochs", "1", "--fast",
               "--set", "devices=2", "--set", "n_samples=8", "--out", out, "--quiet"])
    assert rc == 0 and os.path.exists(os.path.join(out, "generator.keras"))
print("devices OK")
'''


@pytest.mark.parametrize("name", ["tensorflow", "jax"])
def test_two_devices_train_like_one(name, tmp_path):
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed")
    env = dict(os.environ, KERAS_BACKEND=name, TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "devices OK" in result.stdout, result.stdout


def test_torch_refuses_several_devices():
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    code = ("import gan_lib\ntry:\n    gan_lib.distribute(2).__enter__()\nexcept ValueError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, KERAS_BACKEND="torch"),
                            capture_output=True, text=True, timeout=120)
    assert "not on torch" in result.stdout or "shows 1" in result.stdout, result.stdout + result.stderr[-2000:]


# One worker of a two-worker run: argv = index, port of worker 0, port of worker 1, run folder, weights file.
WORKER = r'''
import json, os, sys
index, port0, port1, run, out = sys.argv[1:]
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
                                      "task": {"type": "worker", "index": int(index)}})
import keras
import numpy as np
import gan_lib
from gan_lib import backend, devices

assert devices.strategy(1).num_replicas_in_sync == 2 and devices.is_chief() == (index == "0")
data = gan_lib.load_real_samples("shapes", limit=128)
gan_lib.set_seed(0)
with gan_lib.distribute(1):
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan = gan_lib.define_gan(g, d)
history = gan_lib.train(g, d, gan, data, run_dir=run, verbose=0,
                        panel={"fast": True, "n_batch": 32, "n_epochs": 1, "n_samples": 8})
assert len(history) == 4 and np.isfinite(history[-1]["g_loss"])
np.savez(out, *[keras.ops.convert_to_numpy(v) for v in g.weights + d.weights])
'''


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed")
def test_two_workers_train_in_step_and_only_the_chief_writes(tmp_path):
    """MultiWorkerMirroredStrategy from TF_CONFIG: both workers end with the same weights; one run folder."""
    ports, run, scratch = free_ports(2), tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(scratch))
    env.pop("TF_CONFIG", None)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), *map(str, ports), str(run), str(tmp_path / f"w{i}.npz")],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    try:
        outputs = [w.communicate(timeout=300) for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, out[-2000:] + err[-3000:]
    with np.load(tmp_path / "w0.npz") as a, np.load(tmp_path / "w1.npz") as b:
        assert len(a.files) == 20 and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert (run / "generator.keras").exists() and json.loads((run / "panel.json").read_text())["fast"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "scratch", "w0.npz", "w1.npz"]
    assert not list(scratch.iterdir()), "the non-chief worker left files behind"
