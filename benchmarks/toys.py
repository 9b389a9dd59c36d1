"""The toys with known modes at their default settings, beside the plain GAN, as one table.

    python benchmarks/toys.py [--steps N] [--toys ring grid] [--seed 1]

For each toy: the `toy` command's defaults (gan_lib.toy_training.TOY_DEFAULTS), the plain GAN
(PLAIN below) where the defaults differ from it, and the defaults with another pack
(--pack; the grid without packing by default), each for the same steps and batch. Prints modes covered, high-quality share,
reverse KL, wall and CPU seconds and the load average: the machines are shared, so
read CPU seconds (all threads of this process) beside wall time.
"""

import argparse
import os
import time

import gan_lib
from gan_lib import toy_training

# the plain GAN: no packing, no scaling, Adam 2e-4 / 0.5 for both (3 x 128 ReLU MLPs, batch 512 as in the defaults)
PLAIN = {"pack": 1, "scale": 1.0, "d_lr": 0.0002, "g_lr": 0.0002, "beta_1": 0.5, "label_smoothing": 0.0}


def run(name, steps, overrides, seed):
    panel, model = toy_training.toy_settings(name, {"fast": True, "seed": seed, **overrides})
    gan_lib.set_seed(seed)
    wall, cpu = time.perf_counter(), time.process_time()
    _, scores, _ = toy_training.train_named_toy(name, steps, panel, model)
    return scores, time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="steps for every row (default: each toy's own)")
    parser.add_argument("--toys", nargs="+", default=["ring", "grid"], choices=["ring", "grid"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pack", type=int, default=1, help="also run the defaults with this pack (PacGAN) where "
                        "the toy's default differs (default 1: the grid without packing)")
    args = parser.parse_args()
    print(f"{'toy':5} {'setup':18} {'steps':>6} {'modes':>7} {'HQ':>6} {'rev KL':>7} {'wall s':>7} {'CPU s':>7}  load avg")
    for name in args.toys:
        steps = args.steps or toy_training.TOY_DEFAULTS[name]["steps"]
        setups = {"defaults": {}}
        if {k: toy_training.TOY_DEFAULTS[name].get(k, v) for k, v in PLAIN.items()} != PLAIN:
            setups["plain"] = PLAIN
        if args.pack != toy_training.TOY_DEFAULTS[name].get("pack", 1):
            setups[f"defaults, pack {args.pack}"] = {"pack": args.pack}
        for label, overrides in setups.items():
            scores, wall, cpu = run(name, steps, overrides, args.seed)
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"{name:5} {label:18} {steps:6d} {scores['modes']:4d}/{scores['of']:<2d} {scores['high_quality']:6.1%} "
                  f"{scores['reverse_kl']:7.3f} {wall:7.1f} {cpu:7.1f}  {load}", flush=True)


if __name__ == "__main__":
    main()
