"""Full training state, saved atomically and resumed exactly.

A checkpoint is one .npz in RUN_DIR/checkpoints/ holding every variable that
training changes (both models' weights and seed states, both optimizers' slots
and step counters), the fixed evaluation noise, the history so far (one row per
batch, runs.HISTORY_COLUMNS), and a JSON `meta` record: epoch and batch
counters, the NumPy random state, and the shapes that identify the architecture. Names sort in training order:
ckpt-EEEE-BBBBB.npz = after batch BBBBB of epoch EEEE (0-based).
"""

import glob
import json
import os
import sys
import zipfile

import keras
import numpy as np

from .backend import global_rng_state, set_global_rng_state
from .files import atomic_path, copy_file

CHECKPOINTS = "checkpoints"


def training_variables(g_model, d_model, gan_model, extra=()):
    """Every variable a training step can change, in a fixed order; `extra` (the fused step's RNG state) last.

    model.variables includes the dropout SeedGenerator state that model.weights
    (and so Keras saving) leaves out; without it a resume is close, not exact.
    """
    for model in (d_model, gan_model):
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    return (
        list(g_model.variables) + list(d_model.variables)
        + list(d_model.optimizer.variables) + list(gan_model.optimizer.variables) + list(extra)
    )


def state_variables(models, extra=()):
    """training_variables for models given as (g_model, d_model, gan_model), or for an object that lists its
    own (a cyclegan.CycleGAN: four models, two optimizers) with a training_variables() method."""
    if hasattr(models, "training_variables"):
        return list(models.training_variables()) + list(extra)
    return training_variables(*models, extra=extra)


def checkpoint_name(epoch, batch):
    return f"ckpt-{epoch:04d}-{batch:05d}.npz"


def list_checkpoints(run_dir):
    """Checkpoint paths of a run, oldest first."""
    return sorted(glob.glob(os.path.join(run_dir, CHECKPOINTS, "ckpt-*-*.npz")))


def save_checkpoint(run_dir, models, meta, fixed_z, history, keep=2, extra=()):
    """Write the state atomically, then drop all but the newest `keep`. Returns the path.

    models: (g_model, d_model, gan_model), or an object with training_variables() (state_variables).
    meta: JSON-able dict with at least 'epoch' and 'batch'; history: float array (steps, columns).
    """
    variables = state_variables(models, extra)
    arrays = {f"v{i:04d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(variables)}
    for name, a in arrays.items():
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise FloatingPointError(f"a model or optimizer variable holds NaN or inf ({variables[int(name[1:])].path})")
    meta = dict(meta, shapes=[list(a.shape) for a in arrays.values()], extra=len(extra))
    backend_rng = global_rng_state()  # torch's global generator (its Dropout masks); None elsewhere
    if backend_rng is not None:
        arrays["backend_rng"] = backend_rng
    path = os.path.join(run_dir, CHECKPOINTS, checkpoint_name(meta["epoch"], meta["batch"]))
    with atomic_path(path) as tmp:
        np.savez(tmp, meta=np.array(json.dumps(meta)), fixed_z=fixed_z, history=history, **arrays)
    for old in list_checkpoints(run_dir)[:-keep]:
        os.remove(old)
    return path


def read_checkpoint(path):
    """-> (meta dict, fixed_z, history rows, list of variable arrays). ValueError if truncated or corrupt."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            fixed_z, history = z["fixed_z"], z["history"]
            values = [z[f"v{i:04d}"] for i in range(len(meta["shapes"]))]
            meta["backend_rng"] = z["backend_rng"] if "backend_rng" in z.files else None
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise ValueError(f"checkpoint {path} is truncated or corrupt ({type(e).__name__}: {e})") from None
    return meta, fixed_z, history, values


def restore_checkpoint(run_dir, models, verbose=True, extra=()):
    """Load the newest readable checkpoint of run_dir into the models (and `extra`, the fused step's state;
    without it, a fused run's checkpoint restores the models and optimizers alone).

    Falls back to an older checkpoint, with a message, when the newest is
    corrupt; the unreadable ones are renamed *.npz.unreadable. Returns (meta, fixed_z, history, path): history is the float array
    (steps, columns) the checkpoint stores. ValueError when the folder is not a
    run, holds no readable checkpoint, or the checkpoint is of another architecture.
    """
    if not os.path.exists(os.path.join(run_dir, "panel.json")):
        raise ValueError(f"{run_dir!r} is not a gan_lib run folder (no panel.json); give the folder a run wrote")
    for stale in glob.glob(os.path.join(run_dir, "**", ".tmp-*"), recursive=True):
        os.remove(stale)  # half-written files of a killed run; the files they were replacing are intact
    paths = list_checkpoints(run_dir)
    if not paths:
        raise ValueError(f"run {run_dir!r} has no checkpoints yet; start it again without resuming")
    errors = []
    for path in reversed(paths):
        try:
            meta, fixed_z, history, values = read_checkpoint(path)
            break
        except ValueError as e:
            errors.append(str(e))
            print(f"skipping {path}: unreadable; trying the one before", file=sys.stderr)  # never silenced
    else:
        raise ValueError(f"no readable checkpoint in {run_dir!r}: " + "; ".join(errors))
    for bad in paths[len(paths) - len(errors):]:  # set aside, kept for inspection: pruning must never keep
        os.replace(bad, bad + ".unreadable")      # them in place of good checkpoints
    variables = state_variables(models, extra)
    shapes = [tuple(v.shape) for v in variables]
    saved = [tuple(s) for s in meta["shapes"]]
    if not extra and meta.get("extra"):  # a fused run's step state, not asked for: restore the models and optimizers
        saved, values = saved[:-meta["extra"]], values[:-meta["extra"]]
    if shapes != saved:
        first = next((i for i, (a, b) in enumerate(zip(shapes, saved)) if a != b), min(len(shapes), len(saved)))
        raise ValueError(
            f"checkpoint {path} was made by another architecture ({len(saved)} variables; variable {first} "
            f"is {saved[first] if first < len(saved) else 'missing'} there, "
            f"{shapes[first] if first < len(shapes) else 'missing'} here); use the same dataset shape "
            "and latent_dim as that run, or start a new run"
        )
    for v, value in zip(variables, values):
        v.assign(value)
    backend_rng = meta.pop("backend_rng")
    if backend_rng is not None and global_rng_state() is not None:
        set_global_rng_state(backend_rng)
    return meta, fixed_z, history, path


def mirror_or_warn(run_dir, mirror_root, last=False):
    """mirror_run after a checkpoint; a failure (a dropped Drive mount) is one warning line on stderr, not an error:
    the local checkpoint is safe and the next mirror catches up. Returns whether the mirror is now current.
    last: the run's final mirror (no next checkpoint will try again)."""
    try:
        mirror_run(run_dir, mirror_root)
        return True
    except OSError as e:
        then = "the run's own folder is complete" if last else "training goes on, the next checkpoint tries again"
        print(f"warning: could not mirror the run to {mirror_root} ({e.strerror or e}); {then}", file=sys.stderr)
        return False


def mirror_run(run_dir, mirror_root):
    """Copy a run folder into mirror_root/RUN_NAME (e.g. on Google Drive), file by file, atomically.

    First removes mirrored checkpoints the run has since dropped (so a mirror short of space catches up),
    then copies only files that changed since the last mirror. Returns the mirror folder.
    """
    run_dir = os.path.abspath(run_dir)
    dest_dir = os.path.join(mirror_root, os.path.basename(run_dir))
    kept = {os.path.basename(p) for p in list_checkpoints(run_dir)}
    for old in glob.glob(os.path.join(dest_dir, CHECKPOINTS, "ckpt-*.npz")):  # first: make room for the new ones
        if os.path.basename(old) not in kept:
            os.remove(old)
    for src in glob.glob(os.path.join(run_dir, "**", "*"), recursive=True):
        if os.path.isdir(src):  # glob skips dot files: .tmp-* half-written files and the .lock stay behind
            continue
        dst = os.path.join(dest_dir, os.path.relpath(src, run_dir))
        stat = os.stat(src)
        if os.path.exists(dst) and os.path.getsize(dst) == stat.st_size and os.path.getmtime(dst) >= stat.st_mtime:
            continue
        copy_file(src, dst)
    return dest_dir


def check_mirror(mirror_root):
    """ValueError, before any training, when mirror_root cannot be created and written ('' = no mirror)."""
    if not mirror_root:
        return
    probe = os.path.join(mirror_root, f".tmp-probe-{os.getpid()}")
    try:
        os.makedirs(mirror_root, exist_ok=True)
        with open(probe, "w") as f:
            f.write("gan_lib can write here\n")
        os.remove(probe)
    except OSError as e:
        raise ValueError(
            f"mirror_dir {mirror_root!r} cannot be written ({e.strerror or e}); in Colab mount Google Drive "
            "first (drive.mount), or fix the path, or set mirror_dir='' to train without a mirror"
        ) from None
