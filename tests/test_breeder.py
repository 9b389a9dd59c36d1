"""The GAN breeder (gan_lib/breeder.py): its logic without a browser, the widget's callbacks, and the widget in a live
Jupyter kernel, as notebook 07 uses it."""

import json
import sys
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gan_lib import breeder, latent
from gan_lib.breeder import Breeder, breeder_widget, plot_family, to_png

D = 32  # latent_dim of the tests' breeders
W = np.random.default_rng(0).standard_normal((D, 8 * 8 * 3))


def draw(points):
    """A stand-in generator: latent points (n, D) -> images (n, 8, 8, 3) in [-1, 1], different for different points."""
    return np.tanh(np.asarray(points) @ W / 4).reshape(-1, 8, 8, 3)


def test_same_seed_same_children_and_children_differ():
    a, b = Breeder(D, seed=3), Breeder(D, seed=3)
    np.testing.assert_array_equal(a.children, b.children)
    assert a.children.shape == (9, D) and a.children.dtype == np.float32
    assert not np.array_equal(a.children, Breeder(D, seed=4).children)
    assert len({c.tobytes() for c in a.children}) == 9  # nine different children


def test_mutation_zero_keeps_the_parent_and_one_forgets_it():
    parent = np.random.default_rng(1).standard_normal(D).astype(np.float32)
    kept = Breeder(D, mutation=0.0, parents=parent, seed=0)
    np.testing.assert_array_equal(kept.children, np.repeat(parent[None], 9, axis=0))
    gone = Breeder(D, mutation=1.0, parents=parent, seed=0)
    cosines = gone.children @ parent / (np.linalg.norm(gone.children, axis=1) * np.linalg.norm(parent))
    assert np.abs(cosines).max() < 0.8  # fresh random points, unrelated to the parent
    half = Breeder(D, mutation=0.3, parents=parent, seed=0)
    cosines = half.children @ parent / (np.linalg.norm(half.children, axis=1) * np.linalg.norm(parent))
    assert cosines.min() > 0.6  # near the parent, not on it
    assert not np.allclose(half.children, parent)


def test_a_child_is_as_long_as_a_gaussian_point():
    """Slerp keeps the length between the parent's and the fresh point's: no washed-out short averages."""
    b = Breeder(512, n_children=32, mutation=0.5, seed=2)
    lengths = np.linalg.norm(b.children, axis=1)
    assert np.all(np.abs(lengths / np.sqrt(512) - 1) < 0.15), lengths
    straight = (b.parents[0] + np.random.default_rng(0).standard_normal(512)) / 2  # what a plain average gives
    assert np.linalg.norm(straight) / np.sqrt(512) < 0.8


def test_crossover_takes_each_coordinate_from_one_parent():
    rng = np.random.default_rng(5)
    pa, pb = rng.standard_normal((2, 256)).astype(np.float32)
    for share, expected in ((0.0, pa), (1.0, pb)):
        b = Breeder(256, mutation=0.0, crossover=share, parents=np.stack([pa, pb]), seed=0)
        np.testing.assert_array_equal(b.children, np.repeat(expected[None], 9, axis=0))
    b = Breeder(256, n_children=20, mutation=0.0, crossover=0.25, parents=np.stack([pa, pb]), seed=0)
    from_b = b.children == pb
    assert np.all(from_b | (b.children == pa))  # every coordinate is one parent's
    assert 0.18 < from_b.mean() < 0.32  # a quarter from the second parent
    assert len({c.tobytes() for c in b.children}) == 20  # each child its own draw of coordinates


def test_pick_mate_back_and_lineage():
    b = Breeder(D, seed=0)
    start, first_children = b.parents.copy(), b.children.copy()
    b.pick(4)
    np.testing.assert_array_equal(b.parents, first_children[4][None])
    second_children = b.children.copy()
    b.pick(2, mate=True)
    np.testing.assert_array_equal(b.parents, np.stack([first_children[4], second_children[2]]))
    np.testing.assert_array_equal(b.lineage(), np.stack([start[0], first_children[4], second_children[2]]))
    assert [h[2:] for h in b.history] == [(4, False), (2, True)]
    b.back()
    np.testing.assert_array_equal(b.children, second_children)  # exactly the generation before
    np.testing.assert_array_equal(b.parents, first_children[4][None])
    b.back()
    np.testing.assert_array_equal(b.parents, start)
    np.testing.assert_array_equal(b.children, first_children)
    with pytest.raises(ValueError, match="nothing to undo"):
        b.back()


def test_mating_again_keeps_the_first_parent_and_the_kept_arrays_cannot_change():
    b = Breeder(D, n_children=4, seed=2)
    b.pick(0)
    first = b.parents[0].copy()
    b.pick(1, mate=True)
    second_generation = b.children.copy()
    b.pick(3, mate=True)  # two parents already: the picked child replaces the second
    np.testing.assert_array_equal(b.parents, np.stack([first, second_generation[3]]))
    with pytest.raises(ValueError, match="read-only"):
        b.children[0, 0] = 0.0  # what history keeps cannot be changed behind its back
    mine = np.ones((1, D), np.float32)
    Breeder(D, parents=mine, seed=0).pick(0)
    assert (mine == 1).all()  # the caller's parents are copied


def test_a_failed_breeding_changes_nothing(monkeypatch):
    b = Breeder(D, n_children=4, seed=0)
    parents, children = b.parents, b.children
    monkeypatch.setattr(b, "breed", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        b.pick(2)
    assert b.parents is parents and b.children is children and b.history == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(mutation=1.5), "mutation must be a number from 0 to 1"),
    (dict(crossover=-0.1), "crossover must be a number from 0 to 1"),
    (dict(mutation="a lot"), "mutation must be"),
    (dict(n_children=0), "n_children must be an integer from 1 to 64"),
    (dict(parents=np.zeros((3, D))), r"parents must be 1 or 2 finite latent points, shape \(1 or 2, 32\)"),
    (dict(parents=np.full(D, np.nan)), "finite"),
])
def test_bad_settings_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Breeder(D, **kwargs)


def test_a_one_dimensional_latent_space_is_refused():
    with pytest.raises(ValueError, match="latent_dim must be an integer of at least 2"):
        Breeder(1)


def test_bad_pick_and_bad_generator():
    b = Breeder(D, n_children=4, seed=0)
    with pytest.raises(ValueError, match="pick a child from 0 to 3, got 4"):
        b.pick(4)
    assert b.history == []  # nothing changed
    with pytest.raises(ValueError, match="needs a generator"):
        breeder_widget("generator.keras", b)


def test_slerp_keeps_its_ends_and_its_path():
    p, q = np.random.default_rng(0).standard_normal((2, D))
    np.testing.assert_array_equal(latent.slerp(p, q, 0), p.astype(np.float32))
    np.testing.assert_array_equal(latent.slerp(p, q, 1), q.astype(np.float32))
    path = latent.interpolate_points(p, q, 5, kind="slerp")
    np.testing.assert_allclose(latent.slerp(p, q, 0.25), path[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="t must be a number from 0 to 1"):
        latent.slerp(p, q, 2)
    with pytest.raises(ValueError, match="opposite directions"):
        latent.slerp(p, -2 * p, 0.5)  # no single great circle: not the zero vector


def test_widget_callbacks_drive_the_breeder():
    b = Breeder(D, n_children=6, seed=1)
    view = breeder_widget(draw, b)
    assert view.status.value.startswith("generation 1: 1 parent, 6 children")
    assert view.parent_images[1].layout.display == "none"  # one parent: the second slot hidden
    assert view.crossover.disabled
    child, before = b.children[2].copy(), view.child_images[0].value
    view.child_buttons[2].click()
    np.testing.assert_array_equal(b.parents, child[None])
    assert view.parent_images[0].value == to_png(draw(child[None])[0], 3)  # the picked child is drawn as parent
    assert view.child_images[0].value != before  # new children drawn
    assert view.status.value.startswith("generation 2")
    view.mode.value = "mate"
    view.child_buttons[0].click()
    assert b.parents.shape == (2, D) and view.parent_images[1].layout.display is None
    assert not view.crossover.disabled
    children = b.children.copy()
    view.mutation.value = 0.1  # a slider breeds again with its new value
    assert b.mutation == 0.1 and not np.array_equal(b.children, children)
    view.crossover.value = 0.9
    assert b.crossover == 0.9
    view.again.click()
    assert len(b.history) == 2
    for _ in range(3):
        view.undo.click()
    assert b.history == [] and view.status.value == "nothing to undo: this is the first generation"


def test_the_widget_keeps_the_last_picks_and_makes_its_own_breeder_for_a_keras_generator():
    import keras

    b = Breeder(D, n_children=3, seed=0)
    view = breeder.BreederWidget(draw, b, keep=2)
    for _ in range(3):
        view.child_buttons[0].click()
    shown = [im.layout.display is None for im in view.lineage_images]
    assert len(b.lineage()) == 4 and shown == [True, True]  # the last 2 of 4 parents
    assert view.lineage_images[1].value == to_png(draw(b.lineage()[-1:])[0], 2)
    g = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4 * 4 * 3, activation="tanh"),
                          keras.layers.Reshape((4, 4, 3))])
    own = breeder_widget(g)
    assert own.breeder.latent_dim == 8 and own.breeder.n_children == 9 and len(own.child_images) == 9


def test_plot_family_draws_a_row_a_generation():
    b = Breeder(D, n_children=4, seed=0)
    b.pick(1)
    b.pick(3, mate=True)
    fig = plot_family(draw, b)
    axes = np.array(fig.axes).reshape(3, 6)  # 3 generations, 2 parent slots + 4 children
    assert [len(ax.images) for ax in axes[0]] == [1, 0, 1, 1, 1, 1]  # one parent: the second slot empty
    assert [len(ax.images) for ax in axes[2]] == [1, 1, 1, 1, 1, 1]  # two parents now
    framed = [[ax.spines["top"].get_visible() for ax in row[2:]] for row in axes]
    assert framed == [[False, True, False, False], [False, False, False, True], [False] * 4]
    plt.close(fig)


LIVE = """
import json
import sys
import keras
import numpy as np
from gan_lib.breeder import Breeder, breeder_widget

g = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4 * 4 * 3, activation="tanh"), keras.layers.Reshape((4, 4, 3))])
view = breeder_widget(g, Breeder(8, n_children=4, seed=0))
display(view.box)
picked = view.breeder.children[3].tolist()
view.child_buttons[3].click()
view.mode.value = "mate"
second = view.breeder.children[1].tolist()
view.child_buttons[1].click()
state = {"python": sys.executable, "picked": picked, "second": second, "parents": view.breeder.parents.tolist()}
print(json.dumps({**state, "status": view.status.value, "history": [h[2:] for h in view.breeder.history]}))
"""


def test_the_widget_in_a_live_jupyter_kernel():
    """In a real kernel (the notebook's): the widget displays as a widget view and its buttons breed."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        outputs = []
        reply = client.execute_interactive(textwrap.dedent(LIVE), timeout=240,
                                           output_hook=lambda msg: outputs.append(msg))
        assert reply["content"]["status"] == "ok", reply["content"]
        views = [m for m in outputs if m["msg_type"] == "display_data"]
        assert views and "application/vnd.jupyter.widget-view+json" in views[0]["content"]["data"]
        text = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream" and
                       m["content"]["name"] == "stdout")
        state = json.loads(text.strip().splitlines()[-1])
        assert state["python"] == sys.executable  # the kernel runs this environment's Python (and its ipywidgets)
        np.testing.assert_array_equal(state["parents"], [state["picked"], state["second"]])
        assert state["history"] == [[3, False], [1, True]]
        assert state["status"].startswith("generation 3: 2 parents, 4 children")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
