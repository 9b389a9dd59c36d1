"""Mode counting with the cached classifier, its features, and memorisation (nearest training images)."""

import gzip
import os
import struct

import keras
import matplotlib
import numpy as np
import pytest

import gan_lib
from gan_lib import data, memorisation, modes

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    """No test writes into ~/.keras: the default cache folder is under tmp_path."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path / "keras_home"


@pytest.fixture(scope="session")
def cache(classifier_cache):
    return classifier_cache


@pytest.fixture(scope="session")
def model(cache):
    """The shapes classifier, trained once for the session into its own folder."""
    return modes.classifier("shapes", cache_dir=cache)


@pytest.fixture
def tiny_recipe(monkeypatch):
    """A recipe that trains in about a second (600 images, 1 epoch), for tests of caching, not of accuracy."""
    monkeypatch.setattr(modes, "N_LABELLED", 600)
    monkeypatch.setattr(modes, "EPOCHS", 1)


def shapes_of(classes, n=3000):
    x, y = gan_lib.make_shapes(n)
    keep = np.isin(y, classes)
    return gan_lib.scale_images(x[keep]), y[keep]


# ---------------------------------------------------------------- the classifier


def test_classifier_is_accurate_on_held_out_shapes_and_on_the_gans_own_set(model):
    assert modes.classifier_accuracy("shapes", model) >= 0.97
    x, y = gan_lib.make_shapes(1000)  # seed 0: the GAN's training set, apart from the classifier's seed-1 images
    probs = modes._predict(model, gan_lib.scale_images(x))
    assert np.mean(probs.argmax(axis=1) == y) >= 0.97


def test_held_out_images_are_not_trained_on():
    x_train, _, x_test, _ = modes._split("shapes", 0)
    assert len(x_test) == modes.N_LABELLED // 6 and len(x_train) + len(x_test) == modes.N_LABELLED
    flat = {row.tobytes() for row in x_train}
    assert not any(row.tobytes() in flat for row in x_test)


def test_second_call_loads_the_cached_file_and_does_not_train(model, cache, monkeypatch):
    path = modes.classifier_path("shapes", cache_dir=cache)
    stamp = os.stat(path).st_mtime_ns
    modes._LOADED.clear()  # as in a new process

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(modes, "_train", no_training)
    monkeypatch.setattr(keras.Model, "fit", no_training)
    again = modes.classifier("shapes", cache_dir=cache)
    assert again is not model and path in modes._LOADED  # read from the file
    assert os.stat(path).st_mtime_ns == stamp
    x = gan_lib.load_real_samples("shapes", limit=50)
    assert np.allclose(modes._predict(again, x), modes._predict(model, x), atol=1e-6)


def test_default_cache_follows_keras_home_and_names_dataset_recipe_and_seed(keras_home, monkeypatch):
    path = modes.classifier_path("mnist", seed=2)
    assert path == str(keras_home / "gan_lib" / f"classifier_mnist_{modes.RECIPE}_seed2.keras")
    monkeypatch.setattr(modes, "RECIPE", "v999")
    assert modes.classifier_path("mnist", seed=2) != path  # a changed recipe is a different file: it retrains


def test_corrupt_cache_file_is_trained_again(tiny_recipe, keras_home):
    path = modes.classifier_path("shapes")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"not a keras file")
    with pytest.warns(UserWarning, match="cannot be read.*training it again"):
        model = modes.classifier("shapes", verbose=False)
    assert model.output_shape == (None, 10)
    modes._LOADED.clear()
    assert modes._load(path) is not None  # the file was replaced by a readable one
    assert sorted(os.listdir(os.path.dirname(path))) == [os.path.basename(path)]  # no temporary left behind


def test_same_seed_same_weights_other_seed_other_weights(tiny_recipe, tmp_path):
    a = modes.classifier("shapes", cache_dir=tmp_path / "a", verbose=False)
    b = modes.classifier("shapes", cache_dir=tmp_path / "b", verbose=False)
    c = modes.classifier("shapes", cache_dir=tmp_path / "c", seed=1, verbose=False)
    wa, wb, wc = ([keras.ops.convert_to_numpy(v) for v in m.weights] for m in (a, b, c))
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb))
    assert not all(np.array_equal(x, y) for x, y in zip(wa, wc))


def write_fake_mnist(keras_home, n=120):
    """mnist.npz in KERAS_HOME/datasets, as Keras stores it: digits drawn as bars whose position is the label."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 10
    x = rng.integers(0, 30, (n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(y):
        x[i, :, 2 + 2 * label: 4 + 2 * label] = 255
    os.makedirs(keras_home / "datasets")
    np.savez(keras_home / "datasets" / "mnist.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    return x, y


def test_mnist_classifier_trains_on_labelled_digits_from_the_keras_cache(tiny_recipe, keras_home, monkeypatch):
    x, y = write_fake_mnist(keras_home)

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(data.keras.utils, "get_file", lambda fname, **kw: str(keras_home / "datasets" / fname))
    images, labels = data.labelled_arrays("mnist")
    assert images.shape == (120, 32, 32) and np.array_equal(labels, y) and np.array_equal(images[:, 2:30, 2:30], x)
    monkeypatch.setattr(data.keras.utils, "get_file", no_network)
    monkeypatch.setattr(modes, "labelled_arrays", lambda name: (images, labels))
    model = modes.classifier("mnist", verbose=False)
    assert model.input_shape == (None, 32, 32, 1)
    result = modes.mode_count(gan_lib.scale_images(images), "mnist", model)
    assert result["histogram"].sum() == 120
    # against MNIST's own class counts, not a uniform histogram
    assert result["kl"] == modes.mode_count(gan_lib.scale_images(images), "mnist", model, reference=modes.MNIST_COUNTS)["kl"]
    assert result["kl"] != modes.mode_count(gan_lib.scale_images(images), "mnist", model, reference=np.ones(10))["kl"]


def test_fashion_mnist_labels_come_with_their_images(keras_home):
    folder = keras_home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    images = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9, 2], np.uint8)
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, 7) + labels.tobytes())
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, 7, 28, 28) + images.tobytes())
    x, y = data.labelled_arrays("fashion_mnist")  # the files exist, so get_file does not download
    assert np.array_equal(y, labels) and y.dtype == np.int64
    assert x.shape == (7, 32, 32) and np.array_equal(x[:, 2:30, 2:30], images)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_offline_says_so_clearly(name, keras_home, monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(data.keras.utils, "get_file", no_network)
    with pytest.raises(gan_lib.DownloadError, match=f"the {name} classifier .* could not be downloaded: are you offline"):
        modes.classifier(name, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists() or not os.listdir(tmp_path / "c")


# ---------------------------------------------------------------- modes


def test_real_shapes_cover_all_ten_classes_evenly(model):
    result = modes.mode_count(gan_lib.load_real_samples("shapes", limit=1000), classifier=model)
    assert result["classes_found"] == 10 and result["min_count"] == 10
    assert result["histogram"].sum() == 1000 and result["histogram"].shape == (10,)
    assert result["kl"] < 0.03
    assert result["confident"] > 0.85


def test_three_classes_give_three_modes_and_a_large_kl(model):
    x, _ = shapes_of([0, 4, 7])
    result = modes.mode_count(x, classifier=model)
    assert result["classes_found"] == 3
    assert set(np.flatnonzero(result["histogram"] >= result["min_count"])) == {0, 4, 7}
    assert abs(result["kl"] - np.log(10 / 3)) < 0.05  # KL of 3 even classes against 10 even classes


@pytest.mark.parametrize("rare,found", [(3, 3), (2, 2)])
def test_a_class_is_found_from_its_minimum_count(model, rare, found):
    x, y = shapes_of([0, 1, 2])
    right = modes._predict(model, x).argmax(axis=1) == y  # images it classifies right: this tests the counting rule
    x, y = x[right], y[right]
    few = np.concatenate([x[y == 0][:100], x[y == 1][:100], x[y == 2][:rare]])  # 100, 100 and 2 or 3 images
    result = modes.mode_count(few, classifier=model)
    assert result["histogram"][:3].tolist() == [100, 100, rare]
    assert result["min_count"] == 3  # ceil(0.01 * 202 or 203)
    assert result["classes_found"] == found
    assert modes.mode_count(few, classifier=model, threshold=0.05)["classes_found"] == 2  # needs 11


def test_kl_is_measured_against_the_reference_histogram(model):
    x, y = gan_lib.make_shapes(4000)
    keep = np.concatenate([np.flatnonzero(y == c)[:30 * (c + 1)] for c in range(10)])  # 30, 60, ..., 300 images
    x, y = gan_lib.scale_images(x[keep]), y[keep]
    assert modes.mode_count(x, classifier=model)["kl"] > 0.1  # far from even classes
    assert modes.mode_count(x, classifier=model, reference=np.bincount(y, minlength=10))["kl"] < 0.02  # as in the data


def test_garbage_is_not_confident(model):
    rng = np.random.default_rng(7)
    noise = np.clip(rng.normal(0, 0.5, (300, 32, 32, 3)), -1, 1).astype(np.float32)
    assert modes.mode_count(noise, classifier=model)["confident"] < 0.1
    keras.utils.set_random_seed(1)
    g = gan_lib.define_generator(100)  # an untrained generator's blur
    fake, _ = gan_lib.generate_fake_samples(g, 100, 200, rng)
    assert modes.mode_count(fake, classifier=model)["confident"] < 0.1


def test_blends_of_two_classes_are_not_confident(model):
    """What a generator caught between two modes draws: half one shape, half another."""
    x, y = gan_lib.make_shapes(600)  # the GAN's set: the classifier never saw these, blended or not
    x = gan_lib.scale_images(x)
    a, b = np.flatnonzero(y[:300] != y[300:]), np.flatnonzero(y[:300] != y[300:]) + 300
    assert modes.mode_count((x[a] + x[b]) / 2, classifier=model)["confident"] < 0.2


def stub_classifier(probabilities):
    """A classifier that gives every image the same class probabilities."""
    return keras.Sequential([
        keras.Input((32, 32, 3)), keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", kernel_initializer="zeros",
                           bias_initializer=keras.initializers.Constant(np.log(probabilities))),
    ])


@pytest.mark.parametrize("top,confident", [(0.91, 1.0), (0.89, 0.0)])
def test_confident_means_a_top_probability_of_at_least_0_9(top, confident):
    p = np.r_[top, np.full(9, (1 - top) / 9)]
    result = modes.mode_count(np.zeros((20, 32, 32, 3), np.float32), classifier=stub_classifier(p))
    assert result["confident"] == confident
    assert result["histogram"].tolist() == [20] + [0] * 9 and result["classes_found"] == 1
    assert result["kl"] == pytest.approx(np.log(10))  # all in one of 10 even classes


def test_features_are_the_penultimate_layer(model):
    x = gan_lib.load_real_samples("shapes", limit=20)
    f = modes.features(x, classifier=model)
    assert f.shape == (20, 64) and f.dtype == np.float64
    w, b = (keras.ops.convert_to_numpy(v) for v in model.layers[-1].weights)
    logits = f @ w + b
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert np.allclose(softmax / softmax.sum(axis=1, keepdims=True), modes._predict(model, x), atol=1e-5)


# ---------------------------------------------------------------- memorisation


@pytest.fixture(scope="module")
def training():
    return gan_lib.load_real_samples("shapes", limit=1500)


def test_copies_of_training_images_are_all_memorised(training, model):
    picked = [3, 50, 700, 1499]
    idx, dist = memorisation.nearest_training(training[picked], training, k=2)
    assert idx[:, 0].tolist() == picked and (dist[:, 0] == 0).all() and (dist[:, 1] > 0).all()
    assert memorisation.memorisation_score(training[picked], training) == 1.0
    idx, _ = memorisation.nearest_training(training[picked], training, space="features", classifier=model)
    assert idx[:, 0].tolist() == picked
    assert memorisation.memorisation_score(training[picked], training, space="features", classifier=model) == 1.0


def test_fresh_images_score_low(training, model):
    fresh = gan_lib.scale_images(gan_lib.make_shapes(1800)[0][1500:])  # images 1500.. are not in training
    assert memorisation.memorisation_score(fresh, training) < 0.15  # about 0.05 by construction
    assert memorisation.memorisation_score(fresh, training, space="features", classifier=model) < 0.15


def test_chunked_search_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (7, 4, 4, 1)).astype(np.float32)
    b = rng.uniform(-1, 1, (11, 4, 4, 1)).astype(np.float32)
    direct = np.linalg.norm(a.reshape(7, 1, -1).astype(np.float64) - b.reshape(1, 11, -1), axis=-1)  # (7, 11)
    want = np.argsort(direct, axis=1)[:, :3]
    for chunk in (1, 2, 256):
        idx, dist = memorisation.nearest_training(a, b, k=3, chunk=chunk)
        assert np.array_equal(idx, want)
        assert np.allclose(dist, np.take_along_axis(direct, want, axis=1), rtol=1e-12)
    idx, _ = memorisation.nearest_training(a, b, k=11)
    assert np.array_equal(idx, np.argsort(direct, axis=1))
    twins = np.concatenate([b, b])  # every image twice: a tie goes to the lower index
    for chunk in (1, 256):
        idx, dist = memorisation.nearest_training(a, twins, k=2, chunk=chunk)
        assert np.array_equal(idx, np.stack([want[:, 0], want[:, 0] + 11], axis=1)) and (dist[:, 0] == dist[:, 1]).all()


def test_copies_are_memorised_even_when_training_holds_duplicates():
    rng = np.random.default_rng(2)
    training = np.repeat(rng.uniform(-1, 1, (10, 4, 4, 1)).astype(np.float32), 2, axis=0)  # each image twice
    assert memorisation.memorisation_score(training[:5], training) == 1.0  # reference distance 0: at most 0 away counts
    assert memorisation.memorisation_score(training[:5] + 0.01, training) == 0.0


def test_reference_distance_skips_the_image_itself():
    """Training made of pairs of near twins: each image's nearest other is its twin, so a sample
    exactly between twins is closer than none of them, and a twin's copy is memorised."""
    rng = np.random.default_rng(1)
    base = rng.uniform(-0.9, 0.5, (20, 4, 4, 1)).astype(np.float32)
    training = np.concatenate([base, base + 0.05])  # twin i + 20 at distance 0.2 from i
    assert memorisation.memorisation_score(base + 0.4, training, percentile=50) == 0.0  # 0.4 * 4 = 1.6 away, not 0
    assert memorisation.memorisation_score(base + 0.025, training, percentile=50) == 1.0  # 0.1 from each twin


def test_plot_nearest_shows_each_sample_beside_its_neighbours(training, tmp_path):
    fig = memorisation.plot_nearest(training[:3], training, n=3, k=2)
    assert np.asarray(fig.axes).size == 9 and fig.axes[1].get_title() == "0.00"
    path = tmp_path / "nearest.png"
    memorisation.plot_nearest(training[:2], training, n=8, k=1, path=str(path))  # n above len(samples) shows them all
    assert path.read_bytes().startswith(b"\x89PNG")
    import matplotlib.pyplot as plt

    plt.close("all")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("call,message", [
    (lambda m: modes.mode_count(np.zeros((4, 28, 28, 1), np.float32), classifier=m), "28x28x1 but the classifier takes 32x32x3"),
    (lambda m: modes.mode_count(np.zeros((4, 32, 32, 3), np.uint8), classifier=m), "not scaled"),
    (lambda m: modes.mode_count(np.zeros((4, 32, 32, 3), np.float32), classifier=m, threshold=0), "threshold"),
    (lambda m: modes.mode_count(np.zeros((4, 32, 32, 3), np.float32), classifier=m, reference=[1, 2]), "reference must be 10"),
    (lambda m: modes.mode_count(np.zeros((4, 32, 32, 3), np.float32), "cifar10"), "no mode-counting classifier.*cifar10"),
    (lambda m: modes.classifier("digits"), "no mode-counting classifier for dataset 'digits'"),
    (lambda m: modes.features(np.zeros((4, 32, 32), np.float32), classifier=m), "32x32x1 but the classifier takes"),
    (lambda m: memorisation.nearest_training(np.zeros((2, 8, 8, 3), np.float32), np.zeros((5, 8, 8, 1), np.float32)),
     "samples are 8x8x3 images but training images are 8x8x1"),
    (lambda m: memorisation.nearest_training(np.zeros((2, 8, 8, 3), np.float32), np.zeros((5, 8, 8, 3), np.float32), k=6),
     "k must be a whole number from 1 to the 5"),
    (lambda m: memorisation.nearest_training(np.zeros((2, 8, 8, 3), np.float32), np.zeros((5, 8, 8, 3), np.float32), space="x"),
     "space must be 'pixels' or 'features'"),
    (lambda m: memorisation.nearest_training(np.zeros((2, 8, 8, 3), np.float32), np.zeros((5, 8, 8, 3), np.float32), chunk=0),
     "chunk must be"),
    (lambda m: memorisation.memorisation_score(np.zeros((2, 8, 8, 3), np.float32), np.zeros((1, 8, 8, 3), np.float32)),
     "at least 2 images"),
    (lambda m: memorisation.memorisation_score(np.zeros((2, 8, 8, 3), np.float32), np.zeros((3, 8, 8, 3), np.float32),
                                        percentile=100), "percentile"),
    (lambda m: memorisation.plot_nearest(np.zeros((2, 8, 8, 3), np.float32), np.zeros((3, 8, 8, 3), np.float32), n=0),
     "n is how many"),
])
def test_bad_input_is_one_clear_value_error(model, call, message):
    with pytest.raises(ValueError, match=message):
        call(model)


def test_public_names_are_exported():
    for name in ("classifier", "classifier_accuracy", "mode_count", "conditional_accuracy"):
        assert getattr(gan_lib, name) is getattr(modes, name) and name in gan_lib.__all__
    for name in ("nearest_training", "memorisation_score", "plot_nearest"):
        assert getattr(gan_lib, name) is getattr(memorisation, name) and name in gan_lib.__all__
    assert not hasattr(gan_lib, "features")  # too generic a name for the package: gan_lib.modes.features
