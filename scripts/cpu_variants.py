#!/usr/bin/env python3
"""Runs notebook programs under simulated CPUs and thread counts, and says what differs.

LibTorch's CPU kernels pick their code by instruction set (ATen's own kernels,
oneDNN's JIT kernels, MKL's BLAS) and split reductions by thread count, so the
same seed can give different numbers on another machine. This script simulates
other machines on this one through the libraries' own switches and compares the
runs' outputs with the first variant's:

    cpu_variants.py [--examples a,b] [--args ARGS] [--profile P] [--out DIR] [--rounds N] VARIANT...

VARIANT is NAME or NAME:VAR=VALUE,VAR=VALUE (an empty VALUE unsets VAR; CPUS=LIST
runs the program under `taskset -c LIST`, a machine with fewer cores), e.g.
    native  aten-avx2:ATEN_CPU_CAPABILITY=avx2  t1:HW4_THREADS=1  one-core:CPUS=0
Each run starts from an empty <out>/<variant>/<example>/ and writes there (outputs
under HW4_OUTPUT_DIR, stdout in <example>.stdout, stderr in <example>.stderr), so no
run reuses another's cached evaluator weights. With --rounds N every variant runs
N times, interleaved (A B A B ...), and the wall and CPU (user + system) times and
their ratios to the first variant go to stderr. The last lines are a Markdown table per notebook:
which stdout lines, figures and metrics.json keys (wall times aside) differ from
the first variant, and by how much. With --compare-only the runs already in
<out> are compared without running anything.
"""
import argparse
import json
import math
import os
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from nbruns import COMPARED, comparable_metrics, notebook_examples, same_output  # noqa: E402

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def parse_variant(spec):
    name, _, assigns = spec.partition(":")
    env = {}
    for a in filter(None, assigns.split(",")):
        k, eq, v = a.partition("=")
        if not eq or not k:
            raise SystemExit(f"variant {spec!r}: {a!r} is not VAR=VALUE")
        env[k] = v
    return name, env


MARK = ".cpu_variants"


def fresh(out):
    """Empties a variant's folder before a run, so no run reuses another's cached
    evaluator weights or metrics; refuses a non-empty folder this script did not make."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARK).exists():
            raise SystemExit(f"{out} is not empty and was not made by cpu_variants.py; pick another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARK).touch()


def run_one(example, env_over, out, profile, args=()):
    fresh(out)
    env = dict(os.environ, HW4_PROFILE=profile, HW4_OUTPUT_DIR=str(out))
    cmd = [str(ROOT / "target" / "debug" / "examples" / example), *args]
    env_over = dict(env_over)
    if "CPUS" in env_over:
        cmd = ["taskset", "-c", env_over.pop("CPUS")] + cmd
    for k, v in env_over.items():
        if v == "":
            env.pop(k, None)
        else:
            env[k] = v
    t0, r0 = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out / f"{example}.stdout", "w") as so, open(out / f"{example}.stderr", "w") as se:
        rc = subprocess.run(cmd, cwd=ROOT / "notebooks", env=env, stdout=so, stderr=se).returncode
    wall, r1 = time.time() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if rc != 0:
        tail = (out / f"{example}.stderr").read_text()[-2000:]
        raise SystemExit(f"{example} failed under {env_over} (exit {rc}):\n{tail}")
    return wall, cpu


def numbers(s):
    return [float(x) for x in NUMBER.findall(s)]


def rel(a, b):
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def leaves(v, path=""):
    """(path, number-or-other) pairs of a JSON value."""
    if isinstance(v, dict):
        for k in sorted(v):
            yield from leaves(v[k], f"{path}.{k}" if path else k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from leaves(x, f"{path}[{i}]")
    else:
        yield path, v


def metric_diffs(a, b):
    """{key: (max abs difference, max relative difference or None for non-numbers)}."""
    ma, mb = comparable_metrics(a), comparable_metrics(b)
    out = {}
    for k in sorted(set(ma) | set(mb)):
        if ma.get(k) == mb.get(k):
            continue
        la, lb = dict(leaves(ma.get(k))), dict(leaves(mb.get(k)))
        worst_abs, worst_rel, numeric = 0.0, 0.0, True
        for p in set(la) | set(lb):
            x, y = la.get(p), lb.get(p)
            if x == y:
                continue
            if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
                worst_abs = max(worst_abs, abs(x - y))
                worst_rel = max(worst_rel, rel(x, y))
            else:
                numeric = False
        out[k] = (worst_abs, worst_rel if numeric else None)
    return out


def png_pixels(path):
    """(width, height, channels, bytes) of an 8-bit, non-interlaced PNG."""
    data = Path(path).read_bytes()
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, color, _, _, interlace = ihdr
    ch = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or ch is None or interlace:
        return None
    raw, stride, out, prev = zlib.decompress(idat), w * ch, bytearray(), bytearray(w * ch)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return w, h, ch, bytes(out)


def figure_diff(a, b):
    """A short description of how two figures differ."""
    if a.suffix == ".png":
        pa, pb = png_pixels(a), png_pixels(b)
        if pa and pb and pa[:3] == pb[:3]:
            d = [abs(x - y) for x, y in zip(pa[3], pb[3]) if x != y]
            return f"{a.name} ({len(d)}/{len(pa[3])} px values, max {max(d) if d else 0}/255)"
    if a.suffix == ".json":
        la, lb = dict(leaves(json.loads(a.read_text()))), dict(leaves(json.loads(b.read_text())))
        d = [rel(x, y) for k, x in la.items() for y in [lb.get(k)]
             if x != y and isinstance(x, (int, float)) and isinstance(y, (int, float))]
        return f"{a.name} ({len(d)}/{len(la)} values, largest rel. diff {max(d, default=0):.1e})"
    if a.suffix == ".svg":
        la, lb = a.read_text().splitlines(), b.read_text().splitlines()
        n = sum(x != y for x, y in zip(la, lb)) + abs(len(la) - len(lb))
        return f"{a.name} ({n}/{max(len(la), len(lb))} lines)"
    return a.name


def compare(ref, other, example, notebook):
    """One table row's cells: stdout, figures, metrics."""
    sa = (ref / f"{example}.stdout").read_text().splitlines()
    sb = (other / f"{example}.stdout").read_text().splitlines()
    diff_lines = [(x, y) for x, y in zip(sa, sb) if x != y]
    session_only = [d for d in diff_lines if d[0].startswith("hw4 session:")]
    other_lines = [d for d in diff_lines if not d[0].startswith("hw4 session:")]
    if len(sa) != len(sb):
        other_lines.append((f"{len(sa)} lines", f"{len(sb)} lines"))
    if other_lines:
        worst = max((max((rel(x, y) for x, y in zip(numbers(a), numbers(b))), default=0.0)
                     for a, b in other_lines), default=0.0)
        a, b = other_lines[0]
        stdout = (f"{len(other_lines)}/{len(sa)} lines, largest rel. diff {worst:.1e}; "
                  f"first: `{a.strip()[:70]}` vs `{b.strip()[:70]}`")
    else:
        stdout = "same" + (" (session line aside)" if session_only else "")
    ra, rb = ref / notebook, other / notebook
    figs, metrics = [], "same"
    files = sorted(p.relative_to(ra) for p in ra.rglob("*") if p.is_file() and p.suffix in COMPARED)
    for r in files:
        if r.name == "metrics.json":
            d = metric_diffs(ra / r, rb / r)
            d.pop("session", None)
            n = len(comparable_metrics(ra / r))
            if d:
                num = [v for v in d.values() if v[1] is not None]
                worst = max(num, key=lambda v: v[1]) if num else None
                top = sorted(d.items(), key=lambda kv: -(kv[1][1] or 0))[:3]
                metrics = (f"{len(d)}/{n} keys" + (f", largest rel. diff {worst[1]:.1e}" if worst else "")
                           + "; e.g. " + ", ".join(f"{k} ({'%.1e' % v[1] if v[1] is not None else 'text'})"
                                                   for k, v in top))
        elif not same_output(ra / r, rb / r):
            figs.append(figure_diff(ra / r, rb / r))
    return stdout, (f"{len(figs)}/{len(files) - 1}: " + "; ".join(figs)) if figs else "same", metrics


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--examples", default=",".join(notebook_examples().values()))
    ap.add_argument("--args", default="", help="arguments for every example, e.g. '--size 32x128'")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--out", type=Path, default=Path("/tmp/hw4-cpu-variants"))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--compare-only", action="store_true")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variants]
    examples = [e for e in args.examples.split(",") if e]
    # The output folder each example writes (its notebook's name; other examples,
    # e.g. train_ocr, name their session after themselves).
    notebook_of = {ex: nb for nb, ex in notebook_examples().items()}
    notebook_of.update({ex: ex for ex in examples if ex not in notebook_of})
    walls = {}
    if not args.compare_only:
        for ex in examples:
            for r in range(args.rounds):
                for name, env in variants:
                    w = run_one(ex, env, args.out / name / ex, args.profile, args.args.split())
                    walls.setdefault((ex, name), []).append(w)
                    print(f"[{ex}] round {r + 1} {name}: {w[0]:.1f}s wall, {w[1]:.1f}s CPU",
                          file=sys.stderr, flush=True)
    for ex in examples:
        if walls:
            base = walls[(ex, variants[0][0])]
            for name, _ in variants:
                for i, what in ((0, "wall"), (1, "CPU")):
                    ws = [w[i] for w in walls[(ex, name)]]
                    ratios = [w[i] / b[i] for w, b in zip(walls[(ex, name)], base)]
                    print(f"[{ex}] {name}: {what} median {statistics.median(ws):.1f}s, ratio to "
                          f"{variants[0][0]} median {statistics.median(ratios):.3f} (per round: "
                          f"{' '.join(f'{x:.3f}' for x in ratios)})", file=sys.stderr)
        print(f"\n{notebook_of[ex]} ({ex}, profile {args.profile}), compared with `{variants[0][0]}`:\n")
        print("| variant | stdout | figures and other files | metrics.json |")
        print("|---|---|---|---|")
        for name, _ in variants[1:]:
            cells = compare(args.out / variants[0][0] / ex, args.out / name / ex, ex, notebook_of[ex])
            print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
