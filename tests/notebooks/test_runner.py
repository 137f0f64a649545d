"""The notebook runner itself: it must fail on panics, compile errors, error values
and timeouts, naming the notebook and cell, and it must pass a good notebook with
every cell reproducible."""
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "scripts" / "run_notebooks.py"


def make_notebook(folder: Path, name: str, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "hw4", "display_name": "Rust (hw4)", "language": "rust"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def run(*args, env=None, timeout=1800):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([sys.executable, str(RUNNER), *map(str, args)], capture_output=True,
                       text=True, env=e, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def scratch():
    # Inside the project so that `:dep hw4 = { path = "../.." }` reuses the warm build.
    d = ROOT / "outputs" / "runner-tests"
    d.mkdir(parents=True, exist_ok=True)
    return d


DEP = ':dep hw4 = { path = "../.." }'


def test_panicking_cell_fails_the_run(scratch, tmp_path):
    nb = make_notebook(scratch, "Panics", [DEP, 'let v: Vec<i32> = vec![];\nprintln!("{}", v[3]);', 'println!("after");'])
    rc, out, err = run(nb, "--out", tmp_path)
    assert rc == 1, out + err
    assert "FAILED Panics: cell 1" in out, out
    assert "index out of bounds" in out, out


def test_compile_error_fails_the_run(scratch, tmp_path):
    nb = make_notebook(scratch, "DoesNotCompile", [DEP, "let x: i32 = \"text\";"])
    rc, out, err = run(nb, "--out", tmp_path)
    assert rc == 1, out + err
    assert "FAILED DoesNotCompile: cell 1" in out, out
    assert "mismatched types" in out, out


def test_error_value_fails_the_run_with_one_clear_line(scratch, tmp_path):
    nb = make_notebook(scratch, "BadDevice", [DEP, 'let s = hw4::Session::start("BadDevice")?;'])
    rc, out, err = run(nb, "--out", tmp_path, env={"HW4_DEVICE": "gpu"})
    assert rc == 1, out + err
    assert "FAILED BadDevice: cell 1 stopped with an error" in out, out
    assert 'HW4_DEVICE="gpu" is not a device; expected cpu, cuda or cuda:N' in out, out
    assert "panicked" not in out and "backtrace" not in out.lower(), out


def test_timeout_fails_the_run(scratch, tmp_path):
    nb = make_notebook(scratch, "Sleeps", [DEP, "std::thread::sleep(std::time::Duration::from_secs(60));"])
    rc, out, err = run(nb, "--out", tmp_path, "--timeout", "15")
    assert rc == 1, out + err
    assert "FAILED Sleeps: cell 1" in out and "timed out after 15s" in out, out


def test_unreproducible_cell_is_reported(scratch, tmp_path):
    nb = make_notebook(scratch, "Clock", [
        DEP,
        "let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();\n"
        "println!(\"{t}\");",
    ])
    rc, out, err = run(nb, "--out", tmp_path, "--repro")
    assert rc == 1, out + err
    assert "Clock: cell 1" in out and "not reproducible" in out, out
    assert "reproducible cells: 1/2" in out, out


def test_a_figure_lost_from_the_outputs_fails_the_run(scratch, tmp_path):
    # evcxr keeps one output per MIME type and cell: the second image would replace
    # the first without a trace. The runner counts what was shown against what is kept.
    show = 'hw4::show::display("image/png", "{}");'
    nb = make_notebook(scratch, "TwoFigures", [
        DEP,
        show.format("iVBORw0KGgo="),
        show.format("iVBORw0KGgo=") + "\n" + show.format("iVBORw0KGgp="),
    ])
    rc, out, err = run(nb, "--out", tmp_path)
    assert rc == 1, out + err
    assert "FAILED TwoFigures: cell 2 showed 2 figure(s)/table(s) but its outputs hold 1" in out, out
    # One figure per cell passes, and the markers do not reach the saved stdout.
    ok = make_notebook(scratch, "OneFigure", [DEP, show.format("iVBORw0KGgo=") + '\nprintln!("shown");'])
    rc, out, err = run(ok, "--out", tmp_path)
    assert rc == 0, out + err
    executed = nbformat.read(tmp_path / "OneFigure" / "OneFigure.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "shown" in text and "\u2064\u2063" not in text, text
    # A cell whose one output bundles two formats shows only one of them in JupyterLab.
    mixed = make_notebook(scratch, "TwoFormats", [DEP, 'hw4::show::display("image/svg+xml", "<svg/>");\n' + show.format("iVBORw0KGgo=")])
    rc, out, err = run(mixed, "--out", tmp_path)
    assert rc == 1, out + err
    assert "FAILED TwoFormats: cell 1 shows 2 figures/tables in one output" in out, out
    # A cell ending in a `for` loop shows its unit value `()` under the code in JupyterLab.
    unit = make_notebook(scratch, "Unit", [DEP, 'for i in 0..2 {\n    println!("{i}");\n}'])
    rc, out, err = run(unit, "--out", tmp_path)
    assert rc == 1, out + err
    assert "FAILED Unit: cell 1 ends in a `for` block without `;`" in out, out
    # So does a bare `()` as the last expression.
    bare = make_notebook(scratch, "BareUnit", [DEP, 'let x = 1;\nif x > 0 { println!("pos") } else { println!("neg") };\n()'])
    rc, out, err = run(bare, "--out", tmp_path)
    assert rc == 1, out + err
    assert "FAILED BareUnit: cell 1 ends in a bare `()`" in out, out


def test_quickstart_shows_what_it_should(tmp_path):
    rc, out, err = run(ROOT / "notebooks" / "Quickstart.ipynb", "--profile", "smoke", "--out", tmp_path)
    assert rc == 0, out + err
    executed = nbformat.read(tmp_path / "Quickstart" / "Quickstart.ipynb", as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    stdout = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert "hw4 session: notebook=Quickstart device=cpu profile=smoke seed=0" in stdout
    # torch.manual_seed(1); torch.randn(2, 3) in PyTorch gives these numbers.
    assert "[[ 0.6614,  0.2669,  0.0617]," in stdout
    mimes = [k for o in outputs if o.output_type in ("display_data", "execute_result") for k in o.data]
    assert "image/png" in mimes and "image/svg+xml" in mimes
    # Signed for this user's Jupyter: JupyterLab hides the SVG outputs of an untrusted notebook.
    from nbformat.sign import NotebookNotary
    assert NotebookNotary().check_signature(executed), "the executed notebook is not trusted"


def test_helper_program_builds_without_a_sourced_environment():
    # `python scripts/run_notebooks.py` run outside `make` (no scripts/env.sh, so no LIBTORCH):
    # the DDPM readers' child program must still build, or the notebook silently takes the
    # slower path of training the readers itself.
    env = {k: v for k, v in os.environ.items()
           if k not in ("LIBTORCH", "LD_LIBRARY_PATH", "HW4_ROOT", "HW4_VENV", "HW4_TOOLS")}
    code = ("import sys; from pathlib import Path; sys.path.insert(0, 'scripts'); "
            "import run_notebooks as r; r.build_helpers([Path('notebooks/DDPM.ipynb')])")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=1800)
    assert p.returncode == 0, p.stderr
    assert "helper programs built" in p.stderr, p.stderr[-3000:]
    assert (ROOT / "target" / "debug" / "examples" / "train_readers").exists()
