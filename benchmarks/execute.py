"""Execute a notebook for its committed outputs, with settings changed the way papermill injects parameters.

    python benchmarks/execute.py notebooks/06_training.ipynb --set 'DATASET="shapes"' --set LIMIT=5000

Each --set NAME=VALUE (VALUE a Python expression) goes into one cell run right after the notebook's settings cell
(the first code cell that sets SMOKE); that cell is removed again before the notebook is written back, so the
notebook keeps its own settings and the outputs show what those changes produced. Runs without GAN_LIB_SMOKE,
in the notebook's folder, with no cell timeout; every cell's start and end times are kept in its metadata
(nbclient's record_timing), which is where the notebooks' Run-all times come from. The notebook is written
only when every cell ran: a failed run leaves the file as it was and prints the failing cell.

Before it is written, every PNG output over 48 KB is stored smaller (smaller_images): a plot (few colours: lines, text,
their anti-aliasing) as a 256-colour PNG, anything with more colours (samples, photos) as a JPEG at quality 90, each
kept only where it is well under the PNG. That keeps a notebook under 1 MB (tests/test_notebooks.py) without the
cells drawing smaller pictures than a user in Colab would want. --shrink-only does that to a notebook's committed
outputs without running it (the pictures stay the run's, stored smaller).
"""

import argparse
import base64
import io
import json
import os
import sys

import nbclient
import nbformat


def inject(nb, settings):
    """nb with a cell of settings after the settings cell; the index of that new cell."""
    at = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "SMOKE = " in c.source), None)
    if at is None:
        sys.exit("no settings cell (a code cell that sets SMOKE = ...) to put the settings after")
    cell = nbformat.v4.new_code_cell("\n".join(settings))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, cell)
    return at + 1


PLOT_COLOURS = 4096  # more distinct colours than this: a picture of samples or photos, not a plot


def smaller(png):
    """(mime type, bytes) of a smaller copy of the PNG `png`, or None where none is well under it (70%).
    A plot keeps its pixels near enough exactly in 256 colours; a picture of samples is stored as a JPEG with full
    colour resolution (subsampling 0 keeps one-pixel colours, the samples' edges, from bleeding)."""
    import numpy as np
    from PIL import Image

    picture = Image.open(io.BytesIO(png))
    if picture.mode in ("RGBA", "LA") and picture.getchannel("A").getextrema()[0] < 255:
        return None  # a transparent picture: neither a palette nor a JPEG keeps it as drawn
    picture = picture.convert("RGB")
    pixels = np.asarray(picture).reshape(-1, 3)
    colours = len(np.unique(pixels[:, 0].astype(np.int32) << 16 | pixels[:, 1].astype(np.int32) << 8 | pixels[:, 2]))
    out = io.BytesIO()
    if colours <= PLOT_COLOURS:
        picture.quantize(256).save(out, "PNG", optimize=True)
        kind = "image/png"
    else:
        picture.save(out, "JPEG", quality=90, subsampling=0)
        kind = "image/jpeg"
    return (kind, out.getvalue()) if len(out.getvalue()) < 0.7 * len(png) else None


def smaller_images(nb, over=48_000):
    """Store every PNG output of nb over `over` bytes smaller, in place (see smaller); the bytes saved."""
    saved = 0
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data:
                continue
            png = base64.b64decode(data["image/png"])
            if len(png) <= over or (copy := smaller(png)) is None:
                continue
            kind, stored = copy
            output["data"] = {kind if k == "image/png" else k: v for k, v in data.items()}  # in the PNG's place
            output["data"][kind] = base64.b64encode(stored).decode("ascii")
            if "image/png" in output.get("metadata", {}):  # a size the front end shows it at, kept for the new kind
                output["metadata"][kind] = output["metadata"].pop("image/png")
            saved += len(png) - len(stored)
    return saved


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebook")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--out", help="write here instead of over the notebook")
    ap.add_argument("--shrink-only", action="store_true", help="run nothing: store the committed outputs' "
                    "pictures smaller, as after a run")
    args = ap.parse_args(argv)
    if args.shrink_only:  # as the notebook's JSON is, keys in their order (nbformat.write would sort them)
        with open(args.notebook, encoding="utf-8") as f:
            nb = json.load(f)
        saved = smaller_images(nb)
        with open(args.out or args.notebook, "w", encoding="utf-8") as f:
            f.write(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.out or args.notebook}: its pictures {saved / 1e3:.0f} KB smaller")
        return
    bad = [s for s in args.set if "=" not in s or not s.split("=", 1)[0].strip().isidentifier()]
    if bad:
        sys.exit(f"--set takes NAME=VALUE (a Python expression), got {bad[0]!r}")
    nb = nbformat.read(args.notebook, as_version=4)
    where = inject(nb, args.set) if args.set else None
    os.environ.pop("GAN_LIB_SMOKE", None)
    client = nbclient.NotebookClient(nb, timeout=None, kernel_name="python3", record_timing=True,
                                     resources={"metadata": {"path": os.path.dirname(os.path.abspath(args.notebook))}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        sys.exit(f"{args.notebook}: a cell failed, nothing written\n{str(e)[-2000:]}")
    if where is not None:
        del nb.cells[where]
    nb.metadata["gan_lib"] = {"executed_with": args.set}  # what the committed outputs ran with, beside the notebook's own
    smaller_images(nb)
    nbformat.write(nb, args.out or args.notebook)
    print(f"wrote {args.out or args.notebook}")


if __name__ == "__main__":
    main()
