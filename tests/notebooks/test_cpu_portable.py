"""HW4_CPU_MODE=portable gives the same numbers on other x86-64 machines.

Another machine is simulated on this one with the libraries' own switches, as
scripts/cpu_variants.py does: a CPU without AVX-512 (ATen's and oneDNN's AVX2 code,
MKL capped at AVX2) and a machine with one core (`taskset -c 0`). A notebook run as
its cargo example (smoke profile) must print the same stdout and write the same
figures and metrics.json (wall times aside) on every simulated machine. The same
runs in the native mode must differ, or the simulation would prove nothing.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from nbruns import compare_outputs, example_of  # noqa: E402

# What a CPU without AVX-512 runs (the pins equal portable mode's own for ATen and
# oneDNN, which portable mode accepts; MKL's own dispatch is capped as well).
NO_AVX512 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
MACHINES = {
    "this-cpu-all-cores": ({}, None),
    "this-cpu-one-core": ({}, "0"),
    "no-avx512-all-cores": (NO_AVX512, None),
    "no-avx512-one-core": (NO_AVX512, "0"),
}
# Variables of the developer's shell that would change a run.
CLEARED = ("HW4_THREADS", "HW4_CPU_MODE", "HW4_SEED", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
           "DNNL_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def run(example, out, mode, machine):
    pins, cpus = MACHINES[machine]
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(pins, HW4_PROFILE="smoke", HW4_CPU_MODE=mode, HW4_OUTPUT_DIR=str(out))
    cmd = [str(ROOT / "target" / "debug" / "examples" / example)]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus] + cmd
    ran = subprocess.run(cmd, cwd=ROOT / "notebooks", env=env, capture_output=True, text=True,
                         timeout=1800)
    assert ran.returncode == 0, f"{machine}: {ran.stderr[-3000:]}"
    return ran.stdout


def build(example):
    b = subprocess.run(["cargo", "build", "--quiet", "--example", example], cwd=ROOT,
                       capture_output=True, text=True)
    assert b.returncode == 0, b.stderr


def portable_supported():
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return " avx2" in flags and " fma" in flags


pytestmark = [
    pytest.mark.skipif(not portable_supported(), reason="portable mode needs an x86-64 CPU with AVX2 and FMA"),
    pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) simulates a one-core machine"),
]


@pytest.mark.parametrize("notebook", ["GAN-VAE", "DDPM"])
def test_portable_mode_gives_the_same_outputs_on_simulated_machines(notebook, tmp_path):
    example = example_of(notebook)
    build(example)
    stdout = {m: run(example, tmp_path / m, "portable", m) for m in MACHINES}
    first = next(iter(MACHINES))
    assert "cpu=portable(AVX2)" in stdout[first].splitlines()[0], stdout[first].splitlines()[0]
    for m in MACHINES:
        assert stdout[m] == stdout[first], f"stdout differs between {first} and {m}"
        assert compare_outputs(tmp_path / first, tmp_path / m) == [], f"{first} vs {m}"


def test_native_mode_differs_on_the_same_simulated_machines(tmp_path):
    """The simulation has teeth: in the native mode the two most different machines
    give different numbers (thread count and, where this CPU has AVX-512, code)."""
    if (os.cpu_count() or 1) < 2 and "avx512" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("one core and no AVX-512: nothing to simulate")
    example = example_of("GAN-VAE")
    build(example)
    a, b = "this-cpu-all-cores", "no-avx512-one-core"
    run(example, tmp_path / a, "native", a)
    run(example, tmp_path / b, "native", b)
    assert compare_outputs(tmp_path / a, tmp_path / b) != []
