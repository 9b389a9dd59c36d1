"""Walking the latent space: paths between two points, and blends of three or four.

A latent point is a float array (latent_dim,). Both functions return a float32
batch (n, latent_dim) that goes straight into the generator: g_model(points).
"""

import numpy as np

KINDS = ("linear", "slerp")


def _as_point(p, name):
    """One latent point as float64 (latent_dim,); ValueError for any other shape or non-finite values."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"{name} must be one latent point, shape (latent_dim,), got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return p


def _slerp_unit(u1, u2, t):
    """Unit vectors u1 -> u2 along the great circle at fractions t (n,) -> (n, latent_dim)."""
    omega = np.arccos(np.clip(np.dot(u1, u2), -1.0, 1.0))  # the angle between them
    if np.sin(omega) < 1e-6:  # (anti)parallel: no single great circle; walk the chord instead
        v = (1 - t)[:, None] * u1 + t[:, None] * u2
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return (np.sin((1 - t) * omega)[:, None] * u1 + np.sin(t * omega)[:, None] * u2) / np.sin(omega)


def interpolate_points(p1, p2, n=10, kind="linear"):
    """n evenly spaced points from p1 to p2, both ends included: float32 (n, latent_dim).

    kind="linear": the straight line. Halfway between two Gaussian points it is
    shorter than either (norm about 0.7x in high dimensions), a region the
    generator rarely saw in training. kind="slerp": turn from p1's direction to
    p2's along the great circle and scale the length linearly between their norms,
    so every point keeps a norm between |p1| and |p2|.
    """
    p1, p2 = _as_point(p1, "p1"), _as_point(p2, "p2")
    if p1.shape != p2.shape:
        raise ValueError(f"p1 and p2 must have the same shape, got {p1.shape} and {p2.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer of at least 2 (the two ends), got {n!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    t = np.linspace(0.0, 1.0, n)
    if kind == "linear":
        points = (1 - t)[:, None] * p1 + t[:, None] * p2
    else:
        r1, r2 = np.linalg.norm(p1), np.linalg.norm(p2)
        if r1 == 0 or r2 == 0:
            raise ValueError("slerp needs points away from the origin (a zero vector has no direction)")
        points = ((1 - t) * r1 + t * r2)[:, None] * _slerp_unit(p1 / r1, p2 / r2, t)
    points[0], points[-1] = p1, p2  # the ends exactly, whatever the rounding
    return points.astype(np.float32)


def blend_grid(corners, n=5):
    """An n x n grid of blends between 3 or 4 parent points, GANBreeder style: float32 (n*n, latent_dim).

    corners: (4, latent_dim) = top-left, top-right, bottom-left, bottom-right; or
    (3, latent_dim) = top-left, top-right, bottom (the bottom row is all the third
    parent). Rows come first (row-major), so the result feeds g_model and then
    gan_lib.image_grid(images, n) directly. Each point is the bilinear mix of the
    parents, rescaled to the same mix of their norms: a plain average of Gaussian
    points is shorter than any of them, and the generator draws it washed out.
    """
    c = np.asarray(corners, dtype=np.float64)
    if c.ndim != 2 or len(c) not in (3, 4) or c.shape[1] == 0:
        raise ValueError(f"corners must be 3 or 4 latent points, shape (3 or 4, latent_dim), got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("corners hold NaN or infinite values")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer of at least 2, got {n!r}")
    if len(c) == 3:
        c = np.concatenate([c, c[2:]])  # both bottom corners are the third parent
    s = np.linspace(0.0, 1.0, n)
    v, u = np.meshgrid(s, s, indexing="ij")  # v: down the rows, u: along each row
    w = np.stack([(1 - v) * (1 - u), (1 - v) * u, v * (1 - u), v * u], axis=-1).reshape(-1, 4)  # (n*n, 4)
    points = w @ c
    norms = np.linalg.norm(points, axis=1, keepdims=True)
    target = w @ np.linalg.norm(c, axis=1)[:, None]
    points = np.where(norms > 1e-12, points * target / np.maximum(norms, 1e-12), points)
    points[[0, n - 1, -n, -1]] = c  # the parents exactly, whatever the rounding
    return points.astype(np.float32)


def truncated_latent_points(latent_dim, n_samples, threshold, rng=None):
    """The truncation trick (BigGAN, Brock et al. 2019): standard normal points whose every coordinate lies
    within [-threshold, threshold], each one outside drawn again until it does. float32 (n_samples, latent_dim).

    A lower threshold keeps G near the centre of its latent space, where it was trained most: samples
    get more typical and less varied. threshold=inf is generate_latent_points' plain normal.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0.01:
        raise ValueError(f"threshold must be a number of at least 0.01 (inf: no truncation; 0.5 to 2 are usual), "
                         f"got {threshold!r}")
    rng = rng or np.random.default_rng()
    z = rng.standard_normal((n_samples, latent_dim), dtype=np.float32)
    outside = np.abs(z) > threshold
    while outside.any():  # redraw only what fell outside: each redraw keeps about P(|N| <= threshold) of them
        z[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
        outside = np.abs(z) > threshold
    return z


def slerp(p1, p2, t):
    """The point a fraction t (0 to 1) of the way along interpolate_points' slerp path from p1 to p2:
    float32 (latent_dim,). The breeder's mutation (breeder.py) turns a child this way towards a fresh point."""
    p1, p2 = _as_point(p1, "p1"), _as_point(p2, "p2")
    if p1.shape != p2.shape:
        raise ValueError(f"p1 and p2 must have the same shape, got {p1.shape} and {p2.shape}")
    if isinstance(t, bool) or not isinstance(t, (int, float, np.floating)) or not 0 <= t <= 1:
        raise ValueError(f"t must be a number from 0 to 1, got {t!r}")
    r1, r2 = np.linalg.norm(p1), np.linalg.norm(p2)
    if r1 == 0 or r2 == 0:
        raise ValueError("slerp needs points away from the origin (a zero vector has no direction)")
    if t in (0, 1):
        return (p1 if t == 0 else p2).astype(np.float32)  # the ends exactly
    if np.dot(p1 / r1, p2 / r2) < -1 + 1e-9:
        raise ValueError("p1 and p2 point in opposite directions: no single great circle joins them")
    u = _slerp_unit(p1 / r1, p2 / r2, np.array([float(t)]))[0]
    return (((1 - t) * r1 + t * r2) * u).astype(np.float32)
