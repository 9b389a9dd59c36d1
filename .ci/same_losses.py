"""Two runs of the same seed record the same per-batch losses: python .ci/same_losses.py RUN_A RUN_B.

.ci/run trains one tutorial-loop run on the newest Keras and one on Colab's (Keras 3.13, whose
train_on_batch reported running means before gan_lib reset the metrics): their history.csv must
agree batch by batch, within float round-off (the two TensorFlow releases' kernels differ in the last bits).
"""

import csv
import math
import os
import sys

COLUMNS = ("d_loss_real", "d_loss_fake", "g_loss", "d_x", "d_g_z")


def rows(run):
    with open(os.path.join(run, "history.csv")) as f:
        return list(csv.DictReader(f))


a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert len(a) == len(b) > 0, f"{len(a)} batches against {len(b)}"
worst = max(abs(float(x[k]) - float(y[k])) / max(abs(float(x[k])), 1e-6) for x, y in zip(a, b) for k in COLUMNS)
if not math.isfinite(worst) or worst > 1e-3:
    sys.exit(f"the two Kerases recorded different per-batch values: largest relative difference {worst:.2g}")
print(f"the same per-batch losses on both Kerases: {len(a)} batches, largest relative difference {worst:.1g}")
