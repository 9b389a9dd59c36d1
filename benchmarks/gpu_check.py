"""The GPU check: what the first machine with a GPU should measure, in one run, into one JSON and one table.

    KERAS_BACKEND=jax python benchmarks/gpu_check.py --out DIR [--cifar10 FILE.npz] [--quick]

1. speed: benchmarks/speed.py's rows (the tutorial loop and the fused step, CIFAR-10 models at
   batch 128 and the toy), in float32 and in mixed precision (mixed_float16 on a GPU,
   mixed_bfloat16 on a CPU);
2. a short CIFAR-10 run on the fused step, the command line a user types, with its seconds per
   batch (from the run's own progress lines; --cifar10: a local .npz with uint8 x, else the
   embedded shapes stand in and the table says so);
3. every notebook in smoke mode (GAN_LIB_SMOKE=1) on this backend, executed top to bottom with
   nbclient: passed or failed, and how long each took.

Writes DIR/gpu_check.json and DIR/gpu_check.md. On a machine with no GPU it runs the same
steps (CPU mode), so the script is tested where CI runs; --quick makes every size tiny and
runs one notebook (--notebooks picks others: names or 'none'). benchmarks/gpu_check.sh sets up
a GPU machine that has JAX but no TensorFlow (the keras wheel carried) and calls this.
"""

import argparse
import glob
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import keras  # noqa: E402
import speed  # noqa: E402

import gan_lib  # noqa: E402


def speed_rows(gpu, quick):
    """speed.py's rows in float32 and mixed precision: a list of dicts."""
    rows = []
    for precision in ("float32", "mixed_float16" if gpu else "mixed_bfloat16"):
        gan_lib.set_precision(precision)
        try:
            for name, models in speed.workloads("toy" if quick else None):
                t = speed.measure(*models, repeats=1 if quick else 5, steps=2 if quick else 10)
                n_batch = models[-1]
                rows.append({"workload": name, "precision": precision, "loop_s": t["loop"], "fused_s": t["fused"],
                             "fused_per_s": n_batch / t["fused"], "ratio": t["loop"] / t["fused"]})
                print(f"speed: {name}, {precision}: loop {t['loop']:.4f} s/it, fused {t['fused']:.4f} s/it", flush=True)
        finally:
            gan_lib.set_precision("float32")
    return rows


def cifar_run(cifar10, quick, work):
    """The fused step on CIFAR-10 (or shapes), as `python -m gan_lib train` runs it: a dict."""
    dataset = cifar10 or "shapes"
    batch = 16 if quick else 128  # quick: 2 batches of 16 (JAX's convolutions are slow on a CPU); else 100 of 128
    limit = 2 * batch if quick else 100 * batch
    cmd = [sys.executable, "-m", "gan_lib", "train", "--dataset", dataset, "--limit", str(limit), "--epochs", "1",
           "--batch", str(batch), "--out", os.path.join(work, "run"), "--set", "save_freq=0", "--set", "eval_every=0"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    rates = re.findall(r"([\d.]+) s/batch", done.stdout)  # the progress lines' rate; the last is the epoch's
    row = {"dataset": "CIFAR-10 (local copy)" if cifar10 else "shapes (no --cifar10 given)", "batches": limit // batch,
           "batch": batch,
           "s_per_batch": float(rates[-1]) if rates else None, "wall_s": wall, "ok": done.returncode == 0}
    if not row["ok"]:
        row["error"] = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
    print(f"cifar run: {row}", flush=True)
    return row


def notebook_rows(names, work):
    """Each notebook run top to bottom in smoke mode: a list of dicts (name, ok, seconds, error)."""
    try:
        import nbclient
        import nbformat
    except ImportError as e:
        return [{"notebook": "all", "ok": None, "seconds": 0.0, "error": f"not run: {e.name} is not installed"}]
    rows = []
    os.environ["GAN_LIB_SMOKE"] = "1"
    for path in names:
        nb = nbformat.read(path, as_version=4)
        start, error = time.perf_counter(), None
        try:  # in a folder of its own, so nothing lands in the checkout
            nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                    resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}).execute()
        except Exception as e:  # noqa: BLE001  (a failed cell: recorded, and the next notebook runs)
            error = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
        rows.append({"notebook": os.path.basename(path), "ok": error is None,
                     "seconds": time.perf_counter() - start, "error": error})
        print(f"notebook {rows[-1]['notebook']}: {'ok' if error is None else 'FAILED: ' + error} "
              f"({rows[-1]['seconds']:.0f} s)", flush=True)
    return rows


def table(report):
    """The report as markdown."""
    m = report["machine"]
    lines = [f"# GPU check: {m['device']}", "",
             f"backend {m['backend']}, keras {m['keras']}, python {m['python']}, {m['cpus']} CPUs, mode {m['mode']}, "
             f"{m['date']}", "", "| workload | precision | loop s/it | fused s/it | fused per s | loop / fused |",
             "|---|---|---|---|---|---|"]
    for r in report["speed"]:
        lines.append(f"| {r['workload']} | {r['precision']} | {r['loop_s']:.4f} | {r['fused_s']:.4f} | "
                     f"{r['fused_per_s']:.0f} | {r['ratio']:.2f}x |")
    c = report["cifar_run"]
    rate = f"{c['s_per_batch']:.3f} s/batch" if c["s_per_batch"] is not None else "no rate"
    lines += ["", f"Fused-step run, {c['dataset']}, {c['batches']} batches of {c['batch']}: {rate}, {c['wall_s']:.0f} s "
              f"with start-up{'' if c['ok'] else ', FAILED: ' + c.get('error', '')}", "",
              "| notebook (smoke mode) | result | seconds |", "|---|---|---|"]
    for r in report["notebooks"]:
        result = "ok" if r["ok"] else "not run" if r["ok"] is None else "FAILED: " + (r["error"] or "")
        lines.append(f"| {r['notebook']} | {result} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--cifar10", help="CIFAR-10 as an .npz holding uint8 x (e.g. from ../shared/data/offline.py)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and one notebook: the CPU test's mode")
    ap.add_argument("--notebooks", help="comma-separated names (e.g. 01,05), one .ipynb path, or 'none'; "
                    "default all (--quick: 01)")
    args = ap.parse_args()
    gpu = gan_lib.has_gpu()
    device = gan_lib.describe_device()
    wanted = args.notebooks or ("01" if args.quick else "")
    paths = sorted(glob.glob(os.path.join(ROOT, "notebooks", "[0-9]*.ipynb")))
    if wanted == "none":
        paths = []
    elif wanted.endswith(".ipynb"):  # one notebook by its path (the CPU test's own tiny one)
        paths = [wanted]
    elif wanted:
        paths = [p for p in paths if any(os.path.basename(p).startswith(w) for w in wanted.split(","))]
    report = {"machine": {"device": device.split("accelerator: ")[1] if gpu else "CPU only",
                          "mode": "gpu" if gpu else "cpu", "backend": keras.backend.backend(),
                          "keras": keras.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
    print(device, flush=True)
    with tempfile.TemporaryDirectory() as work:
        report["speed"] = speed_rows(gpu, args.quick)
        report["cifar_run"] = cifar_run(args.cifar10, args.quick, work)
        report["notebooks"] = notebook_rows(paths, work)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_check.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(args.out, "gpu_check.md"), "w") as f:
        f.write(table(report))
    print(f"wrote {args.out}/gpu_check.json and gpu_check.md")
    failed = not report["cifar_run"]["ok"] or any(r["ok"] is False for r in report["notebooks"])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
