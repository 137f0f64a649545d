"""Builds the hw4 kernel's dependencies once, so that a student's first `:dep hw4` cell
takes seconds: starts the `hw4` kernel (scripts/kernel, which picks a build slot) in
notebooks/, runs the notebooks' first two cells and a trivial cell, and prints how long
each took (stderr). `scripts/setup` runs it when no build slot has been built yet.

Usage: .venv/bin/python scripts/warm_kernel.py [--trivial N]
  --trivial N  also run a trivial cell N times and print the median (default 0)
"""
import os
import statistics
import sys
import time

from jupyter_client.manager import KernelManager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CELLS = [':dep hw4 = { path = ".." }', "use hw4::prelude::*;"]
TRIVIAL = 'let a = 1 + 1;\nprintln!("{a}");'


def run(kc, code, timeout=1800):
    """Executes `code`; returns (seconds, error text or None)."""
    t0 = time.perf_counter()
    msg_id = kc.execute(code)
    error = None
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "error":
            error = "\n".join(content.get("traceback", [])) or content.get("evalue", "error")
        elif kind == "status" and content.get("execution_state") == "idle":
            return time.perf_counter() - t0, error


def main():
    n_trivial = int(sys.argv[sys.argv.index("--trivial") + 1]) if "--trivial" in sys.argv else 0
    km = KernelManager(kernel_name="hw4")
    km.start_kernel(cwd=os.path.join(ROOT, "notebooks"))
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        for code in CELLS:
            secs, error = run(kc, code)
            print(f"warm_kernel: {code!r}: {secs:.1f} s", file=sys.stderr)
            if error:
                print(f"warm_kernel: {code!r} failed:\n{error}", file=sys.stderr)
                return 1
        times = [run(kc, TRIVIAL)[0] for _ in range(n_trivial)]
        if times:
            print(f"warm_kernel: trivial cell, median of {n_trivial}: {statistics.median(times):.2f} s "
                  f"({min(times):.2f}-{max(times):.2f})", file=sys.stderr)
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
