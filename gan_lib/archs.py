"""From the panel to compiled models: the one place that knows the architecture names.

panel key 'arch' -> builders:
- tutorial: models.define_discriminator, models.define_generator (the CIFAR-10 tutorial's);
- dcgan: dcgan.define_dcgan_discriminator, dcgan.define_dcgan_generator (Radford et al.), sized by 'width';
- cgan: cgan.define_cgan_discriminator, cgan.define_cgan_generator (Mirza and Osindero; a label per image);
- acgan: cgan.define_acgan_discriminator and the cGAN's G (Odena et al.);
- cyclegan: four models and two domains, built by cycle_training.build_cyclegan, not here.
Every D is compiled with the panel's d_lr and beta_1, the combined model (models.define_gan) with
g_lr and the loss of g_objective (losses.gan_loss). apply_panel_optimizers keeps a run's optimizers
and its panel in agreement.
"""

import keras

from . import devices
from .cgan import define_acgan_discriminator, define_cgan_discriminator, define_cgan_generator
from .data import CONDITIONAL_ARCHS
from .dcgan import define_dcgan_discriminator, define_dcgan_generator
from .losses import gan_loss
from .models import define_discriminator, define_gan, define_generator
from .panel import check_panel
from .recipe import modern_discriminator, needs_scores

# arch 'cyclegan' has four models and two datasets: it has its own entry points
CYCLEGAN_ELSEWHERE = ("arch 'cyclegan' translates between two image domains with four models: train it with "
                      "`python -m gan_lib cyclegan DIR_A DIR_B` (or `--task shapes`), or gan_lib.train_cyclegan in Python")


def build_models(panel, in_shape, n_classes=10):
    """(g_model, d_model, gan_model) of the panel's arch for images in_shape (H, W, C), compiled.

    arch 'tutorial': define_discriminator, define_generator (width is not used); arch
    'dcgan': gan_lib.dcgan's, with the panel's width; arch 'cgan': gan_lib.cgan's conditional
    models for n_classes classes (the labelled data's: datasets.n_classes); arch 'acgan': the same G
    with the ACGAN's D, which also classifies (acgan_loss). All are compiled with the
    panel's d_lr, g_lr and beta_1, and joined by define_gan. The command line calls
    this; call it in a notebook to get the same models:
    `g_model, d_model, gan_model = build_models(panel, dataset.shape[1:])`.
    Build under the panel's precision (set_precision) and devices (distribute).
    """
    panel = check_panel(panel)
    in_shape = tuple(in_shape)
    if panel["arch"] == "cyclegan":
        raise ValueError(CYCLEGAN_ELSEWHERE)
    if panel["arch"] == "dcgan":
        d_model = define_dcgan_discriminator(in_shape, panel["width"], lr=panel["d_lr"], beta_1=panel["beta_1"])
        g_model = define_dcgan_generator(panel["latent_dim"], in_shape, panel["width"])
    elif panel["arch"] in CONDITIONAL_ARCHS:
        define_d = define_acgan_discriminator if panel["arch"] == "acgan" else define_cgan_discriminator
        d_model = define_d(in_shape, n_classes, lr=panel["d_lr"], beta_1=panel["beta_1"])
        g_model = define_cgan_generator(panel["latent_dim"], n_classes, in_shape)  # the same G for both
    else:
        d_model = define_discriminator(in_shape, lr=panel["d_lr"], beta_1=panel["beta_1"])
        g_model = define_generator(panel["latent_dim"], out_shape=in_shape)
    if panel["spectral_norm"] or needs_scores(panel):  # the modern recipe's D: spectral norm, a head for raw scores
        d_model = modern_discriminator(d_model, panel)
    return g_model, d_model, define_gan(g_model, d_model, lr=panel["g_lr"], beta_1=panel["beta_1"], loss=gan_loss(panel))


def apply_panel_optimizers(d_model, gan_model, panel, explicit=()):
    """Make the compiled optimizers train with the panel's d_lr, g_lr and beta_1.

    A value the caller set (its key in `explicit`) is applied to the optimizer,
    from the next step on; a value the caller did not set (a default, or a resumed
    run's panel.json) must agree with how the model was compiled (or, when
    resuming, with the optimizer the checkpoint restored), otherwise ValueError
    naming both, so a run's panel.json never misstates how it trained. Returns
    (key, old value, new value) for each value it changed.
    """
    changed = []
    for model, lr_key, who in ((d_model, "d_lr", "discriminator"), (gan_model, "g_lr", "combined model (G's optimizer)")):
        opt = model.optimizer
        if opt is None:
            raise ValueError(f"the {who} is not compiled; build it with gan_lib's define_* functions or compile it")
        opt = getattr(opt, "inner_optimizer", opt)  # mixed_float16: a LossScaleOptimizer wraps the Adam
        settings = [(lr_key, "learning rate", "learning_rate"), ("beta_1", "beta_1", "beta_1")]
        for key, name, attr in settings:
            if not hasattr(opt, attr):
                if key in explicit:
                    raise ValueError(f"panel key {key!r} is set but the {who}'s optimizer "
                                     f"({type(opt).__name__}) has no {name}; compile it with Adam")
                continue
            try:
                current = float(keras.ops.convert_to_numpy(getattr(opt, attr)))
            except TypeError:
                raise ValueError(f"the {who}'s optimizer uses a learning-rate schedule; gan_lib's panel sets "
                                 "a constant rate (compile with a float learning_rate)") from None
            wanted = panel[key]
            if abs(current - wanted) <= 1e-6 * max(abs(wanted), 1e-12):  # float32 round-off
                continue
            if key not in explicit:
                raise ValueError(
                    f"the {who} trains with {name} {current:g} but panel key {key!r} is {wanted:g}, a value you did "
                    "not set (a default, or the run's panel.json); "
                    f"pass panel={{'{key}': {current:g}}} to keep {current:g}, or set {key} to the value you want"
                )
            if attr == "learning_rate":
                opt.learning_rate = wanted  # a variable: traced train functions read its new value
            else:
                setattr(opt, attr, wanted)
                model.train_function = None  # a Python float is baked into the traced step: trace it again
            changed.append((key, current, wanted))
    return changed


def build_placed(panel, in_shape, n_classes=10):
    """build_models under the panel's precision (devices.set_precision) and devices (devices.distribute), as
    train_from_panel and the command line build them; the global dtype policy is set back afterwards."""
    before = keras.mixed_precision.global_policy().name
    devices.set_precision(panel["precision"])
    try:  # the models compute in the panel's precision; their variables live on every device they train on
        with devices.distribute(panel["devices"]):
            return build_models(panel, in_shape, n_classes)
    finally:
        keras.mixed_precision.set_global_policy(before)
