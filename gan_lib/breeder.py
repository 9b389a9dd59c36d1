"""A GAN breeder (after Joel Simon's GANBreeder): breed latent points, pick the child you like, breed again.

The logic is plain NumPy and needs no browser: `Breeder` holds one or two parents (latent points) and their
children; `pick(i)` makes child i the only parent, `pick(i, mate=True)` pairs it with the current first parent;
`back()` undoes a pick exactly. A child of two parents takes each latent coordinate from the second parent with
probability `crossover` (uniform crossover: each coordinate is still one standard normal number, so the child is
as typical a point as its parents); then `mutation` turns it towards a fresh random point along the great circle
(slerp, latent.interpolate_points): 0 keeps it, 1 replaces it, and either way its length stays a Gaussian point's.

`breeder_widget` is the thin ipywidgets layer over it for a notebook (Colab ships ipywidgets 7.7.1; 8 works too);
`plot_family` is the static picture of a breeding history, for where widgets cannot run.
"""

import io

import keras
import matplotlib.pyplot as plt
import numpy as np

from .latent import slerp
from .plots import image_grid


def frozen(a):
    """a, read-only: the breeder's parents and children are kept in its history as they were."""
    a.setflags(write=False)
    return a


def _unit_share(value, name):
    """value as a float in [0, 1]; ValueError naming the control otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


class Breeder:
    """Parents (1 or 2, latent_dim) and their children (n_children, latent_dim), float32, and how they got there.

    history: one entry a generation before this one, (parents, children, picked child, mate); back() pops it.
    lineage(): every parent picked so far, oldest first, the start's included.
    """

    def __init__(self, latent_dim, n_children=9, mutation=0.5, crossover=0.5, seed=None, parents=None):
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 2:
            raise ValueError(f"latent_dim must be an integer of at least 2 (the generator's input size; a 1-D point has "
                             f"no sphere to turn on), got {latent_dim!r}")
        if isinstance(n_children, bool) or not isinstance(n_children, (int, np.integer)) or not 1 <= n_children <= 64:
            raise ValueError(f"n_children must be an integer from 1 to 64, got {n_children!r}")
        self.latent_dim, self.n_children = int(latent_dim), int(n_children)
        self.mutation, self.crossover = _unit_share(mutation, "mutation"), _unit_share(crossover, "crossover")
        self.rng = np.random.default_rng(seed)
        if parents is None:
            parents = self.rng.standard_normal((1, self.latent_dim))
        parents = np.array(parents, dtype=np.float32)  # a copy: the caller's array stays theirs
        if parents.ndim == 1:
            parents = parents[None]
        if parents.shape not in ((1, self.latent_dim), (2, self.latent_dim)) or not np.isfinite(parents).all():
            raise ValueError(f"parents must be 1 or 2 finite latent points, shape (1 or 2, {self.latent_dim}), "
                             f"got shape {parents.shape}")
        self.parents = frozen(parents)
        self.history = []
        self.children = self.breed()

    def breed(self):
        """New children of the current parents (also kept as self.children): float32 (n_children, latent_dim),
        read-only, like self.parents (history keeps them, and back() must find them as they were)."""
        a = self.parents[0]
        children = np.empty((self.n_children, self.latent_dim), dtype=np.float32)
        for i in range(self.n_children):
            base = a
            if len(self.parents) == 2:  # uniform crossover: each coordinate from b with probability `crossover`
                base = np.where(self.rng.random(self.latent_dim) < self.crossover, self.parents[1], a)
            children[i] = slerp(base, self.rng.standard_normal(self.latent_dim), self.mutation)  # turn towards fresh
        self.children = frozen(children)
        return self.children

    def pick(self, i, mate=False):
        """Child i becomes the parent (mate=True: the second parent, beside the current first); breeds again.
        Nothing changes if breeding fails."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.n_children:
            raise ValueError(f"pick a child from 0 to {self.n_children - 1}, got {i!r}")
        before = (self.parents, self.children, int(i), bool(mate))
        child = self.children[i]
        self.parents = frozen(np.stack([self.parents[0], child]) if mate else child[None].copy())
        try:
            self.breed()
        except BaseException:
            self.parents, self.children = before[:2]
            raise
        self.history.append(before)
        return self.children

    def back(self):
        """Undo the last pick: the parents and children before it, exactly. ValueError at the start."""
        if not self.history:
            raise ValueError("nothing to undo: this is the first generation")
        self.parents, self.children, _, _ = self.history.pop()
        return self.children

    def lineage(self):
        """Every parent in the order it was picked, the start's first: float32 (n, latent_dim)."""
        points = [self.history[0][0][0] if self.history else self.parents[0]]
        for parents, children, i, _ in self.history:
            points.append(children[i])
        return np.stack(points).astype(np.float32)



def drawer(g_model):
    """points (n, latent_dim) -> images (n, H, W, C) in [-1, 1] as NumPy. A Keras generator runs in inference mode
    (BatchNorm's moving statistics); any other callable is used as it is."""
    if isinstance(g_model, keras.Model):
        return lambda points: keras.ops.convert_to_numpy(g_model(points, training=False))
    if not callable(g_model):
        raise ValueError(f"the breeder needs a generator (a Keras model or a function of latent points), "
                         f"got {type(g_model).__name__}")
    return lambda points: np.asarray(g_model(points))


def to_png(image, scale=3):
    """One image (H, W, C) in [-1, 1] -> PNG bytes, each pixel drawn scale x scale (nearest: crisp pixels)."""
    from PIL import Image

    x = image_grid(np.asarray(image)[None], 1)  # uint8 (H, W, C)
    picture = Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x)
    picture = picture.resize((x.shape[1] * scale, x.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


class BreederWidget:
    """The breeder in a notebook: display(view.box). A button under each child picks it; the rest are controls.

    Every control acts through the Breeder (view.breeder), then refresh() draws what changed: the parents, the
    children and the lineage (the last `keep` parents picked), in one generator call.
    """

    def __init__(self, g_model, breeder=None, scale=3, columns=None, keep=10):
        import ipywidgets as widgets  # the notebook layer only: the logic above needs no widgets

        self.draw = drawer(g_model)
        if breeder is None:
            if not isinstance(g_model, keras.Model):
                raise ValueError("give a Breeder (breeder=Breeder(latent_dim)) when the generator is a function")
            breeder = Breeder(g_model.input_shape[-1])
        self.breeder, self.scale, self.keep = breeder, scale, keep
        def image():
            return widgets.Image(format="png")

        self.parent_images = [image(), image()]
        self.child_images = [image() for _ in range(breeder.n_children)]
        self.child_buttons = [widgets.Button(description=f"child {i}", layout=widgets.Layout(width="auto"))
                              for i in range(breeder.n_children)]
        for i, button in enumerate(self.child_buttons):
            button.on_click(lambda _, i=i: self.choose(i))
        self.mode = widgets.ToggleButtons(options=["pick", "mate"], value="pick",
                                          tooltips=["the child becomes the only parent",
                                                    "the child breeds with the first parent"])
        self.mutation = widgets.FloatSlider(value=breeder.mutation, min=0, max=1, step=0.05, description="mutation",
                                            continuous_update=False)
        self.crossover = widgets.FloatSlider(value=breeder.crossover, min=0, max=1, step=0.05,
                                             description="crossover", continuous_update=False)
        self.mutation.observe(lambda change: self.set_share("mutation", change["new"]), names="value")
        self.crossover.observe(lambda change: self.set_share("crossover", change["new"]), names="value")
        self.again = widgets.Button(description="new children")
        self.again.on_click(lambda _: self.rebreed())
        self.undo = widgets.Button(description="back")
        self.undo.on_click(lambda _: self.go_back())
        self.lineage_images = [image() for _ in range(keep)]
        self.status = widgets.HTML()
        columns = columns or int(np.ceil(np.sqrt(breeder.n_children)))
        grid = widgets.GridBox([widgets.VBox([im, b]) for im, b in zip(self.child_images, self.child_buttons)],
                               layout=widgets.Layout(grid_template_columns=f"repeat({columns}, max-content)"))
        self.box = widgets.VBox([
            widgets.HBox([widgets.HTML("<b>parents</b>"), *self.parent_images]),
            widgets.HBox([self.mode, self.undo, self.again]), widgets.HBox([self.mutation, self.crossover]),
            grid, widgets.HTML("<b>lineage</b> (oldest first)"), widgets.HBox(self.lineage_images), self.status])
        self.refresh()

    def choose(self, i):
        self.breeder.pick(i, mate=self.mode.value == "mate")
        self.refresh()

    def set_share(self, name, value):
        setattr(self.breeder, name, _unit_share(value, name))
        self.rebreed()

    def rebreed(self):
        self.breeder.breed()
        self.refresh()

    def go_back(self):
        if self.breeder.history:
            self.breeder.back()
            self.refresh()
        else:
            self.status.value = "nothing to undo: this is the first generation"

    def refresh(self):
        b = self.breeder
        lineage = b.lineage()[-self.keep:]
        images = self.draw(np.concatenate([b.parents, b.children, lineage]).astype(np.float32))
        parents, children, old = np.split(images, [len(b.parents), len(b.parents) + b.n_children])
        for k, im in enumerate(self.parent_images):
            im.layout.display = None if k < len(parents) else "none"
            if k < len(parents):
                im.value = to_png(parents[k], self.scale)
        for im, x in zip(self.child_images, children):
            im.value = to_png(x, self.scale)
        for k, im in enumerate(self.lineage_images):
            im.layout.display = None if k < len(old) else "none"
            if k < len(old):
                im.value = to_png(old[k], max(1, self.scale - 1))
        self.crossover.disabled = len(parents) == 1  # crossover needs two parents
        self.status.value = (f"generation {len(b.history) + 1}: {len(parents)} parent{'s' * (len(parents) > 1)}, "
                             f"{b.n_children} children, mutation {b.mutation:.2f}"
                             + (f", crossover {b.crossover:.2f}" if len(parents) > 1 else ""))


def breeder_widget(g_model, breeder=None, scale=3, columns=None):
    """A BreederWidget over g_model (a Keras generator or a function of latent points): display(view.box)."""
    return BreederWidget(g_model, breeder, scale, columns)


def plot_family(g_model, breeder, size=1.0):
    """The breeding so far as a figure: a row a generation, its parents then its children, the picked one framed."""
    draw = drawer(g_model)
    rows = [(p, c, i, mate) for p, c, i, mate in breeder.history] + [(breeder.parents, breeder.children, None, None)]
    width = 2 + breeder.n_children
    fig, axes = plt.subplots(len(rows), width, figsize=(width * size, len(rows) * size * 1.15), squeeze=False)
    for r, (parents, children, picked, mate) in enumerate(rows):
        images = draw(np.concatenate([parents, children]).astype(np.float32))
        x = np.clip((images + 1) / 2, 0, 1)
        cells = [x[0], x[1] if len(parents) == 2 else None, *x[len(parents):]]
        for k, (ax, im) in enumerate(zip(axes[r], cells)):
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(k - 2 == picked)
                spine.set(color="crimson", linewidth=3)
            if im is None:
                ax.axis("off")
                continue
            ax.imshow(im[..., 0] if im.shape[-1] == 1 else im, cmap="gray", vmin=0, vmax=1)
        label = "now" if picked is None else f"picked {picked}" + (" (mate)" if mate else "")
        axes[r][0].set_ylabel(f"gen {r + 1}\n{label}", fontsize=8)
    axes[0][0].set_title("parents", fontsize=8, loc="left")
    axes[0][2].set_title("children", fontsize=8, loc="left")
    fig.tight_layout()
    return fig
