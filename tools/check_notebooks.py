#!/usr/bin/env python
"""Check that the chapters read as chapters (STYLE.md):

1. every exported cell is followed by a test or example within `MAX_STRETCH` exported cells;
2. code lines are at most `MAX_LINE` characters, and no statements are joined with `;`;
3. a chapter's tests import nothing from a later chapter's module (chapter order = layer order).

    python tools/check_notebooks.py          # exit 1 and a list of problems
    python tools/check_notebooks.py --stats  # also print the figures behind the rules
"""
import ast, io, json, re, sys, tokenize
from pathlib import Path

MAX_STRETCH, MAX_LINE = 4, 120
ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'


def cells(nb: Path) -> list:
    return [(c['cell_type'], ''.join(c['source'])) for c in json.loads(nb.read_text())['cells']]


def chapters() -> dict:
    "module -> (chapter index, notebook) from each chapter's `#| default_exp`"
    out = {}
    for i, nb in enumerate(sorted(NBS.glob('[0-9][0-9]_*.ipynb'))):
        m = re.search(r'#\|\s*default_exp\s+(\w+)', cells(nb)[0][1])
        if m: out[m.group(1)] = (i, nb)
    return out


def is_export(src: str) -> bool: return bool(re.match(r'\s*#\|\s*export', src))


def is_test(src: str) -> bool:
    "A code cell that runs something: not an export, not only imports"
    if is_export(src) or not src.strip() or src.lstrip().startswith('#| default_exp'): return False
    try: body = ast.parse(src).body
    except SyntaxError: return True  # IPython syntax (magics): it runs something
    return any(not isinstance(n, (ast.Import, ast.ImportFrom)) for n in body)


def semicolon_joins(src: str) -> list:
    "Line numbers where `;` separates two statements (a `;` token outside strings and brackets)"
    src = '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in src.splitlines())  # IPython magics
    try: toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    except (tokenize.TokenError, SyntaxError): return []
    return sorted({t.start[0] for t in toks if t.type == tokenize.OP and t.string == ';'})


def check_notebook(nb: Path, chaps: dict) -> tuple:
    "(problems, stats) of one notebook"
    probs, cs = [], cells(nb)
    mod = re.search(r'#\|\s*default_exp\s+(\w+)', cs[0][1]) if cs else None
    mine = chaps.get(mod.group(1))[0] if mod else None
    stretch, n_export, n_lines, n_long = 0, 0, 0, 0
    pending = []
    for k, (kind, src) in enumerate(cs):
        if kind != 'code': continue
        if is_export(src):
            n_export += 1
            stretch += 1
            pending.append(k)
            if stretch > MAX_STRETCH:
                probs.append(f"{nb.name}: cell {k}: {stretch} exported cells in a row without a test or example")
        else:
            if is_test(src): pending, stretch = [], 0
            if mine is not None:
                for m in re.findall(r'from imgcls_nb\.(\w+) import', src) + re.findall(r'import imgcls_nb\.(\w+)', src):
                    if m in chaps and chaps[m][0] > mine:
                        probs.append(f"{nb.name}: cell {k}: the tests use `{m}` from the later chapter {chaps[m][1].name}")
        for i, line in enumerate(src.splitlines(), 1):
            n_lines += 1
            if len(line) > MAX_LINE:
                n_long += 1
                probs.append(f"{nb.name}: cell {k} line {i}: {len(line)} characters (at most {MAX_LINE})")
        for ln in semicolon_joins(src):
            probs.append(f"{nb.name}: cell {k} line {ln}: statements joined with ';'")
    return probs, dict(export=n_export, long=n_long, lines=n_lines)


def main():
    chaps = chapters()
    probs, tot = [], dict(export=0, long=0, lines=0)
    for nb in sorted(NBS.rglob('*.ipynb')):
        if '.ipynb_checkpoints' in nb.parts: continue
        p, s = check_notebook(nb, chaps)
        probs += p
        for k in tot: tot[k] += s[k]
    if '--stats' in sys.argv:
        print(f"{tot['export']} exported cells; {tot['long']} of {tot['lines']} code lines over {MAX_LINE} characters")
    for p in probs: print(p)
    if probs: sys.exit(f"check_notebooks: {len(probs)} problems")
    print("check_notebooks: every exported cell is shown, lines fit, no ';' joins, no test uses a later chapter")


if __name__ == '__main__':
    main()
