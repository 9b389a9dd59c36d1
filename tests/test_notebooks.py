"""The notebooks follow one convention and cannot drift from gan_lib.

A code cell whose first line is `# gan_lib/FILE.py` shows library code for students to read and copy.
Every top-level statement in it must be the library's own:

- a function or class: character for character the top-level definition of that name in FILE.py;
- an import: each name it binds is the very object FILE.py's module holds under that name, or the same
  import statement is a top-level statement of FILE.py;
- anything else (constants, assignments): the same statement text is a top-level statement of FILE.py.

A code cell that mentions `gan_lib/SOMETHING.py` in a comment without such a first line (a typo in the
file name, the marker on the second line) fails, so a broken marker cannot switch the check off.
"""

import ast
import glob
import importlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tokenize

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "[0-9][0-9]_*.ipynb")))
MARKER = re.compile(r"# gan_lib/(\w+)\.py\b")  # on the first line of a library cell
MENTION = re.compile(r"gan_lib/\w+\.py")


def cells(path):
    with open(path) as f:
        return json.load(f)["cells"]


def source(cell):
    return "".join(cell["source"])


def repository_url():
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        return re.search(r'^Repository = "([^"]+)"', f.read(), re.M).group(1)


def setup_cell():
    """The setup cell's source (the same in every notebook: test_opening_is_the_same_everywhere)."""
    return source(next(c for c in cells(NOTEBOOKS[0]) if source(c).startswith("# Setup")))


# ---------------------------------------------------------------- the opening


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
    assert source(code[0]).startswith("# Setup")
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "GAN_LIB_SMOKE" in source(tagged[0])


def test_setup_installs_from_the_one_repository_and_ref():
    text = setup_cell()
    repo = re.findall(r"^REPO = (.+?)  #", text, re.M)
    assert repo == [f'os.environ.get("GAN_LIB_REPO") or "{repository_url()}"'], repo
    assert re.findall(r"^REF = (.+?)  #", text, re.M) == ['os.environ.get("GAN_LIB_REF") or "main"']
    assert text.count(repository_url()) == 1, "the setup cell names the repository once, in REPO"


def test_a_failed_install_says_so_in_one_line(tmp_path):
    """The setup cell's install_gan_lib on a damaged wheel: one line naming what failed and the way out."""
    install = next(n for n in ast.parse(setup_cell()).body if isinstance(n, ast.FunctionDef) and n.name == "install_gan_lib")
    (tmp_path / "gan_lib-0.0.1-py3-none-any.whl").write_bytes(b"not a zip file")
    script = "\n".join(["import glob, os, subprocess, sys", "REPO, REF = 'https://example.invalid/x', 'main'",
                        ast.unparse(install), "install_gan_lib()"])
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", FORCE_COLOR="1")  # as in a kernel
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    message = done.stderr.strip()
    assert done.returncode == 1 and "\n" not in message and "Traceback" not in message, done
    assert "gan_lib-0.0.1-py3-none-any.whl (ERROR: Wheel" in message and "GAN_LIB_REPO" in message, message


def test_without_tensorflow_the_setup_cell_runs_keras_on_jax():
    """Colab's TPU runtime has JAX and no TensorFlow: the setup cell picks the JAX backend before Keras loads."""
    pytest.importorskip("jax")
    hide = ("import importlib.util\nfind = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda name, *a: None if name == 'tensorflow' else find(name, *a)\n")
    check = "\nassert keras.backend.backend() == 'jax', keras.backend.backend()\nprint('on jax')"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", hide + setup_cell() + check], cwd=os.path.join(ROOT, "notebooks"),
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no TensorFlow here" in done.stdout and done.stdout.strip().endswith("on jax"), done.stdout


# ---------------------------------------------------------------- library cells


def comments(text):
    """The comments of a cell's source, one string each (IPython magics and all)."""
    try:
        return [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def marker_problem(text):
    """Why a code cell's library marker is broken or missing, or None when all is well."""
    module = library_module(text)
    first = text.splitlines()[0] if text else ""
    if MARKER.match(first) and module is None:
        return f"the first line names a file that is not in gan_lib/: {first!r}"
    if module is None and any(MENTION.search(c) for c in comments(text)):
        mention = next(c for c in comments(text) if MENTION.search(c))
        return f"mentions {mention.strip()!r} in a comment, but its first line is not '# gan_lib/FILE.py'"
    return None


def library_module(text):
    """FILE when the cell's first line is a valid '# gan_lib/FILE.py' marker (the file exists), else None."""
    m = MARKER.match(text)
    if m and os.path.isfile(os.path.join(ROOT, "gan_lib", f"{m.group(1)}.py")):
        return m.group(1)
    return None


def _segment(text, node):
    """A top-level statement's source, decorators included."""
    start = node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno
    return "\n".join(text.splitlines()[start - 1 : node.end_lineno]).strip()


def drift(text, module):
    """How a library cell differs from gan_lib/MODULE.py: a list of problems, empty when it matches."""
    lib = importlib.import_module(f"gan_lib.{module}")
    with open(os.path.join(ROOT, "gan_lib", f"{module}.py")) as f:
        lib_text = f.read()
    lib_tree = ast.parse(lib_text)
    lib_defs = {n.name: _segment(lib_text, n) for n in lib_tree.body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    lib_statements = {_segment(lib_text, n) for n in lib_tree.body}
    lib_imports = {ast.unparse(n) for n in lib_tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
    try:
        body = ast.parse(text).body
    except SyntaxError as e:
        return [f"the cell is not plain Python: {e}"]
    if not body:
        return ["a cell marked as library code holds no code"]
    problems = []
    for node in body:
        shown = _segment(text, node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name not in lib_defs:
                problems.append(f"{node.name} is not defined at the top of gan_lib/{module}.py")
            elif shown != lib_defs[node.name]:
                problems.append(f"{node.name} in the notebook differs from gan_lib/{module}.py")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if ast.unparse(node) in lib_imports:
                continue
            namespace = {}
            exec(compile(ast.Module([node], type_ignores=[]), "<cell>", "exec"), namespace)
            for name, value in namespace.items():
                if name != "__builtins__" and getattr(lib, name, object()) is not value:
                    problems.append(f"`{shown}` binds {name}, which is not gan_lib.{module}.{name}")
        elif shown not in lib_statements:
            problems.append(f"`{shown.splitlines()[0]}` is not a top-level statement of gan_lib/{module}.py")
    return problems


def _code_cells():
    for path in NOTEBOOKS:
        for i, cell in enumerate(cells(path)):
            if cell["cell_type"] == "code":
                yield path, i, source(cell)


def _library_cells():
    for path, i, text in _code_cells():
        module = library_module(text)
        if module:
            yield pytest.param(path, i, module, id=f"{os.path.basename(path)}-cell{i}")


@pytest.mark.parametrize("path,index,module", list(_library_cells()))
def test_taught_code_matches_the_library(path, index, module):
    problems = drift(source(cells(path)[index]), module)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_library_markers_are_valid(path):
    """A cell that names gan_lib/FILE.py in a comment is a library cell, marked on its first line."""
    problems = [f"cell {i}: {p}" for p_, i, text in _code_cells() if p_ == path for p in [marker_problem(text)] if p]
    assert not problems, "\n".join(problems)


def test_some_notebook_teaches_the_models():
    shown = {m for *_, m in (p.values for p in _library_cells())}
    assert "models" in shown and "training" in shown


# ---------------------------------------------------------------- teaching cells use public names


def own_names(module):
    """The names gan_lib/MODULE.py defines at its top level itself (not those it imports), without private ones."""
    with open(os.path.join(ROOT, "gan_lib", f"{module}.py")) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if not n.startswith("_")}


def is_module(name):
    return os.path.isfile(os.path.join(ROOT, "gan_lib", f"{name}.py"))


def private_uses(text, aliases):
    """How a teaching cell reaches past gan_lib's public names; aliases (name -> submodule) carry over from earlier
    cells. Public: gan_lib.__all__, a submodule, or a name a submodule defines itself (not a re-import, not _x)."""
    import gan_lib

    try:
        tree = ast.parse("\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("!", "%"))))
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gan_lib":
            module = node.module.split(".")[1] if "." in node.module else None
            for a in node.names:
                if module is None and is_module(a.name):
                    aliases[a.asname or a.name] = a.name
                elif module is None and a.name not in gan_lib.__all__:
                    found.append(f"`from gan_lib import {a.name}`: not in gan_lib.__all__")
                elif module and module != "__main__" and a.name not in own_names(module):
                    found.append(f"`from gan_lib.{module} import {a.name}`: not a name gan_lib/{module}.py defines")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            root = node.value.id
            if root == "gan_lib" and not is_module(node.attr) and node.attr not in (*gan_lib.__all__, "__version__"):
                found.append(f"gan_lib.{node.attr}: not in gan_lib.__all__")
            elif root in aliases and node.attr not in own_names(aliases[root]):
                found.append(f"{root}.{node.attr}: not a name gan_lib/{aliases[root]}.py defines")
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
              and isinstance(node.value.value, ast.Name) and node.value.value.id == "gan_lib" and is_module(node.value.attr)
              and node.value.attr != "__main__" and node.attr not in own_names(node.value.attr)):
            found.append(f"gan_lib.{node.value.attr}.{node.attr}: not a name gan_lib/{node.value.attr}.py defines")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_teaching_cells_use_public_names(path):
    aliases, problems = {}, []
    for i, cell in enumerate(cells(path)):
        text = source(cell)
        if cell["cell_type"] == "code" and not library_module(text):
            problems += [f"cell {i}: {p}" for p in private_uses(text, aliases)]
    assert not problems, "\n".join(problems)


def test_private_uses_are_caught():
    aliases = {}
    assert private_uses("import gan_lib\nfrom gan_lib import toy\nx = gan_lib.train\ny = toy.coverage\n", aliases) == []
    assert private_uses("toy.generate_fake_samples(g, 5, 10)\n", aliases) == [  # toy.py imports it from data.py
        "toy.generate_fake_samples: not a name gan_lib/toy.py defines"]
    assert private_uses("from gan_lib.data import join\n", {}) == ["`from gan_lib.data import join`: not a name "
                                                                     "gan_lib/data.py defines"]
    assert sorted(private_uses("gan_lib.latent._as_point(p)\ngan_lib.CombinedGAN\n", {})) == [
        "gan_lib.CombinedGAN: not in gan_lib.__all__", "gan_lib.latent._as_point: not a name gan_lib/latent.py defines"]


# ---------------------------------------------------------------- the checks above can fail


def test_drift_catches_a_changed_constant_function_and_import():
    good = '# gan_lib/toy.py\nimport numpy as np\n\nX_RANGE = (-0.5, 0.5)  # where the real x values lie\n'
    assert drift(good, "toy") == []
    assert drift(good.replace("-0.5, 0.5", "-1.0, 1.0"), "toy") == [
        "`X_RANGE = (-1.0, 1.0)  # where the real x values lie` is not a top-level statement of gan_lib/toy.py"]
    assert drift("# gan_lib/latent.py\nKINDS = ('linear',)\n", "latent")  # a constant that drifted
    assert drift("# gan_lib/toy.py\nfrom gan_lib.data import generate_latent_points\n", "toy") == []  # toy uses it
    assert drift("# gan_lib/toy.py\nfrom keras import ops as np\n", "toy") == [
        "`from keras import ops as np` binds np, which is not gan_lib.toy.np"]
    real = next(source(c) for c in cells(NOTEBOOKS[0]) if library_module(source(c)) == "toy" and "def coverage" in source(c))
    assert drift(real, "toy") == []
    assert drift(real.replace("counts > 0", "counts >= 0"), "toy") == ["coverage in the notebook differs from gan_lib/toy.py"]
    assert drift("# gan_lib/toy.py\ndef nowhere():\n    pass\n", "toy") == ["nowhere is not defined at the top of gan_lib/toy.py"]
    assert drift("# gan_lib/toy.py\n", "toy") == ["a cell marked as library code holds no code"]


def test_broken_markers_are_caught():
    assert marker_problem("# gan_lib/toy.py\nX = 1\n") is None
    assert marker_problem("# gan_lib/toy.py  (the loop)\nX = 1\n") is None
    assert marker_problem("x = 1  # nothing to do with the library\n") is None
    assert "not in gan_lib/" in marker_problem("# gan_lib/trainig.py\ndef train(): pass\n")
    assert "first line" in marker_problem("import numpy as np\n# gan_lib/toy.py\nX_RANGE = (-1, 1)\n")
    assert "first line" in marker_problem("#gan_lib/toy.py\nX_RANGE = (-1, 1)\n")
    assert "first line" in marker_problem("X_RANGE = (-1, 1)  # as in gan_lib/toy.py\n")
    assert library_module("# gan_lib/trainig.py\n") is None and library_module("# gan_lib/toy.py\n") == "toy"


def test_the_checkout_check_flags_new_and_changed_files():
    spec = importlib.util.spec_from_file_location("top_conftest", os.path.join(ROOT, "conftest.py"))
    top_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(top_conftest)
    checkout_changes = top_conftest.checkout_changes
    before = {"notebooks/06_training.ipynb": " M 1a2b3c", ".venv/": "!!"}
    assert checkout_changes(before, dict(before)) == []
    after = {**before, "stray.txt": "?? 9f9f9f", "outputs/06_training-20260101-120000/": "!!",
             "gan_lib/__pycache__/": "!!", "notebooks/06_training.ipynb": " M 4d5e6f"}
    assert checkout_changes(before, after) == [
        "changed: notebooks/06_training.ipynb", "new:     outputs/06_training-20260101-120000/", "new:     stray.txt"]
    assert checkout_changes(after, before) == [
        "changed: notebooks/06_training.ipynb", "gone:    outputs/06_training-20260101-120000/", "gone:    stray.txt"]


# Where a notebook's attached pictures come from: the diagrams docs/diagrams/draw.py draws, and the committed results
# of benchmarks/equal_time.py (the recipes at equal CPU time), which a notebook cannot compute in seconds.
PICTURES = ("diagrams", "equal_time")


def test_diagrams_are_the_files_docs_diagrams_draws():
    """Every attachment:NAME.png a markdown cell shows is attached there and is docs/diagrams/NAME.png (or a result in
    docs/equal_time/), byte for byte (python docs/diagrams/draw.py draws both); every diagram is shown somewhere."""
    import base64

    shown = set()
    for path in NOTEBOOKS:
        for cell in cells(path):
            for name in re.findall(r"attachment:([\w.-]+\.png)", source(cell)):
                attached = cell.get("attachments", {}).get(name, {}).get("image/png")
                assert attached, f"{os.path.basename(path)} shows {name} but has no such attachment"
                files = [os.path.join(ROOT, "docs", d, name) for d in PICTURES]
                file = next((f for f in files if os.path.isfile(f)), None)
                assert file, f"{os.path.basename(path)} attaches {name}, which is in none of docs/{', docs/'.join(PICTURES)}"
                with open(file, "rb") as f:
                    assert base64.b64decode(attached) == f.read(), \
                        f"{os.path.basename(path)}: {name} differs from {os.path.relpath(file, ROOT)}"
                if file == files[0]:  # a diagram (the results need not all be shown)
                    shown.add(name)
    drawn = {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "docs", "diagrams", "*.png"))}
    assert drawn and drawn == shown, f"drawn but not shown: {sorted(drawn - shown)}; shown but not drawn: {sorted(shown - drawn)}"


# ---------------------------------------------------------------- size: a notebook a reader can open and scroll


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_a_notebook_is_at_most_1_mb_and_40_code_cells(path):
    code = sum(c["cell_type"] == "code" for c in cells(path))
    size = os.path.getsize(path)
    assert size <= 1_000_000, (f"{os.path.basename(path)} is {size / 1e6:.2f} MB: store its pictures smaller "
                               "(benchmarks/execute.py NB --shrink-only) or show fewer")
    assert code <= 40, f"{os.path.basename(path)} has {code} code cells: split it or trim it"


def picture_output(pixels):
    """A display_data output holding `pixels` (uint8 (H, W, 3 or 4)) as a PNG, as matplotlib's inline back end makes."""
    import base64

    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(pixels).save(png, "PNG")
    return {"output_type": "display_data", "metadata": {"image/png": {"width": 300}},
            "data": {"image/png": base64.b64encode(png.getvalue()).decode("ascii"), "text/plain": ["<Figure>"]}}


def decoded(output):
    import base64

    from PIL import Image

    (kind,) = [k for k in output["data"] if k.startswith("image/")]
    return kind, np.asarray(Image.open(io.BytesIO(base64.b64decode(output["data"][kind]))).convert("RGB")).astype(int)


def test_pictures_are_stored_smaller_and_still_show_what_they_showed():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from execute import smaller_images
    from PIL import Image

    rng = np.random.default_rng(0)
    # samples: 50 x 50 random colours, enlarged smoothly (many colours, no sharp noise, as a grid of G's images is)
    smooth = np.asarray(Image.fromarray(rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)).resize((400, 400),
                                                                                                    Image.BILINEAR))
    plot = np.full((600, 1000, 3), 255, np.uint8)  # a plot: white, 16 lines in four colours
    for colour in [(31, 119, 180), (255, 127, 14), (44, 160, 44), (0, 0, 0)]:
        for _ in range(4):
            rows = np.clip(300 + np.cumsum(rng.normal(0, 6, 1000)), 0, 598).astype(int)
            plot[rows, np.arange(1000)] = plot[rows + 1, np.arange(1000)] = colour
    seen = np.concatenate([smooth, np.full((400, 400, 1), 128, np.uint8)], axis=2)  # transparent: left as it is
    outputs = [picture_output(smooth), picture_output(plot), picture_output(smooth[:50, :50]), picture_output(seen),
               {"output_type": "stream", "name": "stdout", "text": ["printed\n"]}]
    before = json.loads(json.dumps(outputs))
    nb = {"cells": [{"cell_type": "code", "source": [], "outputs": outputs}]}
    assert smaller_images(nb) > 0
    after = nb["cells"][0]["outputs"]
    kind, pixels = decoded(after[0])
    assert kind == "image/jpeg" and list(after[0]["data"]) == ["image/jpeg", "text/plain"]  # in the PNG's place
    assert after[0]["metadata"] == {"image/jpeg": {"width": 300}}
    assert np.abs(pixels - smooth).mean() < 3 and len(after[0]["data"]["image/jpeg"]) < 0.7 * len(
        before[0]["data"]["image/png"])
    kind, pixels = decoded(after[1])
    assert kind == "image/png" and np.array_equal(pixels, plot)  # five colours: a palette keeps them exactly
    assert len(after[1]["data"]["image/png"]) < 0.7 * len(before[1]["data"]["image/png"])
    assert after[2:] == before[2:]  # small, transparent, and text outputs are as they were
