"""Command line: `python -m gan_lib train ...`, `toy ...`, `generate ...`, `evaluate ...` and `cyclegan ...`.

Parses flags and calls the library; errors become one line on stderr.
"""

import argparse
import os
import sys


def build_parser():
    from .panel import DEFAULTS

    parser = argparse.ArgumentParser(
        prog="python -m gan_lib",
        description="Train the Keras CIFAR-10 GAN tutorial, or draw images with a trained generator.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
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
                   "A resumed run keeps its own")
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
    y = sub.add_parser("toy", help="train a toy GAN on 2-D points (ring, grid of Gaussians, parabola) and score it",
                       description="Train a toy GAN on points whose modes are known, and score it: modes covered, "
                       "high-quality share and reverse KL (ring, grid), or distance to the curve and coverage "
                       "(parabola). Writes samples.npy, metrics.json and samples.png.")
    y.add_argument("toy", metavar="ring|grid|parabola", help="ring: 8 Gaussians on a circle; grid: 25 on a 5x5 grid; "
                   "parabola: points (x, x^2)")
    y.add_argument("--steps", type=int, metavar="N", help="training steps (default: the toy's, see gan_lib.toy.TOY_DEFAULTS)")
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
    e = sub.add_parser("evaluate", help="score a trained generator: mode count, Frechet distances, memorisation",
                       description="Score a generator against its run's dataset; prints a table and writes "
                       "metrics.json beside the model. Metrics that cannot run here say why; the others still run.")
    e.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="a run folder (uses its generator.keras and panel.json's "
                   "dataset) or a .keras file (then give --dataset)")
    e.add_argument("--metrics", default=None, metavar="LIST",
                   help="comma-separated, from modes, domain_fd, memorisation (shapes, mnist, fashion_mnist: gan_lib's "
                   "classifier), kid, fid (Inception-v3, ImageNet weights; downloaded once), conditional_accuracy "
                   "(a conditional GAN: the share of its images of the class asked for). Default: all of them "
                   "(conditional_accuracy for a conditional GAN only)")
    e.add_argument("--n", type=int, default=1000, help="generated (and real) images to score (default 1000)")
    e.add_argument("--dataset", metavar="NAME_OR_PATH", help="the real images (default: the run's panel.json)")
    e.add_argument("--weights", metavar="PATH", help="Inception-v3 weights file to use instead of downloading")
    e.add_argument("--seed", type=int, default=0, help="random seed for the images drawn (default 0)")
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
    g = sub.add_parser("generate", help="draw an n x n grid of new images with a trained generator")
    g.add_argument("model", metavar="RUN_DIR_OR_MODEL", help="a run folder (uses its generator.keras) or a .keras file")
    g.add_argument("--n", type=int, default=10, help="grid side: n x n images (default 10)")
    g.add_argument("--out", metavar="FILE.png", help="where to save the grid (default: generated.png beside the model)")
    g.add_argument("--seed", type=int, default=None, help="random seed for the latent points")
    g.add_argument("--label", type=int, default=None, metavar="K", help="a conditional GAN (arch cgan, acgan): draw class K "
                   "only (default: one row of n images per class, the same latent point down each column)")
    return parser


def panel_from_args(args):
    """The control panel a `train` command asks for (resumed runs start from their own panel.json)."""
    from .panel import check_panel, parse_setting
    from .runs import load_panel

    panel = {}
    if args.resume:
        if not os.path.exists(os.path.join(args.resume, "panel.json")):
            raise ValueError(f"{args.resume!r} is not a gan_lib run folder (no panel.json)")
        panel = load_panel(args.resume)
        panel.update(load_weights=True, epochs=0)
    flags = {"dataset": args.dataset, "n_epochs": args.epochs, "n_batch": args.batch,
             "latent_dim": args.latent_dim, "limit": args.limit, "seed": args.seed, "arch": args.arch}
    panel.update({k: v for k, v in flags.items() if v is not None})
    if not args.resume:
        panel["fast"] = not args.tutorial_loop  # the command line trains new runs with the fused step
    elif args.fast or args.tutorial_loop:
        panel["fast"] = args.fast  # a resume keeps its step kind: asking for the other one is refused, with the reason
    for text in args.set:
        key, value = parse_setting(text)
        panel[key] = value
    return check_panel(panel)


def cmd_train(args):
    panel = panel_from_args(args)
    if panel["arch"] == "cyclegan":
        from .models import CYCLEGAN_ELSEWHERE

        raise ValueError(CYCLEGAN_ELSEWHERE)
    if args.resume and args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
        raise ValueError("--resume continues a run in its own folder; leave out --out")
    from . import backend

    run_dir = args.resume or args.out
    if not backend.is_chief():
        pass  # a multi-worker run's other workers write nothing: the chief makes and checks the folder
    elif run_dir is None:
        from .runs import new_run_dir

        name = "".join(c if c.isalnum() else "_" for c in os.path.basename(os.path.normpath(panel["dataset"])))
        run_dir = new_run_dir(None, name)
    elif not args.resume and os.path.exists(run_dir) and (not os.path.isdir(run_dir) or os.listdir(run_dir)):
        raise ValueError(f"--out {run_dir!r} exists and is not an empty folder; choose a new folder, "
                         "or --resume it if it is a run")
    args.run_dir = run_dir  # for the message after Ctrl-C

    from . import data, models, training

    backend.strategy(panel["devices"])  # first: TensorFlow's multi-worker engine must start before anything else
    log = print if not args.quiet and backend.is_chief() else None
    # before any folder is made; folders of photos are brought to data.folder_size(panel)
    # as stored (uint8, usually): train() scales each batch, so the set takes a quarter of float32's memory
    if panel["arch"] in ("cgan", "acgan"):  # [images, labels]: a conditional GAN learns the classes too
        x, y = data.load_labelled_images(panel["dataset"], panel["limit"], **data.panel_load_options(panel), log=log)
        x = [data.check_dataset(x, name=str(panel["dataset"])), y]
    else:
        x = data.check_dataset(data.load_images(panel["dataset"], panel["limit"], **data.panel_load_options(panel),
                                                log=log), name=str(panel["dataset"]))
    images = data.images_of(x)
    training.set_seed(panel["seed"], panel["deterministic"])
    import keras

    before = keras.mixed_precision.global_policy().name
    models.set_precision(panel["precision"])  # a resumed run's comes from its panel.json (panel_from_args)
    try:  # the models compute in the panel's precision; the global policy goes back afterwards
        with backend.distribute(panel["devices"]):  # the models' variables live on every device they train on
            # panel key arch says which; a conditional GAN knows as many classes as the labels name
            g_model, d_model, gan_model = models.build_models(panel, images.shape[1:],
                                                              data.n_classes(x[1]) if images is not x else 10)
    finally:
        keras.mixed_precision.set_global_policy(before)
    if not args.quiet and backend.is_chief():
        classes = f" in {data.n_classes(x[1])} classes" if images is not x else ""
        print(f"training on {panel['dataset']}: {len(images)} images {images.shape[1:]}{classes}, writing to {run_dir}")
    training.train(g_model, d_model, gan_model, x, panel=panel, run_dir=run_dir, verbose=0 if args.quiet else 1)
    if backend.is_chief():
        print(f"done: {run_dir} (generator.keras, generated_plot_e*.png, history.csv)")


def cmd_cyclegan(args):
    from .cycle_training import TASKS, check_cycle_panel, load_cycle_panel, parse_cycle_setting, train_cyclegan

    if args.resume:
        if args.domains or args.task:
            raise ValueError("--resume continues a run with its own domains; leave out DIR_A DIR_B and --task")
        if args.out and os.path.abspath(args.out) != os.path.abspath(args.resume):
            raise ValueError("--resume continues a run in its own folder; leave out --out")
        if not os.path.exists(os.path.join(args.resume, "panel.json")):
            raise ValueError(f"{args.resume!r} is not a gan_lib run folder (no panel.json)")
        panel = {**load_cycle_panel(args.resume), "load_weights": True, "epochs": 0}
    elif args.task:
        if args.domains:
            raise ValueError(f"give either two folders or --task {args.task}, not both")
        if args.task not in TASKS:
            raise ValueError(f"unknown task {args.task!r}; choose {', '.join(TASKS)}")
        panel = dict(TASKS[args.task])
    elif len(args.domains) == 2:
        panel = {"dataset": args.domains[0], "dataset_b": args.domains[1]}
    else:
        raise ValueError(f"give two folders of images, DIR_A DIR_B (got {len(args.domains)}), or --task shapes, "
                         "or --resume RUN_DIR")
    flags = {"n_epochs": args.epochs, "n_batch": args.batch, "limit": args.limit, "seed": args.seed}
    panel.update({k: v for k, v in flags.items() if v is not None})
    for text in args.set:
        key, value = parse_cycle_setting(text)
        panel[key] = value
    panel = check_cycle_panel(panel)
    run_dir = args.resume or args.out
    if run_dir is None:
        from .runs import new_run_dir

        names = [os.path.basename(os.path.normpath(panel[k])) for k in ("dataset", "dataset_b")]
        run_dir = new_run_dir(None, "cyclegan-" + "".join(c if c.isalnum() else "_" for c in "-".join(names)))
    elif not args.resume and os.path.exists(run_dir) and (not os.path.isdir(run_dir) or os.listdir(run_dir)):
        raise ValueError(f"--out {run_dir!r} exists and is not an empty folder; choose a new folder, "
                         "or --resume it if it is a run")
    args.run_dir = run_dir  # for the message after Ctrl-C
    train_cyclegan(panel, run_dir, verbose=0 if args.quiet else 1)
    print(f"done: {run_dir} (generator_ab.keras, generator_ba.keras, cycle_e*.png, metrics.json, history.csv)")


def cmd_toy(args):
    import json
    import time

    import numpy as np

    from . import plots, toy
    from .backend import set_seed
    from .files import atomic_path, write_text
    from .panel import parse_setting

    if args.toy not in toy.TOY_DEFAULTS:
        raise ValueError(f"unknown toy {args.toy!r}; choose one of {', '.join(toy.TOY_DEFAULTS)}")
    steps = toy.TOY_DEFAULTS[args.toy]["steps"] if args.steps is None else args.steps
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, got {steps}")
    overrides = {"fast": not args.tutorial_loop}
    for text in args.set:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if key in toy.MODEL_KEYS and sep:
            try:  # typed like the model key's default
                overrides[key] = type(toy.MODEL_KEYS[key])(raw)
            except ValueError:
                kind = "an integer" if type(toy.MODEL_KEYS[key]) is int else "a number"
                raise ValueError(f"--set {key}= wants {kind}, got {raw!r}") from None
        else:
            overrides.update([parse_setting(text)])
    overrides.update({k: v for k, v in (("n_batch", args.batch), ("seed", args.seed)) if v is not None})
    panel, model = toy.toy_settings(args.toy, overrides)
    out = args.out
    if out is None:
        from .runs import new_run_dir

        out = new_run_dir(None, args.toy)
    elif os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ValueError(f"--out {out!r} exists and is not an empty folder; choose a new folder")
    os.makedirs(out, exist_ok=True)
    log = None if args.quiet else print
    if log:
        log(f"toy {args.toy}: {steps} steps of {panel['n_batch']} points, "
            f"{'fused step' if panel['fast'] else 'tutorial loop'}, {model if args.toy != 'parabola' else 'small models'}")
    set_seed(panel["seed"], panel["deterministic"])
    wall, cpu = time.perf_counter(), time.process_time()
    samples, scores, _ = toy.train_named_toy(args.toy, steps, panel, model, log=log, log_every=max(1, steps // 10))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with atomic_path(os.path.join(out, "samples.npy")) as tmp:
        np.save(tmp, samples)  # float32 (2500, 2)
    settings = {k: panel[k] for k in ("n_batch", "latent_dim", "d_lr", "g_lr", "beta_1", "seed", "fast",
                                      "label_smoothing", "label_noise")}
    if args.toy != "parabola":
        settings.update(model)
    metrics = {"toy": args.toy, "steps": steps, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
               "load_average": [round(x, 2) for x in os.getloadavg()], "scores": scores, "settings": settings}
    write_text(os.path.join(out, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    marks = None if args.toy == "parabola" else toy.MODE_TOYS[args.toy][0]
    curve = None
    if args.toy == "parabola":  # the true curve y = x^2 over X_RANGE, (101, 2)
        x = np.linspace(*toy.X_RANGE, 101)
        curve = np.stack([x, x * x], axis=1)
    plots.save_points(samples, os.path.join(out, "samples.png"), marks, curve,
                      f"{args.toy}, {steps} steps: {toy.describe_scores(scores)}")
    print(f"{args.toy} after {steps} steps ({wall:.0f} s, {cpu:.0f} s CPU): {toy.describe_scores(scores)}")
    print(f"wrote {out}: samples.npy, metrics.json, samples.png")


def load_generator(path):
    """A generator .keras file, or a run folder's generator.keras, loaded in Keras safe mode."""
    import keras

    if os.path.isdir(path):
        model_path = os.path.join(path, "generator.keras")
        if not os.path.exists(model_path):
            raise ValueError(f"{path!r} holds no generator.keras; is it a run folder that finished an epoch?")
    elif path.endswith(".keras") and os.path.isfile(path):
        model_path = path
    else:
        raise ValueError(f"{path!r} is neither a run folder nor a .keras file")
    try:
        return keras.saving.load_model(model_path, compile=False, safe_mode=True), model_path
    except Exception as e:  # Keras raises many kinds for a damaged zip
        raise ValueError(f"{model_path} cannot be loaded as a Keras model ({type(e).__name__}); it may be "
                         "truncated or corrupt: use an earlier generator_model_eNNN.keras") from None


def cmd_generate(args):
    import keras
    import numpy as np

    from .data import class_grid, generate_fake_samples, generate_latent_points, images_of, n_classes_of
    from .models import first_input_shape
    from .plots import save_grid

    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed must be between 0 and 2**32 - 1, got {args.seed}")
    if args.out and not args.out.lower().endswith((".png", ".jpg", ".jpeg")):
        raise ValueError(f"--out must name a .png or .jpg file, got {args.out!r}")
    g_model, model_path = load_generator(args.model)
    k = n_classes_of(g_model)  # a conditional generator: [z, class] -> image
    shape_in = (None, *first_input_shape(g_model))
    shape_out = tuple(g_model.output_shape)
    if len(shape_in) != 2 or len(shape_out) != 4 or shape_out[-1] not in (1, 3):
        raise ValueError(f"{model_path} is not an image generator: it maps {shape_in} to {shape_out}, "
                         "not latent points (N, latent_dim) to images (N, H, W, 1 or 3)")
    if args.label is not None and not k:
        raise ValueError(f"--label {args.label}: {model_path} is not a conditional generator (it takes no class); "
                         "train one with --arch cgan or acgan, or leave out --label")
    if args.label is not None and not 0 <= args.label < k:
        raise ValueError(f"--label must be a class of this generator, 0 to {k - 1}, got {args.label}")
    latent_dim, rng, rows = shape_in[-1], np.random.default_rng(args.seed), None
    if k and args.label is None:  # a row per class, the same latent point down each column
        x = keras.ops.convert_to_numpy(g_model(class_grid(generate_latent_points(latent_dim, args.n, rng), k),
                                               training=False))
        rows, what = k, f"{k}x{args.n} images, a row per class,"
    else:
        x, _ = generate_fake_samples(g_model, latent_dim, args.n * args.n, rng, classes=args.label)
        x, what = images_of(x), f"{args.n}x{args.n} images" + (f" of class {args.label}" if k else "")
    out = args.out or os.path.join(os.path.dirname(model_path), "generated.png")
    save_grid(x, out, args.n, rows)
    print(f"wrote {out}: {what} from {model_path}")


def cmd_evaluate(args):
    import json

    from .data import load_real_samples
    from .evaluate import evaluate_generator
    from .files import atomic_path
    from .panel import check_panel
    from .runs import load_panel

    g_model, model_path = load_generator(args.model)
    folder = os.path.dirname(model_path)
    in_run = os.path.exists(os.path.join(folder, "panel.json"))
    panel = load_panel(folder) if in_run else check_panel()
    dataset = args.dataset or (panel["dataset"] if in_run else None)
    if not dataset:
        raise ValueError(f"{model_path} is not in a run folder, so give the real images with --dataset")
    # The real images must look like the generated ones: the panel's size and channels, or when it says 0 the
    # generator's (a model outside a run folder, or a folder of photos, which training brought to that size).
    _, h, w, c = g_model.output_shape  # a conditional G's too: one output, the images
    real = load_real_samples(dataset, 0 if args.dataset else panel["limit"], image_size=panel["image_size"] or h * (h == w),
                             resize=panel["resize"], channels=panel["channels"] or c, log=print)
    from .data import n_classes_of
    from .evaluate import CONDITIONAL, METRICS

    if args.metrics is None:  # all of them; a conditional GAN is also asked whether it draws the class asked for
        metrics = [*METRICS, CONDITIONAL] if n_classes_of(g_model) else list(METRICS)
    else:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    scores, skipped = evaluate_generator(g_model, real, dataset, metrics, args.n, args.weights or "imagenet", args.seed)
    print(f"{model_path} against {dataset} ({len(real)} images), {args.n} generated:")
    pad = max(map(len, metrics), default=0)  # the values in one column
    for metric in metrics:
        print(f"  {metric:<{pad}} {_shown(scores[metric]) if metric in scores else 'not run: ' + skipped[metric]}")
    found = None
    if os.path.exists(os.path.join(folder, "history.csv")):  # a run: what its history says (diagnosis.py)
        from .diagnosis import diagnose
        from .runs import read_history

        found = diagnose(read_history(folder))
        print("diagnosis of its history.csv:" if found else "diagnosis of its history.csv: no sign of trouble")
        for line in found.values():
            print(f"  {line}")
    out = os.path.join(folder, "metrics.json")
    with atomic_path(out) as tmp, open(tmp, "w") as f:
        json.dump({"model": os.path.basename(model_path), "dataset": dataset, "n": args.n, "seed": args.seed,
                   "scores": scores, "not_run": skipped, "diagnosis": found}, f, indent=2)
    print(f"wrote {out}")


def _shown(value):
    if isinstance(value, dict):
        return ", ".join(f"{k} {_shown(v)}" if isinstance(v, (float, list)) else f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):  # per-class shares
        return "[" + " ".join("-" if v is None else f"{v:.2f}" for v in value) + "]"
    return f"{value:.4g}"


def out_of_memory(error):
    """True for the out-of-memory errors of Python and of each backend (TensorFlow, JAX/XLA, torch)."""
    text = f"{type(error).__name__}: {error}"[:2000]
    return isinstance(error, MemoryError) or any(
        s in text for s in ("ResourceExhausted", "RESOURCE_EXHAUSTED", "OutOfMemoryError", "out of memory"))


def one_line_warning(message, category, filename, lineno, file=None, line=None):
    """warnings.showwarning for the command line: 'warning: MESSAGE' on stderr, one line, no source location."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv=None):
    import warnings

    args = build_parser().parse_args(argv)
    from .training import TrainingDiverged

    try:
        with warnings.catch_warnings():  # restores the warning machinery for an in-process caller
            warnings.showwarning = one_line_warning
            {"train": cmd_train, "toy": cmd_toy, "generate": cmd_generate, "evaluate": cmd_evaluate,
             "cyclegan": cmd_cyclegan}[args.command](args)
    except (ValueError, OSError, TrainingDiverged) as e:  # DownloadError is an OSError
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        if not out_of_memory(e):
            raise
        run_dir = getattr(args, "run_dir", None)
        again = f"; a run that has a checkpoint continues with --resume {run_dir}" if run_dir else ""
        print(f"error: out of memory ({type(e).__name__}); lower --batch, --latent-dim, the image size or --limit "
              "(the fused step keeps a dataset that takes up to a quarter of the device's memory there; "
              f"--tutorial-loop never does), or use a machine with more memory{again}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        run_dir = getattr(args, "run_dir", None)
        where = f"; continue with: python -m gan_lib {args.command} --resume {run_dir}" if run_dir else ""
        print(f"interrupted{where}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
