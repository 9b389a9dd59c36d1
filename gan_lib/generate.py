"""Drawing with a trained generator: load a .keras file or a run's generator.keras, and save a grid of new images."""

import os

import keras
import numpy as np

from .batches import class_grid, first_input_shape, n_classes_of
from .data import generate_latent_points, sample_images
from .plots import save_grid
from .runs import is_run, load_panel, run_arch

EMA_FILE = "generator_ema.keras"  # the EMA of G's weights (recipe.EMA), written beside generator.keras
# which generator of a run folder: the file of each choice (auto: the EMA where the run kept one, else the latest)
GENERATORS = {"latest": "generator.keras", "ema": EMA_FILE, "best": "generator_best.keras"}


def load_generator(path, which="auto"):
    """A generator .keras file, or a run folder's generator, loaded in Keras safe mode -> (model, its path).

    which (a run folder): latest (generator.keras), ema (generator_ema.keras, the EMA of G's weights: panel key
    ema), best (generator_best.keras, the best scored: panel key best_every), or auto: ema where the run kept
    one, else latest."""
    if which not in ("auto", *GENERATORS):
        raise ValueError(f"--generator must be one of auto, {', '.join(GENERATORS)}, got {which!r}")
    if os.path.isdir(path) and run_arch(path) == "cyclegan":
        raise ValueError(f"{path!r} is a CycleGAN run: its generators translate images (generator_ab.keras: A -> B, "
                         "generator_ba.keras: B -> A) rather than draw new ones; load one with "
                         "keras.saving.load_model(path, safe_mode=True), or continue the run with "
                         f"python -m gan_lib cyclegan --resume {path}")
    if os.path.isdir(path) and which in ("ema", "best"):
        model_path = os.path.join(path, GENERATORS[which])
        if not os.path.exists(model_path):
            key = {"ema": "ema (e.g. --set ema=0.999)", "best": "best_every (e.g. --set best_every=1000)"}[which]
            raise ValueError(f"{path!r} holds no {GENERATORS[which]}: the run kept none (panel key {key})")
    elif os.path.isdir(path):
        model_path = os.path.join(path, EMA_FILE if which == "auto" else "generator.keras")
        if not os.path.exists(model_path):
            model_path = os.path.join(path, "generator.keras")
        if not os.path.exists(model_path):
            if is_run(path):
                load_panel(path)  # a damaged panel.json (it may have named another kind of run) says so first
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


def check_image_generator(g_model, model_path):
    """ValueError unless g_model maps latent points (N, latent_dim) (and a class, if conditional) to images
    (N, H, W, 1 or 3); returns latent_dim."""
    shape_in, shape_out = (None, *first_input_shape(g_model)), tuple(g_model.output_shape)
    if len(shape_in) != 2 or len(shape_out) != 4 or shape_out[-1] not in (1, 3):
        raise ValueError(f"{model_path} is not an image generator: it maps {shape_in} to {shape_out}, "
                         "not latent points (N, latent_dim) to images (N, H, W, 1 or 3)")
    return shape_in[-1]


def draw_grid(model, n=10, out=None, seed=None, label=None, which="auto"):
    """What `python -m gan_lib generate` does: an n x n grid of new images from a generator (a .keras file or a
    run folder), saved as a PNG (default: generated.png beside the model). A conditional generator draws a row of
    n per class (the same latent point down each column), or n x n of class `label`. Returns (path, a few words
    on what was drawn, the model's path)."""
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    if seed is not None and not 0 <= seed < 2**32:
        raise ValueError(f"--seed must be between 0 and 2**32 - 1, got {seed}")
    if out and not out.lower().endswith((".png", ".jpg", ".jpeg")):
        raise ValueError(f"--out must name a .png or .jpg file, got {out!r}")
    g_model, model_path = load_generator(model, which)
    k = n_classes_of(g_model)  # a conditional generator: [z, class] -> image
    latent_dim = check_image_generator(g_model, model_path)
    if label is not None and not k:
        raise ValueError(f"--label {label}: {model_path} is not a conditional generator (it takes no class); "
                         "train one with --arch cgan or acgan, or leave out --label")
    if label is not None and not 0 <= label < k:
        raise ValueError(f"--label must be a class of this generator, 0 to {k - 1}, got {label}")
    rng, rows = np.random.default_rng(seed), None
    if k and label is None:  # a row per class, the same latent point down each column
        x = keras.ops.convert_to_numpy(g_model(class_grid(generate_latent_points(latent_dim, n, rng), k), training=False))
        rows, what = k, f"{k}x{n} images, a row per class,"
    else:  # G on SAMPLE_BATCH images at a time: memory stays flat in n
        x, _ = sample_images(g_model, latent_dim, n * n, rng, classes=label)
        what = f"{n}x{n} images" + (f" of class {label}" if k else "")
    out = out or os.path.join(os.path.dirname(model_path), "generated.png")
    save_grid(x, out, n, rows)
    return out, what, model_path
