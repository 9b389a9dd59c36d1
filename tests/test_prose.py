"""Numbers in the notebooks' prose that come from a run must be what that run printed.

Such a number is marked in the markdown with an HTML comment right after it, invisible when rendered:
`a cycle error of 0.114<!--out--> (A)`. The test finds every marked number and fails unless some output of the same
notebook (`<!--out 09-->`: of notebook 09) prints that number, exactly or rounded to as many decimals as the prose
gives (a prose "2.58" matches a printed "2.5768"); a percentage must match a printed percentage. A re-run that
changes a printed number therefore fails here until the prose says the new one.

Numbers from a benchmark whose results are committed (docs/equal_time/: the recipes at equal CPU time) are marked
`<!--in docs/equal_time/best.json-->`, in the notebooks, README.md and docs/*.md alike: the file must hold that
number, exactly or rounded to the prose's decimals.
"""

import functools
import glob
import json
import os
import re

import pytest

from conftest import ROOT

NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
PAGES = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
MARKED = re.compile(r"(\d[\d,]*(?:\.\d+)?)(%?)<!--out(?: (\d\d))?-->")
FROM_FILE = re.compile(r"(\d[\d,]*(?:\.\d+)?)(%?)<!--in ([\w./-]+)-->")
PRINTED = re.compile(r"(?<![\w.])-?(\d[\d,]*(?:\.\d+)?)(%?)")


def cells(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)["cells"]


def outputs_text(path):
    """Everything the notebook's code cells printed or displayed as text."""
    parts = []
    for cell in cells(path):
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def printed_numbers(text):
    """{(digits without commas, is a percentage)} of every number in text."""
    return {(m.group(1).replace(",", ""), bool(m.group(2))) for m in PRINTED.finditer(text)}


def agrees(marked, percent, printed):
    """Whether a marked number equals, or rounds, a printed number of the same kind."""
    digits = marked.replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    for value, is_percent in printed:
        if is_percent != percent:
            continue
        if value == digits or f"{float(value):.{decimals}f}" == digits:
            return True
    return False


def problems(path):
    """One line per marked number that no output agrees with."""
    found = []
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] != "markdown":
            continue
        for m in MARKED.finditer("".join(cell["source"])):
            number, percent, other = m.group(1), m.group(2) == "%", m.group(3)
            source = path if other is None else glob.glob(os.path.join(ROOT, "notebooks", f"{other}_*.ipynb"))
            if not source:
                found.append(f"cell {i}: {number}{m.group(2)} names notebook {other}, which does not exist")
                continue
            source = source if isinstance(source, str) else source[0]
            if not agrees(number, percent, printed_numbers(outputs_text(source))):
                where = "its outputs" if other is None else f"notebook {other}'s outputs"
                found.append(f"cell {i}: the prose says {number}{m.group(2)}, which none of {where} prints")
    return found


@functools.lru_cache(maxsize=None)
def numbers_in(path):
    """{(digits, False)} of every number in a results file, read once however many marks name it."""
    with open(path, encoding="utf-8") as f:
        content = f.read()
    if path.endswith(".csv"):  # its commas separate numbers rather than group thousands
        content = content.replace(",", " ")
    return {(digits, False) for digits, _ in printed_numbers(content)}


def from_files(text, root=ROOT):
    """One line per number marked <!--in FILE--> in text that FILE (relative to root) does not hold; a marked
    percentage is looked for as a plain number (a file holds 0.12 or 12, not 12%)."""
    found = []
    for m in FROM_FILE.finditer(text):
        number, name = m.group(1), m.group(3)
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            found.append(f"{number}{m.group(2)} is marked as from {name}, which does not exist")
            continue
        if not agrees(number, False, numbers_in(path)):
            found.append(f"the prose says {number}{m.group(2)}, which {name} does not hold")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS + PAGES, ids=os.path.basename)
def test_numbers_marked_as_from_a_results_file_are_in_it(path):
    if path.endswith(".ipynb"):
        text = "\n".join("".join(c["source"]) for c in cells(path) if c["cell_type"] == "markdown")
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    assert from_files(text) == []


def test_the_pages_mark_their_results_numbers():
    """The check above passes on pages with no marks, so: the committed results are in fact marked somewhere."""
    text = "\n".join(open(p, encoding="utf-8").read() for p in PAGES)
    assert len(FROM_FILE.findall(text)) >= 10


def test_the_results_file_check_fails_when_a_number_changes(tmp_path):
    (tmp_path / "best.json").write_text('{"fid": 61.234, "kid": 0.0412}')
    (tmp_path / "scores.csv").write_text("run,epoch,n,fid\nx,3,1000,246.9\n")  # commas separate, not group
    assert from_files("FID 61.2<!--in best.json--> and KID 0.041<!--in best.json-->", str(tmp_path)) == []
    assert from_files("247<!--in scores.csv--> after epoch 3", str(tmp_path)) == []
    assert from_files("FID 61.3<!--in best.json-->, 7<!--in gone.json-->", str(tmp_path)) == [
        "the prose says 61.3, which best.json does not hold", "7 is marked as from gone.json, which does not exist"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_marked_numbers_are_what_the_runs_printed(path):
    assert problems(path) == []


def test_the_check_fails_when_a_rerun_changes_a_number(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "source": [], "outputs": [{"output_type": "stream", "text": ["cycle error 0.1137, 94%\n"]}]},
        {"cell_type": "markdown", "source": ["an error of 0.114<!--out--> and 94%<!--out--> of them"]},
    ]}
    path = tmp_path / "99_test.ipynb"
    path.write_text(json.dumps(nb))
    assert problems(str(path)) == []  # 0.1137 rounds to 0.114
    nb["cells"][0]["outputs"][0]["text"] = ["cycle error 0.1172, 94\n"]  # the re-run printed other numbers
    path.write_text(json.dumps(nb))
    assert problems(str(path)) == ["cell 1: the prose says 0.114, which none of its outputs prints",
                                   "cell 1: the prose says 94%, which none of its outputs prints"]


def test_the_notebooks_mark_their_run_numbers():
    marked = sum(len(MARKED.findall("".join(c["source"]))) for p in NOTEBOOKS for c in cells(p)
                 if c["cell_type"] == "markdown")
    assert marked >= 20  # the numbers fixed after issue 21's reading, and each one since
