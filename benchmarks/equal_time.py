"""Recipes at equal CPU time: runs train side by side, each on its own core, for the same CPU minutes; then scored.

    python benchmarks/equal_time.py --dataset /tmp/cifar10.npz --out /tmp/equal --minutes 120 \\
        --run tutorial "--recipe tutorial" --run modern "--recipe modern"
    python benchmarks/equal_time.py --out /tmp/equal --score --n 2000

Training: every --run NAME "FLAGS" is `python -m gan_lib train --dataset D --seed S FLAGS`, pinned to one
core (taskset, and one thread for TensorFlow, XLA and OpenMP), all started together, so that each gets the same
share of the machine; a run is killed when it has used --minutes of CPU time (its process's user and system time,
so that other work on the machine slows a run without shortening its budget). Stopped part way (this script, or the
machine), start the same command again: each run resumes from its last checkpoint for the rest of its minutes
(OUT/NAME.budget.json counts them; the minutes since its last checkpoint are trained again, and counted again).
Each run saves its generator (and its EMA's) at every epoch end; NAME.budget.json records the CPU minute each epoch
ended.

--score: each run's numbered generators, every --every'th epoch's and the last (those scored before at this --n
are read from scores.csv and kept, so --score can run while the runs train), the EMA's where the run keeps one (as
generate and evaluate do): FID and KID on the standard Inception (gan_lib evaluate's, --n generated against --n
real; --raw: also the raw G of a run with an EMA), into OUT/scores.csv, OUT/curves.png (score against minutes
trained, each run's best marked; --compare DIR adds an earlier OUT's runs) and OUT/best.json.
"""

import argparse
import csv
import glob
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

ONE_THREAD = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
              "TF_CPP_MIN_LOG_LEVEL": "3"}


def read_budget(folder):
    """{'minutes': trained so far, 'epochs': {epoch: minute it ended}} (a new run: nothing yet); kept beside the run
    folder (FOLDER.budget.json), which gan_lib train makes itself and keeps to its own files."""
    try:
        with open(folder + ".budget.json") as f:
            return json.load(f)
    except FileNotFoundError:
        return {"minutes": 0.0, "epochs": {}}


def write_budget(folder, budget):
    with open(folder + ".budget.json.tmp", "w") as f:
        json.dump(budget, f, indent=1)
    os.replace(folder + ".budget.json.tmp", folder + ".budget.json")  # never half-written


def epochs_done(folder):
    """The epochs whose numbered generator is written (every epoch: the runs train with summarization=1)."""
    return sorted(int(m.group(1)) for f in glob.glob(os.path.join(folder, "generator_model_e*.keras"))
                  if (m := re.search(r"_e(\d+)\.keras$", f)))


def cpu_minutes(pid):
    """CPU minutes (user + system, all its threads) the live process `pid` has used: /proc/PID/stat's utime and
    stime, in clock ticks (fields 14 and 15; split after the ')' that ends the command's name)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") / 60


def start(args, name, flags, core):
    """Start (or resume) one run pinned to `core`: its Popen."""
    folder = os.path.join(args.out, name)
    if os.path.exists(os.path.join(folder, "panel.json")):
        cmd = ["--resume", folder]
    else:
        cmd = ["--dataset", args.dataset, "--seed", str(args.seed), "--epochs", "1000", "--out", folder,
               "--set", "summarization=1", *shlex.split(flags)]
    cores = os.cpu_count() or 1
    pin = ["taskset", "-c", str(core % cores)] if cores > 1 else []
    with open(os.path.join(args.out, f"{name}.log"), "a") as log:  # the child keeps its own copy of the file
        return subprocess.Popen([*pin, sys.executable, "-m", "gan_lib", "train", "--quiet", *cmd], cwd=ROOT,
                                env={**os.environ, **ONE_THREAD}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def train(args):
    """Train every run for --minutes, side by side; resumable."""
    os.makedirs(args.out, exist_ok=True)
    runs = dict(args.run)
    with open(os.path.join(args.out, "runs.json"), "w") as f:
        json.dump({"runs": runs, "minutes": args.minutes, "seed": args.seed, "dataset": args.dataset}, f, indent=1)
    live = {}
    for i, (name, flags) in enumerate(runs.items()):
        folder = os.path.join(args.out, name)
        if read_budget(folder)["minutes"] < args.minutes:
            live[name] = start(args, name, flags, i)
    used = dict.fromkeys(live, 0.0)  # each live process's CPU minutes at the last look (a new process: none)
    while live:
        time.sleep(5)
        for name, proc in list(live.items()):
            folder = os.path.join(args.out, name)
            budget = read_budget(folder)
            try:
                now = cpu_minutes(proc.pid)
            except (FileNotFoundError, ProcessLookupError):  # it has just exited: its last seconds go uncounted
                now = used[name]
            budget["minutes"] += now - used[name]
            used[name] = now
            for e in epochs_done(folder):
                budget["epochs"].setdefault(str(e), round(budget["minutes"], 2))
            write_budget(folder, budget)
            ended = proc.poll()  # None while it trains
            if budget["minutes"] >= args.minutes or ended is not None:
                if ended is None:
                    os.killpg(proc.pid, signal.SIGKILL)  # what a disconnect does; its checkpoints stay
                proc.wait()
                why = f", but it exited by itself with code {ended}: see {name}.log" if ended else ""
                print(f"{name}: {budget['minutes']:.1f} minutes, {len(budget['epochs'])} epochs{why}", flush=True)
                del live[name]


def score(args):
    """FID and KID of every run's numbered generators: OUT/scores.csv, OUT/curves.png, OUT/best.json."""
    from gan_lib.evaluate import evaluate_run

    with open(os.path.join(args.out, "runs.json")) as f:
        setup = json.load(f)
    earlier = read_compare(args)  # a bad --compare DIR fails now, not after the scoring's minutes
    names = scorings(setup, args)
    rows, before = [], scored(args)
    for name, run in names:
        folder = os.path.join(args.out, run)
        budget = read_budget(folder)
        done = epochs_done(folder)
        for e in [e for e in done if e % args.every == 0 or e == done[-1] or (name, e) in before]:
            if (name, e) in before:  # scored by an earlier --score at this --n (while the runs trained, say)
                rows.append(before[name, e])
                continue
            ema = os.path.join(folder, f"generator_ema_e{e:03d}.keras")
            raw = os.path.join(folder, f"generator_model_e{e:03d}.keras")
            model = ema if os.path.exists(ema) and name == run else raw
            scores, skipped, _ = evaluate_run(model, ["fid", "kid"], n=args.n, real_n=args.n, inception="standard",
                                              dataset=setup["dataset"], log=None)
            if skipped:
                raise SystemExit(f"{model}: {skipped}")
            rows.append({"run": name, "epoch": e, "minutes": budget["epochs"].get(str(e)), "model":
                         os.path.basename(model), "n": args.n, "fid": scores["fid"], "kid": scores["kid"]["mean"],
                         "kid_std": scores["kid"]["std"]})
            print(f"{name} epoch {e}: fid {rows[-1]['fid']:.2f}, kid {rows[-1]['kid']:.4f}", flush=True)
    with open(os.path.join(args.out, "scores.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    best = {name: min((r for r in rows if r["run"] == name), key=lambda r: r["fid"]) for name, _ in names}
    with open(os.path.join(args.out, "best.json"), "w") as f:
        json.dump({"n": args.n, "best": best, "runs": trained(setup, args)}, f, indent=1)
    more_rows, more_best = earlier  # an earlier comparison's runs, where this one has no run of that name
    plot([r for r in more_rows if r["run"] not in best] + rows,
         {**{k: v for k, v in more_best.items() if k not in best}, **best}, args)
    samples(best, setup, dict(names), args)


def scorings(setup, args):
    """[(name in scores.csv, run folder)]: every run (its EMA where it keeps one), and with --raw also the raw G of
    each run that keeps an EMA, as NAME-raw (does the average help, or only lag behind a G that is still improving?)."""
    out = [(name, name) for name in setup["runs"]]
    if args.raw:
        out += [(f"{name}-raw", name) for name in setup["runs"]
                if glob.glob(os.path.join(args.out, name, "generator_ema_e*.keras"))]
    return out


def samples(best, setup, folder, args):
    """OUT/samples.png: 64 images from each run's best generator (folder: {name: its run folder}), the same latent
    points for every run."""
    import keras
    import matplotlib.pyplot as plt

    from gan_lib import image_grid, load_generator

    fig, axes = plt.subplots(1, len(best), figsize=(4.2 * len(best), 4.8), squeeze=False)
    for ax, (name, b) in zip(axes[0], best.items()):
        g_model, _ = load_generator(os.path.join(args.out, folder[name], b["model"]))
        z = np.random.default_rng(0).standard_normal((64, g_model.input_shape[-1])).astype("float32")  # the same for all
        ax.imshow(image_grid(keras.ops.convert_to_numpy(g_model(z, training=False)), 8))
        flags = setup["runs"][folder[name]]
        ax.set_title(f"{name}\n{flags}\nepoch {b['epoch']}, {b['minutes']:.0f} CPU min: FID {b['fid']:.1f}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "samples.png"), dpi=100)


def trained(setup, args):
    """{run: its flags, last whole epoch, the CPU minute it ended, the iterations to then and per CPU minute}."""
    from gan_lib import read_history

    out = {}
    for name, flags in setup["runs"].items():
        folder = os.path.join(args.out, name)
        last, budget = epochs_done(folder)[-1], read_budget(folder)
        minute = budget["epochs"][str(last)]
        steps = max(r["step"] for r in read_history(folder) if r["epoch"] == last)
        out[name] = {"flags": flags, "epochs": last, "cpu_minutes": minute, "iterations": steps,
                     "iterations_per_cpu_minute": steps / minute, "cpu_minutes_trained": budget["minutes"]}
    return out


def scored(args):
    """{(run, epoch): row} of OUT/scores.csv's rows scored at this --n (none before the first --score)."""
    try:
        with open(os.path.join(args.out, "scores.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return {}
    numbers = ("minutes", "fid", "kid", "kid_std")
    return {(r["run"], int(r["epoch"])): {**r, "epoch": int(r["epoch"]), "n": int(r["n"]),
                                          **{k: float(r[k]) if r[k] else None for k in numbers}}
            for r in rows if int(r.get("n") or 0) == args.n}


def read_compare(args):
    """(rows, best) of --compare DIR (its scores.csv, its best.json, scored at this --n): an earlier comparison's runs,
    drawn on the same curves without their folders; ([], {}) without --compare."""
    if not args.compare:
        return [], {}
    if not all(os.path.isfile(os.path.join(args.compare, f)) for f in ("best.json", "scores.csv")):
        raise SystemExit(f"--compare {args.compare}: not an equal_time.py OUT folder (needs best.json and scores.csv)")
    with open(os.path.join(args.compare, "best.json")) as f:
        theirs = json.load(f)
    if theirs["n"] != args.n:
        raise SystemExit(f"--compare {args.compare} was scored at --n {theirs['n']}, not {args.n}: FIDs at different n differ")
    with open(os.path.join(args.compare, "scores.csv"), newline="") as f:
        more = [{**r, "minutes": float(r["minutes"]), "fid": float(r["fid"]), "kid": float(r["kid"])}
                for r in csv.DictReader(f)]
    return more, theirs["best"]


def plot(rows, best, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, b in best.items():
        mine = [r for r in rows if r["run"] == name]
        for ax, key in zip(axes, ("fid", "kid")):
            line, = ax.plot([r["minutes"] for r in mine], [r[key] for r in mine], marker=".", label=name)
            ax.plot([b["minutes"]], [b[key]], "*", ms=12, color=line.get_color())
    for ax, key in zip(axes, ("FID", "KID")):
        ax.set_xlabel("CPU minutes trained (one core each)")
        ax.set_ylabel(f"{key}, {args.n} vs {args.n} (lower is better)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "curves.png"), dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--dataset")
    ap.add_argument("--minutes", type=float, default=120)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--run", nargs=2, action="append", metavar=("NAME", "FLAGS"), default=[])
    ap.add_argument("--score", action="store_true", help="score the runs in OUT instead of training")
    ap.add_argument("--n", type=int, default=2000, help="--score: images per FID and KID (generated and real)")
    ap.add_argument("--compare", metavar="DIR", help="--score: also draw the runs of an earlier OUT on curves.png")
    ap.add_argument("--raw", action="store_true", help="--score: also each EMA run's raw G, as NAME-raw")
    ap.add_argument("--every", type=int, default=1, help="--score: every Nth epoch's generator, and the last (the "
                    "standard Inception takes ~0.2 s an image on 2 CPU cores)")
    args = ap.parse_args()
    if args.score:
        score(args)
    elif not args.run or not args.dataset:
        ap.error("training needs --dataset and at least one --run NAME FLAGS (or --score)")
    else:
        train(args)


if __name__ == "__main__":
    main()
