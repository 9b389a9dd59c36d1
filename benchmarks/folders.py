"""How long a folder of photos takes to load: one thread, the thread pool, and from gan_lib's cache.

    python benchmarks/folders.py FOLDER [--size 64] [--repeats 3] [--resize crop|stretch]

Reads the folder once first so its files sit in the operating system's file cache (every
row then measures decoding, not the disk), then takes the best of `repeats` loads of each
kind, with wall and CPU seconds and the load average. The cache lives in a temporary
KERAS_HOME, removed at the end: nothing is written beside the folder or in ~/.keras.
Shared machines are noisy: a pool cannot beat one thread when other work fills the cores.
"""

import argparse
import os
import shutil
import tempfile
import time


def timed(load, repeats):
    """(best wall seconds, CPU seconds of that run, load average before it, the array)."""
    best = None
    for _ in range(repeats):
        load_average = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        x = load()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or wall < best[0]:
            best = (wall, cpu, load_average, x)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resize", default="crop", choices=("crop", "stretch"))
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="gan_lib_folders_")
    os.environ["KERAS_HOME"] = home  # before gan_lib reads it: the cache goes to the temporary folder
    from gan_lib import photos

    def load(workers, cache):
        return lambda: photos.read_image_folder(args.folder, args.size, args.resize, workers=workers, cache=cache)

    try:
        load(0, False)()  # the files into the OS file cache
        rows = [("1 thread", timed(load(1, False), args.repeats)),
                ("thread pool", timed(load(0, False), args.repeats))]
        load(0, True)()  # writes the cache
        rows.append(("from the cache", timed(load(0, True), args.repeats)))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"{args.folder} at {args.size}x{args.size} ({args.resize}), {os.cpu_count()} CPU cores, "
          f"best of {args.repeats}:")
    for name, (wall, cpu, load_average, x) in rows:
        print(f"  {name:<15} {wall:6.2f} s wall {cpu:6.2f} s CPU  load average {load_average:4.1f}  "
              f"{x.shape} {x.dtype}")


if __name__ == "__main__":
    main()
