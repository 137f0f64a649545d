#!/usr/bin/env python3
"""Executes hw4 notebooks headless in fresh `hw4` kernels.

    run_notebooks.py [--profile P] [--repro] [--timeout S] [--out DIR] NOTEBOOK...

Each notebook runs in a fresh kernel with its folder as working directory; the
executed copy is written to <out>/<Notebook>/<Notebook>.ipynb (default out:
outputs/), and what the kernel writes (metrics.json, checkpoints, figures, the
evaluators' weight cache) goes under <out> too, unless HW4_OUTPUT_DIR says otherwise:
a smoke run with --out never touches the results in outputs/. The run fails, naming
the notebook and cell, on an error output, a panic ("panicked at" on stderr, or the
cell error evcxr raises for it) or a cell timeout.

With --repro, reproducibility is checked two ways: (a) the notebook is executed a
second time in another fresh kernel and every code cell's stdout and displayed data
(PNG bytes, SVG/HTML/text) must be identical; (b) after the first full run, each code
cell is executed again in place, in the same kernel, and must give its first output
again. The last line is `reproducible cells: X/Y`; the run fails unless X = Y.
Per-cell wall times go to stderr.
"""
import argparse
import copy
import json
import os
import queue
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import run_sync

ROOT = Path(__file__).resolve().parent.parent
# Printed by a statement the runner appends to each code cell while executing it: a
# cell whose code stopped early (an error returned by `?`, which evcxr only prints on
# stderr) never prints it. It is removed from the saved outputs.
DONE = "\u241chw4-cell-done\u241c"
# Printed by `hw4::show::display` before each figure or table it shows, when the kernel
# runs with HW4_FIGURE_MARKERS set (this runner sets it): the runner counts them per
# cell against the cell's saved outputs and removes them.
SHOWN = "\u2064\u2063\u2064\u2063\u2064"  # hw4::show::SHOWN_MARKER (invisible)
os.environ["HW4_FIGURE_MARKERS"] = "1"
# Training cells train from scratch unless asked otherwise (HW4_TRAIN=auto resumes or loads
# their checkpoints; see the README): what graders' fresh runs and the tests rely on.
os.environ.setdefault("HW4_TRAIN", "1")
# How long to wait for stream output that arrives after the cell went idle (s).
LATE_STREAM_WAIT = float(os.environ.get("HW4_LATE_STREAM_WAIT", "10"))
COMPARED_MIME = ("image/png", "image/svg+xml", "text/html", "text/plain", "text/markdown")


class NotebookFailure(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def snapshot(cell):
    """What a cell showed: its stdout text and its displayed data, in order."""
    stdout, shown = [], []
    for o in cell.get("outputs", []):
        if o.output_type == "stream" and o.name == "stdout":
            stdout.append(o.text)
        elif o.output_type in ("display_data", "execute_result"):
            shown.append({k: v for k, v in o.data.items() if k in COMPARED_MIME})
    return "".join(stdout), shown


def is_command_only(cell):
    lines = [l for l in cell.source.splitlines() if l.strip() and not l.strip().startswith("//")]
    return all(l.lstrip().startswith(":") for l in lines)


def execute_marked(client, cell, idx):
    """Executes `cell` with the completion marker appended; returns whether the
    cell's code ran to its end. The outputs land in `cell` without the markers; the number of
    figures the cell showed is left in `cell.metadata["hw4_shown"]` for check_figures."""
    if is_command_only(cell):
        client.execute_cell(cell, idx)
        return True
    run = copy.deepcopy(cell)
    run.source = cell.source + f'\nprintln!("{DONE}");'
    try:
        client.execute_cell(run, idx)
    finally:
        if not any(o.output_type == "stream" and DONE in o.text for o in run.get("outputs", [])):
            drain_late_streams(client, run)
        done = False
        shown = 0
        outputs = []
        for o in run.get("outputs", []):
            if o.output_type == "stream" and o.name == "stdout" and (DONE in o.text or SHOWN in o.text):
                done = done or DONE in o.text
                shown += o.text.count(SHOWN)
                for marker in (DONE, SHOWN):
                    o.text = o.text.replace(marker + "\n", "").replace(marker, "")
                if not o.text:
                    continue
            outputs.append(o)
        cell.outputs = outputs
        cell.execution_count = run.get("execution_count")
        cell.metadata["hw4_shown"] = shown
    return done


UNIT_TAIL = re.compile(r"(for|while|loop|if|match)\b")


def check_unit_tail(nbname, idx, cell):
    """evcxr shows the value of a cell's last expression: a cell that ends in a `for`
    loop (or `if`, `match`, ...) block with no `;` after it shows a stray `()` in
    JupyterLab. The runner appends its completion marker to each cell, which hides this
    from the run itself, so the cell's source is checked instead."""
    lines = [l for l in cell.source.splitlines() if l.strip() and not l.strip().startswith("//")]
    starts = [l for l in lines if not l.startswith((" ", "\t", "}", ")", "]", ":", "#"))]
    if lines and lines[-1].strip() == "()":
        raise NotebookFailure(f"{nbname}: cell {idx} ends in a bare `()`: JupyterLab shows it below the cell")
    if starts and UNIT_TAIL.match(starts[-1]) and lines[-1].rstrip().endswith("}"):
        raise NotebookFailure(
            f"{nbname}: cell {idx} ends in a `{UNIT_TAIL.match(starts[-1]).group(1)}` block without `;` "
            "after it: JupyterLab shows a stray `()` below the cell (end it with `};`)")


def check_figures(nbname, idx, cell):
    """Every figure or table the cell showed must be in its outputs, each in an output
    of its own: evcxr keeps one output per MIME type per cell, so a second PNG
    replaces the first, and JupyterLab shows only one format of a bundle that holds
    several. Counted both ways: shown but missing, and present but never shown."""
    shown = cell.metadata.pop("hw4_shown", 0)
    kept = 0
    for o in cell.get("outputs", []):
        if o.output_type in ("display_data", "execute_result"):
            if o.output_type == "execute_result" and o.data.get("text/plain", "").strip() == "()":
                raise NotebookFailure(
                    f"{nbname}: cell {idx} shows a stray `()` (its last expression is a unit "
                    "value, e.g. a `for` loop without a trailing `;`)")
            kinds = [k for k in o.data if k != "text/plain"]
            if len(kinds) > 1:
                raise NotebookFailure(
                    f"{nbname}: cell {idx} shows {len(kinds)} figures/tables in one output "
                    f"({', '.join(kinds)}); JupyterLab shows only one of them: one figure per cell")
            kept += len(kinds)
    if shown != kept:
        raise NotebookFailure(
            f"{nbname}: cell {idx} showed {shown} figure(s)/table(s) but its outputs hold {kept}: "
            "evcxr keeps one per MIME type and cell, so show at most one figure per cell")


def drain_late_streams(client, run, wait=LATE_STREAM_WAIT):
    """evcxr forwards the cell process's stdout/stderr from its own threads, so on a
    loaded machine a cell's last lines (the completion marker, or the error text of a
    `?`) can reach the iopub channel after the kernel reported the cell idle; nbclient
    has stopped listening by then and would drop them. Reads them here, until the
    marker arrives or `wait` seconds pass."""
    get = run_sync(client.kc.get_iopub_msg)
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            msg = get(timeout=0.2)
        except queue.Empty:
            continue
        if msg["msg_type"] != "stream":
            continue
        content = msg["content"]
        run.outputs.append(nbformat.v4.new_output("stream", name=content["name"], text=content["text"]))
        if DONE in content["text"]:
            return


def check_cell(nbname, idx, cell, done=True):
    stderr = "".join(o.text for o in cell.get("outputs", [])
                     if o.output_type == "stream" and o.name == "stderr")
    if "panicked at" in stderr:
        tail = stderr[stderr.index("panicked at"):].strip().splitlines()[:12]
        raise NotebookFailure(f"{nbname}: cell {idx} panicked:\n" + "\n".join(tail))
    errors = ["\n".join(o.get("traceback", [])) or f"{o.ename}: {o.evalue}"
              for o in cell.get("outputs", []) if o.output_type == "error"]
    if errors:
        raise NotebookFailure(f"{nbname}: cell {idx} failed:\n" + "\n".join(errors))
    if not done:
        tail = "\n".join(stderr.strip().splitlines()[-12:])
        raise NotebookFailure(f"{nbname}: cell {idx} stopped with an error:\n{tail}")


def first_line(cell):
    src = cell.source.strip().splitlines()
    return src[0][:70] if src else ""


def execute(nb_path, nb, timeout, first_timeout, reexecute=False):
    """Runs all code cells in one fresh kernel; optionally re-runs each in place.
    Returns (per-cell mismatch messages of the in-place re-run)."""
    nbname = nb_path.stem
    client = NotebookClient(
        nb,
        kernel_name="hw4",
        timeout=timeout,
        allow_errors=True,
        resources={"metadata": {"path": str(nb_path.parent)}},
    )
    mismatches = {}
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    with client.setup_kernel(cwd=str(nb_path.parent)):
        for n, (idx, cell) in enumerate(code_cells):
            client.timeout = first_timeout if n == 0 else timeout
            check_unit_tail(nbname, idx, cell)
            t0 = time.time()
            try:
                done = execute_marked(client, cell, idx)
            except CellTimeoutError:
                raise NotebookFailure(
                    f"{nbname}: cell {idx} ({first_line(cell)!r}) timed out after {client.timeout}s")
            except DeadKernelError as e:
                raise NotebookFailure(f"{nbname}: cell {idx}: the kernel died ({e})")
            except CellExecutionError as e:
                raise NotebookFailure(f"{nbname}: cell {idx} failed: {e}")
            log(f"[{nbname}] cell {idx} {time.time() - t0:.2f}s  {first_line(cell)}")
            check_cell(nbname, idx, cell, done)
            check_figures(nbname, idx, cell)
        if reexecute:
            for n, (idx, cell) in enumerate(code_cells):
                again = copy.deepcopy(cell)
                client.timeout = first_timeout if n == 0 else timeout
                t0 = time.time()
                try:
                    done = execute_marked(client, again, idx)
                except CellTimeoutError:
                    raise NotebookFailure(f"{nbname}: cell {idx} timed out when re-executed")
                log(f"[{nbname}] re-run cell {idx} {time.time() - t0:.2f}s")
                check_cell(nbname, idx, again, done)
                check_figures(nbname, idx, again)
                if snapshot(again) != snapshot(cell):
                    mismatches[idx] = describe(snapshot(cell), snapshot(again))
    return mismatches


def describe(a, b):
    if a[0] != b[0]:
        la, lb = a[0].splitlines(), b[0].splitlines()
        for x, y in zip(la + [""] * len(lb), lb + [""] * len(la)):
            if x != y:
                return f"stdout differs: {x[:120]!r} vs {y[:120]!r}"
    if len(a[1]) != len(b[1]):
        return f"{len(a[1])} displays vs {len(b[1])}"
    for i, (x, y) in enumerate(zip(a[1], b[1])):
        if x != y:
            keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
            return f"display {i} differs ({', '.join(keys)})"
    return "differs"


def record_wall_time(nbname, seconds):
    """Adds the whole notebook's wall time (kernel start included) to the metrics.json
    the notebook wrote, as `time.notebook_s` (a wall time: never compared)."""
    path = Path(os.environ["HW4_OUTPUT_DIR"]) / nbname / "metrics.json"  # set by main()
    if not path.exists():
        return
    metrics = json.loads(path.read_text())
    metrics["time.notebook_s"] = round(seconds, 1)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(sorted(metrics.items())), indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def run(nb_path, out_root, profile, repro, timeout, first_timeout):
    nbname = nb_path.stem
    if profile:
        os.environ["HW4_PROFILE"] = profile
    src = nbformat.read(nb_path, as_version=4)
    nb = copy.deepcopy(src)
    t0 = time.time()
    mismatches = execute(nb_path, nb, timeout, first_timeout, reexecute=repro)
    wall = time.time() - t0
    log(f"[{nbname}] executed in {wall:.1f}s")
    if not repro:
        record_wall_time(nbname, wall)
    out_dir = out_root / nbname
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / f"{nbname}.ipynb")
    trust(out_dir / f"{nbname}.ipynb")
    if not repro:
        return None
    nb2 = copy.deepcopy(src)
    execute(nb_path, nb2, timeout, first_timeout)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    good = 0
    for i in code:
        a, b = snapshot(nb.cells[i]), snapshot(nb2.cells[i])
        problems = []
        if a != b:
            problems.append("second fresh run: " + describe(a, b))
        if i in mismatches:
            problems.append("re-executed in place: " + mismatches[i])
        if problems:
            print(f"{nbname}: cell {i} ({first_line(nb.cells[i])!r}) not reproducible: "
                  + "; ".join(problems))
        else:
            good += 1
    return good, len(code)


def trust(path):
    """Signs the executed notebook for this user's Jupyter, as `jupyter trust` does: it ran
    here, and JupyterLab does not show the SVG figures (charts, tables) of a notebook it does
    not trust, only its PNGs."""
    try:
        from nbformat.sign import NotebookNotary
        NotebookNotary().sign(nbformat.read(path, as_version=4))
    except Exception as e:  # a read-only or missing Jupyter data folder
        log(f"{path}: not signed as trusted ({e}); `jupyter trust {path}` shows its SVG figures")


def build_helpers(notebooks):
    """Builds the programs notebooks start as child processes (the DDPM notebook's readers,
    `examples/train_readers.rs`; see hw4::eval::background). A no-op when they are up to
    date; if the build fails, the notebook trains the readers itself, one line says why."""
    if not any(p.stem == "DDPM" for p in notebooks):
        return
    t0 = time.time()
    # Through scripts/env.sh, as the kernel does: LibTorch's location comes from there, so
    # the build also works when this script is run outside `make`.
    r = subprocess.run(["bash", "-c", "source scripts/env.sh && cargo build --quiet --example train_readers"],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        log(f"cargo build --example train_readers failed; the readers train in the notebook:\n{r.stderr[-2000:]}")
    else:
        log(f"helper programs built in {time.time() - t0:.1f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--profile", choices=["smoke", "cpu", "gpu"], default=os.environ.get("PROFILE") or None)
    ap.add_argument("--repro", action="store_true", help="check that every cell is reproducible")
    ap.add_argument("--timeout", type=int, default=None, help="seconds per cell (default by profile)")
    ap.add_argument("--first-timeout", type=int, default=1800,
                    help="seconds for the first cell, which compiles the hw4 crate (default 1800)")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs")
    args = ap.parse_args()
    args.out = args.out.resolve()
    # The kernel writes under HW4_OUTPUT_DIR; without it, under the same --out folder.
    os.environ.setdefault("HW4_OUTPUT_DIR", str(args.out))
    timeout = args.timeout or {"smoke": 300, "cpu": 3600, "gpu": 7200}.get(args.profile, 7200)
    total_good = total = 0
    failed = False
    build_helpers(args.notebooks)
    for nb_path in args.notebooks:
        nb_path = nb_path.resolve()
        if not nb_path.exists():
            print(f"no such notebook: {nb_path}")
            return 2
        try:
            res = run(nb_path, args.out, args.profile, args.repro, timeout, args.first_timeout)
        except NotebookFailure as e:
            print(f"FAILED {e}")
            failed = True
            continue
        if res:
            total_good += res[0]
            total += res[1]
        print(f"ok {nb_path.stem}")
    if args.repro:
        print(f"reproducible cells: {total_good}/{total}")
        failed = failed or total_good != total
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
