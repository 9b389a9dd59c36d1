"""The one-dimensional toy GAN: real points, the two metrics, the models, and a short training run."""

import json

import keras
import numpy as np
import pytest

import gan_lib
from gan_lib import toy, toy_training


def weights(model):
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def on_curve(n):
    x = np.linspace(-0.5, 0.5, n)
    return np.stack([x, x**2], axis=1)


def test_real_points_lie_on_the_curve_and_cover_the_range():
    points, labels = toy.generate_real_points(1000, np.random.default_rng(0))
    assert points.shape == (1000, 2) and points.dtype == np.float32
    assert labels.shape == (1000, 1) and (labels == 1).all()
    assert points[:, 0].min() >= -0.5 and points[:, 0].max() <= 0.5
    assert toy.curve_distance(points) < 1e-7  # float32 rounding only
    assert toy.coverage(points) == 1.0


def test_curve_distance_on_known_points():
    assert toy.curve_distance(on_curve(41)) == 0.0
    assert toy.curve_distance(on_curve(41) + [0.0, 0.1]) == pytest.approx(0.1)
    assert toy.curve_distance(on_curve(41) - [0.0, 0.3]) == pytest.approx(0.3)  # below counts the same
    assert toy.curve_distance([[2.0, 0.0], [0.0, 0.0]]) == pytest.approx(2.0)  # (4 + 0) / 2


def test_coverage_on_known_points():
    assert toy.coverage(on_curve(20)) == 1.0  # one point in each of the 20 bins
    assert toy.coverage(np.tile([[0.1, 0.01]], (500, 1))) == 1 / 20  # collapsed: on the curve, one bin
    assert toy.coverage(on_curve(41)[:20]) == 0.5  # x from -0.5 to -0.025: the left half
    assert toy.coverage([[0.9, 0.81], [-2.0, 4.0]]) == 0.0  # outside [-0.5, 0.5] counts nowhere
    assert toy.coverage(on_curve(20), n_bins=40) == 0.5


def test_models_have_the_documented_shapes_and_sizes():
    d = toy.define_toy_discriminator()
    g = toy.define_toy_generator(5)
    assert d.count_params() == 101 and g.count_params() == 122
    z = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    points = keras.ops.convert_to_numpy(g(z))
    assert points.shape == (7, 2)
    p = keras.ops.convert_to_numpy(d(points))
    assert p.shape == (7, 1) and ((p > 0) & (p < 1)).all()


def test_the_combined_model_updates_the_generator_only():
    gan_lib.set_seed(0)
    d = toy.define_toy_discriminator()
    g = toy.define_toy_generator(5)
    gan = gan_lib.define_gan(g, d, lr=0.001, beta_1=0.9)
    d0, g0 = weights(d), weights(g)
    gan.train_on_batch(np.ones((16, 5), np.float32), np.ones((16, 1), np.float32))
    assert changed(g0, weights(g)), "G did not learn through the combined model"
    assert not changed(d0, weights(d)), "the combined model changed D"
    d.train_on_batch(np.zeros((16, 2), np.float32), np.zeros((16, 1), np.float32))
    assert changed(d0, weights(d)), "D did not learn from its own train_on_batch after the combined model trained"


def test_a_short_run_moves_generated_points_toward_the_curve():
    gan_lib.set_seed(1)
    rng = np.random.default_rng(1)
    d = toy.define_toy_discriminator()
    g = toy.define_toy_generator(5)
    gan = gan_lib.define_gan(g, d, lr=0.001, beta_1=0.9)
    z = gan_lib.generate_latent_points(5, 500, rng)
    before = toy.curve_distance(keras.ops.convert_to_numpy(g(z)))
    d0, g0 = weights(d), weights(g)
    history = toy.train_toy(g, d, gan, 5, n_steps=300, n_batch=64, rng=rng)
    after = toy.curve_distance(keras.ops.convert_to_numpy(g(z)))
    assert len(history) == 300 and set(history[0]) == {"d_loss_real", "d_loss_fake", "g_loss"}
    assert np.isfinite([list(row.values()) for row in history]).all()
    assert changed(d0, weights(d)) and changed(g0, weights(g))
    assert after < 0.5 * before, f"distance to the curve went from {before:.3f} to {after:.3f}"


# ---------------------------------------------------------------- toys with known modes: scores, samplers, packing, the command


@pytest.mark.parametrize("name, k", [("ring", 8), ("grid", 25)])
def test_mode_scores_on_the_exact_centres_cover_every_mode(name, k):
    means = toy.MODE_TOYS[name][0]
    s = toy.mode_scores(np.repeat(means, 10, axis=0), name)  # 10 points on each centre
    assert (s["modes"], s["of"], s["high_quality"]) == (k, k, 1.0)
    assert s["reverse_kl"] == pytest.approx(0.0, abs=1e-12) and s["counts"] == [10] * k


@pytest.mark.parametrize("name, k", [("ring", 8), ("grid", 25)])
def test_mode_scores_on_three_modes(name, k):
    means = toy.MODE_TOYS[name][0]
    points = np.repeat(means[[0, 3, 5]], [10, 10, 10], axis=0)
    s = toy.mode_scores(points, name)
    assert s["modes"] == 3 and s["high_quality"] == 1.0
    assert s["reverse_kl"] == pytest.approx(np.log(k / 3))  # uniform over 3 of k modes


def test_mode_scores_counts_a_mode_only_with_min_count_good_points():
    means, std = toy.MODE_TOYS["ring"]
    points = np.concatenate([np.repeat(means[:1], 5, axis=0), np.repeat(means[1:2], 4, axis=0)])
    assert toy.mode_scores(points, "ring")["modes"] == 1  # 4 < MIN_COUNT = 5
    near = means[:1] + [2.9 * std, 0.0]  # inside 3 std: high quality; 3.1 std: not
    far = means[:1] + [3.1 * std, 0.0]
    assert toy.mode_scores(np.concatenate([near, far]), "ring")["high_quality"] == 0.5


def test_mode_scores_of_far_away_points_are_zero():
    s = toy.mode_scores(np.full((100, 2), 50.0), "grid")
    assert s["modes"] == 0 and s["high_quality"] == 0.0 and s["reverse_kl"] == float("inf")


@pytest.mark.parametrize("bad", [np.zeros((10, 3)), np.zeros(10), np.zeros((2, 5, 2))])
def test_mode_scores_wants_points_of_shape_n_by_2(bad):
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        toy.mode_scores(bad, "ring")


def test_unknown_toys_are_refused():
    with pytest.raises(ValueError, match="unknown toy 'blob'; choose one of ring, grid"):
        toy.sample_modes("blob", 10)
    with pytest.raises(ValueError, match="unknown toy"):
        toy_training.toy_settings("blob")


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_sample_modes_draws_every_mode_equally_with_the_stated_spread(name):
    means, std = toy.MODE_TOYS[name]
    points = toy.sample_modes(name, 50_000, np.random.default_rng(0))
    assert points.shape == (50_000, 2) and points.dtype == np.float32
    nearest = np.linalg.norm(points[:, None] - means[None], axis=2).argmin(axis=1)
    share = np.bincount(nearest, minlength=len(means)) / len(points)
    assert np.abs(share - 1 / len(means)).max() < 0.01  # uniform over the modes
    offsets = points - means[nearest]
    assert np.abs(offsets.mean(axis=0)).max() < 0.01 * std * 10  # centred on the modes
    assert offsets.std(axis=0) == pytest.approx([std, std], rel=0.03)
    s = toy.mode_scores(points[:2500], name)
    assert s["modes"] == len(means) and s["high_quality"] > 0.98 and s["reverse_kl"] < 0.02


def test_pack_puts_m_consecutive_points_side_by_side_and_unpack_repeats_per_pack():
    x = np.arange(24, dtype=np.float32).reshape(12, 2)  # point i is (2i, 2i + 1)
    packed = keras.ops.convert_to_numpy(toy.Pack(3)(x))
    assert packed.shape == (4, 6)
    np.testing.assert_array_equal(packed[1], np.concatenate([x[3], x[4], x[5]]))  # points 3, 4, 5: distinct samples
    scores = np.array([[0.1], [0.2], [0.3], [0.4]], np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(toy.Unpack(3)(scores)).ravel(), np.repeat(scores.ravel(), 3))


def test_a_packed_discriminator_scores_each_pack_from_all_its_members():
    gan_lib.set_seed(0)
    d = toy.define_mlp_discriminator(pack=4, scale=4.0, units=16, depth=2)
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    p = keras.ops.convert_to_numpy(d(x)).ravel()
    assert p.shape == (8,) and np.all(p[:4] == p[0]) and np.all(p[4:] == p[4])  # one score per pack of 4
    y = x.copy()
    y[2] += 1.0  # a member of the first pack only
    q = keras.ops.convert_to_numpy(d(y)).ravel()
    assert q[0] != p[0] and np.array_equal(q[4:], p[4:])
    assert d.layers[2].input.shape[-1] == 8  # the first Dense layer sees 4 points of 2 = 8 numbers


def test_the_packed_loss_is_the_mean_over_packs():
    """BCE over the n points (each pack's score repeated m times) equals BCE over the n / m packs."""
    gan_lib.set_seed(0)
    d = toy.define_mlp_discriminator(pack=2, units=8, depth=1)
    x = np.random.default_rng(1).normal(size=(6, 2)).astype(np.float32)
    p = keras.ops.convert_to_numpy(d(x)).ravel()[::2]  # one per pack
    y = np.zeros((6, 1), np.float32)
    assert d.evaluate(x, y, verbose=0)[0] == pytest.approx(float(-np.mean(np.log(1 - p))), rel=1e-5)


def test_a_scaled_generator_and_discriminator_rescale_by_the_toys_extent():
    gan_lib.set_seed(0)
    g1 = toy.define_mlp_generator(2, scale=1.0, units=8, depth=1)
    g4 = toy.define_mlp_generator(2, scale=4.0, units=8, depth=1)
    g4.set_weights(g1.get_weights())
    z = np.ones((3, 2), np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(g4(z)), 4 * keras.ops.convert_to_numpy(g1(z)), rtol=1e-6)
    d1 = toy.define_mlp_discriminator(scale=1.0, units=8, depth=1)
    d4 = toy.define_mlp_discriminator(scale=4.0, units=8, depth=1)
    d4.set_weights(d1.get_weights())
    x = np.ones((2, 2), np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(d4(4 * x)), keras.ops.convert_to_numpy(d1(x)), rtol=1e-6)


@pytest.mark.parametrize("overrides, message", [
    ({"pack": 3}, r"half batch \(256\) must be a multiple of pack \(3\)"),
    ({"pack": 4, "n_batch": 516}, r"half batch \(258\) must be a multiple of pack \(4\)"),  # 516 is, 258 is not
    ({"pack": 0}, "pack must be a whole number of at least 1"),
    ({"scale": -1.0}, "scale must be a number above 0"),
    ({"pack": 2, "label_noise": 0.05}, "use label_noise=0 with pack above 1"),
    ({"n_batch": 7}, "must be even"),
    ({"colour": 1}, "unknown panel key 'colour'"),
])
def test_toy_settings_refuse_what_cannot_work(overrides, message):
    with pytest.raises(ValueError, match=message):
        toy_training.toy_settings("ring", overrides)


def test_toy_settings_start_from_the_toys_defaults():
    panel, model = toy_training.toy_settings("grid", {"pack": 4, "d_lr": 0.0005})
    assert panel["n_batch"] == toy_training.TOY_DEFAULTS["grid"]["n_batch"] and panel["latent_dim"] == 2
    assert panel["label_smoothing"] == toy_training.TOY_DEFAULTS["grid"]["label_smoothing"] and panel["d_lr"] == 0.0005
    assert model["pack"] == 4 and model["scale"] == toy_training.TOY_DEFAULTS["grid"]["scale"] and model["units"] == 128
    with pytest.raises(ValueError, match="the parabola trains the tutorial's small ones"):
        toy_training.toy_settings("parabola", {"pack": 2})


@pytest.mark.parametrize("fast", [False, True])
def test_a_toy_run_is_measured_every_eval_every_steps_and_diagnosed(fast):
    """The image runs' measurements on a toy: at steps 4 and 8 only, the last one the final samples' own mode count;
    measuring changes nothing in the run; diagnose reads the history."""
    def run(every):
        panel, model = toy_training.toy_settings("ring", {"units": 8, "n_batch": 32, "fast": fast, "eval_every": every})
        gan_lib.set_seed(2)
        return toy_training.train_named_toy("ring", 8, panel, model)

    samples, scores, history = run(4)
    assert [r["step"] for r in history] == list(range(1, 9))
    measured = [r["step"] for r in history if r["g_grad_norm"] is not None]
    assert measured == [4, 8] and all(history[k - 1]["diversity"] > 0 for k in measured)
    assert history[-1]["modes"] == scores["modes"] and all(r["domain_fd"] is None for r in history)
    assert history[-1]["mode_counts"] == scores["counts"] and history[0]["mode_counts"] is None
    assert history[-1]["g_grad_norm"] > 0
    _, unmeasured_scores, unmeasured = run(0)
    assert all(r["g_grad_norm"] is None for r in unmeasured)
    measures = (*gan_lib.runs.EVAL_COLUMNS, "mode_counts")
    strip = [{k: v for k, v in r.items() if k not in measures} for r in history]
    assert strip == [{k: v for k, v in r.items() if k not in measures} for r in unmeasured]
    assert unmeasured_scores == scores
    assert gan_lib.diagnose(history) == {}  # reads a toy history; 8 steps are too few for any sign


@pytest.mark.parametrize("fast", [False, True])
def test_a_toy_trains_with_the_panels_objective(fast):
    """g_objective reaches the toy's combined model: the loop's train_on_batch and the fused step both report
    log(1 - D(G(z))) < 0 for the saturating loss and -log D(G(z)) > 0 for the tutorial's."""
    for objective, sign in (("saturating", -1), ("non_saturating", 1)):
        panel, model = toy_training.toy_settings("ring", {"units": 8, "n_batch": 32, "fast": fast, "g_objective": objective})
        _, _, history = toy_training.train_named_toy("ring", 2, panel, model)
        assert all(np.sign(r["g_loss"]) == sign for r in history)


def run_cli(args, capsys):
    from gan_lib.__main__ import main

    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name, extra", [
    ("grid", ["--set", "units=8", "--set", "pack=4"]),  # the fused step with packed D
    ("ring", ["--set", "units=8", "--set", "pack=2", "--tutorial-loop"]),  # train_on_batch with packed D
    ("parabola", ["--set", "latent_dim=3"]),
])
def test_the_toy_command_writes_samples_metrics_and_a_picture(name, extra, tmp_path, capsys):
    out = tmp_path / "run"
    loop = "--tutorial-loop" in extra
    code, text, err = run_cli(["toy", name, "--steps", "4", "--batch", "16", "--out", str(out), *extra], capsys)
    assert code == 0, err
    samples = np.load(out / "samples.npy")
    assert samples.shape == (2500, 2) and samples.dtype == np.float32 and np.isfinite(samples).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["toy"] == name and metrics["steps"] == 4 and metrics["seconds"] > 0
    assert metrics["settings"]["n_batch"] == 16 and metrics["settings"]["fast"] == (not loop)
    assert metrics["scores"] == toy_training.toy_scores(samples, name)  # the scores are of the saved points
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "step 4/4" in text and "wrote" in text
    if name != "parabola":
        assert metrics["settings"]["pack"] == int(extra[3][-1]) and metrics["settings"]["units"] == 8


@pytest.mark.parametrize("args, message", [
    (["toy", "blob"], "error: unknown toy 'blob'; choose one of ring, grid, parabola"),
    (["toy", "ring", "--steps", "0"], "error: --steps must be at least 1, got 0"),
    (["toy", "ring", "--set", "pack=two"], "error: --set pack= wants an integer, got 'two'"),
    (["toy", "grid", "--set", "pack=3"], "error: the half batch (256) must be a multiple of pack (3)"),
])
def test_the_toy_command_reports_bad_input_in_one_line(args, message, capsys, tmp_path):
    code, out, err = run_cli(args + ["--out", str(tmp_path / "x")], capsys)
    assert code == 1 and err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "x").exists()  # nothing written


def test_the_toy_command_refuses_a_folder_that_holds_something(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    code, _, err = run_cli(["toy", "ring", "--steps", "1", "--out", str(tmp_path)], capsys)
    assert code == 1 and "exists and is not an empty folder" in err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
