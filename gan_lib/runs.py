"""The run folder and the files that describe a run: panel.json, history.csv, the lock.

A run folder holds one training run: its settings (panel.json), one history row
per batch (history.csv), image grids, generators and checkpoints/. This module
owns the folder's names and text files; training.py only calls it.
"""

import csv
import io
import json
import os
import time

import numpy as np

from .diagnosis import EVAL_COLUMNS
from .files import write_text
from .panel import check_panel, panel_json

try:  # POSIX (Linux, macOS, Colab); elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

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


def new_run_dir(root=None, name="run"):
    """A fresh folder ROOT/NAME-YYYYmmdd-HHMMSS (with -2, -3... if taken); ROOT defaults to default_outputs()."""
    base = os.path.join(root or default_outputs(), f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, i = base, 1
    while os.path.exists(path):
        i += 1
        path = f"{base}-{i}"
    return path


def is_run(run_dir):
    return os.path.exists(os.path.join(run_dir, "panel.json"))


def save_panel(run_dir, panel):
    write_text(os.path.join(run_dir, "panel.json"), panel_json(panel))


def load_panel(run_dir):
    """The panel a run was made with, checked. ValueError if panel.json is missing or damaged."""
    path = os.path.join(run_dir, "panel.json")
    try:
        with open(path) as f:
            return check_panel(json.load(f))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} cannot be read ({e}); is {run_dir!r} a gan_lib run folder?") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


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


def history_rows(array):
    """A checkpoint's history array back to rows. Checkpoints made before the learning-rate
    or the measurement columns existed have fewer columns; those rows get NaN there (not recorded).
    A measurement not taken (NaN in the array) is None, as train() records it."""
    rows = []
    for values in np.asarray(array, dtype=np.float64):
        row = {k: float(values[i]) if i < len(values) else float("nan") for i, k in enumerate(HISTORY_COLUMNS)}
        rows.append({k: int(v) if k in COUNTERS else None if k in EVAL_COLUMNS and np.isnan(v) else v
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

    def claim(self):
        """Write who holds the lock, for the message another process shows (after the run's checks pass,
        so a refused resume changes nothing in the folder)."""
        if self.file is not None:
            self.file.seek(0)
            self.file.truncate()
            self.file.write(f"process {os.getpid()} (started {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
            self.file.flush()

    def __exit__(self, *exc):
        if self.file is not None:
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
