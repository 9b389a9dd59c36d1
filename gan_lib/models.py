"""The tutorial's three models: discriminator, generator and the combined GAN.

Keras 3 reads `trainable` when a model's train function is first traced, not when
it is compiled, so the classic recipe (`d_model.trainable = False` before compiling
the combined model) leaves D frozen for its own train_on_batch too, in either call
order (TF 2.21 / Keras 3.15; notebook 05 shows it). gan_lib never
flips that flag: the combined model reports only G's weights as trainable, so
each model's train step sees the weights it should, in any call order, on every
backend.
"""

import keras
from keras import layers

from .devices import check_memory


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


