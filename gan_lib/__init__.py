"""gan_lib: the classic Keras CIFAR-10 GAN tutorial, correct on Keras 3, on any backend.

The tutorial's ten names come first in __all__, then what a user reaches for next: the other
architectures' builders, the control panel, the entry points the command line calls, the
measurements and the pictures. Everything else lives in the submodules (gan_lib.models,
gan_lib.fused, ...; docs/house.md maps them), importable but not part of this face.
"""

import os as _os
import sys as _sys

from .backend import backend_error as _backend_error
from .backend import quiet_fd2 as _quiet_fd2
from .backend import tensorflow_quirks as _tensorflow_quirks

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # later C++ log lines too; a value the user set wins
try:
    with _quiet_fd2():
        import keras as _keras  # noqa: F401  (imports the backend, TensorFlow by default, with its notices hidden)
except (ImportError, ValueError) as _error:  # KERAS_BACKEND names no backend, or one that is not installed
    _message = _backend_error(_error)
    if _sys.argv[:1] == ["-m"]:  # python -m gan_lib ...: one line, not a traceback, whatever the command
        raise SystemExit(f"error: {_message}") from None
    raise ImportError(_message) from None
from .archs import build_models
from .backend import set_seed
from .cgan import define_acgan_discriminator, define_cgan_discriminator, define_cgan_generator
from .checkpoint import list_checkpoints, restore_checkpoint
from .cycle_training import train_cyclegan
from .cyclegan import CycleGAN, define_cyclegan_discriminator, define_cyclegan_generator
from .data import (
    generate_fake_samples,
    generate_latent_points,
    generate_real_samples,
    load_images,
    load_labelled_samples,
    load_real_samples,
)
from .datasets import CIFAR10_CLASSES, SHAPES_CLASSES, DownloadError, check_images, make_shapes, scale_images
from .dcgan import define_dcgan_discriminator, define_dcgan_generator
from .devices import describe_device, distribute, has_gpu, set_precision
from .diagnosis import diagnose
from .evaluate import d_scores, evaluate_run, summarize_performance
from .generate import draw_grid, load_generator
from .latent import blend_grid, interpolate_points, truncated_latent_points
from .losses import saturating_loss
from .memorisation import memorisation_score, nearest_training, plot_nearest
from .metrics import fid, fid_from_features, inception_features, kid, kid_score
from .models import define_discriminator, define_gan, define_generator
from .modes import classifier, classifier_accuracy, conditional_accuracy, mode_count
from .panel import DEFAULTS, check_panel
from .plots import image_grid, make_gif, plot_history, save_plot, show_images
from .runs import TrainingDiverged, default_outputs, load_panel, new_run_dir, read_history
from .toy_training import run_toy, toy_settings, train_named_toy
from .training import train, train_from_panel, train_step

_tensorflow_quirks()  # before any model is traced (backend.tensorflow_quirks)

__version__ = "0.1.0"

__all__ = [
    # the tutorial's names
    "define_discriminator", "define_generator", "define_gan", "load_real_samples", "generate_real_samples",
    "generate_latent_points", "generate_fake_samples", "save_plot", "summarize_performance", "train",
    # the models of every arch, and the panel that picks them
    "build_models", "define_dcgan_discriminator", "define_dcgan_generator", "define_cgan_discriminator",
    "define_cgan_generator", "define_acgan_discriminator", "CycleGAN", "define_cyclegan_generator",
    "define_cyclegan_discriminator", "saturating_loss", "DEFAULTS", "check_panel",
    # data
    "load_images", "load_labelled_samples", "make_shapes", "scale_images", "check_images", "SHAPES_CLASSES",
    "CIFAR10_CLASSES", "DownloadError",
    # where and how it runs
    "set_seed", "set_precision", "distribute", "describe_device", "has_gpu",
    # training: the command line's entry points, the loop's step, runs and checkpoints
    "train_from_panel", "train_step", "train_cyclegan", "run_toy", "toy_settings", "train_named_toy",
    "TrainingDiverged", "new_run_dir", "default_outputs", "load_panel", "read_history", "list_checkpoints",
    "restore_checkpoint",
    # using and measuring a generator
    "load_generator", "draw_grid", "interpolate_points", "blend_grid", "truncated_latent_points", "d_scores",
    "diagnose", "evaluate_run", "mode_count", "conditional_accuracy", "classifier", "classifier_accuracy",
    "memorisation_score", "nearest_training", "plot_nearest", "fid", "kid_score", "kid", "fid_from_features",
    "inception_features",
    # pictures
    "image_grid", "show_images", "plot_history", "make_gif",
]
