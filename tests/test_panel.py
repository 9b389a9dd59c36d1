"""The control panel: defaults, and one clear ValueError per bad setting."""

import pytest

import gan_lib
from gan_lib.panel import parse_setting


def test_defaults_are_the_tutorials():
    p = gan_lib.check_panel()
    assert (p["latent_dim"], p["n_epochs"], p["n_batch"], p["summarization"], p["batchloss"]) == (100, 200, 128, 5, 10)
    assert p["label_smoothing"] == 0 and p["label_noise"] == 0 and p["load_weights"] is False
    assert (p["image_size"], p["resize"], p["channels"]) == (0, "crop", 0)  # folders at the architecture's size


def test_overrides_win_and_ints_pass_as_floats():
    p = gan_lib.check_panel({"n_batch": 64, "seed": 5}, n_batch=32)
    assert p["n_batch"] == 32 and p["seed"] == 5
    assert gan_lib.check_panel(label_smoothing=0)["label_smoothing"] == 0.0


@pytest.mark.parametrize(
    "setting,message",
    [
        ({"n_batchh": 4}, r"unknown panel key 'n_batchh'.*Did you mean 'n_batch'"),
        ({"n_epochs": "10"}, r"'n_epochs' must be int, got str"),
        ({"n_batch": 64.0}, r"'n_batch' must be int, got float"),
        ({"load_weights": 1}, r"'load_weights' must be bool"),
        ({"n_batch": 1}, r"'n_batch' must be at least 2"),
        ({"n_batch": 33}, r"'n_batch' must be even"),
        ({"n_epochs": 0}, r"'n_epochs' must be at least 1"),
        ({"latent_dim": 0}, r"'latent_dim' must be at least 1"),
        ({"d_lr": 1}, r"'d_lr' must be between 0 and 1"),
        ({"label_smoothing": 0.7}, r"'label_smoothing' must be below 0.5"),
        ({"keep_checkpoints": 0}, r"'keep_checkpoints' must be at least 1"),
        ({"dataset": ""}, r"'dataset' must name a dataset"),
        ({"seed": 2**32}, r"'seed' must be below 2\*\*32"),
        ({"image_size": 60}, r"'image_size' must be 0 \(the architecture's size\) or a multiple of 8"),
        ({"image_size": 2048}, r"'image_size' must be .* from 8 to 1024"),
        ({"image_size": -8}, r"'image_size' must be at least 0"),
        ({"resize": "pad"}, r"'resize' must be one of crop, stretch"),
        ({"channels": 4}, r"'channels' must be 0 .*, 1 \(greyscale\) or 3 \(RGB\)"),
        ({"arch": "gan"}, r"'arch' must be one of tutorial, dcgan, .*got 'gan'"),
        ({"width": 0}, r"'width' must be at least 1"),
        ({"width": 8.0}, r"'width' must be int, got float"),
    ],
)
def test_bad_settings_name_the_key(setting, message):
    with pytest.raises(ValueError, match=message):
        gan_lib.check_panel(setting)


def test_dcgan_defaults_apply_where_the_caller_did_not_set_the_key():
    tutorial, dcgan = gan_lib.check_panel(), gan_lib.check_panel(arch="dcgan")
    assert (tutorial["arch"], tutorial["width"], tutorial["label_smoothing"]) == ("tutorial", 64, 0.0)
    assert (dcgan["label_smoothing"], dcgan["d_lr"], dcgan["g_lr"], dcgan["beta_1"]) == (0.1, 0.0002, 0.0002, 0.5)
    assert {k for k in dcgan if dcgan[k] != tutorial[k]} == {"arch", "label_smoothing"}
    assert gan_lib.check_panel({"arch": "dcgan", "label_smoothing": 0.0})["label_smoothing"] == 0.0  # a set value wins
    assert gan_lib.check_panel({"arch": "dcgan"}, label_smoothing=0.2)["label_smoothing"] == 0.2
    assert gan_lib.check_panel(dcgan) == dcgan and gan_lib.check_panel(tutorial, arch="dcgan")["label_smoothing"] == 0.0


def test_parse_setting_types_values_like_the_defaults():
    assert parse_setting("n_batch=64") == ("n_batch", 64)
    assert parse_setting("label_smoothing=0.1") == ("label_smoothing", 0.1)
    assert parse_setting("load_weights=true") == ("load_weights", True)
    assert parse_setting("dataset=/data/x.npz") == ("dataset", "/data/x.npz")
    with pytest.raises(ValueError, match="wants an integer"):
        parse_setting("n_batch=many")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_setting("n_batch")
    with pytest.raises(ValueError, match="unknown panel key"):
        parse_setting("nbatch=3")


def test_batch_larger_than_dataset_is_refused(shapes_small, tmp_path):
    d, g = gan_lib.define_discriminator(), gan_lib.define_generator(100)
    with pytest.raises(ValueError, match="'n_batch' is 256 but the dataset has only 128"):
        gan_lib.train(g, d, gan_lib.define_gan(g, d), shapes_small, 100, n_epochs=1, n_batch=256,
                      run_dir=str(tmp_path / "r"), verbose=0)
    assert not (tmp_path / "r").exists(), "nothing may be written for bad input"
