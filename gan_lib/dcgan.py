"""The DCGAN of Radford, Metz and Chintala (2016): all-convolutional D and G with BatchNorm.

What the paper asks for, and where it is below:
- no pooling: D halves the image with strided 4x4 convolutions, G doubles it with
  strided 4x4 transposed convolutions; filters double in D (width, 2w, 4w, 8w at
  64 x 64) and halve in G (8w, 4w, 2w, w);
- BatchNorm on every layer except D's first and G's last;
- LeakyReLU 0.2 in D, ReLU in G, tanh on G's output, a sigmoid on D's;
- weights drawn from N(0, 0.02), BatchNorm's gamma from N(1, 0.02), beta 0;
- Adam with learning rate 0.0002 and beta_1 0.5 (panel keys d_lr, g_lr, beta_1).

Choices the paper leaves open, made here:
- D's head is Flatten + Dense(1) (the tutorial's head): the same arithmetic as a 4x4
  'valid' convolution to one map, and it reads the same at every image size;
- G's projection is Dense + Reshape to (4, 4, 8w) (the tutorial's way; the same as a
  4x4 transposed convolution of a 1x1 input), with BatchNorm after the Reshape so it
  normalizes per feature map (8w gammas), as the convolutional layers do;
- no bias on a layer BatchNorm follows (BatchNorm's beta is that bias); biases on D's
  first convolution and on both output layers;
- BatchNorm momentum 0.9 and epsilon 1e-5: PyTorch's defaults, which the reference
  DCGAN code uses (Keras's own, 0.99 and 1e-3, make the moving statistics lag ten
  times longer behind a generator that changes every step).

The image size sets the depth: 4 * 2^k pixels square takes k stride-2 layers
(32 x 32: 3, 64 x 64: 4, 128 x 128: 5), D's last map and G's first are 4 x 4.

BatchNorm during G's step: gan_lib never flips `trainable`, so D runs in training
mode inside the combined model, as in PyTorch's DCGAN, where D stays in train mode:
its BatchNorm layers normalize G's batch with that batch's own statistics and update
their moving statistics; D's weights (gamma and beta included) do not change.
Keras's other rule, a frozen D whose BatchNorm uses its moving statistics, would judge G's
batch by statistics that blend real and fake batches and lag behind both. training.train_step
and fused.py make D's fakes with G in training mode too (batch statistics): at initialisation
inference-mode fakes are nearly flat (pixel spread 0.0006 against 0.1), and later they still
differ from what G's step optimizes while G's moving statistics lag. tests/test_dcgan.py proves
all this on the tutorial loop (both call orders) and the fused step, on TensorFlow, JAX and torch.

The history's D(x) and D(G(z)) are D's inference-mode scores, as for the tutorial's D (no
dropout there): with BatchNorm they use the blended moving statistics, so they are less
extreme than the scores D gives each half batch while it trains (0.70 against 0.86 for real
shapes after 6 short epochs); the losses d1 and d2 are the training-mode ones.
"""

import numbers

import keras
from keras import layers

from .devices import check_memory

SLOPE = 0.2  # LeakyReLU's slope for x < 0 in D


def weights_init():
    """Every convolution and Dense kernel: N(0, 0.02), as in the paper."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def batch_norm():
    """BatchNorm with gamma from N(1, 0.02) and beta 0 (the paper), momentum 0.9 and epsilon 1e-5 (PyTorch's)."""
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                     gamma_initializer=keras.initializers.RandomNormal(mean=1.0, stddev=0.02))


def n_strided(shape, who, arg):
    """How many stride-2 layers take a square image of 4 * 2^k pixels to 4 x 4 (k); ValueError for other shapes."""
    if len(shape) != 3:
        raise ValueError(f"the DCGAN {who} wants {arg} as (height, width, channels), got {shape}")
    h, w, c = shape
    if not all(isinstance(n, numbers.Integral) for n in shape):
        raise ValueError(f"the DCGAN {who} wants a fixed size, got {arg}={tuple(shape)}")
    k = max(int(h // 4).bit_length() - 1, 0)
    if h != w or h < 8 or h != 4 * 2**k or c < 1:
        raise ValueError(
            f"the DCGAN {who} wants square images of 4 * 2^k pixels (8, 16, 32, 64, 128, ...) with at least one "
            f"channel, got {arg}={tuple(shape)}; resize the images (for example to 64 x 64) or use arch 'tutorial'"
        )
    return k


def check_width(width):
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"the DCGAN's width (filters of D's first layer) must be an integer of at least 1, got {width!r}")


def filters(width, k):
    """D's filters, layer by layer: width, 2 * width, ... (k layers); G uses them in reverse."""
    return [width * 2**i for i in range(k)]


def define_dcgan_discriminator(in_shape=(64, 64, 3), width=64, lr=0.0002, beta_1=0.5):
    """Image (H, W, C) in [-1, 1] -> probability that it is real, shape (1,).

    At 64 x 64: four strided 4x4 convolutions, (32, 32, w) -> (16, 16, 2w) -> (8, 8, 4w) -> (4, 4, 8w),
    BatchNorm on all but the first, LeakyReLU 0.2; then Flatten and Dense(1) with a sigmoid, in
    float32 under mixed precision. Compiled like the tutorial's: binary cross-entropy, Adam(lr, beta_1),
    accuracy. 2,767,425 parameters for (64, 64, 3) and width 64: 2,765,633 trainable (PyTorch's
    DCGAN D, 2,765,568, plus two biases, 65 numbers) and 1,792 BatchNorm moving statistics;
    175,761 for width 16.
    """
    k = n_strided(in_shape, "discriminator", "in_shape")
    check_width(width)
    sizes = filters(width, k)
    check_memory(16 * sum(a * b for a, b in zip([in_shape[2]] + sizes, sizes)), "width", width)
    stack = [keras.Input(shape=in_shape)]
    for i, n in enumerate(sizes):  # each halves the image: (H/2, W/2, w), (H/4, W/4, 2w), ... (4, 4, top)
        stack.append(layers.Conv2D(n, (4, 4), strides=(2, 2), padding="same", use_bias=i == 0,
                                   kernel_initializer=weights_init()))
        if i > 0:  # not on the first layer: BatchNorm on the input image is what the paper found unstable
            stack.append(batch_norm())
        stack.append(layers.LeakyReLU(negative_slope=SLOPE))
    stack += [
        layers.Flatten(),  # (4 * 4 * top,)
        layers.Dense(1, activation="sigmoid", kernel_initializer=weights_init(), dtype="float32"),  # float32 always
    ]
    model = keras.Sequential(stack, name="discriminator")
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1)
    model.compile(loss="binary_crossentropy", optimizer=opt, metrics=["accuracy"])
    return model


def define_dcgan_generator(latent_dim=100, out_shape=(64, 64, 3), width=64):
    """Latent point (latent_dim,), drawn from N(0, 1) -> image out_shape in [-1, 1] (tanh).

    At 64 x 64: Dense + Reshape to (4, 4, 8w), then transposed 4x4 convolutions with stride 2,
    (8, 8, 4w) -> (16, 16, 2w) -> (32, 32, w) -> (64, 64, C); BatchNorm and ReLU after every layer
    but the last, whose tanh is computed in float32 under mixed precision. Not compiled: it learns
    through the combined model (models.define_gan). 3,578,627 parameters for latent_dim=100,
    (64, 64, 3) and width 64: 3,576,707 trainable (PyTorch's DCGAN G, 3,576,704, plus the output
    layer's 3 biases) and 1,920 BatchNorm moving statistics; 378,563 for width 16.
    """
    k = n_strided(out_shape, "generator", "out_shape")
    check_width(width)
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be an integer of at least 1, got {latent_dim!r}")
    sizes = filters(width, k)[::-1]  # 8w, 4w, 2w, w at 64 x 64
    check_memory(16 * latent_dim * sizes[0] + 16 * sum(a * b for a, b in zip(sizes, sizes[1:] + [out_shape[2]])),
                 "width", width)
    stack = [
        keras.Input(shape=(latent_dim,)),
        layers.Dense(4 * 4 * sizes[0], use_bias=False, kernel_initializer=weights_init()),  # the projection
        layers.Reshape((4, 4, sizes[0])),  # (4, 4, 8w): BatchNorm below normalizes per map
        batch_norm(),
        layers.ReLU(),
    ]
    for n in sizes[1:]:  # each doubles the image: (8, 8, 4w), (16, 16, 2w), ...
        stack += [layers.Conv2DTranspose(n, (4, 4), strides=(2, 2), padding="same", use_bias=False,
                                         kernel_initializer=weights_init()),
                  batch_norm(),
                  layers.ReLU()]
    stack.append(layers.Conv2DTranspose(out_shape[2], (4, 4), strides=(2, 2), padding="same", activation="tanh",
                                        kernel_initializer=weights_init(), dtype="float32"))  # (H, W, C), float32
    return keras.Sequential(stack, name="generator")
