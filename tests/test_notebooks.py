"""The notebooks follow one convention and cannot drift from gan_lib.

A code cell whose first line is `# gan_lib/FILE.py` shows library code for
students to read and copy: every function and class it defines must be
character for character the one in that file.
"""

import ast
import glob
import importlib
import inspect
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "[0-9][0-9]_*.ipynb")))
MARKER = re.compile(r"^# gan_lib/(\w+)\.py\b")


def cells(path):
    with open(path) as f:
        return json.load(f)["cells"]


def source(cell):
    return "".join(cell["source"])


def repository_url():
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        return re.search(r'^Repository = "([^"]+)"', f.read(), re.M).group(1)


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 7, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_opening_is_the_same_everywhere(path):
    nb = cells(path)
    first = source(nb[0])
    assert nb[0]["cell_type"] == "markdown" and first.startswith("# ")
    name = os.path.basename(path)
    assert f"colab.research.google.com/github/{repository_url().split('github.com/')[1]}/blob/main/notebooks/{name}" in first
    assert "colab-badge" in first
    code = [c for c in nb if c["cell_type"] == "code"]
    setups = {source(c) for p in NOTEBOOKS for c in cells(p) if source(c).startswith("# Setup")}
    assert len(setups) == 1, "the setup cell differs between notebooks"
    assert f'REPO = "{repository_url()}"' in setups.pop()
    assert source(code[0]).startswith("# Setup")
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "GAN_LIB_SMOKE" in source(tagged[0])


def _library_cells():
    for path in NOTEBOOKS:
        for i, cell in enumerate(cells(path)):
            m = MARKER.match(source(cell)) if cell["cell_type"] == "code" else None
            if m:
                yield pytest.param(path, i, m.group(1), id=f"{os.path.basename(path)}-cell{i}")


@pytest.mark.parametrize("path,index,module", list(_library_cells()))
def test_taught_code_matches_the_library(path, index, module):
    text = source(cells(path)[index])
    lib = importlib.import_module(f"gan_lib.{module}")
    defs = [n for n in ast.parse(text).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert defs, "a cell marked as library code defines nothing"
    for node in defs:
        shown = ast.get_source_segment(text, node, padded=True)
        if node.decorator_list:
            shown = "\n".join(text.splitlines()[node.decorator_list[0].lineno - 1 : node.end_lineno])
        actual = inspect.getsource(getattr(lib, node.name))
        assert shown.strip() == actual.strip(), f"{node.name} in the notebook differs from gan_lib/{module}.py"


def test_some_notebook_teaches_the_models():
    shown = {m for *_, m in (p.values for p in _library_cells())}
    assert "models" in shown and "training" in shown
