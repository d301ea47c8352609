#!/usr/bin/env python
"""Check the package's layering: no import cycles, imports only downwards, package imports at module level.

    python tools/check_layers.py          # exit 1 and a list of problems, or a one-line summary
    python tools/check_layers.py --stats  # also count imports (for before/after figures)

Rules (see the README's module table and DESIGN.md):
1. Every module of `imgcls_nb/` is listed in `LAYERS`; a new module gets a layer here first.
2. A module imports package modules only from a lower layer, or from its own layer when listed earlier in
   `LAYERS` (chapter order), so no cycle can form, function-local imports included.
3. A package module or a standard-library module is imported at module level. A function-local import is
   for an optional heavy third-party library only (torch, sklearn, transformers, ipywidgets, ...).
"""
import ast, sys
from pathlib import Path

PKG = 'imgcls_nb'
# module -> layer, in chapter order (nbs/ mirrors this order)
LAYERS = {
    'core': 0,
    'data': 1, 'preprocess': 1,
    'bundle': 2,
    'models': 3, 'runtime': 3, 'zeroshot': 3,
    'losses': 4, 'train': 4, 'evaluate': 4, 'calibrate': 4, 'bench': 4, 'export': 4, 'predict': 4, 'ladder': 4,
    'clean': 4, 'audit': 4, 'explain': 4, 'video': 4, 'monitor': 4, 'distributed': 4,
    'widgets': 5, 'cli': 5,
}
SKIP = {'__init__', '_modidx'}
ORDER = {m: i for i, m in enumerate(LAYERS)}


def module_level(tree: ast.Module) -> set:
    "ids of the import statements not inside a function or class (module-level `try`/`if` blocks included)"
    out, todo = set(), list(tree.body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.Import, ast.ImportFrom)): out.add(id(n))
        elif isinstance(n, (ast.Try, ast.If, ast.With)):
            todo += n.body + n.orelse + getattr(n, 'finalbody', []) + [x for h in getattr(n, 'handlers', []) for x in h.body]
    return out


def package_imports(tree: ast.Module):
    "(imported package module, line, at module level) for each import of a package module in `tree`"
    top = module_level(tree)
    for node in ast.walk(tree):
        mods = []
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module: mods = [node.module.split('.')[0]]
            elif node.level == 1: mods = [a.name for a in node.names]
            elif node.module and node.module.split('.')[0] == PKG:
                parts = node.module.split('.')
                mods = [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            mods = [a.name.split('.')[1] for a in node.names if a.name.startswith(PKG + '.')]
        for m in mods:
            if m != '__version__': yield m, node.lineno, id(node) in top


def local_stdlib_imports(tree: ast.Module):
    "(module, line) of standard-library imports inside functions or classes"
    top = module_level(tree)
    for node in ast.walk(tree):
        if id(node) in top or not isinstance(node, (ast.Import, ast.ImportFrom)): continue
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or '']
        for n in names:
            if n.split('.')[0] in sys.stdlib_module_names and n.split('.')[0] != '__future__': yield n, node.lineno


def count_imports(tree: ast.Module):
    "(all imports, function-local imports)"
    top = module_level(tree)
    imps = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return len(imps), sum(id(n) not in top for n in imps)


def find_cycles(graph: dict) -> list:
    "Strongly connected components with more than one module (Tarjan)"
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1 or v in graph.get(v, ()): out.append(sorted(comp))
    for v in graph:
        if v not in index: visit(v)
    return out


def check(root: Path, stats: bool = False) -> list:
    problems, graph, n_imp, n_local, n_local_pkg = [], {}, 0, 0, 0
    files = sorted(f for f in (root/PKG).glob('*.py') if f.stem not in SKIP)
    for f in files:
        mod, tree = f.stem, ast.parse(f.read_text())
        a, b = count_imports(tree); n_imp += a; n_local += b
        if mod not in LAYERS:
            problems.append(f"{PKG}/{f.name}: module not listed in tools/check_layers.py LAYERS; give it a layer"); continue
        for dep, line, at_top in package_imports(tree):
            graph.setdefault(mod, set()).add(dep)
            where = f"{PKG}/{f.name}:{line}"
            if not at_top:
                n_local_pkg += 1
                problems.append(f"{where}: function-local import of {PKG}.{dep}; import package modules at module level")
            if dep not in LAYERS: problems.append(f"{where}: imports unknown module {dep!r}")
            elif ORDER[dep] >= ORDER[mod]:
                problems.append(f"{where}: {mod} (layer {LAYERS[mod]}) imports {dep} (layer {LAYERS[dep]}), which comes "
                                f"{'at the same place' if dep == mod else 'later'} in the layer order; move the code down a layer "
                                f"or look it up through the bundle registry")
        for name, line in local_stdlib_imports(tree):
            problems.append(f"{PKG}/{f.name}:{line}: function-local import of the standard library module {name}; "
                            f"import it at module level")
    for c in find_cycles(graph): problems.append(f"import cycle between package modules: {' <-> '.join(c)}")
    if stats:
        print(f"{len(files)} modules, {n_imp} imports, {n_local} function-local ({n_local_pkg} of package modules), "
              f"{len(find_cycles(graph))} import cycles")
    return problems


if __name__ == '__main__':
    root = Path(__file__).resolve().parents[1]
    probs = check(root, '--stats' in sys.argv)
    for p in probs: print(p)
    if probs: sys.exit(f"check_layers: {len(probs)} problems")
    print("check_layers: no cycles, imports go down the layers, package imports at module level")
