"""gan_lib: the classic Keras CIFAR-10 GAN tutorial, correct on Keras 3, on any backend.

The tutorial's names are all here: define_discriminator, define_generator,
define_gan, load_real_samples, generate_real_samples, generate_latent_points,
generate_fake_samples, save_plot, summarize_performance, train.
"""

import os

from .backend import quiet_fd2

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # later C++ log lines too; a value the user set wins
with quiet_fd2():
    import keras  # noqa: F401  (imports the backend, TensorFlow by default)

from .backend import describe_device, distribute, has_gpu, set_seed
from .cgan import define_cgan_discriminator, define_cgan_generator
from .checkpoint import list_checkpoints, mirror_run, restore_checkpoint
from .cycle_training import check_cycle_panel, load_domains, train_cycle, train_cyclegan
from .cyclegan import CycleGAN, define_cyclegan_discriminator, define_cyclegan_generator
from .data import (
    CIFAR10_CLASSES,
    SHAPES_CLASSES,
    DownloadError,
    check_dataset,
    check_images,
    check_labels,
    class_grid,
    generate_fake_samples,
    generate_latent_points,
    generate_real_samples,
    load_images,
    load_labelled_samples,
    load_real_samples,
    make_shapes,
    n_classes_of,
    scale_images,
)
from .dcgan import define_dcgan_discriminator, define_dcgan_generator
from .diagnosis import Monitor, diagnose
from .evaluate import d_scores, summarize_performance
from .metrics import feature_stats, fid, fid_from_features, frechet_distance, inception_features, kid, kid_score
from .models import (
    CombinedGAN,
    ConditionalGAN,
    apply_panel_optimizers,
    build_models,
    define_discriminator,
    define_gan,
    define_generator,
    saturating_loss,
    set_precision,
)
from .modes import (
    classifier,
    classifier_accuracy,
    conditional_accuracy,
    memorisation_score,
    mode_count,
    nearest_training,
    plot_nearest,
)
from .panel import DEFAULTS, check_panel
from .plots import image_grid, make_gif, plot_history, save_plot, show_images
from .runs import HISTORY_COLUMNS, default_outputs, load_panel, new_run_dir, read_history
from .training import TrainingDiverged, train, train_step

__version__ = "0.1.0"
