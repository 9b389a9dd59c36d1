"""The modern recipe's pieces that change the models: D's raw scores, spectral norm in D, an EMA of G.

The tutorial's D ends in Dense(1, activation="sigmoid") and every loss reads its probability. The hinge and
Wasserstein losses and the R1 penalty read D's raw score, the number before the sigmoid, so modern_discriminator
rebuilds D with the head split in two, Dense(1) then Activation("sigmoid"): D still outputs a probability (the
history's D(x), summarize_performance, the tutorial loop all read it as before), and scores() runs every layer but
that last one. With panel key spectral_norm, each Conv2D and Dense is wrapped in keras.layers.SpectralNormalization
(Miyato et al. 2018), which divides the kernel by its largest singular value (one power iteration per training call).

EMA: a copy of G whose weights follow G's, w_ema <- decay * w_ema + (1 - decay) * w after every G update, the
decay warmed up (EMA's docstring) (Yazici et al. 2019; StyleGAN's G_ema). It is not trained; training writes it as
generator_ema.keras, and generate and evaluate use it when it is there: its images are usually smoother and better
than the last G's.
"""

import keras
from keras import layers

WRAPPED = (layers.Conv2D, layers.Dense)  # what spectral_norm wraps


def needs_scores(panel):
    """Whether the panel's losses read D's raw scores (hinge, wgan_gp, R1), so D's head must be split."""
    return panel["loss"] != "bce" or panel["r1_gamma"] > 0


def modern_discriminator(d_model, panel):
    """d_model (a Sequential ending in Dense(1, sigmoid)) rebuilt as the panel asks: the head split into Dense(1) and
    Activation("sigmoid") when needs_scores(panel) (else kept), every Conv2D and Dense in SpectralNormalization when
    panel['spectral_norm']; new weights, compiled as d_model was (binary cross-entropy, Adam at d_lr, beta_1)."""
    split, sn = needs_scores(panel), panel["spectral_norm"]
    stack = [keras.Input(shape=d_model.input_shape[1:])]
    for i, layer in enumerate(d_model.layers):
        config = layer.get_config()
        last = i == len(d_model.layers) - 1
        if last and split:
            config["activation"] = "linear"
        new = type(layer).from_config(config)
        stack.append(layers.SpectralNormalization(new) if sn and isinstance(new, WRAPPED) else new)
        if last and split:
            stack.append(layers.Activation("sigmoid", dtype="float32", name="probability"))
    model = keras.Sequential(stack, name=d_model.name)
    model.compile(loss="binary_crossentropy", metrics=["accuracy"],
                  optimizer=keras.optimizers.Adam(learning_rate=panel["d_lr"], beta_1=panel["beta_1"]))
    return model


def has_score_head(d_model):
    """Whether D ends in a separate sigmoid (modern_discriminator's split head), so scores() can read past it."""
    last = d_model.layers[-1] if d_model.layers else None
    return isinstance(last, layers.Activation) and last.name == "probability"


def scores(d_model, x, training=True):
    """D's raw scores (n, 1), float32: every layer of D but its final sigmoid (has_score_head)."""
    for layer in d_model.layers[:-1]:
        x = layer(x, training=training)
    return keras.ops.cast(x, "float32")


class EMA:
    """An exponential moving average of G's weights: .model, a copy of G; update() after each G update.

    The t-th update uses the decay min(decay, (1 + t) / (10 + t)), as TensorFlow's ExponentialMovingAverage does
    with num_updates: a plain 0.999 would keep 0.999^t of G's random initial weights (77% after 256 steps), so a
    short run's EMA would draw grey noise; warmed up this way it follows G closely at first and averages later.
    """

    def __init__(self, g_model, decay):
        self.decay, self.source = decay, g_model
        self.model = keras.models.clone_model(g_model)
        self.model.set_weights(g_model.get_weights())  # starts as G
        self.count = keras.Variable(0.0, trainable=False, name="ema_updates")  # t, the updates so far
        self.variables = list(self.model.weights) + [self.count]  # checkpointed with the fused step's state

    def update(self):
        self.count.assign(self.count + 1.0)
        decay = keras.ops.minimum(self.decay, (1.0 + self.count) / (10.0 + self.count))
        for e, w in zip(self.model.weights, self.source.weights):
            e.assign(decay * e + (1.0 - decay) * keras.ops.cast(w, e.dtype))
