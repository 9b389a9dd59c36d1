"""The run folder's files and the progress display."""

import numpy as np

import gan_lib
from gan_lib import progress
from gan_lib.runs import HISTORY_COLUMNS, history_array, history_rows


def test_history_round_trips_through_a_checkpoint_array(trained_run):
    _, history = trained_run
    assert history_rows(history_array(history)) == history


def test_checkpoints_from_before_the_learning_rate_columns_still_resume():
    old = np.array([[1, 1, 1, 0.7, 0.6, 0.9, 0.5, 0.4, 1.0, 0.0]])  # the 10 columns of the first release
    (row,) = history_rows(old)
    assert (row["epoch"], row["step"], row["g_loss"]) == (1, 1, 0.9)
    assert np.isnan(row["d_lr"]) and np.isnan(row["g_lr"]) and list(row) == HISTORY_COLUMNS


def test_progress_in_a_log_prints_about_ten_lines_an_epoch(shapes_small, tmp_path, capsys):
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small[:128], 100, n_epochs=1, n_batch=2,
                  run_dir=str(tmp_path / "r"), panel={"batchloss": 0, "n_samples": 8, "checkpoint_every": 0})
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch 1/1")]
    assert len(lines) == 11  # 64 batches: every 6th, and the last
    assert lines[-1].startswith("epoch 1/1  64/64 [####################]") and " d1=" in lines[-1]
    assert "\b" not in "".join(lines) and "\r" not in "".join(lines)


def test_progress_in_jupyter_is_one_output_updated_in_place(monkeypatch):
    shown, updates = [], []

    class Handle:
        def update(self, obj):
            updates.append(obj.data)

    def display(obj, display_id=False):
        shown.append(obj.data)
        return Handle()

    import IPython.display

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    bar = progress.Progress(3, 200, total=50, verbose=1)
    for j in range(1, 51):
        bar.update(j, 0.5, 0.4, 1.2)
    assert len(shown) == 1 and shown[0].startswith("epoch 3/200  0/50")
    assert 1 <= len(updates) <= 5  # throttled to two redraws a second, and always the last
    assert updates[-1].startswith("epoch 3/200  50/50 [####################]")
