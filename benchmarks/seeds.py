"""How often does a recipe get stuck? Train several seeds for a few hundred batches, both step kinds, and count.

Each run is the command line a user types (python -m gan_lib train ...), one after another,
so a run is exactly what the README's command does. A run already finished in OUT is read,
not trained again: stop this script and start it again to go on.

    python benchmarks/seeds.py --dataset /tmp/cifar10.npz --out /tmp/seeds --seeds 1-8 --steps 400

--steps: batches per run (the dataset is cut with --limit so that 2 epochs make this many
batches; 2 epochs so that the first epoch's end does not end the run). --whole: every image instead,
one epoch (390 batches of 128 on CIFAR-10), as a user's first epoch is. Printed per run:
G's diversity (1 = as varied as the data, near 0 = one image) at each measurement, D(G(z))
over the last 50 batches, and whether diagnosis.stuck (or collapsing) fires at the end.
Then per step kind: how many seeds got stuck. Flags after -- go to every run (e.g. -- --set label_smoothing=0.1).
"""

import argparse
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_lib.diagnosis import diagnose  # noqa: E402
from gan_lib.runs import read_history  # noqa: E402

KINDS = {"fused": "--fast", "loop": "--tutorial-loop"}


def seeds_of(text):
    """'1-8' or '1,3,5' -> [1, ..., 8] / [1, 3, 5]."""
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def run(args, seed, kind, extra):
    """Train one run unless OUT already holds it finished; its folder."""
    folder = os.path.join(args.out, f"{kind}-seed{seed}")
    if os.path.exists(os.path.join(folder, "done")):
        return folder  # finished
    # 2 epochs of `limit` images make --steps batches; --whole: one epoch of all of them
    size = ["--epochs", "1"] if args.whole else ["--limit", str(args.steps * args.batch // 2), "--epochs", "2"]
    if os.path.exists(folder):  # killed part way: resume it (bit-identical on a CPU)
        cmd = ["--resume", folder]
    else:
        cmd = ["--dataset", args.dataset, *size, "--batch", str(args.batch),
               "--seed", str(seed), KINDS[kind], "--out", folder, "--set", f"eval_every={args.eval_every}", *extra]
    subprocess.run([sys.executable, "-m", "gan_lib", "train", "--quiet", *cmd], check=True)
    open(os.path.join(folder, "done"), "w").close()
    return folder


def summary(folder):
    """(diversities at the measurements, mean D(G(z)) over the last 50 batches, the diagnosis's kinds)."""
    history = read_history(folder)
    div = [row["diversity"] for row in history if row.get("diversity") is not None]
    d_g_z = float(np.mean([row["d_g_z"] for row in history[-50:]]))
    return div, d_g_z, sorted(diagnose(history))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", default="1-8")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--kinds", default="fused,loop")
    ap.add_argument("--whole", action="store_true", help="all images, one epoch (--steps is not used)")
    args, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]
    kinds = args.kinds.split(",")
    stuck = {kind: [] for kind in kinds}
    for seed in seeds_of(args.seeds):
        for kind in kinds:
            div, d_g_z, found = summary(run(args, seed, kind, extra))
            bad = [k for k in found if k in ("stuck", "collapsing")]
            if bad:
                stuck[kind].append(seed)
            print(f"seed {seed} {kind:5s} diversity {' '.join(f'{d:.2f}' for d in div)}  "
                  f"D(G(z)) {d_g_z:.3f}  {', '.join(found) or 'healthy'}", flush=True)
    for kind in kinds:
        n = len(seeds_of(args.seeds))
        print(f"{kind}: stuck or collapsing in {len(stuck[kind])} of {n} seeds {stuck[kind]}")


if __name__ == "__main__":
    main()
