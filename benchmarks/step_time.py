"""Where a training step's time goes, measured side by side in one process.

    python benchmarks/step_time.py [--batch 128] [--repeats 20]

Prints the median time of: one full tutorial step (train_step), generating the
fake half batch by calling the model directly (what gan_lib does) and with
model.predict (what the tutorial does), and the extra forward pass that
records D(x) and D(G(z)). Compare the ratios, not the absolute times: these
machines are shared and noisy.
"""

import argparse
import time

import numpy as np

import gan_lib
from gan_lib.training import train_step


def median_time(fn, repeats):
    fn()  # warm-up: tracing and first-call allocation
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    gan_lib.set_seed(0)
    data = gan_lib.load_real_samples("shapes", limit=max(1024, args.batch))
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    gan_model = gan_lib.define_gan(g, d)
    panel = gan_lib.check_panel(n_batch=args.batch)
    rng = np.random.default_rng(0)
    half = args.batch // 2
    z = gan_lib.generate_latent_points(100, half, rng)
    x = np.concatenate([gan_lib.generate_real_samples(data, half, rng)[0]] * 2)

    step = median_time(lambda: train_step(g, d, gan_model, data, 100, args.batch, rng, panel), args.repeats)
    direct = median_time(lambda: gan_lib.generate_fake_samples(g, 100, half, rng), args.repeats)
    predict = median_time(lambda: g.predict(z, verbose=0), args.repeats)
    scores = median_time(lambda: gan_lib.d_scores(d, x), args.repeats)

    import keras

    print(f"backend {keras.backend.backend()}, batch {args.batch}, median of {args.repeats}")
    print(f"full train_step            {step * 1000:8.1f} ms   1.00")
    print(f"fake half batch, g(z)      {direct * 1000:8.1f} ms   {direct / step:.3f} of a step")
    print(f"fake half batch, predict   {predict * 1000:8.1f} ms   {predict / step:.3f} of a step "
          f"({predict / direct:.1f}x the direct call)")
    print(f"D(x), D(G(z)) scores       {scores * 1000:8.1f} ms   {scores / step:.3f} of a step")


if __name__ == "__main__":
    main()
