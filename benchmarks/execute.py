"""Execute a notebook for its committed outputs, with settings changed the way papermill injects parameters.

    python benchmarks/execute.py notebooks/06_training.ipynb --set 'DATASET="shapes"' --set LIMIT=5000

Each --set NAME=VALUE (VALUE a Python expression) goes into one cell run right after the notebook's settings cell
(the first code cell that sets SMOKE); that cell is removed again before the notebook is written back, so the
notebook keeps its own settings and the outputs show what those changes produced. Runs without GAN_LIB_SMOKE,
in the notebook's folder, with no cell timeout; every cell's start and end times are kept in its metadata
(nbclient's record_timing), which is where the notebooks' Run-all times come from. The notebook is written
only when every cell ran: a failed run leaves the file as it was and prints the failing cell.
"""

import argparse
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebook")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--out", help="write here instead of over the notebook")
    args = ap.parse_args(argv)
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
    nbformat.write(nb, args.out or args.notebook)
    print(f"wrote {args.out or args.notebook}")


if __name__ == "__main__":
    main()
