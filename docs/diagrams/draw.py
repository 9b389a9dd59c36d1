"""The course's diagrams: drawn here with matplotlib, written to docs/diagrams/NAME.png and attached to the
markdown cells that show them (attachment:NAME.png), so Colab and GitHub render them without the repository.

    python docs/diagrams/draw.py          # draw every diagram and refresh the notebooks' attachments

tests/test_notebooks.py checks that each attachment is the file here, byte for byte.
"""

import base64
import io
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOKS = os.path.join(HERE, "..", "..", "notebooks")
HOST, DEVICE, READ = "#dbe8f5", "#f6dcc4", "#d8efd6"


def canvas(size, xlim, ylim):
    """A figure of `size` inches at 100 dpi whose one axis spans xlim x ylim in diagram units, drawn without axes."""
    fig, ax = plt.subplots(figsize=size, dpi=100)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")
    return fig, ax


def box(ax, x, y, w, text, colour, h=0.7):
    ax.add_patch(FancyBboxPatch((x, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=colour,
                                ec="#555555", lw=0.8))
    ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=7.5)


def loop_vs_fused():
    """One iteration of the tutorial's loop (seven calls, the host waiting on each) against the fused step's one."""
    fig, ax = canvas((10, 3.4), (-1.6, 19.5), (-0.5, 5.2))
    ax.text(-1.6, 4.85, "the tutorial's loop: one iteration is 7 calls; each returns to Python before the next starts",
            fontsize=9, weight="bold")
    calls = [("real half\n(NumPy)", HOST, 1.6), ("G(z)\nfake half", DEVICE, 1.5),
             ("D's scores\n(history)", DEVICE, 1.7), ("D.train_on_batch\nreal, label 1", DEVICE, 2.6),
             ("D.train_on_batch\nfake, label 0", DEVICE, 2.6), ("latent points\n(NumPy)", HOST, 1.8),
             ("gan.train_on_batch\nG through D, label 1", DEVICE, 2.8)]
    x = 0.0
    for text, colour, w in calls:
        box(ax, x, 3.9 if colour == HOST else 2.9, w - 0.15, text, colour)
        x += w
    ax.text(x + 0.1, 3.4, "... every batch", fontsize=8, va="center")
    ax.text(-1.6, 1.85, "the fused step: one compiled call per iteration; the data and the losses stay on the device",
            fontsize=9, weight="bold")
    box(ax, 0, 1.0, 1.4, "step()", HOST)
    box(ax, 1.55, 0.0, 8.4, "pick the real half, draw z, D learns (real), D learns (fake),\nG learns through D: "
        "one graph, no Python in between", DEVICE, h=0.8)
    box(ax, 10.1, 1.0, 1.4, "step()", HOST)
    box(ax, 11.65, 0.0, 2.6, "the next iteration", DEVICE, h=0.8)
    box(ax, 14.4, 1.0, 1.4, "step() ...", HOST)
    box(ax, 16.0, 1.0, 2.9, "read(): every\nbatchloss batches", READ)
    for y, lane in ((3.9, "host"), (2.9, "device"), (1.0, "host"), (0.0, "device")):
        ax.text(-0.2, y, lane, ha="right", va="center", fontsize=7.5, style="italic", color="#555555")
    return fig


def arrow(ax, x0, y0, x1, y1, text="", colour="#555555", rad=0.0):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.0, connectionstyle=f"arc3,rad={rad}"))
    if text:
        ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.25 + abs(rad) * 1.2, text, ha="center", va="bottom", fontsize=7,
                color=colour)


def dcgan_layers():
    """The DCGAN at 64 x 64, width w: G's maps doubling in size and halving in depth, D's the other way round."""
    fig, ax = canvas((10, 3.6), (-0.3, 20.3), (-0.3, 7.4))

    def maps(x0, y_mid, sizes, depths, labels, colour):  # squares whose side grows with the map's size
        x = x0
        for size, depth, label in zip(sizes, depths, labels):
            side = 0.45 + 1.6 * size / 64
            ax.add_patch(FancyBboxPatch((x, y_mid - side / 2), side, side, boxstyle="square,pad=0", fc=colour,
                                        ec="#555555", lw=0.8))
            ax.text(x + side / 2, y_mid - side / 2 - 0.25, label, ha="center", va="top", fontsize=7)
            ax.text(x + side / 2, y_mid, depth, ha="center", va="center", fontsize=7)
            yield x, side
            x += side + 0.95

    ax.text(-0.3, 7.1, "G: a latent point becomes an image (ReLU, BatchNorm on all but the last layer, tanh out)",
            fontsize=9, weight="bold")
    box(ax, -0.2, 5.2, 1.3, "z\n(100,)", HOST, h=0.9)
    arrow(ax, 1.15, 5.2, 1.9, 5.2)
    box(ax, 1.9, 5.2, 1.9, "Dense\n+ Reshape", DEVICE, h=0.9)
    arrow(ax, 3.85, 5.2, 4.5, 5.2)
    placed = list(maps(4.5, 5.2, [4, 8, 16, 32, 64], ["8w", "4w", "2w", "w", "3"],
                       ["4 x 4", "8 x 8", "16 x 16", "32 x 32", "64 x 64"], "#f6dcc4"))
    for (x0, s0), (x1, _) in zip(placed, placed[1:]):
        arrow(ax, x0 + s0 + 0.05, 5.2, x1 - 0.05, 5.2)
    ax.text(15.4, 5.55, "each arrow: a 4x4 transposed\nconvolution, stride 2: the map\ndoubles, the depth halves "
            "(the\nlast layer: 3 colours)",
            fontsize=7.5, va="center")
    ax.text(-0.3, 3.1, "D: an image becomes one probability (LeakyReLU 0.2, BatchNorm on all but the first layer)",
            fontsize=9, weight="bold")
    placed = list(maps(0.0, 1.3, [64, 32, 16, 8, 4], ["3", "w", "2w", "4w", "8w"],
                       ["64 x 64", "32 x 32", "16 x 16", "8 x 8", "4 x 4"], "#dbe8f5"))
    for (x0, s0), (x1, _) in zip(placed, placed[1:]):
        arrow(ax, x0 + s0 + 0.05, 1.3, x1 - 0.05, 1.3)
    x_end = placed[-1][0] + placed[-1][1]
    arrow(ax, x_end + 0.05, 1.3, x_end + 0.7, 1.3)
    box(ax, x_end + 0.7, 1.3, 2.4, "Flatten + Dense(1)\nsigmoid: P(real)", READ, h=0.9)
    ax.text(x_end + 3.5, 1.3, "each arrow: a 4x4 convolution,\nstride 2: the map halves,\nthe depth doubles",
            fontsize=7.5, va="center")
    return fig


def packing():
    """PacGAN: D judges m samples at once, joined along the channels, all real or all fake."""
    fig, ax = canvas((9, 3.0), (-0.3, 18), (-0.6, 6.2))
    ax.text(-0.3, 5.85, "a plain D judges one sample at a time", fontsize=9, weight="bold")
    box(ax, 0, 4.6, 1.6, "x\n(2,)", DEVICE, h=0.9)
    arrow(ax, 1.65, 4.6, 2.6, 4.6)
    box(ax, 2.6, 4.6, 2.6, "D", HOST, h=0.9)
    arrow(ax, 5.25, 4.6, 6.1, 4.6)
    box(ax, 6.1, 4.6, 3.4, "P(x is real)", READ, h=0.9)
    ax.text(10.2, 4.6, "a G that draws one good point again and again\nfools it: each point alone looks real",
            fontsize=7.5, va="center")
    ax.text(-0.3, 3.15, "a packed D (PacGAN, pack = m) judges m samples joined together", fontsize=9, weight="bold")
    for k, y in enumerate((2.2, 1.2, 0.2)):
        box(ax, 0, y, 1.6, ["x1", "x2", "... xm"][k], DEVICE, h=0.75)
        arrow(ax, 1.65, y, 2.55, 1.2)
    box(ax, 2.6, 1.2, 2.0, "join\n(2m,)", "#eeeeee", h=0.9)
    arrow(ax, 4.65, 1.2, 5.4, 1.2)
    box(ax, 5.4, 1.2, 2.6, "D", HOST, h=0.9)
    arrow(ax, 8.05, 1.2, 8.9, 1.2)
    box(ax, 8.9, 1.2, 3.6, "P(all m are real)", READ, h=0.9)
    ax.text(13.0, 1.2, "m real, or m fake from G: m copies of one\npoint look nothing like m real ones,\n"
            "so collapse is easy to catch", fontsize=7.5, va="center")
    return fig


def cycles():
    """CycleGAN: G takes A to B, F takes B to A; each round trip must come back (L1), each side has its D."""
    fig, ax = canvas((9.5, 4.0), (-0.5, 19), (-0.4, 7.6))
    for y, (start, there, back, gen, other, d, domain) in zip((5.5, 1.6), (
            ("a", "G(a)", "F(G(a))", "G", "F", "D_B: is G(a) a real B?", "A"),
            ("b", "F(b)", "G(F(b))", "F", "G", "D_A: is F(b) a real A?", "B"))):
        box(ax, 0, y, 1.8, f"{start}\n(real {domain})", HOST, h=0.9)
        arrow(ax, 1.85, y, 4.3, y, gen)
        box(ax, 4.3, y, 1.9, there, DEVICE, h=0.9)
        arrow(ax, 6.25, y, 8.7, y, other)
        box(ax, 8.7, y, 2.1, back, HOST, h=0.9)
        arrow(ax, 9.75, y - 0.5, 0.9, y - 0.5, colour="#aa3333", rad=-0.18)  # below the boxes, back to the start
        ax.text(5.25, y - 1.45, f"cycle loss: |{back} - {start}|, weight 10", ha="center", fontsize=7.5,
                color="#aa3333")
        arrow(ax, 5.25, y + 0.5, 5.25, y + 1.1)
        box(ax, 3.65, y + 1.35, 3.2, d, READ, h=0.55)
    ax.text(11.5, 5.5, "forward cycle: a warm shape made cool,\nthen warm again, must come back", fontsize=8,
            va="center")
    ax.text(11.5, 1.6, "backward cycle: the same from B;\nidentity loss: G(b) should stay b (weight 5)", fontsize=8,
            va="center")
    return fig


def conditioning():
    """How a conditional D reads the label: as a fourth image channel (concatenation) and, in gan_lib's default,
    also through a projection term added to its score."""
    fig, ax = canvas((10, 3.0), (-0.3, 20.5), (-0.6, 5.6))
    ax.text(-0.3, 5.3, "concatenation (Mirza and Osindero; Machine Learning Mastery's cGAN, projection=False)",
            fontsize=9, weight="bold")
    box(ax, 0, 4.2, 1.6, "label y", HOST, h=0.8)
    arrow(ax, 1.65, 4.2, 2.3, 4.2)
    box(ax, 2.3, 4.2, 3.4, "Embedding + Dense\n-> one 32 x 32 map", DEVICE, h=0.8)
    box(ax, 0, 2.9, 1.6, "image x", HOST, h=0.8)
    arrow(ax, 5.75, 4.2, 6.5, 3.6)
    arrow(ax, 1.65, 2.9, 6.5, 3.4)
    box(ax, 6.5, 3.5, 2.4, "join: 4 channels\n(R, G, B, label)", "#eeeeee", h=0.8)
    arrow(ax, 8.95, 3.5, 9.6, 3.5)
    box(ax, 9.6, 3.5, 3.2, "the tutorial's D\nconvolutions -> phi(x, y)", DEVICE, h=0.8)
    arrow(ax, 12.85, 3.5, 13.5, 3.5)
    box(ax, 13.5, 3.5, 2.6, "Dense: w . phi(x, y)", DEVICE, h=0.8)
    arrow(ax, 16.15, 3.5, 16.9, 3.5)
    box(ax, 16.9, 3.5, 3.3, "sigmoid: P(real, y)", READ, h=0.8)
    ax.text(-0.3, 1.6, "plus a projection (Miyato and Koyama; gan_lib's --arch cgan)", fontsize=9, weight="bold")
    box(ax, 0, 0.4, 1.6, "label y", HOST, h=0.8)
    arrow(ax, 1.65, 0.4, 2.3, 0.4)
    box(ax, 2.3, 0.4, 3.4, "Embedding: e_y", DEVICE, h=0.8)
    arrow(ax, 5.75, 0.4, 13.5, 0.4)
    arrow(ax, 11.2, 3.05, 13.6, 0.85)
    box(ax, 13.5, 0.4, 2.6, "e_y . phi(x, y)", DEVICE, h=0.8)
    arrow(ax, 16.15, 0.4, 17.6, 3.05)
    ax.text(17.9, 1.5, "added to the logit,\nbefore the sigmoid:\nthe label meets\nD's features", fontsize=7.5,
            va="center")
    return fig


DIAGRAMS = {  # name -> (drawing, notebook)
    "loop_vs_fused": (loop_vs_fused, "08_making_it_fast.ipynb"),
    "dcgan_layers": (dcgan_layers, "10_dcgan_faces_cats_dogs.ipynb"),
    "packing": (packing, "09_measuring_a_gan.ipynb"),
    "cycles": (cycles, "12_conditional_gans_and_cyclegan.ipynb"),
    "conditioning": (conditioning, "12_conditional_gans_and_cyclegan.ipynb"),
}


def png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})  # no version: stable bytes
    plt.close(fig)
    return buffer.getvalue()


def attach(notebook, name, data):
    """Put data as attachment NAME.png into the markdown cell of notebook that shows attachment:NAME.png."""
    path = os.path.join(NOTEBOOKS, notebook)
    with open(path) as f:
        nb = json.load(f)
    cells = [c for c in nb["cells"] if f"attachment:{name}.png" in "".join(c["source"])]
    if len(cells) != 1:
        sys.exit(f"{notebook}: {len(cells)} cells show attachment:{name}.png, expected 1")
    cells[0]["attachments"] = {f"{name}.png": {"image/png": base64.b64encode(data).decode()}}
    with open(path, "w") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    for name, (_, notebook) in DIAGRAMS.items():  # every target cell exists before anything is written
        with open(os.path.join(NOTEBOOKS, notebook)) as f:
            if f"attachment:{name}.png" not in f.read():
                sys.exit(f"{notebook} has no cell showing attachment:{name}.png: nothing written")
    for name, (draw, notebook) in DIAGRAMS.items():
        data = png(draw())
        with open(os.path.join(HERE, f"{name}.png"), "wb") as f:
            f.write(data)
        attach(notebook, name, data)
        print(f"{name}.png: {len(data) // 1024} KB, attached in {notebook}")


if __name__ == "__main__":
    main()
