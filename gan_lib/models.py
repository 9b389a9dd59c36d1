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
            layers.Dense(1, activation="sigmoid"),
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
            layers.Conv2D(c, (3, 3), activation="tanh", padding="same"),  # (32, 32, 3)
        ],
        name="generator",
    )
    return model


class CombinedGAN(keras.Sequential):
    """G then D, trained as one model, where only G's weights are trainable.

    The four properties below are what every Keras 3 trainer (TensorFlow, JAX,
    torch) reads to decide what to differentiate and update; D's own weights stay
    trainable for D's own train_on_batch.
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


def define_gan(g_model, d_model, lr=0.0002, beta_1=0.5):
    """Combined model: latent point -> D(G(z)); training it updates G only.

    Compiled with binary cross-entropy and Adam. d_model keeps learning through
    its own train_on_batch, whichever model is trained first.
    """
    model = CombinedGAN(g_model, d_model, name="gan")
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1)
    model.compile(loss="binary_crossentropy", optimizer=opt)
    return model
