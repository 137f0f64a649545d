#!/usr/bin/env python3
"""Round-trips a notebook through a plain-text form that is easy to edit and diff.

    nbtext.py to-text  NOTEBOOK.ipynb  [OUT.txt]     (stdout without OUT)
    nbtext.py to-ipynb TEXT.txt        NOTEBOOK.ipynb

Text form: cells separated by lines `%% markdown` or `%% code`. Outputs are dropped;
the notebook gets the `hw4` kernelspec.

Why not jupytext: its percent format does this and more, but it is not in
requirements.txt, and adding a package (with its own release cycle and options for
cell metadata, headers and formats) to the pinned environment for one conversion of
about sixty lines over nbformat, which is installed anyway, costs more than it saves.
This script writes exactly the `hw4` metadata the notebooks carry and nothing else.
"""
import sys
import nbformat

MARK = {"%% markdown": "markdown", "%% code": "code"}


def to_ipynb(text):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "hw4", "display_name": "Rust (hw4)", "language": "rust"},
        "language_info": {"name": "rust", "file_extension": ".rs", "mimetype": "text/rust"},
    }
    kind, lines = None, []

    def flush():
        if kind is None:
            return
        src = "\n".join(lines).strip("\n")
        cell = nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
        cell.pop("id", None)
        nb.cells.append(cell)

    for line in text.splitlines():
        if line.rstrip() in MARK:
            flush()
            kind, lines = MARK[line.rstrip()], []
        else:
            lines.append(line)
    flush()
    nb.nbformat_minor = 4
    return nb


def to_text(nb):
    parts = []
    for c in nb.cells:
        parts.append(f"%% {c.cell_type}\n{c.source}\n")
    return "\n".join(parts)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("to-text", "to-ipynb"):
        print(__doc__)
        return 2
    if sys.argv[1] == "to-text":
        text = to_text(nbformat.read(sys.argv[2], as_version=4))
        if len(sys.argv) > 3:
            open(sys.argv[3], "w").write(text)
        else:
            sys.stdout.write(text)
    else:
        nbformat.write(to_ipynb(open(sys.argv[2]).read()), sys.argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
