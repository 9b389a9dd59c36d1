"""Pictures: image grids, loss and score curves, an animated GIF of progress."""

import glob
import os

import matplotlib.pyplot as plt  # headless machines fall back to Agg by themselves
import numpy as np

from .files import atomic_path


def image_grid(examples, n, rows=None):
    """First rows*n images (N, H, W, C) in [-1, 1] -> one uint8 picture (rows*H, n*W, C), row by row.

    rows defaults to n: a square grid. (A conditional GAN's grid: a row per class.)
    """
    rows = rows or n
    x = np.asarray(examples)[: rows * n]
    if len(x) < rows * n:
        raise ValueError(f"a {rows}x{n} grid needs {rows * n} images, got {len(x)}")
    x = np.clip((x + 1) * 127.5, 0, 255).round().astype(np.uint8)  # [-1, 1] -> [0, 255]
    _, h, w, c = x.shape
    return x.reshape(rows, n, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, n * w, c)


def save_plot(examples, epoch, n=7, run_dir=".", rows=None):
    """The tutorial's grid: n x n generated images, saved as generated_plot_eNNN.png (epoch + 1).

    rows: that many rows of n instead (a conditional GAN's: one per class). Returns the path written.
    """
    path = os.path.join(run_dir, f"generated_plot_e{epoch + 1:03d}.png")
    save_grid(examples, path, n, rows)
    return path


def save_grid(examples, path, n, rows=None):
    """n x n (or rows x n) grid of images in [-1, 1], written atomically as a PNG, each pixel drawn 2x2."""
    from PIL import Image

    grid = image_grid(examples, n, rows)
    im = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    im = im.resize((im.width * 2, im.height * 2), Image.NEAREST)
    with atomic_path(path) as tmp:
        im.save(tmp)
    return path


def show_images(examples, n=7, title=None):
    """Draw an n x n grid in a notebook."""
    grid = image_grid(examples, n)
    plt.figure(figsize=(n * 0.8, n * 0.8))
    plt.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", interpolation="nearest")
    plt.axis("off")
    if title:
        plt.title(title)
    plt.show()


def plot_history(history, path=None):
    """Losses (top) and D's mean scores D(x), D(G(z)) per batch, with their epoch means; below them, when
    the history has any, the measurements of diagnosis.py (diversity, classes found, G's gradient norm).

    history: the list of row dicts train() returns. The epoch means of D(x) and D(G(z))
    are drawn as dots at each epoch's last batch: per batch they are noisy, per epoch
    they show the trend (D(x) falling and D(G(z)) rising towards 0.5 as G catches up).
    Saves a PNG when path is given, else draws in the notebook. Returns the figure.
    """
    steps = np.arange(1, len(history) + 1)
    col = {k: np.array([row[k] for row in history], dtype=float) for k in history[0]} if history else {}  # None -> NaN
    measured = np.isfinite(col.get("g_grad_norm", [])).any()  # the eval_every measurements, if any were taken
    fig, axes = plt.subplots(3 if measured else 2, 1, figsize=(8, 8.5 if measured else 6), sharex=True)
    top, bottom = axes[0], axes[1]
    for key, label in (("d_loss_real", "d1: D loss, real"), ("d_loss_fake", "d2: D loss, fake"), ("g_loss", "g: G loss")):
        top.plot(steps, col.get(key, []), label=label, lw=1)
    top.set_ylabel("loss")
    top.legend(loc="upper right")
    epochs = col.get("epoch", np.zeros(0))
    ends = [i for i in range(len(epochs)) if i + 1 == len(epochs) or epochs[i + 1] != epochs[i]]  # each epoch's last row
    for key, label in (("d_x", "D(x), real"), ("d_g_z", "D(G(z)), fake")):
        (line,) = bottom.plot(steps, col.get(key, []), label=label, lw=1, alpha=0.5)
        if key in col and ends:
            means = [col[key][epochs == epochs[i]].mean() for i in ends]
            bottom.plot(steps[ends], means, "o-", color=line.get_color(), lw=2, ms=4, label=f"{label}, epoch mean")
    bottom.axhline(0.5, color="gray", ls=":", lw=1)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("mean score")
    bottom.legend(loc="upper right")
    if measured:
        _plot_measurements(axes[2], steps, col)
    axes[-1].set_xlabel("batch")
    fig.tight_layout()
    if path:
        save_figure(fig, path)
    return fig


def make_gif(run_dir, path=None, ms_per_frame=400, max_frames=40, scale=0.5):
    """The run's generated_plot_eNNN.png grids, in order, as one animated GIF. Returns its path.

    At most max_frames grids, evenly spaced and always including the last; each
    shrunk by scale (the PNGs are stored at 2x), so 200 epochs stay a few MB.
    """
    from PIL import Image

    frames = sorted(glob.glob(os.path.join(run_dir, "generated_plot_e*.png")))
    if not frames:
        raise ValueError(f"{run_dir!r} has no generated_plot_eNNN.png grids to animate; train at least one epoch")
    if len(frames) > max_frames:
        keep = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in sorted(set(keep))]
    path = path or os.path.join(run_dir, "progress.gif")
    images = []
    for f in frames:
        im = Image.open(f).convert("RGB")
        images.append(im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.NEAREST))
    with atomic_path(path) as tmp:
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return path


def save_points(points, path, marks=None, curve=None, title=""):
    """Scatter of points (N, 2) saved as a PNG: true mode centres marks (K, 2) as red crosses, or a
    reference curve (M, 2) as a red line. Returns the path."""
    p = np.asarray(points)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.4, label="generated")
    if marks is not None:
        ax.scatter(marks[:, 0], marks[:, 1], marker="x", color="red", s=40, label="true modes")
    if curve is not None:
        ax.plot(curve[:, 0], curve[:, 1], color="red", lw=1, label="true curve")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def _plot_measurements(ax, steps, col):
    """diversity and classes found / 10 on the left (1 = like the data), G's gradient norm on a log scale on the right."""
    for key, label, scale in (("diversity", "diversity (data = 1)", 1), ("modes", "classes found / 10", 10)):
        ok = np.isfinite(col[key])
        if ok.any():
            ax.plot(steps[ok], col[key][ok] / scale, "o-", ms=3, lw=1, label=label)
    ax.axhline(1.0, color="gray", ls=":", lw=1)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("measured")
    right = ax.twinx()
    ok = np.isfinite(col["g_grad_norm"]) & (col["g_grad_norm"] > 0)
    right.semilogy(steps[ok], col["g_grad_norm"][ok], "s--", ms=3, lw=1, color="tab:red", label="|grad G| (right)")
    right.set_ylabel("G's gradient norm")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize="small")


def save_figure(fig, path):
    """Write a matplotlib figure to path as a PNG, atomically, and close it (it stays drawable if returned)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def save_cycle_grid(rows, path):
    """A CycleGAN's picture: rows of images in [-1, 1], (n, H, W, C) each, e.g. A, G(A), F(G(A)), B, F(B), G(F(B)),
    one under another, each pixel drawn 2x2; greyscale rows are shown as RGB beside colour ones. Returns the path."""
    channels = max(np.shape(r)[-1] for r in rows)
    rows = [np.repeat(r, channels, axis=-1) if np.shape(r)[-1] != channels else np.asarray(r) for r in rows]
    return save_grid(np.concatenate(rows), path, n=len(rows[0]), rows=len(rows))


def plot_cycle_history(history, path=None):
    """A CycleGAN run's curves: the losses per batch (top: D_A, D_B, G's adversarial, cycle, identity) and the
    cycle errors and translation scores measured at each epoch end (bottom). Saves a PNG when path is given."""
    steps = np.arange(1, len(history) + 1)
    col = {k: np.array([np.nan if row[k] is None else row[k] for row in history], dtype=float) for k in history[0]}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for key, label in (("d_a_loss", "D_A"), ("d_b_loss", "D_B"), ("g_adv", "G and F, adversarial"),
                       ("cycle_loss", "cycle (L1)"), ("identity_loss", "identity (L1)")):
        top.plot(steps, col[key], label=label, lw=1)
    top.set_ylabel("loss")
    top.legend(loc="upper right")
    ends = np.isfinite(col["cycle_error_a"])
    for key, label in (("cycle_error_a", "cycle error A->B->A"), ("cycle_error_b", "cycle error B->A->B")):
        bottom.plot(steps[ends], col[key][ends], "o-", label=label)
    bottom.set_ylabel("mean |error|")
    if np.isfinite(col["translation_ab"]).any():
        right = bottom.twinx()
        for key, label, colour in (("translation_ab", "translated A->B", "C2"), ("translation_ba", "translated B->A", "C3")):
            right.plot(steps[ends], col[key][ends], "s--", color=colour, label=label)  # colours apart from the left's
        right.set_ylim(0, 1.05)
        right.set_ylabel("share classified as the target")
        right.legend(loc="lower left")
    bottom.legend(loc="upper right")
    bottom.set_xlabel("batch")
    fig.tight_layout()
    if path:
        save_figure(fig, path)
    return fig
