"""The conditional GAN of Mirza and Osindero (2014): G and D are both told the class.

Built the way the Keras book's conditional version of the CIFAR-10 tutorial builds it,
from the tutorial's own layers (models.py) plus one small branch for the label:

- D: label -> Embedding(n_classes, 50) -> Dense(H * W) -> Reshape (H, W, 1), joined to the
  image as one more channel, (H, W, C + 1); then the tutorial's D: 3x3 convolutions of 64,
  128, 128, 256 filters (the last three with stride 2), LeakyReLU 0.2, Flatten, Dropout
  0.4, Dense(1) with a sigmoid. Compiled like it: binary cross-entropy, Adam(0.0002, 0.5).
- G: latent point -> Dense -> (H/8, W/8, 256) as in the tutorial; label -> Embedding(n_classes,
  50) -> Dense(H/8 * W/8) -> Reshape (H/8, W/8, 1), joined as a 257th map; then the
  tutorial's three 4x4 transposed convolutions of 128 (stride 2) and a 3x3 tanh output.

Labels are int32 class indices, shape (n,) (an Input of shape ()); the models take
[images, labels] (D) and [latent points, labels] (G). A model that takes a label is
recognised by its Embedding layer (n_classes_of), saved as .keras and loaded in safe mode:
only standard Keras layers, no Lambda.
"""

import keras
from keras import layers

from .models import check_memory

SLOPE = 0.2  # LeakyReLU's slope, as in the tutorial
EMBEDDING = 50  # size of the label's embedding, as in the Keras book's cGAN


def check_classes(n_classes):
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"a conditional GAN needs n_classes, an integer of at least 2, got {n_classes!r}")


def label_map(n_classes, h, w, name):
    """(label input (n,), its map (n, h, w, 1)): Embedding -> Dense(h * w) -> Reshape, the label as one feature map."""
    label = keras.Input(shape=(), dtype="int32", name="label")
    # N(0, 1) as PyTorch initializes embeddings: Keras's default, U(-0.05, 0.05), makes a label map about
    # 50 times fainter than the image or the latent maps beside it, and the models learn to use it late
    x = layers.Embedding(n_classes, EMBEDDING, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
                         name=f"{name}_label_embedding")(label)  # (n, 50)
    x = layers.Dense(h * w, name=f"{name}_label_dense")(x)  # (n, h * w): one value per pixel
    return label, layers.Reshape((h, w, 1), name=f"{name}_label_map")(x)  # (n, h, w, 1)


def define_cgan_discriminator(in_shape=(32, 32, 3), n_classes=10, lr=0.0002, beta_1=0.5):
    """[image (H, W, C) in [-1, 1], label (int)] -> probability that the image is a real one of that class, (1,).

    575,797 parameters for (32, 32, 3) and 10 classes: the tutorial's D (522,497) plus the
    label branch (500 embedding, 52,224 Dense) and 576 for the first convolution's fourth
    input channel. Compiled with binary cross-entropy and Adam, like the tutorial's.
    """
    check_classes(n_classes)
    h, w, _ = in_shape
    image = keras.Input(shape=in_shape, name="image")
    label, label_channel = label_map(n_classes, h, w, "d")
    x = layers.Concatenate()([image, label_channel])  # (H, W, C + 1)
    x = layers.Conv2D(64, (3, 3), padding="same")(x)  # (32, 32, 64)
    x = layers.LeakyReLU(negative_slope=SLOPE)(x)
    for n in (128, 128, 256):  # (16, 16, 128), (8, 8, 128), (4, 4, 256)
        x = layers.Conv2D(n, (3, 3), strides=(2, 2), padding="same")(x)
        x = layers.LeakyReLU(negative_slope=SLOPE)(x)
    x = layers.Flatten()(x)  # (4096,)
    x = layers.Dropout(0.4)(x)
    out = layers.Dense(1, activation="sigmoid", dtype="float32")(x)  # float32 even under mixed precision
    model = keras.Model([image, label], out, name="discriminator")
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1)
    model.compile(loss="binary_crossentropy", optimizer=opt, metrics=["accuracy"])
    return model


def define_cgan_generator(latent_dim=100, n_classes=10, out_shape=(32, 32, 3)):
    """[latent point (latent_dim,), label (int)] -> image out_shape in [-1, 1] (tanh), of that class.

    1,469,479 parameters for latent_dim=100, 10 classes and (32, 32, 3): the tutorial's G
    (1,466,115) plus the label branch (500 embedding, 816 Dense) and 2,048 for the first
    transposed convolution's 257th input map. Not compiled: it learns through the combined
    model (models.define_gan).
    """
    check_classes(n_classes)
    h, w, c = out_shape
    if h % 8 or w % 8:
        raise ValueError(f"generator output height and width must be multiples of 8, got {out_shape}")
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be an integer of at least 1, got {latent_dim!r}")
    h0, w0 = h // 8, w // 8
    check_memory(latent_dim * 256 * h0 * w0, "latent_dim", latent_dim)
    z = keras.Input(shape=(latent_dim,), name="latent")
    x = layers.Dense(256 * h0 * w0)(z)  # foundation for 256 maps of (h/8, w/8)
    x = layers.LeakyReLU(negative_slope=SLOPE)(x)
    x = layers.Reshape((h0, w0, 256))(x)  # (4, 4, 256)
    label, label_channel = label_map(n_classes, h0, w0, "g")
    x = layers.Concatenate()([x, label_channel])  # (4, 4, 257)
    for _ in range(3):  # (8, 8, 128), (16, 16, 128), (32, 32, 128)
        x = layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same")(x)
        x = layers.LeakyReLU(negative_slope=SLOPE)(x)
    out = layers.Conv2D(c, (3, 3), activation="tanh", padding="same", dtype="float32")(x)  # (32, 32, 3), float32
    return keras.Model([z, label], out, name="generator")
