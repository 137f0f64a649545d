# Sourced by the Makefile targets and scripts: the one place that says where
# LibTorch lives. Keep these values identical everywhere: torch-sys rebuilds
# (minutes) whenever LIBTORCH or its companions change.
HW4_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HW4_ROOT
export HW4_VENV="$HW4_ROOT/.venv"
export HW4_TOOLS="$HW4_ROOT/.tools"
HW4_PYVER="$(ls "$HW4_VENV/lib" 2>/dev/null | grep -m1 '^python3')"
export LIBTORCH="$HW4_VENV/lib/${HW4_PYVER:-python3}/site-packages/torch"
unset LIBTORCH_USE_PYTORCH
export LD_LIBRARY_PATH="$LIBTORCH/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$HW4_TOOLS/bin:$HW4_VENV/bin:$PATH"
# LibTorch's OpenMP worker threads spin while they wait by default; on a machine
# shared with other jobs that made 2-thread runs 17-100x slower (measured on the
# DDPM U-Net), and `cargo test` runs several LibTorch users at once. So tools and
# tests wait passively; the notebook kernel (scripts/kernel) and the benchmarks
# (bench/run.py) spin briefly instead, which is faster when they have the cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
