"""The house keeps its shape: gan_lib's modules import one way, down the layers of docs/house.md.

Read from the code (ast, nothing imported), the checks fail, naming the file and line, on:
- a module no layer lists (a new module must be placed);
- an import of a module of the same or a higher layer, which includes every circle;
- an import of gan_lib inside a function (lazy imports are for heavy optional packages only, never to hide a circle);
- an import of tensorflow, jax or torch outside the backend seam (backend.py, devices.py);
- a private name (_x) imported from another module;
- a module over MAX_LINES lines or a function over MAX_FUNCTION_LINES.
The last section proves that each check fails when the house breaks.
"""

import ast
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The layers, bottom first: a module may import only modules of lower layers (docs/house.md draws them).
LAYERS = [
    ("settings, files and pure parts", ["files", "panel", "progress", "latent", "batches", "datasets",
                                        "cyclegan", "backend"]),
    ("the seam above the frameworks, and storage", ["devices", "checkpoint", "photos", "plots", "losses", "faces"]),
    ("data, models and the run folder", ["data", "models", "dcgan", "cgan", "runs", "recipe", "augment"]),
    ("architectures, toys, the step, measurements", ["archs", "toy", "fused", "metrics", "modes"]),
    ("measuring and using a generator", ["memorisation", "diagnosis", "generate", "inception2015", "breeder"]),
    ("evaluation", ["evaluate", "best"]),
    ("the run loops", ["training", "cycle_training"]),
    ("the toys' runner", ["toy_training"]),
    ("the two front doors", ["__init__", "__main__"]),
]
SEAM = ("backend", "devices",  # where tensorflow, jax and torch may be imported
        "inception2015")  # ...and torch there: the standard FID's network is TorchScript, whatever Keras's backend
FRAMEWORKS = ("tensorflow", "jax", "torch")
MAX_LINES = 400
MAX_FUNCTION_LINES = 60


def package_sources():
    """{module name: source text} of every gan_lib/*.py."""
    return {os.path.basename(p)[:-3]: open(p).read() for p in sorted(glob.glob(os.path.join(ROOT, "gan_lib", "*.py")))}


def imported_modules(node):
    """The gan_lib modules an import statement inside gan_lib names (relative or absolute)."""
    if isinstance(node, ast.ImportFrom):
        if node.level == 1 or (node.level == 0 and (node.module or "").split(".")[0] == "gan_lib"):
            parts = (node.module or "").split(".")
            parts = parts[1:] if node.level == 0 else parts
            if parts and parts[0]:
                return [parts[0]]
            return [a.name for a in node.names]  # from . import backend, devices
        return []
    if isinstance(node, ast.Import):
        return [a.name.split(".")[1] for a in node.names if a.name.startswith("gan_lib.")]
    return []


def problems(sources, layers=LAYERS):
    """Every way the package breaks the house, one line each: 'gan_lib/FILE.py:LINE: what is wrong'."""
    layer = {m: i for i, (_, names) in enumerate(layers) for m in names}
    found = []
    for module, text in sources.items():
        where = f"gan_lib/{module}.py"
        if module not in layer:
            found.append(f"{where}:1: no layer lists this module; place it in tests/test_layers.py LAYERS and "
                         "docs/house.md")
            continue
        tree = ast.parse(text)
        top = {id(n) for n in tree.body}
        lines = text.count("\n") + 1
        if lines > MAX_LINES:
            found.append(f"{where}:1: {lines} lines, more than {MAX_LINES}; split it by idea")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{where}:{node.lineno}: function {node.name} has {length} lines, more than "
                                 f"{MAX_FUNCTION_LINES}")
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            statement = ast.unparse(node)
            for other in imported_modules(node):
                if other not in layer:
                    continue  # a name of the package, not a module (from . import __version__); or unlisted above
                if id(node) not in top:
                    found.append(f"{where}:{node.lineno}: `{statement}` inside a function: import gan_lib modules at "
                                 "the top (lazy imports are for heavy optional packages only)")
                if layer[other] >= layer[module]:
                    found.append(f"{where}:{node.lineno}: `{statement}` imports {other} ({layers[layer[other]][0]}) "
                                 f"from {module} ({layers[layer[module]][0]}): imports run down the layers only")
            names = [a.name for a in node.names]
            roots = [n.split(".")[0] for n in names] if isinstance(node, ast.Import) else [(node.module or "").split(".")[0]]
            if getattr(node, "level", 0) == 0 and any(r in FRAMEWORKS for r in roots) and module not in SEAM:
                found.append(f"{where}:{node.lineno}: `{statement}` outside the backend seam ({', '.join(SEAM)}): "
                             "speak keras.ops there, or add the framework-specific part to the seam")
            if isinstance(node, ast.ImportFrom) and imported_modules(node) and node.module:
                private = [n for n in names if n.startswith("_")]
                if private:
                    found.append(f"{where}:{node.lineno}: `{statement}` imports the private {', '.join(private)} from "
                                 "another module: make it public there, or keep it where it is used")
    return found


def test_the_house_keeps_its_shape():
    found = problems(package_sources())
    assert not found, "\n".join(found)


def test_every_module_has_one_layer():
    listed = [m for _, names in LAYERS for m in names]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"
    assert set(listed) == set(package_sources()), set(listed) ^ set(package_sources())


# ---------------------------------------------------------------- the checks above can fail


def broken(module, line):
    """The package's sources with `line` added at the top of gan_lib/MODULE.py (after its docstring)."""
    sources = package_sources()
    tree = ast.parse(sources[module])
    after = tree.body[0].end_lineno if isinstance(tree.body[0], ast.Expr) else 0
    lines = sources[module].splitlines()
    sources[module] = "\n".join(lines[:after] + [line] + lines[after:]) + "\n"
    return sources, after + 1


def test_a_circle_is_caught_with_its_file_and_line():
    sources, line = broken("models", "from .training import train")  # models <- ... <- training: a circle
    found = problems(sources)
    assert found == [f"gan_lib/models.py:{line}: `from .training import train` imports training (the run loops) from "
                     "models (data, models and the run folder): imports run down the layers only"], found


def test_an_upward_or_sideways_import_is_caught():
    sources, line = broken("latent", "from . import panel")  # the same layer
    assert [p for p in problems(sources) if p.startswith(f"gan_lib/latent.py:{line}:")], problems(sources)
    sources, line = broken("training", "from .cycle_training import train_cycle")  # the run loops, side by side
    assert any(f"gan_lib/training.py:{line}:" in p and "down the layers" in p for p in problems(sources))


def test_a_lazy_import_of_the_package_is_caught():
    sources = package_sources()
    sources["fused"] += "\n\ndef later():\n    from .training import train\n    return train\n"
    found = problems(sources)
    assert any("gan_lib/fused.py:" in p and "inside a function" in p for p in found), found


def test_a_framework_outside_the_seam_is_caught():
    for line in ("import tensorflow as tf", "from jax import numpy as jnp", "import torch.nn"):
        sources, at = broken("fused", line)
        assert any(p.startswith(f"gan_lib/fused.py:{at}:") and "outside the backend seam" in p for p in problems(sources))
    sources, _ = broken("devices", "import jax")
    assert problems(sources) == []


def test_a_private_name_across_modules_is_caught():
    sources, line = broken("fused", "from .backend import _TRACKED")
    assert problems(sources) == [f"gan_lib/fused.py:{line}: `from .backend import _TRACKED` imports the private _TRACKED "
                                 "from another module: make it public there, or keep it where it is used"]


def test_long_modules_and_functions_and_new_modules_are_caught():
    sources = package_sources()
    sources["latent"] += "\n" * MAX_LINES
    sources["panel"] += "\n\ndef long():\n" + "    x = 1\n" * MAX_FUNCTION_LINES
    sources["newcomer"] = "X = 1\n"
    found = problems(sources)
    assert any(p.startswith("gan_lib/latent.py:1:") and "more than 400" in p for p in found), found
    assert any(p.startswith("gan_lib/panel.py:") and "function long has 61 lines" in p for p in found), found
    assert any(p.startswith("gan_lib/newcomer.py:1:") and "no layer lists" in p for p in found), found
