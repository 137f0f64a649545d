#!/usr/bin/env python3
"""Benchmarks: the same work in tch (Rust) and in PyTorch eager, on this machine, in one run.

For every `bench/<name>.py` there is a cargo example `examples/bench_<name>.rs`. Both
print JSON lines `{"bench": "<key>", "seconds": <per-unit time>, "unit": "..."}` on
stdout; this script runs them back to back (Rust, PyTorch, Rust, PyTorch: the best of
two rounds each), pairs the lines by key and prints the ratio tch / PyTorch (below 1
means tch is faster). Results go to outputs/bench/results.json. A Rust line may carry a
`config` object (the notebook's settings the Rust side used); the PyTorch side gets the
Rust side's configs merged, as JSON in BENCH_CONFIG, so that both run the same model.

Usage: python bench/run.py [name ...]   (needs `source scripts/env.sh`)
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THREADS = os.environ.get("HW4_THREADS", "2")


def run_lines(cmd, env):
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed with exit code {out.returncode}")
    rows = {}
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["bench"]] = row
    if not rows:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} printed no JSON result lines")
    return rows


def main():
    names = sys.argv[1:] or sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem != "run")
    env = dict(os.environ, HW4_THREADS=THREADS, OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS)
    # Both sides wait for work as the notebook kernel does (scripts/kernel): OpenMP threads
    # spin briefly before they sleep, unless HW4_OMP_SPIN=0.
    if env.get("HW4_OMP_SPIN", "1") != "0":
        env.pop("OMP_WAIT_POLICY", None)
        env.setdefault("GOMP_SPINCOUNT", "10000")
    subprocess.run(["cargo", "build", "--examples"], cwd=ROOT, env=env, check=True)
    results = []
    for name in names:
        exe = ROOT / "target" / "debug" / "examples" / f"bench_{name}"
        if not exe.exists():
            raise SystemExit(f"bench: missing Rust side {exe} for bench/{name}.py")
        best, config = {}, {}
        for _ in range(2):
            for side, cmd in (("tch", [str(exe)]), ("pytorch", [sys.executable, f"bench/{name}.py"])):
                t0 = time.time()
                side_env = env if side == "tch" else dict(env, BENCH_CONFIG=json.dumps(config))
                rows = run_lines(cmd, side_env)
                if side == "tch":
                    for row in rows.values():
                        config.update(row.get("config", {}))
                sys.stderr.write(f"bench {name} {side}: {time.time() - t0:.1f} s\n")
                for key, row in rows.items():
                    cur = best.setdefault((key, side), row)
                    if row["seconds"] < cur["seconds"]:
                        best[(key, side)] = row
        for key in sorted({k for k, _ in best}):
            t, p = best.get((key, "tch")), best.get((key, "pytorch"))
            if t is None or p is None:
                raise SystemExit(f"bench: key {key} is missing on one side ({'tch' if t is None else 'pytorch'})")
            results.append({"bench": key, "unit": t.get("unit", "s"), "tch_s": t["seconds"],
                            "pytorch_s": p["seconds"], "ratio_tch_over_pytorch": t["seconds"] / p["seconds"]})
    print(f"{'bench':32} {'tch (s)':>10} {'pytorch (s)':>12} {'tch/pytorch':>12}")
    for r in results:
        print(f"{r['bench']:32} {r['tch_s']:10.4f} {r['pytorch_s']:12.4f} {r['ratio_tch_over_pytorch']:12.3f}")
    out = ROOT / "outputs" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"threads": int(THREADS), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
