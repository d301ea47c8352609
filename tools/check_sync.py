"""Fail when `nbdev-export`, `nbdev-clean` or the README render would change anything: notebooks, package and README must be committed in sync."""
import hashlib, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def snapshot():
    files = [*ROOT.glob('nbs/**/*.ipynb'), *ROOT.glob('imgcls_nb/**/*.py'), ROOT/'README.md']
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.exists()}

def main():
    before = snapshot()
    bindir = Path(sys.executable).parent
    for cmd in ('nbdev-export', 'nbdev-clean'):
        subprocess.run([str(bindir/cmd)], cwd=ROOT, check=True)
    subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py')], cwd=ROOT, check=True)
    after = snapshot()
    changed = sorted(str(p.relative_to(ROOT)) for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    if changed:
        print('Out of sync: nbdev-export/nbdev-clean changed these files (now rewritten; review and commit them):')
        for c in changed: print('  ' + c)
        sys.exit(1)
    print(f'in sync: {len(after)} notebooks and modules unchanged by nbdev-export and nbdev-clean')

if __name__ == '__main__': main()
