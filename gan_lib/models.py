"""The tutorial's three models: discriminator, generator and the combined GAN.

Keras 3 reads `trainable` when a model's train function is first traced, not when
it is compiled, so the classic recipe (`d_model.trainable = False` before compiling
the combined model) leaves D frozen for its own train_on_batch too, in either call
order (TF 2.21 / Keras 3.15; notebook 05 shows it). gan_lib never
flips that flag: the combined model reports only G's weights as trainable, so
each model's train step sees the weights it should, in any call order, on every
backend.
"""

import os

import keras
from keras import layers

from .backend import has_gpu
from .panel import PRECISIONS, check_panel


def set_precision(name):
    """Make the models built from now on compute in `name`: float32, mixed_bfloat16 or mixed_float16.

    Sets Keras's global dtype policy (keras.mixed_precision): under the mixed ones
    layers compute in 16 bits while weights (and optimizer slots) stay float32.
    Call it before define_discriminator, define_generator and define_gan, with the
    value of panel key 'precision'; call set_precision("float32") to go back.
    """
    check_precision(name)
    keras.mixed_precision.set_global_policy(name)


def check_precision(name):
    """ValueError for an unknown name, and for mixed_float16 without a GPU."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "mixed_float16" and not has_gpu():
        raise ValueError("mixed_float16 needs a GPU (float16 is slow or unsupported on a CPU, and loss scaling "
                         "is for GPUs); on a CPU use mixed_bfloat16 or float32")


def define_discriminator(in_shape=(32, 32, 3), lr=0.0002, beta_1=0.5):
    """Image (H, W, C) in [-1, 1] -> probability that it is real, shape (1,).

    522,497 parameters for (32, 32, 3). Compiled with binary cross-entropy and Adam.
    """
    model = keras.Sequential(
        [
            keras.Input(shape=in_shape),
            layers.Conv2D(64, (3, 3), padding="same"),  # (32, 32, 64)
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, (3, 3), strides=(2, 2), padding="same"),  # (16, 16, 128)
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, (3, 3), strides=(2, 2), padding="same"),  # (8, 8, 128)
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(256, (3, 3), strides=(2, 2), padding="same"),  # (4, 4, 256)
            layers.LeakyReLU(negative_slope=0.2),
            layers.Flatten(),  # (4096,)
            layers.Dropout(0.4),
            layers.Dense(1, activation="sigmoid", dtype="float32"),  # float32 even under mixed precision
        ],
        name="discriminator",
    )
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1)
    model.compile(loss="binary_crossentropy", optimizer=opt, metrics=["accuracy"])
    return model


def define_generator(latent_dim, out_shape=(32, 32, 3)):
    """Latent point (latent_dim,) -> image out_shape in [-1, 1] (tanh).

    Starts from 256 feature maps at 1/8 of the output size and doubles it three
    times. 1,466,115 parameters for latent_dim=100 and (32, 32, 3).
    """
    h, w, c = out_shape
    if h % 8 or w % 8:
        raise ValueError(f"generator output height and width must be multiples of 8, got {out_shape}")
    h0, w0 = h // 8, w // 8
    # The Dense layer dominates: latent_dim * 256 * h0 * w0 weights. Training holds each
    # weight four times (value, gradient, two Adam moments) in float32: refuse what cannot fit.
    check_memory(latent_dim * 256 * h0 * w0, "latent_dim", latent_dim)
    model = keras.Sequential(
        [
            keras.Input(shape=(latent_dim,)),
            layers.Dense(256 * h0 * w0),  # foundation for 256 maps of (h/8, w/8)
            layers.LeakyReLU(negative_slope=0.2),
            layers.Reshape((h0, w0, 256)),  # (4, 4, 256)
            layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),  # (8, 8, 128)
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),  # (16, 16, 128)
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),  # (32, 32, 128)
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(c, (3, 3), activation="tanh", padding="same", dtype="float32"),  # (32, 32, 3), float32
        ],
        name="generator",
    )
    return model


def check_memory(n_weights, key, value):
    """ValueError naming the setting when n_weights float32 weights, trained with Adam, need
    more memory than this machine has in all (an estimate; the exact need also depends on the batch)."""
    need = 16 * n_weights  # bytes: weight, gradient and two Adam moments, 4 bytes each
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: no estimate
        return
    if need > have:
        raise ValueError(
            f"{key}={value} makes a model of about {n_weights / 1e9:.1f} billion weights, which needs about "
            f"{need / 2**30:.0f} GiB to train, but this machine has {have / 2**30:.0f} GiB; lower {key}"
        )


class CombinedGAN(keras.Sequential):
    """G then D, trained as one model, where only G's weights are trainable.

    The four properties below are what every Keras 3 trainer (TensorFlow, JAX,
    torch) reads to decide what to differentiate and update; D's own weights stay
    trainable for D's own train_on_batch. D is not frozen, so in G's step it runs in
    training mode: a BatchNorm in D (the DCGAN's) normalizes G's batch with that
    batch's statistics and updates its moving statistics, as PyTorch's DCGAN does.
    """

    def __init__(self, g_model, d_model, **kwargs):
        super().__init__([g_model, d_model], **kwargs)
        self.g_model = g_model
        self.d_model = d_model

    def _g_ids(self):
        return {id(v) for v in self.g_model.trainable_variables}

    @property
    def trainable_variables(self):
        return list(self.g_model.trainable_variables)

    @property
    def trainable_weights(self):
        return list(self.g_model.trainable_weights)

    @property
    def non_trainable_variables(self):
        ids = self._g_ids()
        return [v for v in self.variables if id(v) not in ids]

    @property
    def non_trainable_weights(self):
        ids = self._g_ids()
        return [v for v in self.weights if id(v) not in ids]


def first_input_shape(model):
    """A model's input shape without the batch axis; a conditional model's first (latent points, images)."""
    shape = model.input_shape
    return tuple((shape[0] if isinstance(shape, list) else shape)[1:])


def real_part(out):
    """D's probability that each image is real, (n, 1): D's output, or an ACGAN D's first column.

    An ACGAN's D (cgan.define_acgan_discriminator) outputs (n, 2): [P(real), q], q the
    probability its class head gives the class asked for. Other D's output (n, 1), returned as it is.
    """
    return out if out.shape[-1] == 1 else out[:, :1]


def class_loss(out):
    """An ACGAN D's classification loss per image, -log q, (n,): the sparse categorical cross-entropy of the class
    asked for (q: its output's second column, see real_part). 0.0 for a D with one output column."""
    if out.shape[-1] == 1:
        return 0.0
    return -keras.ops.log(keras.ops.clip(out[:, 1], 1e-7, 1.0))  # clipped as Keras clips probabilities


@keras.saving.register_keras_serializable(package="gan_lib")
def acgan_loss(y_true, y_pred):
    """An ACGAN's loss per image (Odena et al. 2017), D's and G's: binary cross-entropy of P(real) against
    y_true (1 real, 0 fake; G trains with 1) plus the cross-entropy of the class asked for (class_loss)."""
    return keras.losses.binary_crossentropy(y_true, real_part(y_pred)) + class_loss(y_pred)


@keras.saving.register_keras_serializable(package="gan_lib")
def real_accuracy(y_true, y_pred):
    """D's accuracy at real vs fake, P(real) > 0.5 against y_true > 0.5: an ACGAN D's metric (its class
    column left out)."""
    right = (real_part(y_pred) > 0.5) == (keras.ops.convert_to_tensor(y_true) > 0.5)
    return keras.ops.mean(keras.ops.cast(right, "float32"), axis=-1)


def saturating_loss(y_true, y_pred):
    """log(1 - D(G(z))) per image: G's loss in the original minimax game (y_true is not used).

    Minimised, it pushes D(G(z)) up like the tutorial's loss, but its gradient vanishes
    when D is sure G's images are fake. Written as minus the cross-entropy against label 0
    so Keras computes it stably (from D's logits on TensorFlow). An ACGAN's (D outputs
    [P(real), q]) adds the class's cross-entropy, as acgan_loss does.
    """
    p = real_part(y_pred)
    return -keras.losses.binary_crossentropy(keras.ops.zeros_like(p), p) + class_loss(y_pred)


class ConditionalGAN(keras.Model):
    """The conditional GAN's combined model (cgan.py): [z, label] -> D(G(z, label), label), training G only.

    The label goes to both: G draws an image of that class, D judges it as one. The same
    four properties as CombinedGAN make only G's weights trainable here, while D keeps
    learning through its own train_on_batch.
    """

    def __init__(self, g_model, d_model, **kwargs):
        z = keras.Input(shape=tuple(g_model.inputs[0].shape[1:]), name="latent")  # (latent_dim,)
        label = keras.Input(shape=(), dtype="int32", name="label")  # (n,) class indices
        super().__init__([z, label], d_model([g_model([z, label]), label]), **kwargs)
        self.g_model = g_model
        self.d_model = d_model

    _g_ids = CombinedGAN._g_ids
    trainable_variables = CombinedGAN.trainable_variables
    trainable_weights = CombinedGAN.trainable_weights
    non_trainable_variables = CombinedGAN.non_trainable_variables
    non_trainable_weights = CombinedGAN.non_trainable_weights


def define_gan(g_model, d_model, lr=0.0002, beta_1=0.5, loss="binary_crossentropy"):
    """Combined model: latent point -> D(G(z)); training it updates G only.

    Compiled with binary cross-entropy and Adam: trained with labels 1, that is G's
    non-saturating loss; loss=saturating_loss gives the minimax game's original one
    (panel key g_objective). d_model keeps learning through its own train_on_batch,
    whichever model is trained first. A conditional G (it takes [z, label]: cgan.py)
    gets ConditionalGAN, [z, label] -> D(G(z, label), label).
    """
    if len(g_model.inputs) == 2:
        model = ConditionalGAN(g_model, d_model, name="gan")
    else:
        model = CombinedGAN(g_model, d_model, name="gan")
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1)
    model.compile(loss=loss, optimizer=opt)
    return model


def objective_of(gan_model):
    """The g_objective a combined model was compiled for: 'saturating' or 'non_saturating'."""
    return "saturating" if gan_model.loss is saturating_loss else "non_saturating"


# arch 'cyclegan' has four models and two datasets: it has its own entry points
CYCLEGAN_ELSEWHERE = ("arch 'cyclegan' translates between two image domains with four models: train it with "
                      "`python -m gan_lib cyclegan DIR_A DIR_B` (or `--task shapes`), or gan_lib.train_cyclegan in Python")


def build_models(panel, in_shape, n_classes=10):
    """(g_model, d_model, gan_model) of the panel's arch for images in_shape (H, W, C), compiled.

    arch 'tutorial': define_discriminator, define_generator (width is not used); arch
    'dcgan': gan_lib.dcgan's, with the panel's width; arch 'cgan': gan_lib.cgan's conditional
    models for n_classes classes (the labelled data's: data.n_classes); arch 'acgan': the same G
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
        from .dcgan import define_dcgan_discriminator, define_dcgan_generator  # dcgan.py imports this module

        d_model = define_dcgan_discriminator(in_shape, panel["width"], lr=panel["d_lr"], beta_1=panel["beta_1"])
        g_model = define_dcgan_generator(panel["latent_dim"], in_shape, panel["width"])
    elif panel["arch"] in ("cgan", "acgan"):
        from .cgan import define_acgan_discriminator, define_cgan_discriminator, define_cgan_generator  # imports us

        define_d = define_acgan_discriminator if panel["arch"] == "acgan" else define_cgan_discriminator
        d_model = define_d(in_shape, n_classes, lr=panel["d_lr"], beta_1=panel["beta_1"])
        g_model = define_cgan_generator(panel["latent_dim"], n_classes, in_shape)  # the same G for both
    else:
        d_model = define_discriminator(in_shape, lr=panel["d_lr"], beta_1=panel["beta_1"])
        g_model = define_generator(panel["latent_dim"], out_shape=in_shape)
    return g_model, d_model, define_gan(g_model, d_model, lr=panel["g_lr"], beta_1=panel["beta_1"], loss=gan_loss(panel))


def gan_loss(panel):
    """The combined model's loss for panel keys g_objective and arch: saturating_loss (an ACGAN's adds the class's
    cross-entropy), acgan_loss for an ACGAN, or the tutorial's cross-entropy."""
    if panel["g_objective"] == "saturating":
        return saturating_loss
    return acgan_loss if panel.get("arch") == "acgan" else "binary_crossentropy"


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
