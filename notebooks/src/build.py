#!/usr/bin/env python3
"""Writes notebooks/NN-*.ipynb from the cell sources in notebooks/src/NN-*.md (cells split at lines '%% md' / '%% ts').
Outputs are filled by executing the notebook (see notebooks/README.md); this only lays down the sources."""
import json, pathlib, sys

META = {"kernelspec": {"display_name": "TypeScript", "language": "typescript", "name": "tslab"},
        "language_info": {"codemirror_mode": {"mode": "typescript", "name": "javascript", "typescript": True},
                          "file_extension": ".ts", "mimetype": "text/typescript", "name": "typescript", "version": "3.7.2"}}
here = pathlib.Path(__file__).parent
for src in sorted(here.glob('*.md')) if len(sys.argv) < 2 else [here / a for a in sys.argv[1:]]:
    cells, kind, lines = [], None, []
    def flush():
        if kind is None: return
        text = '\n'.join(lines).strip('\n')
        body = [l + '\n' for l in text.split('\n')]
        body[-1] = body[-1].rstrip('\n')
        cell = {"cell_type": "markdown" if kind == 'md' else "code", "id": f"c{len(cells):02d}", "metadata": {}, "source": body}
        if kind == 'ts': cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    for line in src.read_text().split('\n'):
        if line.strip() in ('%% md', '%% ts'):
            flush(); kind, lines = line.strip()[3:], []
        else:
            lines.append(line)
    flush()
    out = here.parent / (src.stem + '.ipynb')
    out.write_text(json.dumps({"cells": cells, "metadata": META, "nbformat": 4, "nbformat_minor": 5}, indent=1, ensure_ascii=False) + '\n')
    print(out)
