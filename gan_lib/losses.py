"""Every loss gan_lib trains with, D's and G's, in one place.

D outputs probabilities (a sigmoid head), shape (n, 1); an ACGAN's D outputs (n, 2),
[P(real), q], q the probability its class head gives the class asked for. CycleGAN's
PatchGAN D outputs raw scores (least squares). Each loss is the mean over the batch
(and the patches) unless it says "per image".

- binary cross-entropy: the tutorial's D loss (real 1, fake 0) and G's non-saturating
  loss (G's images labelled 1): bce, discriminator_loss, generator_loss;
- the saturating (minimax) G loss of Goodfellow et al. 2014: saturating_loss, generator_loss(..., "saturating");
- the ACGAN's (Odena et al. 2017): either of the above plus the class's cross-entropy: acgan_loss, class_loss;
- least squares (Mao et al., CycleGAN's adversarial loss) and L1 (its cycle and identity losses);
- the modern recipe's, on D's raw scores s (recipe.scores; panel key loss): hinge (Lim and Ye 2017, SAGAN's) and
  Wasserstein with a gradient penalty (Gulrajani et al. 2017), and the R1 penalty (Mescheder et al. 2018).
"""

import keras

from .backend import input_gradients


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


def gan_loss(panel):
    """The combined model's loss for panel keys g_objective and arch: saturating_loss (an ACGAN's adds the class's
    cross-entropy), acgan_loss for an ACGAN, or the tutorial's cross-entropy."""
    if panel["g_objective"] == "saturating":
        return saturating_loss
    return acgan_loss if panel.get("arch") == "acgan" else "binary_crossentropy"


def objective_of(gan_model):
    """The g_objective a combined model was compiled for: 'saturating' or 'non_saturating'."""
    return "saturating" if gan_model.loss is saturating_loss else "non_saturating"


def bce(y, p):
    """Binary cross-entropy averaged over the batch: what train_on_batch reports for these models."""
    return keras.ops.mean(keras.losses.binary_crossentropy(y, p))


def discriminator_loss(y, out):
    """D's loss on one batch, targets y (n, 1): binary cross-entropy of its scores, what train_on_batch
    reports; an ACGAN's D (output [P(real), q]) adds the class's cross-entropy (acgan_loss). Computed in float32,
    whatever D's output dtype (a D built under mixed precision without a float32 head outputs 16-bit floats)."""
    out = keras.ops.cast(out, "float32")
    return bce(y, real_part(out)) + keras.ops.mean(class_loss(out))


def generator_loss(p, objective="non_saturating"):
    """G's loss from D's scores p (n, 1) for G's images.

    non_saturating: -mean log D(G(z)), binary cross-entropy against label 1: how the tutorial
    trains G. saturating: mean log(1 - D(G(z))), the minimax objective of Goodfellow et al.
    (2014), minus the cross-entropy against label 0; its gradient vanishes when D is sure
    the images are fake (D(G(z)) near 0), which is why nobody trains with it.
    An ACGAN's D gives (n, 2), [P(real), q]: either one plus the class's cross-entropy, -mean log q.
    In float32, as discriminator_loss.
    """
    p = keras.ops.cast(p, "float32")
    p, classes = real_part(p), keras.ops.mean(class_loss(p))
    if objective == "saturating":
        return -bce(keras.ops.zeros_like(p), p) + classes
    return bce(keras.ops.ones_like(p), p) + classes


def lsgan_loss(scores, target):
    """Least squares: mean (scores - target)^2, target 1 (real) or 0 (fake)."""
    return keras.ops.mean(keras.ops.square(scores - target))


def l1(x, y):
    return keras.ops.mean(keras.ops.abs(x - y))


def critic_parts(loss, s_real, s_fake):
    """D's loss on raw scores (n, 1) as (its real part, its fake part): hinge, mean relu(1 - s_real) and
    mean relu(1 + s_fake); wgan_gp, -mean s_real and mean s_fake (the penalty is gradient_penalty's)."""
    if loss == "hinge":
        return keras.ops.mean(keras.ops.relu(1.0 - s_real)), keras.ops.mean(keras.ops.relu(1.0 + s_fake))
    return -keras.ops.mean(s_real), keras.ops.mean(s_fake)


def score_generator_loss(s_fake):
    """G's loss for hinge and wgan_gp: -mean D's raw score of G's images."""
    return -keras.ops.mean(s_fake)


def safe_norm(g):
    """Each image's gradient norm, (n,): sqrt(sum g^2 + 1e-12), whose own gradient is finite at g = 0 (sqrt's is not)."""
    return keras.ops.sqrt(keras.ops.sum(keras.ops.square(g), axis=tuple(range(1, len(g.shape)))) + 1e-12)


def gradient_penalty(score_fn, real, fake, eps):
    """WGAN-GP's penalty: mean (|grad score_fn(x_hat)| - 1)^2 at x_hat = eps * real + (1 - eps) * fake, eps (n, 1, 1, 1)
    uniform in [0, 1], one number per image (one per batch is the common bug: every image on one line's point)."""
    x_hat = eps * real + (1.0 - eps) * fake
    return keras.ops.mean(keras.ops.square(safe_norm(input_gradients(score_fn, x_hat)) - 1.0))


def r1_penalty(score_fn, real):
    """R1: mean |grad score_fn(x)|^2 over the real images (D's loss adds gamma / 2 times it)."""
    g = input_gradients(score_fn, real)
    return keras.ops.mean(keras.ops.sum(keras.ops.square(g), axis=tuple(range(1, len(g.shape)))))
