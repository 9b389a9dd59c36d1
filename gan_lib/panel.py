"""The control panel: one plain dict of settings, checked in one place.

The tutorial's knobs come first; the rest are gan_lib's additions. Every key can
be set from the command line with `--set KEY=VALUE`.
"""

import difflib
import json
import math

DEFAULTS = {
    # the tutorial's control panel
    "latent_dim": 100,  # size of the generator's input noise
    "n_epochs": 200,  # epochs to train in all (a resumed run stops here too)
    "n_batch": 128,  # images per step: half real, half fake for D; all fake for G
    "summarization": 5,  # summarize_performance (accuracy, grid, .keras) every N epochs
    "batchloss": 10,  # print the '>epoch, batch/batches, d1, d2, g' line every N batches; 0 = never
    "save_freq": 1,  # save an image grid every N epochs; 0 = never
    "load_weights": False,  # resume the run in run_dir from its last checkpoint
    "epochs": 0,  # when resuming: the epochs you expect the run to have completed (0 = whatever the checkpoint says)
    # data and reproducibility
    "dataset": "cifar10",  # cifar10 | mnist | fashion_mnist | shapes | cats_vs_dogs[/cats|/dogs] | a path (.npz or folder)
    "limit": 0,  # keep the first N images; 0 = all
    "image_size": 0,  # folders of photos are brought to image_size x image_size; 0 = the architecture's (32; dcgan 64).
    # Named datasets and .npz files keep their own size unless it is set.
    "resize": "crop",  # crop: the centred square, then resized | stretch: the whole image squeezed to a square
    "channels": 0,  # 0: greyscale only when every image is, else RGB | 1: greyscale | 3: RGB
    "seed": 1,  # seeds sampling; the command line also seeds weights and dropout (in Python: gan_lib.set_seed first)
    "deterministic": True,  # command line: ask the backend for deterministic kernels (in Python: set_seed's argument)
    # the models (command line: --arch; gan_lib.build_models reads these)
    "arch": "tutorial",  # tutorial (the CIFAR-10 tutorial's models) | dcgan (Radford et al.'s, with BatchNorm; gan_lib/dcgan.py)
    # | cgan (Mirza and Osindero's conditional GAN: both models take the class label; gan_lib/cgan.py)
    # | acgan (Odena et al.'s auxiliary classifier GAN: cgan's G, and a D that also names the class; gan_lib/cgan.py)
    # | cyclegan (two domains; python -m gan_lib cyclegan, gan_lib/cycle_training.py)
    "width": 64,  # dcgan: filters of D's first layer (doubling per layer) and of G's last hidden one
    # cyclegan: filters of the first layers of G, F, D_A and D_B (default 32)
    # speed
    "fast": False,  # one compiled step per batch, data on the device; False = the tutorial's loop
    "precision": "float32",  # float32 | mixed_bfloat16 | mixed_float16 (GPU only): compute in 16 bits, weights stay float32
    "devices": 1,  # fast only: data parallel over N devices (0 = all visible GPUs); gan_lib.distribute(N) builds the models
    # best practices from the tutorial (off by default)
    "label_smoothing": 0.0,  # real labels become 1 - label_smoothing (one-sided smoothing, e.g. 0.1)
    "label_noise": 0.0,  # fraction of D's labels flipped at random each step (e.g. 0.05)
    "g_objective": "non_saturating",  # G's loss: non_saturating, -log D(G(z)) (labels 1, the tutorial's); or saturating
    "d_steps": 1,  # D's updates per iteration, each on new real and fake half batches (e.g. 5, as WGAN's critic)
    "g_steps": 1,  # G's updates per iteration, each on new latent points
    "mixed_batch": False,  # D learns from one batch of real and fake images together, not two half batches
    "d_lr": 0.0002,  # discriminator learning rate (Adam)
    "g_lr": 0.0002,  # generator learning rate (Adam, through the combined model)
    "beta_1": 0.5,  # Adam's beta_1 for both
    "n_samples": 150,  # images summarize_performance scores D on
    "grid": 7,  # the saved grids are grid x grid images
    "eval_every": 100,  # measure G (gradient norm, diversity, modes, domain_fd: diagnosis.py) every N batches; 0 = never
    # the modern recipe (the fused step, arch tutorial or dcgan; --recipe modern sets them; docs/recipes.md)
    "recipe": "tutorial",  # the named set of keys the other defaults come from: tutorial (the article's) | modern (RECIPES)
    "loss": "bce",  # bce: the tutorial's cross-entropy | hinge (Lim and Ye; SAGAN's) | wgan_gp (Gulrajani et al.)
    "gp_weight": 10.0,  # wgan_gp: the gradient penalty's weight (the paper's 10)
    "r1_gamma": 0.0,  # R1 (Mescheder et al. 2018): gamma / 2 * |grad D(x_real)|^2 added to D's loss; 0 = off
    "spectral_norm": False,  # D's Conv2D and Dense layers in keras.layers.SpectralNormalization (Miyato et al. 2018)
    "ema": 0.0,  # decay of an exponential moving average of G's weights (e.g. 0.999): generator_ema.keras; 0 = off
    "augment": "",  # DiffAugment (Zhao et al. 2020) of real and fake images for D and G: e.g. color,translation,cutout
    # when to stop (best.py): keep the best generator, scored every best_every batches
    "best_every": 0,  # score G every N batches (domain_fd where a classifier exists, else KID); 0 = never
    "best_n": 500,  # images scored each time (and real images to compare with)
    # surviving a disconnect
    "checkpoint_every": 100,  # full training state every N batches (and at each epoch end); 0 = epoch ends only
    "keep_checkpoints": 2,  # how many checkpoints to keep
    "mirror_dir": "",  # copy the run folder here after each checkpoint (e.g. a Google Drive folder)
}

# The values panel key 'precision' may take: Keras dtype policies (keras.mixed_precision).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

# The values panel key 'resize' may take: how a photo becomes a square (gan_lib.photos.read_image_folder).
RESIZES = ("crop", "stretch")
# The values panel key 'g_objective' may take (losses.generator_loss): the tutorial trains G with labels 1, the
# non-saturating loss; 'saturating' is Goodfellow et al.'s minimax log(1 - D(G(z))), whose gradient vanishes.
OBJECTIVES = ("non_saturating", "saturating")
# The values panel key 'arch' may take, and the defaults each one changes: where the caller did not set
# a key, check_panel takes it from here instead of DEFAULTS (a value the caller set always wins).
# dcgan: the seeds' settings (shared/seeds 003, 004: Radford et al.'s DCGAN) are on by default: one-sided label
# smoothing, real labels 0.9 (seed 003), and Adam at 0.0002 with beta_1 0.5 for both models (the paper's).
# Seed 003 keeps a learning rate per model but names no values, so they stay equal here, like the paper's.
ARCH_DEFAULTS = {
    "tutorial": {},
    "dcgan": {"label_smoothing": 0.1, "d_lr": 0.0002, "g_lr": 0.0002, "beta_1": 0.5},
    "cgan": {},  # the tutorial's settings: Brownlee's cGAN trains with them
    "acgan": {},  # the same
    # cyclegan: Zhu et al.'s translation between two image domains (gan_lib/cyclegan.py; `python -m gan_lib cyclegan`,
    # not `train`): Adam 0.0002, beta_1 0.5 (the paper's); width 32 (the paper's 64, scaled down for 32 x 32 and
    # 64 x 64 images); 8 images of each domain per step (the paper's batch is 1; instance norm does not mind).
    "cyclegan": {"d_lr": 0.0002, "g_lr": 0.0002, "beta_1": 0.5, "width": 32, "n_batch": 8},
}
ARCHS = tuple(ARCH_DEFAULTS)

# DiffAugment's pieces (augment.py), in the order they are applied: what panel key augment may list
POLICIES = ("color", "translation", "cutout")


def check_policy(text):
    """"color,cutout" -> ("color", "cutout"): the names in POLICIES' order; "" -> (). ValueError on a bad or repeated name."""
    words = [w.strip() for w in text.split(",")] if text.strip() else []
    for w in words:
        if w not in POLICIES or words.count(w) > 1:
            why = "repeated " if w in POLICIES else ""
            raise ValueError(f"panel key 'augment' must be a comma-separated list from {', '.join(POLICIES)}, or "
                             f"empty; got {why}{w!r}")
    return tuple(p for p in POLICIES if p in words)


# The values panel key 'loss' may take (losses.py): the tutorial's binary cross-entropy, or a loss on D's raw scores.
LOSSES = ("bce", "hinge", "wgan_gp")
# The named recipes (panel key 'recipe', --recipe): where the caller did not set a key, check_panel takes it from
# here (after ARCH_DEFAULTS). tutorial: the article's settings, nothing changed. modern: what GANs trained with
# since 2018 (SAGAN's hinge loss and two learning rates, spectral norm in D, an EMA of G, DiffAugment), on the
# fused step; its measurement against the tutorial's: docs/recipes.md.
RECIPES = {
    "tutorial": {},
    "modern": {"fast": True, "loss": "hinge", "spectral_norm": True, "ema": 0.999, "augment": "color,translation,cutout",
               "d_lr": 0.0004, "g_lr": 0.0001, "label_smoothing": 0.0},
}
# The modern recipe's keys that change what is trained (RESUME_KEPT keeps them too); they need the fused step.
RECIPE_KEYS = ("loss", "r1_gamma", "spectral_norm", "ema", "augment")

# The keys that define a run: what each step draws, the models' shapes, the arithmetic. A run's panel.json must hold
# them (runs.load_panel), and a resume must keep them (training.py); a CycleGAN run's are CYCLE_RUN_KEYS.
RUN_KEYS = ("dataset", "arch", "width", "n_batch", "latent_dim", "fast", "grid", "precision")

MAX_STEPS = 20  # the most D or G updates per iteration (panel keys d_steps, g_steps)

# The smallest value each number may take; upper bounds are checked by hand below.
MINIMUM = {
    "latent_dim": 1, "n_epochs": 1, "n_batch": 2, "summarization": 1, "batchloss": 0,
    "save_freq": 0, "epochs": 0, "devices": 0, "width": 1, "limit": 0, "image_size": 0, "channels": 0, "seed": 0,
    "label_smoothing": 0.0, "label_noise": 0.0, "d_steps": 1, "g_steps": 1,
    "n_samples": 2, "grid": 1, "eval_every": 0, "checkpoint_every": 0,
    "keep_checkpoints": 1, "best_every": 0, "best_n": 2,
}


def check_panel(panel=None, **overrides):
    """Defaults, updated by `panel` then `overrides`, checked; returns a new dict.

    Keys the caller did not set take their architecture's default (ARCH_DEFAULTS,
    for panel key 'arch') where it has one, else DEFAULTS'. Raises ValueError naming
    the key and what is allowed for unknown keys, wrong types and impossible values.
    """
    merged = dict(DEFAULTS)
    given = {**(panel or {}), **overrides}
    for key, value in given.items():
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown panel key {key!r}.{hint} Known keys: {', '.join(DEFAULTS)}")
        merged[key] = _check_type(key, value)
    bad = [k for k, v in merged.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ValueError(f"panel key {bad[0]!r} must be a finite number, got {merged[bad[0]]!r}")
    if merged["arch"] not in ARCHS:
        raise ValueError(f"panel key 'arch' must be one of {', '.join(ARCHS)}, got {merged['arch']!r}")
    merged.update({k: v for k, v in ARCH_DEFAULTS[merged["arch"]].items() if k not in given})
    _check_recipe(merged, given)
    for key, low in MINIMUM.items():
        if merged[key] < low:
            raise ValueError(f"panel key {key!r} must be at least {low}, got {merged[key]!r}")
    for key in ("d_lr", "g_lr"):
        if not 0 < merged[key] < 1:
            raise ValueError(f"panel key {key!r} must be between 0 and 1, got {merged[key]!r}")
    if not 0 <= merged["beta_1"] < 1:
        raise ValueError(f"panel key 'beta_1' must be in [0, 1), got {merged['beta_1']!r}")
    if merged["label_smoothing"] >= 0.5:
        raise ValueError(f"panel key 'label_smoothing' must be below 0.5 (0.1 is usual), got {merged['label_smoothing']!r}")
    if merged["label_noise"] >= 0.5:
        raise ValueError(f"panel key 'label_noise' must be below 0.5 (0.05 is usual), got {merged['label_noise']!r}")
    for key in ("d_steps", "g_steps"):
        if merged[key] > MAX_STEPS:
            raise ValueError(f"panel key {key!r} must be at most {MAX_STEPS} (each is one more update in every "
                             f"iteration; the fused step compiles them all), got {merged[key]}")
    if merged["seed"] >= 2**32:
        raise ValueError(f"panel key 'seed' must be below 2**32, got {merged['seed']}")
    if merged["n_batch"] % 2 and merged["arch"] != "cyclegan":  # a CycleGAN's batch is n images of each domain
        raise ValueError(f"panel key 'n_batch' must be even (half real, half fake), got {merged['n_batch']}")
    if merged["precision"] not in PRECISIONS:
        raise ValueError(f"panel key 'precision' must be one of {', '.join(PRECISIONS)}, got {merged['precision']!r}")
    if merged["image_size"] and (merged["image_size"] % 8 or merged["image_size"] > 1024):
        raise ValueError(f"panel key 'image_size' must be 0 (the architecture's size) or a multiple of 8 from 8 to "
                         f"1024 (the generator doubles its size three times), got {merged['image_size']}")
    if merged["g_objective"] not in OBJECTIVES:
        raise ValueError(f"panel key 'g_objective' must be one of {', '.join(OBJECTIVES)}, got {merged['g_objective']!r}")
    if merged["resize"] not in RESIZES:
        raise ValueError(f"panel key 'resize' must be one of {', '.join(RESIZES)} (crop: the centred square; "
                         f"stretch: the whole image squeezed), got {merged['resize']!r}")
    if merged["channels"] not in (0, 1, 3):
        raise ValueError(f"panel key 'channels' must be 0 (greyscale only when every image is), 1 (greyscale) or "
                         f"3 (RGB), got {merged['channels']}")
    if not merged["dataset"]:
        raise ValueError("panel key 'dataset' must name a dataset or a path, got an empty string")
    return merged


def _check_recipe(merged, given):
    """Panel key recipe's defaults where the caller set nothing, then the modern recipe's keys: their values, and
    that what they ask for can run (the fused step, one device). Changes merged."""
    if merged["recipe"] not in RECIPES:
        raise ValueError(f"panel key 'recipe' must be one of {', '.join(RECIPES)}, got {merged['recipe']!r}")
    merged.update({k: v for k, v in RECIPES[merged["recipe"]].items() if k not in given})
    if merged["loss"] not in LOSSES:
        raise ValueError(f"panel key 'loss' must be one of {', '.join(LOSSES)}, got {merged['loss']!r}")
    for key in ("gp_weight", "r1_gamma"):
        if merged[key] < 0:
            raise ValueError(f"panel key {key!r} must be 0 or more, got {merged[key]!r}")
    if not 0 <= merged["ema"] < 1:
        raise ValueError(f"panel key 'ema' must be in [0, 1) (0 = off; 0.999 is usual), got {merged['ema']!r}")
    check_policy(merged["augment"])  # its own one-line error
    used = [k for k in RECIPE_KEYS if merged[k] != DEFAULTS[k]]
    if not used:
        return
    # what the user asked for: a key they set, or the recipe that set it (--recipe modern)
    what = f"panel key {used[0]!r}" if used[0] in given else f"recipe {merged['recipe']!r} (its {used[0]!r})"
    if merged["arch"] not in ("tutorial", "dcgan"):
        raise ValueError(f"{what} is for arch tutorial or dcgan, not {merged['arch']!r}")
    if not merged["fast"]:
        raise ValueError(f"{what} needs the fused step (fast=True, the command line's default; not --tutorial-loop): "
                         "the tutorial loop trains with the tutorial's binary cross-entropy only")
    if merged["devices"] != 1:
        raise ValueError(f"{what} runs on one device for now (devices=1), got devices={merged['devices']}")
    if merged["loss"] != "bce" and (merged["label_smoothing"] or merged["label_noise"]):
        raise ValueError(f"panel keys label_smoothing and label_noise change bce's labels; loss {merged['loss']!r} "
                         "has none (set them to 0)")


def _check_type(key, value):
    want = type(DEFAULTS[key])
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not want:
        raise ValueError(f"panel key {key!r} must be {want.__name__}, got {type(value).__name__} {value!r}")
    return value


def parse_setting(text, extra=None):
    """'KEY=VALUE' from the command line -> (key, value) typed like the key's default.

    KEY is a panel key (DEFAULTS) or one of `extra`, a dict of more keys and their defaults (a CycleGAN's
    CYCLE_DEFAULTS, a toy's model keys). ValueError for a malformed setting, an unknown key (with the
    nearest known one) or a value of the wrong kind.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set wants KEY=VALUE, got {text!r}")
    defaults = {**DEFAULTS, **(extra or {})}
    if key not in defaults:
        close = difflib.get_close_matches(key, defaults, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown panel key {key!r}.{hint} Known keys: {', '.join(defaults)}")
    want = type(defaults[key])
    try:
        if want is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return key, raw.lower() in ("true", "1", "yes")
        return key, want(raw)
    except ValueError:
        kind = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(want.__name__, "text")
        raise ValueError(f"--set {key}= wants {kind}, got {raw!r}") from None


def panel_json(panel):
    """The panel as pretty JSON text, for panel.json in the run folder."""
    return json.dumps(panel, indent=2, sort_keys=True) + "\n"


# A CycleGAN's panel (python -m gan_lib cyclegan, cycle_training.py): the keys only a CycleGAN has, and the
# shared panel's keys it uses.
CYCLE_DEFAULTS = {
    "dataset_b": "",  # domain B (panel key dataset is domain A): a folder of images, or a shapes-* name
    "cycle_weight": 10.0,  # lambda, the cycle-consistency loss's weight (the paper's 10)
    "identity_weight": 5.0,  # the identity loss's weight: 0.5 * lambda, as in the paper; 0 = off
    "pool_size": 50,  # fakes kept for D (the paper's 50); 0 = D sees only the newest; else at least n_batch
    "res_blocks": 3,  # residual blocks in each generator (the paper: 6 at 128 x 128, 9 at 256 x 256)
}


CYCLE_SHARED_KEYS = ("dataset", "limit", "image_size", "resize", "channels", "seed", "deterministic", "arch", "width",
               "n_epochs", "n_batch", "d_lr", "g_lr", "beta_1", "grid", "save_freq", "batchloss",
               "checkpoint_every", "keep_checkpoints", "mirror_dir", "load_weights", "epochs")


CYCLE_KEYS = CYCLE_SHARED_KEYS + tuple(CYCLE_DEFAULTS)
CYCLE_RUN_KEYS = ("dataset", "dataset_b", "limit", "image_size", "resize", "channels", "width", "res_blocks", "n_batch",
                  "pool_size", "grid")


# The offline task: A = warm shapes, B = cool ones (datasets.make_shapes). CycleGAN changes how things look and keeps
# where they are, so a colour change with the shape kept is the translation it can do (the paper's own failures are
# changes of geometry, such as dog to cat), and gan_lib's shapes classifier can check both halves of it.
CYCLE_TASKS = {"shapes": {"dataset": "shapes-warm", "dataset_b": "shapes-cool", "limit": 2000, "n_epochs": 3}}


def check_cycle_panel(panel=None, **overrides):
    """The shared panel's checks for the keys a CycleGAN uses (arch 'cyclegan' defaults), and CYCLE_DEFAULTS'.

    Returns a new dict of exactly CYCLE_KEYS; ValueError for any other key, a wrong type or an impossible value.
    """
    given = {**(panel or {}), **overrides}
    if given.get("arch", "cyclegan") != "cyclegan":
        raise ValueError(f"a CycleGAN panel has arch 'cyclegan', got {given['arch']!r}")
    for key in given:
        if key not in CYCLE_KEYS:
            raise ValueError(f"panel key {key!r} does not apply to a CycleGAN; its keys: {', '.join(CYCLE_KEYS)}")
    cycle = {**CYCLE_DEFAULTS, **{k: v for k, v in given.items() if k in CYCLE_DEFAULTS}}
    merged = check_panel({k: v for k, v in given.items() if k in CYCLE_SHARED_KEYS}, arch="cyclegan")
    for key, value in cycle.items():
        want = type(CYCLE_DEFAULTS[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = cycle[key] = float(value)
        if type(value) is not want:
            raise ValueError(f"panel key {key!r} must be {want.__name__}, got {type(value).__name__} {value!r}")
    for key in ("cycle_weight", "identity_weight", "pool_size", "res_blocks"):
        if cycle[key] < 0 or not math.isfinite(cycle[key]):
            raise ValueError(f"panel key {key!r} must be a number of at least 0, got {cycle[key]!r}")
    if cycle["pool_size"] and cycle["pool_size"] < merged["n_batch"]:
        raise ValueError(f"panel key 'pool_size' is {cycle['pool_size']} but n_batch is {merged['n_batch']}: the pool "
                         "swaps a whole batch into distinct slots, so use a pool_size of at least n_batch, or 0 for none")
    if not cycle["dataset_b"]:
        raise ValueError("panel key 'dataset_b' (domain B) is empty: give two folders, DIR_A DIR_B, or --task shapes")
    return {**{k: merged[k] for k in CYCLE_SHARED_KEYS}, **cycle}
