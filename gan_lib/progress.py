"""Progress of an epoch, shown the way the place it is shown in can take it.

- a terminal: Keras's progress bar, redrawn in place;
- Jupyter (and Colab): one line of text updated in place, so a notebook keeps
  one output per epoch instead of hundreds of bar frames;
- anything else (a log file, CI): a plain line about every 10% of the epoch.
"""

import sys
import time

import keras


def in_notebook():
    """True inside a Jupyter/Colab kernel (IPython with a kernel attached)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython and hasattr(ipython, "get_ipython") else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """Per-batch progress of one epoch: call `update(done, d1, d2, g)` after each batch."""

    def __init__(self, epoch, n_epochs, total, done=0, verbose=1, names=("d1", "d2", "g")):
        self.epoch, self.n_epochs, self.total, self.verbose = epoch, n_epochs, total, verbose
        self.names = names  # what the three values are called on screen (CycleGAN: d_a, d_b, g)
        self.start = time.time()
        self.first_done = done  # batches done before this call (a resumed epoch)
        self.first_shown = None  # (time, done) when the first batch of this call was shown
        self.last_shown = 0.0
        self.mode = None if not verbose else (
            "notebook" if in_notebook() else "terminal" if getattr(sys.stdout, "isatty", lambda: False)() else "log")
        if self.mode == "terminal":
            self.bar = keras.utils.Progbar(total, stateful_metrics=list(names))
            self.bar.update(done)
        elif self.mode == "notebook":
            from IPython.display import Pretty, display

            self.handle = display(Pretty(self.text(done)), display_id=True)
        self.every = max(1, total // 10)  # log mode: lines per epoch

    def text(self, done, d1=None, d2=None, g=None):
        """'epoch 3/200  45/78 [######----]  12 s, 0.27 s/batch  d1=0.512 d2=0.433 g=1.207' (s/batch from batch 2 on)"""
        filled = int(20 * done / max(self.total, 1))
        line = f"epoch {self.epoch}/{self.n_epochs}  {done}/{self.total} [{'#' * filled}{'-' * (20 - filled)}]"
        now = time.time()
        spent, steps = now - self.start, done - self.first_done
        if steps:
            line += f"  {spent:.0f} s"
        # the rate since the first batch of this call: that one also compiled the step (seconds, once)
        if self.first_shown and done > self.first_shown[1]:
            line += f", {(now - self.first_shown[0]) / (done - self.first_shown[1]):.2f} s/batch"
        if d1 is not None:
            line += "  " + " ".join(f"{name}={value:.3f}" for name, value in zip(self.names, (d1, d2, g)))
        return line

    def due(self, done):
        """Whether the display wants batch `done`'s values now: a caller that holds values back (the fused step
        keeps them on the device) reads them when this says so, so lines come as batches finish and s/batch is a rate."""
        if self.mode == "log":
            return done % self.every == 0
        return self.mode is not None and time.time() - self.last_shown >= 0.5

    def update(self, done, d1, d2, g):
        if self.first_shown is None:
            self.first_shown = (time.time(), done)
        if self.mode == "terminal":
            self.bar.update(done, list(zip(self.names, (d1, d2, g))))
            self.last_shown = time.time()
        elif self.mode == "notebook":
            if time.time() - self.last_shown >= 0.5 or done == self.total:  # at most two redraws a second
                from IPython.display import Pretty

                self.handle.update(Pretty(self.text(done, d1, d2, g)))
                self.last_shown = time.time()
        elif self.mode == "log" and (done % self.every == 0 or done == self.total):
            print(self.text(done, d1, d2, g), flush=True)

    def line_break(self):
        """What to print before a line of our own so it does not land inside the bar's line."""
        return "\n" if self.mode == "terminal" and getattr(self.bar, "_dynamic_display", False) else ""
