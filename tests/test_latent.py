"""gan_lib.latent: paths and blends in latent space have the ends, shapes and norms they promise."""

import numpy as np
import pytest

from gan_lib.latent import blend_grid, interpolate_points

D = 100


def points(k, seed=0):
    return np.random.default_rng(seed).standard_normal((k, D)).astype(np.float32)


@pytest.mark.parametrize("kind", ["linear", "slerp"])
def test_paths_start_and_end_at_the_inputs(kind):
    p1, p2 = points(2)
    path = interpolate_points(p1, p2, 7, kind=kind)
    assert path.shape == (7, D) and path.dtype == np.float32
    np.testing.assert_array_equal(path[0], p1)
    np.testing.assert_array_equal(path[-1], p2)
    assert not np.allclose(path[1], path[0]), "the path must move"


def test_linear_is_evenly_spaced_and_slerp_is_not_the_straight_line():
    p1, p2 = points(2)
    lin = interpolate_points(p1, p2, 5, kind="linear")
    np.testing.assert_allclose(lin[2], (p1 + p2) / 2, rtol=1e-5, atol=1e-6)
    steps = np.linalg.norm(np.diff(lin, axis=0), axis=1)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-4)
    sl = interpolate_points(p1, p2, 5, kind="slerp")
    assert np.linalg.norm(sl[2]) > np.linalg.norm(lin[2]) * 1.2, "the straight line dips towards the origin"


def test_slerp_keeps_the_norm_of_equal_norm_inputs():
    p1, p2 = points(2)
    p2 = p2 / np.linalg.norm(p2) * np.linalg.norm(p1)
    r = np.linalg.norm(p1)
    norms = np.linalg.norm(interpolate_points(p1, p2, 11, kind="slerp"), axis=1)
    np.testing.assert_allclose(norms, r, rtol=1e-5)
    lin = np.linalg.norm(interpolate_points(p1, p2, 11, kind="linear"), axis=1)
    assert lin[5] < 0.9 * r, "a straight line between two Gaussian points is shorter in the middle"


def test_slerp_norms_stay_between_the_ends_norms():
    p1, p2 = points(2, seed=3)
    p2 = 2.5 * p2
    norms = np.linalg.norm(interpolate_points(p1, p2, 9, kind="slerp"), axis=1)
    lo, hi = sorted([np.linalg.norm(p1), np.linalg.norm(p2)])
    assert np.all(norms >= lo * (1 - 1e-5)) and np.all(norms <= hi * (1 + 1e-5))
    assert np.all(np.diff(norms) > 0), "the length grows steadily from |p1| to |p2|"


def test_slerp_of_parallel_points_is_finite():
    p1 = points(1)[0]
    path = interpolate_points(p1, 3 * p1, 4, kind="slerp")
    assert np.isfinite(path).all()
    np.testing.assert_allclose(path[1] / np.linalg.norm(path[1]), p1 / np.linalg.norm(p1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "args,kwargs,match",
    [
        ((np.zeros(D), np.zeros(D + 1), 5), {}, "same shape"),
        ((np.zeros((2, D)), np.zeros((2, D)), 5), {}, "one latent point"),
        ((np.ones(D), np.ones(D), 1), {}, "at least 2"),
        ((np.ones(D), np.ones(D), 2.5), {}, "integer"),
        ((np.ones(D), np.ones(D), 5), {"kind": "cubic"}, "kind"),
        ((np.zeros(D), np.ones(D), 5), {"kind": "slerp"}, "origin"),
        ((np.full(D, np.nan), np.ones(D), 5), {}, "NaN"),
    ],
)
def test_interpolate_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        interpolate_points(*args, **kwargs)


@pytest.mark.parametrize("k", [3, 4])
def test_blend_grid_has_the_parents_in_its_corners(k):
    c = points(k, seed=k)
    n = 5
    grid = blend_grid(c, n)
    assert grid.shape == (n * n, D) and grid.dtype == np.float32
    corners = grid.reshape(n, n, D)[[0, 0, -1, -1], [0, -1, 0, -1]]
    want = c if k == 4 else c[[0, 1, 2, 2]]
    np.testing.assert_array_equal(corners, want)


def test_blend_grid_rows_walk_between_the_parents_and_keep_norms():
    c = points(4, seed=7)
    n = 6
    grid = blend_grid(c, n).reshape(n, n, D)
    norms = np.linalg.norm(grid, axis=-1)
    corner_norms = np.linalg.norm(c, axis=1)
    assert norms.min() >= corner_norms.min() * (1 - 1e-5) and norms.max() <= corner_norms.max() * (1 + 1e-5)
    # the top row runs from parent 0 to parent 1: ever closer to parent 1
    d = np.linalg.norm(grid[0] - c[1], axis=1)
    assert np.all(np.diff(d) < 0)


@pytest.mark.parametrize(
    "corners,n,match",
    [
        (np.zeros((2, D)), 4, "3 or 4"),
        (np.zeros((5, D)), 4, "3 or 4"),
        (np.zeros(D), 4, "3 or 4"),
        (np.ones((4, D)), 1, "at least 2"),
        (np.full((4, D), np.inf), 3, "NaN or infinite"),
    ],
)
def test_blend_grid_rejects_bad_input(corners, n, match):
    with pytest.raises(ValueError, match=match):
        blend_grid(corners, n)


def test_truncated_points_stay_within_the_threshold_and_are_normal_inside_it():
    from gan_lib.latent import truncated_latent_points

    z = truncated_latent_points(100, 2000, 1.0, np.random.default_rng(0))
    assert z.shape == (2000, 100) and z.dtype == np.float32
    assert np.abs(z).max() <= 1.0
    # a normal cut at 1 has standard deviation 0.54; a uniform on [-1, 1] would have 0.58, a clip would pile up at 1
    assert abs(z.std() - 0.538) < 0.01 and (np.abs(z) > 0.999).mean() < 0.001
    plain = truncated_latent_points(100, 2000, float("inf"), np.random.default_rng(0))
    assert abs(plain.std() - 1.0) < 0.01 and np.abs(plain).max() > 3


@pytest.mark.parametrize("threshold", [0, -1, 0.001, "1", True, float("nan")])
def test_truncation_refuses_thresholds_it_cannot_use(threshold):
    from gan_lib.latent import truncated_latent_points

    with pytest.raises(ValueError, match="threshold must be a number of at least 0.01"):
        truncated_latent_points(10, 5, threshold)
