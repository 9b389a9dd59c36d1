"""Peak memory of `generate` and `evaluate` as the number of images grows: it should stay flat in N.

    python benchmarks/memory.py [--sizes 1000 10000] [--pythonpath DIR]

Trains a tiny run (shapes, 256 images, one epoch) in a temporary folder, then runs, each in a fresh process,
`generate RUN --n n` (n x n images, n = sqrt(N)) and `evaluate RUN --n N --metrics modes,domain_fd,memorisation`
(KID and FID also need the Inception weights, which this machine cannot download), and prints each process's
peak resident memory (os.wait4's ru_maxrss). --pythonpath runs another checkout's gan_lib the same way, to
compare. The figures depend on the machine and the backend; compare the rows of one run.
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile


def peak_mb(args, env):
    """Run `python -m gan_lib ARGS` (from the checkout PYTHONPATH names, else this one); return (exit code, peak
    resident memory in MB)."""
    here = env.get("PYTHONPATH") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen([sys.executable, "-m", "gan_lib", *args], env=env, cwd=here, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode()
    if child.returncode:
        print(f"  failed: {' '.join(args)}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    return child.returncode, usage.ru_maxrss / 1024  # KiB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="images N")
    parser.add_argument("--pythonpath", help="import gan_lib from this checkout instead")
    args = parser.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_HOME=tempfile.mkdtemp(prefix="gan_lib_memory_keras_"))
    if args.pythonpath:
        env["PYTHONPATH"] = os.path.abspath(args.pythonpath)
    run = os.path.join(tempfile.mkdtemp(prefix="gan_lib_memory_"), "run")
    code, _ = peak_mb(["train", "--dataset", "shapes", "--limit", "256", "--batch", "64", "--epochs", "1", "--quiet",
                       "--out", run], env)
    if code:
        sys.exit(1)
    print(f"{'command':<52}{'images':>8}{'peak MB':>10}")
    for n_images in args.sizes:
        side = round(math.sqrt(n_images))
        for command in (["generate", run, "--n", str(side), "--out", os.path.join(run, "grid.png")],
                        ["evaluate", run, "--n", str(n_images), "--metrics", "modes,domain_fd,memorisation",
                         "--dataset", "shapes"]):
            images = side * side if command[0] == "generate" else n_images
            _, mb = peak_mb(command, env)
            shown = f"{command[0]} --n {command[3]}"
            print(f"{shown:<52}{images:>8}{mb:>10.0f}", flush=True)


if __name__ == "__main__":
    main()
