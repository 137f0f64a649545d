#!/usr/bin/env python3
"""Two rules about notebook runs, kept here once for the tests and scripts/gpu-bundle.

1. Which cargo example runs a notebook: `examples/<name>.rs` includes the program
   that build.rs generates from `notebooks/<Stem>.ipynb` as `nb_<Stem>.rs`, so the
   example files themselves say which notebook each one runs; nothing derives one
   name from the other.
2. When two runs' outputs are the same: the same files, and those a run must
   reproduce (figures, JSON, text, stdout) byte for byte, except metrics.json,
   whose `time.*` keys hold wall times and are left out.

    nbruns.py examples                 notebook examples' names, one a line
    nbruns.py compare DIR_A DIR_B      exit status 1 and a line a difference if any

Standard library only: bundle/run (scripts/gpu-bundle) runs it on a machine that
has Python but not this project's venv.
"""
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Files a run writes that must not change between runs (checkpoints and stderr,
# which holds wall times, are not compared).
COMPARED = (".png", ".svg", ".json", ".txt", ".csv", ".stdout")


def notebook_examples(root=ROOT):
    """{notebook stem: example name} for every example that includes a generated notebook."""
    found = {}
    for p in sorted((root / "examples").glob("*.rs")):
        m = re.search(r'"/nb_([^"/]+)\.rs"', p.read_text())
        if m:
            found[m.group(1)] = p.stem
    return found


def example_of(notebook, root=ROOT):
    """The cargo example that runs `notebook` (a path or a stem)."""
    stem = Path(notebook).stem
    name = notebook_examples(root).get(stem)
    if name is None:
        raise LookupError(f"no examples/*.rs includes nb_{stem}.rs: add one for notebooks/{stem}.ipynb")
    return name


def comparable_metrics(path):
    """metrics.json without its wall times (`time.*` keys)."""
    m = json.loads(Path(path).read_text())
    return {k: v for k, v in m.items() if not k.startswith("time.")}


def same_output(a, b):
    a, b = Path(a), Path(b)
    if not b.is_file():
        return False
    if a.name == "metrics.json":
        return comparable_metrics(a) == comparable_metrics(b)
    return hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def compare_outputs(a, b):
    """Differences between two output folders: files only one side has, then
    [COMPARED] files that differ (paths relative to the folders)."""
    a, b = Path(a), Path(b)
    files = lambda d: {p.relative_to(d) for p in d.rglob("*") if p.is_file()}
    fa, fb = files(a), files(b)
    diffs = [f"only in {a}: {r}" for r in sorted(fa - fb)] + [f"only in {b}: {r}" for r in sorted(fb - fa)]
    diffs += [f"differs: {r}" for r in sorted(fa & fb)
              if r.suffix in COMPARED and not same_output(a / r, b / r)]
    return diffs


def main(argv):
    if argv[1:2] == ["examples"] and len(argv) == 2:
        print("\n".join(notebook_examples().values()))
        return 0
    if argv[1:2] == ["compare"] and len(argv) == 4:
        diffs = compare_outputs(argv[2], argv[3])
        print("\n".join(diffs + [f"{len(diffs)} differences"]))
        return 1 if diffs else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
