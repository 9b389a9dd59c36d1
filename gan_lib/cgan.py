"""The conditional GAN of Mirza and Osindero (2014): G and D are both told the class.

Built the way Jason Brownlee's conditional GAN (Machine Learning Mastery, the CIFAR-10 tutorial's site) builds
it, from the tutorial's own layers (models.py) plus one small branch for the label:

- D: label -> Embedding(n_classes, 50) -> Dense(H * W) -> Reshape (H, W, 1), joined to the
  image as one more channel, (H, W, C + 1); then the tutorial's D: 3x3 convolutions of 64,
  128, 128, 256 filters (the last three with stride 2), LeakyReLU 0.2, Flatten, Dropout
  0.4, Dense(1) with a sigmoid. Compiled like it: binary cross-entropy, Adam(0.0002, 0.5).
  gan_lib adds one term to D's score by default, the projection of Miyato and Koyama (2018):
  the features' dot product with a learned vector per class. With the label only as an input
  channel, D may learn to ignore it (notebook 12 shows it on the shapes); the projection makes
  D's score depend on how well image and class agree from the first step.
  projection=False builds Brownlee's D exactly.
- G: latent point -> Dense -> (H/8, W/8, 256) as in the tutorial; label -> Embedding(n_classes,
  50) -> Dense(H/8 * W/8) -> Reshape (H/8, W/8, 1), joined as a 257th map; then the
  tutorial's three 4x4 transposed convolutions of 128 (stride 2) and a 3x3 tanh output.

The auxiliary classifier GAN (ACGAN) of Odena et al. (2017), arch 'acgan', keeps this G and
gives D a second head instead of the label map: D sees the image alone and says both whether
it is real and which class it is (define_acgan_discriminator); D's and G's losses add the
class's cross-entropy to the real/fake one (losses.acgan_loss). A cGAN's D may learn to ignore
the label (nothing forces it to check that image and class agree); an ACGAN's cannot.

Labels are int32 class indices, shape (n,) (an Input of shape ()); the models take
[images, labels] (D) and [latent points, labels] (G). A model that takes a label is
recognised by its Embedding layer (n_classes_of), saved as .keras and loaded in safe mode:
only standard Keras layers, no Lambda.
"""

import keras
from keras import layers

from .devices import check_memory
from .losses import acgan_loss, real_accuracy

SLOPE = 0.2  # LeakyReLU's slope, as in the tutorial
EMBEDDING = 50  # size of the label's embedding, as in Brownlee's cGAN


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


def tutorial_features(x):
    """The tutorial D's layers up to its output, on a functional tensor x (H, W, C'): a 3x3 convolution, three
    strided ones (64, 128, 128, 256 filters, LeakyReLU 0.2), Flatten and Dropout 0.4. (32, 32, C') -> (4096,)."""
    x = layers.Conv2D(64, (3, 3), padding="same")(x)  # (32, 32, 64)
    x = layers.LeakyReLU(negative_slope=SLOPE)(x)
    for n in (128, 128, 256):  # (16, 16, 128), (8, 8, 128), (4, 4, 256)
        x = layers.Conv2D(n, (3, 3), strides=(2, 2), padding="same")(x)
        x = layers.LeakyReLU(negative_slope=SLOPE)(x)
    x = layers.Flatten()(x)  # (4096,)
    return layers.Dropout(0.4)(x)


def define_cgan_discriminator(in_shape=(32, 32, 3), n_classes=10, lr=0.0002, beta_1=0.5, projection=True):
    """[image (H, W, C) in [-1, 1], label (int)] -> probability that the image is a real one of that class, (1,).

    616,757 parameters for (32, 32, 3) and 10 classes: the tutorial's D (522,497) plus the
    label branch (500 embedding, 52,224 Dense), 576 for the first convolution's fourth
    input channel and the projection's vector per class (10 * 4096). projection=False: the
    Brownlee's D, 575,797, whose score is Dense(1) of the features alone. Compiled with
    binary cross-entropy and Adam, like the tutorial's.
    """
    check_classes(n_classes)
    h, w, _ = in_shape
    image = keras.Input(shape=in_shape, name="image")
    label, label_channel = label_map(n_classes, h, w, "d")
    x = tutorial_features(layers.Concatenate()([image, label_channel]))  # image and label map: (H, W, C + 1) -> (4096,)
    if projection:  # logit = w . x + b + e_y . x, e_y one learned (4096,) vector per class; float32 under mixed precision
        e_y = layers.Embedding(n_classes, x.shape[-1], dtype="float32", name="d_projection")(label)  # (n, 4096)
        score = layers.Dot(axes=1, dtype="float32", name="d_projection_score")([x, e_y])  # (n, 1): e_y . x
        logit = layers.Add(dtype="float32", name="d_logit")([layers.Dense(1, dtype="float32")(x), score])  # (n, 1)
        out = layers.Activation("sigmoid", dtype="float32")(logit)
    else:
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


def define_acgan_discriminator(in_shape=(32, 32, 3), n_classes=10, lr=0.0002, beta_1=0.5):
    """[image (H, W, C) in [-1, 1], label (int)] -> [P(real), q] (2,): an ACGAN's D (Odena et al. 2017).

    The tutorial's D on the image alone, with two heads on its features: Dense(1) with a
    sigmoid, P(real), and Dense(n_classes) with a softmax, the class probabilities. The
    label only picks q, the probability of the class asked for (one-hot label . softmax),
    so the loss can score it: losses.acgan_loss = binary cross-entropy of P(real) + -log q,
    on real images (their own class) and on G's (the class G was asked for). It takes
    [image, label] like the cGAN's D, so the loop, the fused step and the combined model
    treat both alike. 563,467 parameters for (32, 32, 3) and 10 classes: the tutorial's D
    (522,497) plus the class head (4096 * 10 + 10). Only standard layers: safe-mode loading.
    """
    check_classes(n_classes)
    image = keras.Input(shape=in_shape, name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    x = tutorial_features(image)  # the image alone: the label cannot leak into D's features
    real = layers.Dense(1, activation="sigmoid", dtype="float32", name="real")(x)  # (n, 1); float32 in mixed precision
    classes = layers.Dense(n_classes, activation="softmax", dtype="float32", name="classes")(x)  # (n, n_classes)
    one_hot = layers.CategoryEncoding(n_classes, output_mode="one_hot", dtype="float32", name="d_label_one_hot")(label)
    q = layers.Dot(axes=1, name="class_asked")([classes, one_hot])  # (n, 1): the class's probability
    out = layers.Concatenate(name="real_and_class")([real, q])  # (n, 2)
    model = keras.Model([image, label], out, name="discriminator")
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1)
    model.compile(loss=acgan_loss, optimizer=opt, metrics=[real_accuracy])
    return model


def acgan_classifier(d_model):
    """An ACGAN D's class head as a model of its own: image -> class probabilities (n, n_classes), sharing D's
    weights. What D believes each image is (a diagnostic: its accuracy on real images)."""
    return keras.Model(d_model.inputs[0], d_model.get_layer("classes").output, name="d_classifier")
