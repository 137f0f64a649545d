"""A notebook run as a cargo example prints the same stdout and writes the same
figures and metrics.json (wall times aside) as the same notebook run in the kernel."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from nbruns import compare_outputs, example_of  # noqa: E402

NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb"))


def kernel_stdout(executed):
    nb = nbformat.read(executed, as_version=4)
    return "".join(o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream" and o.name == "stdout")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_smoke_run_is_the_same_as_example_and_in_kernel(nb, tmp_path):
    env = dict(os.environ, HW4_PROFILE="smoke")
    name = example_of(nb)
    build = subprocess.run(["cargo", "build", "--quiet", "--example", name], cwd=ROOT, env=env,
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    exe = ROOT / "target" / "debug" / "examples" / name
    kernel_out, example_out = tmp_path / "kernel", tmp_path / "example"
    ran = subprocess.run([str(exe)], cwd=nb.parent, capture_output=True, text=True,
                         env=dict(env, HW4_OUTPUT_DIR=str(example_out)), timeout=3600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    runner = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), str(nb),
                             "--profile", "smoke", "--out", str(tmp_path / "executed")],
                            capture_output=True, text=True, env=dict(env, HW4_OUTPUT_DIR=str(kernel_out)),
                            timeout=3600)
    assert runner.returncode == 0, runner.stdout + runner.stderr[-3000:]
    assert kernel_stdout(tmp_path / "executed" / nb.stem / f"{nb.stem}.ipynb") == ran.stdout
    assert any(p.is_file() for p in kernel_out.rglob("*")), "the kernel run wrote nothing"
    assert compare_outputs(kernel_out, example_out) == []


def test_every_notebook_has_its_example():
    for nb in NOTEBOOKS:
        assert (ROOT / "examples" / f"{example_of(nb)}.rs").is_file()
