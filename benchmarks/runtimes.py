"""What "Run all" cost when each notebook's committed outputs were made: read from the cells' own timing metadata.

    python benchmarks/runtimes.py            # a line per notebook, and its three longest cells

benchmarks/execute.py (nbclient's record_timing) leaves each code cell's start and end time in its metadata; a
notebook without them was executed some other way and prints "not timed". The times are those of the machine that
made the outputs (each notebook's note under its settings says which, and with what settings), not a forecast.
"""

import datetime
import glob
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seconds(cell):
    """A code cell's execution time from its metadata, or None."""
    t = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" not in t or "shell.execute_reply" not in t:
        return None
    start, end = (datetime.datetime.fromisoformat(t[k].replace("Z", "+00:00"))
                  for k in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def first_line(cell):
    """The first line of a cell that is not a marker comment: what the cell is."""
    lines = [x for x in "".join(cell["source"]).splitlines() if x.strip() and "NBVAL" not in x]
    return (lines[0] if lines else "")[:70]


def main():
    for path in sorted(glob.glob(os.path.join(ROOT, "notebooks", "[0-9][0-9]_*.ipynb"))):
        with open(path) as f:
            code = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
        timed = [(seconds(c), c) for c in code]
        if any(s is None for s, _ in timed):
            print(f"{os.path.basename(path):<42} not timed")
            continue
        total = sum(s for s, _ in timed)
        print(f"{os.path.basename(path):<42} {total / 60:6.1f} min in {len(code)} code cells")
        for s, cell in sorted(timed, key=lambda t: -t[0])[:3]:
            if s >= 10:
                print(f"    {s / 60:5.1f} min  {first_line(cell)}")


if __name__ == "__main__":
    main()
