"""Other backends: torch (CPU) passes the weight-change proofs and a short run; the fused step on torch and JAX,
under mixed precision too.

The backend is fixed when Keras is imported, so this runs in a fresh process.
"""


import pytest

from conftest import run_on_backend

# What both scripts start with: the backend the test asked for, weight snapshots, a little data.
PRELUDE = r'''
import os, sys
import numpy as np
import keras
import gan_lib
assert keras.backend.backend() == os.environ["KERAS_BACKEND"], keras.backend.backend()

def snap(m):
    return [keras.ops.convert_to_numpy(v) for v in m.weights]

def changed(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(a, b))

data = gan_lib.load_real_samples("shapes", limit=64)
'''

SCRIPT = PRELUDE + r'''
rng = np.random.default_rng(0)
for first_combined in (True, False):
    gan_lib.set_seed(0)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan_model = gan_lib.define_gan(g, d)
    def gan_step():
        bd, bg = snap(d), snap(g)
        gan_model.train_on_batch(gan_lib.generate_latent_points(100, 8, rng), np.ones((8, 1)))
        assert not changed(bd, snap(d)), "combined step changed D"
        assert changed(bg, snap(g)), "combined step left G alone"
    if first_combined:
        gan_step()
    for x, y in (gan_lib.generate_real_samples(data, 8, rng), gan_lib.generate_fake_samples(g, 100, 8, rng)):
        b = snap(d)
        d.train_on_batch(x, y)
        assert changed(b, snap(d)), "D did not learn"
    gan_step()

gan_lib.set_seed(1)
d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
history = gan_lib.train(g, d, gan_lib.define_gan(g, d), data, 100, n_epochs=1, n_batch=32,
                        run_dir=sys.argv[1], verbose=0, panel={"n_samples": 8, "checkpoint_every": 1})
assert len(history) == 2 and all(np.isfinite(r["g_loss"]) for r in history)
assert os.path.exists(os.path.join(sys.argv[1], "generator.keras"))

print("torch backend OK")
'''


def test_torch_backend_trains_both_models(tmp_path):
    assert "torch backend OK" in run_on_backend("torch", SCRIPT, tmp_path / "run")


FUSED_SCRIPT = PRELUDE + r'''
data = data[:, ::2, ::2]  # 16 x 16 images: the same code paths, a quicker compile (JAX's is slow on a CPU)
from gan_lib.fused import FusedStep
gan_lib.set_seed(2)
d, g = gan_lib.define_discriminator((16, 16, 3)), gan_lib.define_generator(100, (16, 16, 3))
gan_model = gan_lib.define_gan(g, d)
step = FusedStep(g, d, gan_model, data, gan_lib.check_panel(n_batch=16, label_noise=0.1))
bd, bg = snap(d), snap(g)
step()
snap(d), snap(g)  # between reads the Keras variables hold valid arrays (JAX: not donated)
step.read()  # JAX: writes the jitted state back into the Keras variables
assert changed(bd, snap(d)) and changed(bg, snap(g)), "fused step: a model did not learn"
d.optimizer.learning_rate = 0.0
bd = snap(d)
step()
assert all(np.isfinite(list(r.values())).all() for r in step.read())
assert not changed(bd, snap(d)), "fused step: G's update moved D"
sys.path.insert(0, "tests")
from gradcheck import directional_derivative
norm, slope = directional_derivative(g, d, np.random.default_rng(4).standard_normal((64, 100)).astype(np.float32))
assert norm > 0 and abs(slope - norm) < 0.02 * norm, f"G's gradient norm {norm} but the slope along it is {slope}"
sat = FusedStep(g, d, gan_model, data, gan_lib.check_panel(n_batch=16, g_objective="saturating"))
bg = snap(g)
sat()
assert sat.read()[0]["g_loss"] < 0 and changed(bg, snap(g)), "saturating objective: G's loss is log(1 - D(G(z))) < 0"
cg, cd, cgan = gan_lib.build_models({"arch": "cgan"}, (16, 16, 3), 10)  # the conditional GAN: [images, labels]
cstep = FusedStep(cg, cd, cgan, [data, gan_lib.make_shapes(64)[1]],  # and d_steps, g_steps: each step its own labels
                  gan_lib.check_panel(arch="cgan", n_batch=16, d_steps=2, g_steps=2))
bd, bg = snap(cd), snap(cg)
cstep()
assert all(np.isfinite(list(r.values())).all() for r in cstep.read())
assert changed(bd, snap(cd)) and changed(bg, snap(cg)), "cgan fused step: a model did not learn"
count = lambda m: int(keras.ops.convert_to_numpy(m.optimizer.iterations))
assert (count(cd), count(cgan)) == (4, 2), "cgan: d_steps 2 (a real and a fake update each), g_steps 2"
cd.optimizer.learning_rate = 0.0
bd = snap(cd)
cstep()
cstep.read()
assert not changed(bd, snap(cd)), "cgan fused step: G's update moved D"
before = count(d), count(gan_model)
steps = FusedStep(g, d, gan_model, data, gan_lib.check_panel(n_batch=16, d_steps=2, g_steps=3, mixed_batch=True))
steps()
row = steps.read()[0]
assert (count(d) - before[0], count(gan_model) - before[1]) == (2, 3), "d_steps 2 (mixed: 1 update each), g_steps 3"
assert row["d_loss_real"] == row["d_loss_fake"] and np.isfinite(list(row.values())).all()

pixels = np.round((data + 1) * 127.5).astype(np.uint8)  # the same images as stored: scaled inside the step

def fast_run(run_dir, epochs, resume=False, data=data):
    gan_lib.set_seed(3)
    d, g = gan_lib.define_discriminator((16, 16, 3)), gan_lib.define_generator(100, (16, 16, 3))
    panel = {"fast": True, "n_samples": 8, "load_weights": resume, "summarization": 1,  # the same draws either way
             "eval_every": 2}  # measured (diagnosis.py) at steps 2 and 4, the same after a resume
    return gan_lib.train(g, d, gan_lib.define_gan(g, d), data, 100, n_epochs=epochs, n_batch=32,
                         run_dir=run_dir, verbose=0, panel=panel)

straight = fast_run(sys.argv[1] + "-a", 2)
fast_run(sys.argv[1] + "-b", 1, data=pixels)  # uint8 data and a resume: the float32 run, bit for bit
assert fast_run(sys.argv[1] + "-b", 2, resume=True, data=pixels) == straight
assert [r["step"] for r in straight if r["g_grad_norm"] is not None] == [2, 4] and straight[-1]["g_grad_norm"] > 0
last = "checkpoints/ckpt-0002-00000.npz"
with np.load(os.path.join(sys.argv[1] + "-a", last)) as a, np.load(os.path.join(sys.argv[1] + "-b", last)) as b:
    bad = [k for k in a.files if not np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == 'f')]
    assert not bad, f"fused step: resumed state differs in {bad}"
print("fused step OK")
'''


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_fused_step_learns_and_resumes_exactly(name, tmp_path):
    """D and G learn, G's update leaves D alone, 2 epochs straight equal 1 + a resumed one, bit for bit."""
    assert "fused step OK" in run_on_backend(name, FUSED_SCRIPT, tmp_path / "run", timeout=400)


# Mixed precision in the fused step: both policies learn with float32 weights; mixed_float16's loss scale is applied
# (on JAX read from the jitted state): a scale too large for float16 overflows, so the step is skipped and it halves.
PRECISION_SCRIPT = PRELUDE + r'''
from gan_lib.fused import FusedStep
for policy in ("mixed_bfloat16", "mixed_float16"):  # built directly: set_precision refuses float16 on a CPU
    gan_lib.set_seed(2)
    keras.mixed_precision.set_global_policy(policy)
    L = keras.layers  # tiny models of the right shapes, their last layers float32 as in gan_lib.models: quick to compile
    g = keras.Sequential([keras.Input((100,)), L.Dense(16), L.Dense(3072, activation="tanh", dtype="float32"),
                          L.Reshape((32, 32, 3))])
    d = keras.Sequential([keras.Input((32, 32, 3)), L.Flatten(), L.Dense(16), L.Dropout(0.4),
                          L.Dense(1, activation="sigmoid", dtype="float32")])
    d.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(0.0002, beta_1=0.5))
    gan_model = gan_lib.define_gan(g, d)
    keras.mixed_precision.set_global_policy("float32")
    step = FusedStep(g, d, gan_model, data, gan_lib.check_panel(n_batch=16))
    bd, bg = snap(d), snap(g)
    step()
    assert all(np.isfinite(list(r.values())).all() for r in step.read())
    assert changed(bd, snap(d)) and changed(bg, snap(g)), f"{policy}: a model did not learn"
assert {v.dtype for v in d.weights + g.weights} == {"float32"}
for m in (d, gan_model):  # float16's loss scale, from the jitted state: too large, the step is skipped and it halves
    m.optimizer.dynamic_scale.assign(2.0**60)
bd, bg = snap(d), snap(g)
step()
step.read()
assert not changed(bd, snap(d)) and not changed(bg, snap(g)), "mixed_float16: the scaled loss was not differentiated"
assert (float(d.optimizer.dynamic_scale), float(gan_model.optimizer.dynamic_scale)) == (2.0**58, 2.0**59)
print("mixed precision OK")
'''


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_fused_step_under_mixed_precision(name):
    assert "mixed precision OK" in run_on_backend(name, PRECISION_SCRIPT)


# The modern recipe's pieces in the fused step (test_recipe.py checks their arithmetic on TensorFlow): both models
# learn, the values stay finite, the EMA moves. Spectral norm's kernel, the gradient penalty's second derivative and
# DiffAugment's draws each take another path on torch and JAX.
MODERN_SCRIPT = PRELUDE + r'''
data = data[:, ::2, ::2]
from gan_lib.fused import FusedStep
for settings in ({"recipe": "modern"}, {"loss": "wgan_gp", "r1_gamma": 1.0, "spectral_norm": True, "augment": "translation"}):
    gan_lib.set_seed(0)
    panel = gan_lib.check_panel(fast=True, n_batch=16, **settings)
    g, d, gan_model = gan_lib.build_models(panel, (16, 16, 3))
    step = FusedStep(g, d, gan_model, data, panel)
    bd, bg = snap(d), snap(g)
    step()
    step()
    rows = step.read()
    assert all(np.isfinite(list(r.values())).all() for r in rows), (settings, rows)
    assert changed(bd, snap(d)) and changed(bg, snap(g)), f"{settings}: a model did not learn"
    if step.ema:
        assert changed(snap(step.ema.model), snap(g)) and changed(snap(step.ema.model), bg), "the EMA did not move"
print("modern recipe OK")
'''


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_the_modern_recipe_trains_on_other_backends(name):
    assert "modern recipe OK" in run_on_backend(name, MODERN_SCRIPT)
