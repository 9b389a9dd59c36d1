"""The benchmarks a GPU machine will run work here first: benchmarks/gpu_check.sh in its CPU mode."""

import json
import os
import subprocess
import sys

import nbformat

from conftest import ROOT


def test_the_gpu_check_runs_on_a_cpu_and_writes_its_table(tmp_path):
    # the notebook runner on a one-cell notebook that imports gan_lib (nbval runs the course's notebooks)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import gan_lib\nprint(gan_lib.describe_device())")])
    nbformat.write(nb, str(tmp_path / "00_tiny.ipynb"))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=ROOT)  # the kernel runs in tmp_path's notebook folder: gan_lib from this checkout
    done = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(tmp_path / "out"), "--", "--quick", "--notebooks",
                           str(tmp_path / "00_tiny.ipynb")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["machine"]["mode"] == "cpu"
    assert {r["precision"] for r in report["speed"]} == {"float32", "mixed_bfloat16"}  # mixed_float16 needs a GPU
    assert all(r["loop_s"] > 0 and r["fused_s"] > 0 for r in report["speed"])
    run = report["cifar_run"]
    assert run["ok"] and run["s_per_batch"] > 0 and run["batches"] == 2  # the rate read from the run's own lines
    assert [(r["notebook"], r["ok"]) for r in report["notebooks"]] == [("00_tiny.ipynb", True)]
    table = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "| 1-D toy GAN (notebook 01), batch 128 | mixed_bfloat16 |" in table and "| 00_tiny.ipynb | ok |" in table
