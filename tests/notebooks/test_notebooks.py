"""Every notebook in notebooks/ runs headless in the smoke profile in fresh kernels,
with no error, panic or timeout, every cell reproducible, and a metrics.json."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_every_cell_is_reproducible(nb, tmp_path):
    # A smoke run with --out must leave the results in outputs/ alone.
    results = ROOT / "outputs" / nb.stem / "metrics.json"
    before = results.read_bytes() if results.exists() else None
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"), str(nb),
                        "--profile", "smoke", "--repro", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=5400,
                       env={k: v for k, v in os.environ.items() if k != "HW4_OUTPUT_DIR"})
    print(p.stdout)
    sys.stderr.write(p.stderr[-5000:])
    assert p.returncode == 0, p.stdout
    m = re.search(r"^reproducible cells: (\d+)/(\d+)$", p.stdout, re.M)
    assert m and m.group(1) == m.group(2) and int(m.group(2)) > 0, p.stdout
    assert (tmp_path / nb.stem / f"{nb.stem}.ipynb").exists()
    metrics = json.loads((tmp_path / nb.stem / "metrics.json").read_text())
    assert metrics["session"].startswith(f"hw4 session: notebook={nb.stem} ")
    assert "profile=smoke" in metrics["session"]
    after = results.read_bytes() if results.exists() else None
    assert after == before, f"the smoke run changed {results}"
