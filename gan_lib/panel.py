"""The control panel: one plain dict of settings, checked in one place.

The tutorial's knobs come first; the rest are gan_lib's additions. Every key can
be set from the command line with `--set KEY=VALUE`.
"""

import difflib
import json

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
    # surviving a disconnect
    "checkpoint_every": 100,  # full training state every N batches (and at each epoch end); 0 = epoch ends only
    "keep_checkpoints": 2,  # how many checkpoints to keep
    "mirror_dir": "",  # copy the run folder here after each checkpoint (e.g. a Google Drive folder)
}

# The values panel key 'precision' may take: Keras dtype policies (keras.mixed_precision).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

# The values panel key 'resize' may take: how a photo becomes a square (gan_lib.data.read_image_folder).
RESIZES = ("crop", "stretch")
# The values panel key 'g_objective' may take (fused.generator_loss): the tutorial trains G with labels 1, the
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
    "cgan": {},  # the tutorial's settings: the Keras book's cGAN trains with them
    "acgan": {},  # the same
    # cyclegan: Zhu et al.'s translation between two image domains (gan_lib/cyclegan.py; `python -m gan_lib cyclegan`,
    # not `train`): Adam 0.0002, beta_1 0.5 (the paper's); width 32 (the paper's 64, scaled down for 32 x 32 and
    # 64 x 64 images); 8 images of each domain per step (the paper's batch is 1; instance norm does not mind).
    "cyclegan": {"d_lr": 0.0002, "g_lr": 0.0002, "beta_1": 0.5, "width": 32, "n_batch": 8},
}
ARCHS = tuple(ARCH_DEFAULTS)

MAX_STEPS = 20  # the most D or G updates per iteration (panel keys d_steps, g_steps)

# The smallest value each number may take; upper bounds are checked by hand below.
MINIMUM = {
    "latent_dim": 1, "n_epochs": 1, "n_batch": 2, "summarization": 1, "batchloss": 0,
    "save_freq": 0, "epochs": 0, "devices": 0, "width": 1, "limit": 0, "image_size": 0, "channels": 0, "seed": 0,
    "label_smoothing": 0.0, "label_noise": 0.0, "d_steps": 1, "g_steps": 1,
    "n_samples": 2, "grid": 1, "eval_every": 0, "checkpoint_every": 0,
    "keep_checkpoints": 1,
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
    if merged["arch"] not in ARCHS:
        raise ValueError(f"panel key 'arch' must be one of {', '.join(ARCHS)}, got {merged['arch']!r}")
    merged.update({k: v for k, v in ARCH_DEFAULTS[merged["arch"]].items() if k not in given})
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
    if merged["n_batch"] % 2:
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


def _check_type(key, value):
    want = type(DEFAULTS[key])
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not want:
        raise ValueError(f"panel key {key!r} must be {want.__name__}, got {type(value).__name__} {value!r}")
    return value


def parse_setting(text):
    """'KEY=VALUE' from the command line -> (key, value) typed like the default."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set wants KEY=VALUE, got {text!r}")
    if key not in DEFAULTS:
        check_panel({key: None})  # raises the unknown-key error with a suggestion
    want = type(DEFAULTS[key])
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
