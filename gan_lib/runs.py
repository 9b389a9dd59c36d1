"""A run's folder and its life: start or resume with their checks, the lock, checkpoints, history, the mirror.

A run folder holds one training run: its settings (panel.json), one history row per batch
(history.csv), image grids, generators and checkpoints/. The GAN loop (training.py) and
CycleGAN (cycle_training.py) both live their runs through these functions:

    with open_run(run_dir, resuming, "train") as lock:   # the folder's checks, the lock, write errors
        ... restore a checkpoint (check_kept, check_epochs) or start fresh ...
        lock.claim(panel)                                 # this process writes the run: panel.json
        ... per batch: record, and every so often save_state (checkpoint, history.csv, mirror) ...

A loss or weight that turns NaN ends the run with diverged(): the history so far is written and
the last good checkpoint is kept.
"""

import contextlib
import csv
import errno
import io
import json
import os
import re
import shutil
import sys
import time

import numpy as np

from .checkpoint import list_checkpoints, mirror_or_warn, save_checkpoint
from .files import FolderGone, check_guarded, guard, write_text
from .panel import RUN_KEYS, check_panel, panel_json

try:  # POSIX (Linux, macOS, Colab); elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

# Measured every eval_every batches (diagnosis.Monitor); None (an empty cell) in between
EVAL_COLUMNS = ("g_grad_norm", "diversity", "modes", "domain_fd")
# One row per batch: counters, the three losses, D's mean scores before the step,
# hard-label accuracies, and the learning rates the step ran with.
HISTORY_COLUMNS = [
    "epoch", "batch", "step", "d_loss_real", "d_loss_fake", "g_loss",
    "d_x", "d_g_z", "acc_real", "acc_fake", "d_lr", "g_lr",
    *EVAL_COLUMNS,  # measured every eval_every batches; None (an empty cell) in between (diagnosis.py)
]
COUNTERS = ("epoch", "batch", "step")
LOCK = ".lock"


def default_outputs():
    """./outputs, or the checkout's top-level outputs/ when working inside a gan_lib checkout (notebooks/ too)."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    inside = (os.path.abspath(os.getcwd()) + os.sep).startswith(top + os.sep)
    if inside and os.path.isdir(os.path.join(top, "outputs")) and os.path.exists(os.path.join(top, "pyproject.toml")):
        return os.path.join(top, "outputs")
    return "outputs"


def run_name(*parts):
    """A folder name from dataset names or paths: their last parts joined by '-', other characters as '_'."""
    name = "-".join(os.path.basename(os.path.normpath(str(p))) for p in parts)
    return "".join(c if c.isalnum() or c == "-" else "_" for c in name)


def new_run_dir(root=None, name="run"):
    """A fresh folder ROOT/NAME-YYYYmmdd-HHMMSS (with -2, -3... if taken); ROOT defaults to default_outputs()."""
    base = os.path.join(root or default_outputs(), f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, i = base, 1
    while os.path.exists(path):
        i += 1
        path = f"{base}-{i}"
    return path


def check_new_folder(path, resumable=True):
    """ValueError unless path is free for a new run: missing, or an empty folder (the command line's --out)."""
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise ValueError(f"--out {path!r} exists and is not an empty folder; choose a new folder"
                         + (", or --resume it if it is a run" if resumable else ""))


def is_run(run_dir):
    return os.path.exists(os.path.join(run_dir, "panel.json"))


def run_arch(run_dir):
    """The arch a run folder's panel.json names ('tutorial' when it names none), or None: not a readable run."""
    try:
        with open(os.path.join(run_dir, "panel.json")) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    return saved.get("arch", "tutorial") if isinstance(saved, dict) else None


def save_panel(run_dir, panel):
    write_text(os.path.join(run_dir, "panel.json"), panel_json(panel))


def load_panel(run_dir, check=check_panel, required=RUN_KEYS):
    """The panel a run was made with, checked by `check` (a CycleGAN run's: panel.check_cycle_panel, with its
    CYCLE_RUN_KEYS). ValueError if panel.json is missing or damaged: not a JSON object of settings, or without
    the `required` keys that define the run (they are never filled in from the defaults)."""
    path = os.path.join(run_dir, "panel.json")
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} cannot be read ({e}); is {run_dir!r} a gan_lib run folder?") from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path} holds {json.dumps(saved)[:40]}, not a run's settings (a JSON "
                         "object); it was damaged: restore it from a copy (the mirror), or start a new run")
    if check is check_panel and saved.get("arch") == "cyclegan":
        raise ValueError(f"{run_dir!r} is a CycleGAN run; resume it with python -m gan_lib cyclegan --resume {run_dir} "
                         "(its generators are generator_ab.keras and generator_ba.keras)")
    missing = [k for k in required if k not in saved]
    try:
        checked = check(saved)  # wrong keys and values first: they say most about what happened to the file...
    except ValueError as e:  # ...unless it is about a key that defines the run and is missing (a default failed)
        if not set(re.findall(r"'(\w+)'", str(e))) & set(missing):
            raise ValueError(f"{path}: {e}") from None
    if missing:
        raise ValueError(f"{path} lacks {', '.join(map(repr, missing))}, which define the run; it was damaged: restore "
                         "it from a copy (the mirror), or start a new run")
    return checked


def write_history(run_dir, history, columns=HISTORY_COLUMNS):
    """history.csv: one row per batch, the columns of HISTORY_COLUMNS (a CycleGAN run: cycle_training.COLUMNS)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns)
    writer.writeheader()
    writer.writerows(history)
    write_text(os.path.join(run_dir, "history.csv"), buf.getvalue())


def read_history(run_dir):
    """history.csv back as a list of dicts of numbers (None where a measurement was not taken: an empty cell)."""
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    return [{k: (None if v == "" else int(v) if k in COUNTERS else float(v)) for k, v in row.items()} for row in rows]


def history_array(history, columns=HISTORY_COLUMNS):
    """History rows -> float64 (steps, len(columns)), the form checkpoints store (None -> NaN)."""
    rows = np.array([[row[k] for k in columns] for row in history], dtype=np.float64)
    return rows.reshape(-1, len(columns))


def history_rows(array, columns=HISTORY_COLUMNS, measured=EVAL_COLUMNS):
    """A checkpoint's history array back to rows. Checkpoints made before the learning-rate
    or the measurement columns existed have fewer columns; those rows get NaN there (not recorded).
    A measurement not taken (NaN in a `measured` column) is None, as train() records it."""
    rows = []
    for values in np.asarray(array, dtype=np.float64):
        row = {k: float(values[i]) if i < len(values) else float("nan") for i, k in enumerate(columns)}
        rows.append({k: int(v) if k in COUNTERS else None if k in measured and np.isnan(v) else v
                     for k, v in row.items()})
    return rows


class RunLock:
    """An operating-system lock on RUN_DIR/.lock, held while a process trains the run.

    flock locks belong to the open file, so the kernel drops them when the process
    ends, even by SIGKILL: a killed run never leaves a stale lock behind.
    """

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, LOCK)
        self.file = None

    def __enter__(self):
        if fcntl is None:
            return self
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip()
            f.close()
            if not _alive(owner):  # the line of a holder that has since ended (the new one has not written yet)
                owner = "another process"
            raise ValueError(
                f"run {os.path.dirname(self.path)!r} is being trained by {owner}; wait for it to finish or "
                "stop it first (two processes on one run would overwrite each other's checkpoints)"
            ) from None
        self.file = f
        return self

    def claim(self, panel=None):
        """Write who holds the lock, for the message another process shows, and the run's panel.json (after the
        run's checks pass, so a refused resume changes nothing in the folder)."""
        if panel is not None:
            save_panel(os.path.dirname(self.path), panel)
        if self.file is not None:
            self.file.seek(0)
            self.file.truncate()
            self.file.write(f"process {os.getpid()} (started {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
            self.file.flush()

    def __exit__(self, *exc):
        if self.file is not None:
            try:  # a finished run's lock names nobody: the holder's line goes first
                self.file.seek(0)
                self.file.truncate()
            except OSError:  # the folder vanished: nothing to tidy
                pass
            self.file.close()  # closing releases the lock
            self.file = None


def _alive(owner):
    """Whether the 'process PID (started ...)' line names a process that still runs."""
    parts = owner.split()
    if len(parts) < 2 or parts[0] != "process" or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return True


# ---------------------------------------------------------------- the run's life


class TrainingDiverged(RuntimeError):
    """A loss or weight became NaN or infinite; training stopped."""


@contextlib.contextmanager
def open_run(run_dir, resuming, command="train"):
    """The run folder's checks, then its lock and the write errors turned into one line; yields the RunLock.

    resuming: the folder must hold a run (panel.json); else it must not. A new run that fails before
    it wrote its panel.json leaves no folder behind. command: the `python -m gan_lib` command a message
    tells the user to resume with.
    """
    if resuming and not is_run(run_dir):
        raise ValueError(f"{run_dir!r} is not a gan_lib run folder (no panel.json), so there is nothing to resume; "
                         "give the folder a run wrote, or set load_weights=False to start a new run there")
    if not resuming and is_run(run_dir):
        raise ValueError(f"{run_dir!r} already holds a run; resume it with load_weights=True (--resume) "
                         "or choose another folder")
    created = not os.path.exists(run_dir)
    made = None  # the folder's identity once it exists, so that only that folder is ever removed
    try:
        with RunLock(run_dir) as lock, writing(run_dir, command):
            os.makedirs(run_dir, exist_ok=True)  # RunLock made it where runs are locked
            made = identity(run_dir)
            with guard(run_dir):  # from here on a vanished or replaced folder ends the run, never is made again
                yield lock
    except BaseException:
        # a new run that failed before it wrote anything leaves no folder (but never removes one that replaced it)
        if created and made and identity(run_dir) == made and not is_run(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def identity(folder):
    """(device, inode) of a folder, or None when it is not there."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@contextlib.contextmanager
def writing(run_dir, command="train"):
    """Turn a failed write (a full disk, a folder gone) into one OSError that names the run and the way back."""
    try:
        yield
    except OSError as e:
        gone = e if isinstance(e, FolderGone) else None
        try:  # a write that failed because the folder went mid-write (no check ran in between): say that
            check_guarded(run_dir)
        except FolderGone as now:
            gone = gone or now
        if gone:
            raise OSError(f"run folder {run_dir}: {gone.strerror}, so training stopped rather than write a new one "
                          f"there. If it was a mounted drive, mount it again; if its checkpoints are still somewhere, put "
                          f"the folder back and resume with: python -m gan_lib {command} --resume {run_dir}") from None
        fix = "free some space" if e.errno == errno.ENOSPC else "check that the folder exists and can be written"
        if list_checkpoints(run_dir):
            then = f"its last checkpoint is intact: {fix}, then resume with: python -m gan_lib {command} --resume {run_dir}"
        else:
            then = f"it has no checkpoint yet: {fix}, then start it again with: python -m gan_lib {command} --resume {run_dir}"
        raise OSError(f"could not write to {run_dir} ({e.strerror or e}); {then}") from None


def check_kept(saved, panel, keys, run_dir):
    """ValueError when a resumed run's panel changes one of `keys` (what each step draws, the shapes the
    checkpoint holds): a run resumes with its own values."""
    for key in keys:
        if saved[key] != panel[key]:
            raise ValueError(f"panel key {key!r} is {panel[key]} but run {run_dir!r} was made with {saved[key]}; "
                             "a run resumes with its own value (drop the override)")


def check_epochs(meta, panel, run_dir):
    """ValueError when the checkpoint's epochs completed disagree with panel key 'epochs', or leave nothing to train."""
    if panel["epochs"] and panel["epochs"] != meta["epoch"]:
        raise ValueError(
            f"panel key 'epochs' is {panel['epochs']} but the last checkpoint of {run_dir!r} has "
            f"{meta['epoch']} epochs completed; set epochs=0 to resume from wherever it stopped"
        )
    if meta["epoch"] >= panel["n_epochs"]:
        raise ValueError(
            f"run {run_dir!r} has already trained {meta['epoch']} epochs and n_epochs is {panel['n_epochs']}; "
            f"ask for more to train longer (--epochs {meta['epoch'] + 10}, or n_epochs={meta['epoch'] + 10})"
        )


ADVICE = "try a lower learning rate, or label_smoothing=0.1"  # what diverged() suggests, unless told


def save_state(run_dir, models, meta, fixed_z, history, panel, extra=(), columns=HISTORY_COLUMNS, advice=ADVICE):
    """The full state as a checkpoint (checkpoint.save_checkpoint), then history.csv (epoch ends only, meta's
    batch 0: mid-epoch the checkpoint holds the history, and rewriting the CSV every time would cost), then the
    mirror, if panel['mirror_dir'] names one. NaN weights: diverged(), the last good checkpoint kept. Returns whether
    the mirror is current (None without one)."""
    try:
        save_checkpoint(run_dir, models, meta, fixed_z, history_array(history, columns),
                        keep=panel["keep_checkpoints"], extra=extra)
        bad = None
    except FloatingPointError as e:
        bad = str(e)
    if bad:  # outside the except: one TrainingDiverged, not chained to the FloatingPointError
        diverged(run_dir, history, f"training diverged before epoch {meta['epoch'] + 1}, batch {meta['batch']}: {bad}",
                 columns, advice)
    if meta["batch"] == 0:
        write_history(run_dir, history, columns)
    return mirror_or_warn(run_dir, panel["mirror_dir"]) if panel["mirror_dir"] else None


def close_mirror(run_dir, panel, current, verbose=1):
    """At a run's end: mirror once more if the last mirror failed, and say whether the mirror is current."""
    if not panel["mirror_dir"]:
        return None
    if not current:
        current = mirror_or_warn(run_dir, panel["mirror_dir"], last=True)
    where = os.path.join(panel["mirror_dir"], os.path.basename(os.path.abspath(run_dir)))
    if not current:  # a problem to act on: on stderr, never silenced by --quiet
        print(f"mirror {where}: behind the run (see the warnings above): copy the run folder there yourself once the "
              "drive is back", file=sys.stderr)
    elif verbose:
        print(f"mirror {where}: current")
    return current


def diverged(run_dir, history, message, columns=HISTORY_COLUMNS, advice=ADVICE):
    """Save the history so far, leave the checkpoints alone, and raise TrainingDiverged."""
    write_history(run_dir, history, columns)
    raise TrainingDiverged(f"{message}. History so far is in {run_dir}/history.csv; the last good "
                           f"checkpoint is untouched ({advice})")
