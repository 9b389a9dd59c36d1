"""The tutorial loop and the fused step side by side, in one process.

    python benchmarks/speed.py [--repeats 5] [--steps 10] [--only cifar|toy] [--json FILE]

Two workloads: the tutorial's CIFAR-10 models at batch 128 on 32x32x3 images
(compute-bound on a CPU: convolutions dominate) and the 1-D toy GAN of notebook 01
at batch 128 (overhead-bound: per-call dispatch and host round trips dominate,
as they do for the CIFAR models on a GPU). For each, after a warm-up (tracing),
`repeats` rounds alternate `steps` iterations of each kind; the table gives the
median seconds per iteration, images (or points) per second and the ratio.
Shared machines are noisy: compare the ratios, not the absolute times.
"""

import argparse
import json
import os
import platform
import time

import keras
import numpy as np

import gan_lib
from gan_lib import toy
from gan_lib.fused import FusedStep
from gan_lib.training import train_step


def workloads(only=None):
    """name -> (g, d, gan, data, latent_dim, n_batch), freshly built and seeded."""
    if only != "toy":
        yield from cifar_workload()
    if only != "cifar":
        yield from toy_workload()


def cifar_workload():
    gan_lib.set_seed(0)
    data = gan_lib.load_real_samples("shapes", limit=2048)
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    yield "CIFAR-10 tutorial models, batch 128", (g, d, gan_lib.define_gan(g, d), data, 100, 128)


def toy_workload():
    gan_lib.set_seed(0)
    points, _ = toy.generate_real_points(4096, np.random.default_rng(0))
    d, g = toy.define_toy_discriminator(), toy.define_toy_generator(5)
    yield "1-D toy GAN (notebook 01), batch 128", (g, d, gan_lib.define_gan(g, d), points, 5, 128)


def seconds_per_iteration(run_steps, steps):
    t = time.perf_counter()
    run_steps(steps)
    return (time.perf_counter() - t) / steps


def measure(g, d, gan, data, latent_dim, n_batch, repeats, steps):
    panel = gan_lib.check_panel(n_batch=n_batch, latent_dim=latent_dim)
    rng = np.random.default_rng(0)
    fused = FusedStep(g, d, gan, data, panel)

    def loop(n):
        for _ in range(n):
            train_step(g, d, gan, data, latent_dim, n_batch, rng, panel)

    def fast(n):
        for _ in range(n):
            fused()
        fused.read()  # the values come back once, as training does between printed lines

    loop(2), fast(2)  # warm-up: tracing, first allocations
    times = {"loop": [], "fused": []}
    for _ in range(repeats):
        times["loop"].append(seconds_per_iteration(loop, steps))
        times["fused"].append(seconds_per_iteration(fast, steps))
    return {k: float(np.median(v)) for k, v in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="iterations per timed round")
    parser.add_argument("--only", choices=["cifar", "toy"], help="one workload (JAX's CIFAR loop is very slow on a CPU)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    device = gan_lib.describe_device()  # 'backend NAME, accelerator: GPU NAMES' or 'backend NAME, no GPU: ...'
    info = {"backend": keras.backend.backend(),
            "device": device.split("accelerator: ")[1] if "accelerator: " in device else "CPU only",
            "keras": keras.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
            "repeats": args.repeats, "steps": args.steps}
    if info["backend"] == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["threads"] = f"intra {tf.config.threading.get_intra_op_parallelism_threads()} (0 = all), " \
                          f"inter {tf.config.threading.get_inter_op_parallelism_threads()}"
    print(", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"{'workload':<40}{'loop s/it':>11}{'fused s/it':>12}{'loop img/s':>12}{'fused img/s':>13}{'ratio':>8}")
    rows = []
    for name, (g, d, gan, data, latent_dim, n_batch) in workloads(args.only):
        t = measure(g, d, gan, data, latent_dim, n_batch, args.repeats, args.steps)
        row = {"workload": name, "loop_s": t["loop"], "fused_s": t["fused"], "loop_per_s": n_batch / t["loop"],
               "fused_per_s": n_batch / t["fused"], "ratio": t["loop"] / t["fused"]}
        rows.append(row)
        print(f"{name:<40}{row['loop_s']:>11.4f}{row['fused_s']:>12.4f}{row['loop_per_s']:>12.0f}"
              f"{row['fused_per_s']:>13.0f}{row['ratio']:>7.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
