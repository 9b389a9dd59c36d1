"""CycleGAN (Zhu, Park, Isola and Efros, 2017): unpaired image-to-image translation, the models and the losses.

Two domains, A and B, and no pairs between them. Four networks:
- G: A -> B and F: B -> A, the generators;
- D_A judges images of A (real ones against F's), D_B images of B (real against G's).

Losses, for a batch of a's and b's (what cycle_training.CycleStep minimises):
- adversarial, least squares (the paper's choice, after Mao et al.'s LSGAN): D_B learns
  (D_B(b) - 1)^2 + D_B(G(a))^2, halved as in the paper; G learns (D_B(G(a)) - 1)^2; the same for D_A and F;
- cycle consistency, weight lambda (panel key cycle_weight, 10): |F(G(a)) - a| + |G(F(b)) - b|, mean L1;
  translating there and back must give the input again, which rules out mapping every a to one b;
- identity, weight 0.5 * lambda (panel key identity_weight, 5): |G(b) - b| + |F(a) - a|; a b given to G
  should come back unchanged, which keeps colours where nothing asks to change them (the paper uses it for
  paintings and photos).

The networks, after the paper's appendix 7.2, scaled down for 32 x 32 and 64 x 64 images:
- generator: c7s1-w, d2w, d4w, n residual blocks of 4w, u2w, uw, c7s1-C (the paper: w = 64 and 6 blocks
  at 128 x 128, 9 at 256 x 256; here w = 32 and 3 blocks by default, panel keys width and res_blocks);
- discriminator, a PatchGAN: C(w) stride 2, C(2w) stride 2, C(4w) stride 1, then a 1-channel 4x4
  convolution: an (H/4, W/4, 1) map of scores, each of a 34 x 34 patch (the paper's has one more
  stride-2 layer and 70 x 70 patches on 256 x 256 images; at 32 x 32 one more would see the whole image);
- instance normalisation after every convolution but the generator's last and the discriminator's first
  and last: keras.layers.GroupNormalization(groups=-1), one group per channel, is instance norm (each image,
  each channel normalised over its pixels; tests/test_cyclegan.py checks it against the formula);
- ReLU in the generators, LeakyReLU 0.2 in the discriminators, tanh on the generators' output, no
  activation on the discriminators' (least squares wants raw scores); weights from N(0, 0.02).
Choices made here: zero padding ('same') where the paper pads by reflection (Keras has no reflection
padding layer, and a custom one would need registering to load in safe mode); no bias on a convolution
that instance norm follows (its beta is that bias).

No layer has state beyond its weights (no BatchNorm statistics, no dropout), so a model's output depends
on its weights and input only: training=True and False are the same here.
"""

import keras
import numpy as np
from keras import layers

SLOPE = 0.2  # LeakyReLU's slope in the discriminators


def weights_init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def instance_norm(name=None):
    """Instance normalisation: each image's each channel to mean 0, variance 1 over its pixels, then a learnt
    scale and shift per channel. GroupNormalization with one group per channel (groups=-1) is exactly that;
    epsilon 1e-5 as PyTorch's InstanceNorm2d, which the paper's code uses."""
    return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)


def check_shape(shape, who):
    """ValueError unless shape is (H, W, C) with H and W multiples of 4 (two stride-2 layers) and C 1 or 3."""
    if len(shape) != 3 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise ValueError(f"the CycleGAN {who} wants images of a fixed (height, width, channels), got {tuple(shape)}")
    h, w, c = shape
    if h % 4 or w % 4 or c not in (1, 3):
        raise ValueError(f"the CycleGAN {who} wants images whose height and width are multiples of 4 (it halves "
                         f"them twice) with 1 or 3 channels, got {tuple(shape)}; resize them (--set image_size=32 "
                         "or 64)")


def check_size(width, res_blocks):
    for key, value, low in (("width", width, 1), ("res_blocks", res_blocks, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"the CycleGAN's {key} must be a whole number of at least {low}, got {value!r}")


def conv(filters, size, strides=1, name=None, bias=False):
    return layers.Conv2D(filters, size, strides=strides, padding="same", use_bias=bias,
                         kernel_initializer=weights_init(), name=name)


def define_cyclegan_generator(in_shape=(32, 32, 3), out_channels=None, width=32, res_blocks=3, name="generator"):
    """Image (H, W, C) in [-1, 1] -> image (H, W, out_channels) in [-1, 1] (tanh); out_channels defaults to C.

    At 32 x 32 x 3, width w: (32, 32, w) -> (16, 16, 2w) -> (8, 8, 4w), res_blocks residual blocks
    at (8, 8, 4w), then (16, 16, 2w) -> (32, 32, w) -> (32, 32, 3). Not compiled: cycle_training
    updates it with its own optimizer. 1,080,643 parameters for 3 channels, width 32 and 3 blocks; 273,059 for width 16.
    """
    check_shape(in_shape, "generator")
    check_size(width, res_blocks)
    out_channels = out_channels or in_shape[2]
    x_in = keras.Input(shape=in_shape)
    x = x_in
    for i, (filters, size, strides) in enumerate(((width, 7, 1), (2 * width, 3, 2), (4 * width, 3, 2))):
        x = conv(filters, size, strides)(x)  # c7s1-w, d2w (H/2), d4w (H/4)
        x = instance_norm()(x)
        x = layers.ReLU()(x)
    for _ in range(res_blocks):  # x + IN(conv(ReLU(IN(conv(x))))) at (H/4, W/4, 4w)
        h = layers.ReLU()(instance_norm()(conv(4 * width, 3)(x)))
        h = instance_norm()(conv(4 * width, 3)(h))
        x = layers.Add()([x, h])
    for filters in (2 * width, width):  # u2w (H/2), uw (H): fractionally strided, as in the paper
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=weights_init())(x)
        x = layers.ReLU()(instance_norm()(x))
    x = layers.Conv2D(out_channels, 7, padding="same", activation="tanh", kernel_initializer=weights_init(),
                      dtype="float32")(x)  # c7s1-C: (H, W, out_channels)
    return keras.Model(x_in, x, name=name)


def define_cyclegan_discriminator(in_shape=(32, 32, 3), width=32, name="discriminator"):
    """Image (H, W, C) -> (H/4, W/4, 1) raw scores, one per 34 x 34 patch (least squares: real 1, fake 0).

    C(w) stride 2 without normalisation, C(2w) stride 2 and C(4w) stride 1 with instance norm, LeakyReLU
    0.2, then a 4x4 convolution to one channel. 167,841 parameters for 3 channels and width 32; 42,961
    for width 16.
    """
    check_shape(in_shape, "discriminator")
    check_size(width, 0)
    x_in = keras.Input(shape=in_shape)
    x = layers.LeakyReLU(negative_slope=SLOPE)(conv(width, 4, 2, bias=True)(x_in))  # (H/2, W/2, w)
    for filters, strides in ((2 * width, 2), (4 * width, 1)):  # (H/4, W/4, 2w), (H/4, W/4, 4w)
        x = layers.LeakyReLU(negative_slope=SLOPE)(instance_norm()(conv(filters, 4, strides)(x)))
    x = layers.Conv2D(1, 4, padding="same", kernel_initializer=weights_init(), dtype="float32")(x)  # (H/4, W/4, 1)
    return keras.Model(x_in, x, name=name)


class CycleGAN:
    """The four models and their two Adam optimizers: one for G and F together, one for D_A and D_B
    together (as in the paper's code; Adam works per weight, so a joint optimizer updates each model
    as its own would).

    shape_a, shape_b: (H, W, C) of each domain (the same H and W; C may differ, then the identity
    loss cannot apply and must be 0).
    """

    def __init__(self, shape_a=(32, 32, 3), shape_b=None, width=32, res_blocks=3, lr=0.0002, beta_1=0.5):
        shape_b = tuple(shape_b or shape_a)
        shape_a = tuple(shape_a)
        if shape_a[:2] != shape_b[:2]:
            raise ValueError(f"domains A and B must have images of one size, got {shape_a[:2]} and {shape_b[:2]}; "
                             "bring them to one size (--set image_size=32)")
        self.shape_a, self.shape_b = shape_a, shape_b
        self.g_ab = define_cyclegan_generator(shape_a, shape_b[2], width, res_blocks, name="generator_ab")  # G
        self.g_ba = define_cyclegan_generator(shape_b, shape_a[2], width, res_blocks, name="generator_ba")  # F
        self.d_a = define_cyclegan_discriminator(shape_a, width, name="discriminator_a")
        self.d_b = define_cyclegan_discriminator(shape_b, width, name="discriminator_b")
        self.g_optimizer = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1, name="generators_adam")
        self.d_optimizer = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1, name="discriminators_adam")
        self.g_optimizer.build(self.g_variables)  # slots exist before any step is traced or restored
        self.d_optimizer.build(self.d_variables)

    @property
    def models(self):
        return (self.g_ab, self.g_ba, self.d_a, self.d_b)

    @property
    def g_variables(self):
        return self.g_ab.trainable_variables + self.g_ba.trainable_variables

    @property
    def d_variables(self):
        return self.d_a.trainable_variables + self.d_b.trainable_variables

    def training_variables(self):
        """Every variable training changes, in a fixed order: what checkpoint.save_checkpoint stores."""
        found = [v for m in self.models for v in m.variables]
        return found + list(self.g_optimizer.variables) + list(self.d_optimizer.variables)


# ---------------------------------------------------------------- the image pool


class ImagePool:
    """The paper's history of generated images (Shrivastava et al. 2017): D learns from fakes drawn partly
    from the last `size` ones G made, not only the newest, so it does not chase G's latest move.

    Kept on the device in two variables (checkpointed): images (size, H, W, C) and count. While the
    pool fills, each new fake is stored and passed on; once full, each fake is, with probability 1/2,
    swapped for a stored one (which D sees instead) at a distinct random slot, else passed on. The
    paper's code does it image by image; here one batch at once, so batch <= size.
    """

    def __init__(self, size, shape, name):
        self.size = size
        self.images = keras.Variable(np.zeros((size, *shape), np.float32), trainable=False, name=f"{name}_images")
        self.count = keras.Variable(0, dtype="int32", trainable=False, name=f"{name}_count")

    @property
    def variables(self):
        return [self.images, self.count]

    def __call__(self, fakes, seed):
        """fakes (n, H, W, C), n <= size -> the n images D should see; updates the pool. seed: a SeedGenerator."""
        ops, size = keras.ops, self.size
        n = fakes.shape[0]
        count = ops.convert_to_tensor(self.count.value)
        position = count + ops.arange(n, dtype="int32")  # filling: fake i goes to slot count + i
        random_slots = ops.cast(ops.argsort(keras.random.uniform((size,), seed=seed))[:n], "int32")  # distinct
        swap = keras.random.uniform((n,), seed=seed) < 0.5
        full = count >= size
        slots = ops.where(full, random_slots, ops.minimum(position, size - 1))
        write = ops.where(full, swap, position < size)  # which fakes are stored
        stored = ops.take(self.images.value, slots, axis=0)
        use_stored = ops.reshape(ops.logical_and(full, swap), (n, 1, 1, 1))
        out = ops.where(use_stored, stored, fakes)
        hits = ops.one_hot(slots, size) * ops.cast(ops.expand_dims(write, 1), "float32")  # (n, size), distinct slots
        taken = ops.reshape(ops.max(hits, axis=0), (size, 1, 1, 1))
        self.images.assign(self.images.value * (1.0 - taken) + ops.einsum("np,nhwc->phwc", hits, fakes))
        self.count.assign(ops.minimum(count + n, size))
        return out
