"The label review without a UI: ranking likely label errors, moving files, the action log and undo"
import ast, csv, hashlib, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pytest
from imgcls_nb.core import DataError, ImgclsError
from imgcls_nb.evaluate import EvalResult
from conftest import tree  # the `data` fixture lives there too
from imgcls_nb import clean as CL

ROOT = Path(__file__).resolve().parents[1]


def images_under(*roots) -> dict:
    "content hash -> count of the image files under `roots` (where they are does not matter)"
    out = {}
    for r in roots:
        for p in (r.rglob('*.png') if r.exists() else []):
            h = hashlib.sha256(p.read_bytes()).hexdigest()
            out[h] = out.get(h, 0) + 1
    return out

# --- no UI needed ------------------------------------------------------------------------------------------

def test_clean_works_without_ipywidgets(tmp_path):
    "A script can rank and move without ipywidgets installed (here: made unimportable)"
    script = '\n'.join([
        "import sys",
        "sys.modules['ipywidgets'] = None  # any import of it now fails",
        "import numpy as np",
        "from pathlib import Path",
        "from imgcls_nb.clean import DatasetEditor, label_issues, move_file",
        "from imgcls_nb.evaluate import EvalResult",
        "probs = np.array([[.9, .1], [.05, .95]])",
        "res = EvalResult({}, probs, np.array([0, 0]), ['x', 'y'], ['a', 'b'], 'single_label')",
        "assert list(label_issues(res).path) == ['y', 'x']",
        "root = Path(sys.argv[1])",
        "(root/'data'/'a').mkdir(parents=True)",
        "(root/'data'/'a'/'x.png').write_bytes(b'x')",
        "row = DatasetEditor(root/'data').relabel(root/'data'/'a'/'x.png', 'b')",
        "assert Path(row['dst']) == root/'data'/'b'/'x.png'",
        "assert not [m for m, v in sys.modules.items() if m.split('.')[0] == 'ipywidgets' and v is not None]",
    ])
    r = subprocess.run([sys.executable, '-c', script, str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, r.stderr

def test_clean_never_imports_ipywidgets():
    "Not even lazily: no import statement anywhere in the module names ipywidgets"
    mod = ast.parse(Path(CL.__file__).read_text())
    names = [a.name for n in ast.walk(mod) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or '' for n in ast.walk(mod) if isinstance(n, ast.ImportFrom)]
    assert names and not [m for m in names if m.split('.')[0] == 'ipywidgets']

# --- ranking ---------------------------------------------------------------------------------------------

def test_label_issues_ranks_likely_label_errors_first():
    probs = np.array([[.95, .05], [.05, .95], [.5, .5], [.3, .7], [.02, .98], [.85, .15]])
    y = np.array([0, 0, 0, 0, 1, 1])
    res = EvalResult({}, probs, y, [f"p{i}" for i in range(6)], ['a', 'b'], 'single_label')
    li = CL.label_issues(res, hi=0.9, lo=0.1)
    # p1 suspect; then by loss: .15->1.9, .3->1.2, .5->.69, .95, .98
    assert list(li.path) == ['p1', 'p5', 'p3', 'p2', 'p0', 'p4']
    assert list(li.suspect) == [True] + [False]*5
    np.testing.assert_allclose(li.loss, -np.log(probs[[1, 5, 3, 2, 0, 4], y[[1, 5, 3, 2, 0, 4]]]))
    assert list(CL.label_issues(res, hi=0.8, lo=0.2).suspect[:2]) == [True, True]   # p5 too, with looser thresholds

def test_label_issues_refuses_multi_label():
    probs = np.array([[.9, .8], [.1, .2]])
    ml = EvalResult({}, probs, np.array([[1, 1], [0, 1]]), ['p0', 'p1'], ['a', 'b'], 'multi_label')
    with pytest.raises(ImgclsError, match='single-label'): CL.label_issues(ml)

# --- moves, log, undo ------------------------------------------------------------------------------------

def test_move_file_never_overwrites(tmp_path, monkeypatch):
    (tmp_path/'a').mkdir()
    (tmp_path/'b').mkdir()
    for name, data in [('a/x.png', b'new'), ('b/x.png', b'old'), ('b/x-1.png', b'older')]:
        (tmp_path/name).write_bytes(data)
    assert CL.move_file(tmp_path/'a'/'x.png', tmp_path/'b'/'x.png') == tmp_path/'b'/'x-2.png'
    assert [(tmp_path/'b'/f).read_bytes() for f in ('x.png', 'x-1.png', 'x-2.png')] == [b'old', b'older', b'new']
    assert not (tmp_path/'a'/'x.png').exists()
    # across file systems (no hard links): an exclusive-create copy, with the same care for taken names
    def no_link(a, b): raise OSError(18, 'Invalid cross-device link')
    monkeypatch.setattr(CL.os, 'link', no_link)
    (tmp_path/'a'/'y.png').write_bytes(b'moved')
    (tmp_path/'c').mkdir()
    (tmp_path/'c'/'y.png').write_bytes(b'kept')
    assert CL.move_file(tmp_path/'a'/'y.png', tmp_path/'c'/'y.png') == tmp_path/'c'/'y-1.png'
    assert (tmp_path/'c'/'y.png').read_bytes() == b'kept' and (tmp_path/'c'/'y-1.png').read_bytes() == b'moved'
    assert not (tmp_path/'a'/'y.png').exists()
    with pytest.raises(DataError, match='file not found'): CL.move_file(tmp_path/'a'/'y.png', tmp_path/'c'/'z.png')

def test_editor_round_trip_on_real_files(data):
    ed = CL.DatasetEditor(data)
    q = ed.quarantine_dir
    assert q == data.parent/'data_quarantine' and ed.log_path == q/'actions.csv'
    original, images = tree(data), images_under(data)
    pick = lambda split, cls, k=0: sorted((data/split/cls).glob('*.png'))[k]
    a, b, c = pick('train', 'shirt'), pick('valid', 'coat'), pick('valid', 'bag')
    d, e = pick('train', 'pullover'), pick('valid', 'dress')
    shutil.copy(pick('valid', 'coat', 1), data/'valid'/'pullover'/b.name)            # b's name is taken in pullover
    original, images = tree(data), images_under(data)
    rows = [ed.quarantine(a), ed.relabel(b, 'pullover'), ed.keep(c), ed.quarantine(d), ed.relabel(e, 'brand-new-class')]
    assert images_under(data, q) == images                                           # nothing lost, nothing duplicated
    assert Path(rows[0]['dst']) == q/'train'/'shirt'/a.name and Path(rows[3]['dst']) == q/'train'/'pullover'/d.name
    assert Path(rows[1]['dst']) == data/'valid'/'pullover'/f"{b.stem}-1.png"        # never overwrites
    assert rows[2]['src'] == rows[2]['dst'] == str(c) and c.exists()
    assert Path(rows[4]['dst']) == data/'valid'/'brand-new-class'/e.name
    with open(ed.log_path, newline='') as f: log = list(csv.DictReader(f))
    assert list(log[0]) == CL.LOG_COLUMNS and len(log) == 5
    assert [(r['action'], r['old_label'], r['new_label']) for r in log] == [
        ('quarantine', 'shirt', ''), ('relabel', 'coat', 'pullover'), ('keep', 'bag', 'bag'),
        ('quarantine', 'pullover', ''), ('relabel', 'dress', 'brand-new-class')]
    assert all(r['timestamp'][:4].isdigit() and r['undoes'] == '' for r in log)
    counts = ed.report().class_counts
    assert counts.loc['shirt', 'train'] == 59 and counts.loc['coat', 'valid'] == 19
    assert counts.loc['pullover', 'valid'] == 22 and counts.loc['brand-new-class', 'valid'] == 1
    for i in [2, 4, 1, 5, 3]:                                                       # undo in any order
        ed.undo(i)
        assert images_under(data, q) == images
    shutil.rmtree(data/'valid'/'brand-new-class')                      # the (now empty) folder the relabel made
    assert tree(data) == original and images_under(q) == {}
    acts = ed.actions()
    assert list(acts.action[5:]) == ['undo']*5 and list(acts.undoes[5:]) == ['2', '4', '1', '5', '3']
    assert acts.src[5:].tolist() == acts.dst[[1, 3, 0, 4, 2]].tolist()
    assert acts.dst[5:].tolist() == acts.src[[1, 3, 0, 4, 2]].tolist()
    with pytest.raises(DataError, match='nothing to undo'): ed.undo()

def test_editor_undo_never_overwrites_a_new_file(data):
    ed = CL.DatasetEditor(data)
    x = sorted((data/'valid'/'sandal').glob('*.png'))[0]
    content = x.read_bytes()
    ed.quarantine(x)
    x.write_bytes(b'a new file that arrived under the same name')
    row = ed.undo()
    assert Path(row['dst']) == x.with_name(f"{x.stem}-1.png") and Path(row['dst']).read_bytes() == content
    assert x.read_bytes() == b'a new file that arrived under the same name'

def test_editor_refuses_what_it_cannot_do_safely(data, tmp_path):
    ed = CL.DatasetEditor(data, quarantine=tmp_path/'q', log=tmp_path/'log.csv')
    x = sorted((data/'valid'/'bag').glob('*.png'))[0]
    outside = tmp_path/'elsewhere.png'
    shutil.copy(x, outside)
    loose = data/'loose.png'
    shutil.copy(x, loose)
    for f, why in [(lambda: ed.quarantine(outside), 'not inside the data folder'),
                   (lambda: ed.quarantine(loose), 'not in a class folder'),
                   (lambda: ed.relabel(x, 'bag'), 'already in class'),
                   (lambda: ed.relabel(x, ''), 'cannot be a class folder'),
                   (lambda: ed.relabel(x, '../up'), 'cannot be a class folder'),
                   (lambda: ed.relabel(x, '.hidden'), 'cannot be a class folder'),
                   (lambda: ed.quarantine(data/'valid'/'bag'/'missing.png'), 'file not found'),
                   (lambda: CL.DatasetEditor(data, quarantine=data/'quarantine'), 'must be outside'),
                   (lambda: CL.DatasetEditor(data, log=data/'valid'/'log.csv'), 'must be outside'),
                   (lambda: CL.DatasetEditor(tmp_path/'nope'), 'not a folder'), (lambda: ed.undo(), 'nothing to undo')]:
        with pytest.raises(DataError, match=why): f()
    r1 = ed.relabel(x, 'coat')
    r2 = ed.quarantine(r1['dst'])
    with pytest.raises(DataError, match=f"moved again by action {r2['id']}.*undo that one first"): ed.undo(r1['id'])
    u = ed.undo(r2['id'])
    for id, why in [(u['id'], 'an undo itself'), (r2['id'], 'undone already'), (99, 'no such action')]:
        with pytest.raises(DataError, match=why): ed.undo(id)
    ed.undo(r1['id'])
    assert x.is_file() and not list((tmp_path/'q').rglob('*.png')) and len(ed.actions()) == 4

def test_editor_reverts_the_move_when_the_log_cannot_be_written(data, monkeypatch):
    ed = CL.DatasetEditor(data)
    x = sorted((data/'valid'/'bag').glob('*.png'))[0]
    def broken(*a, **k): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(ed, '_record', broken)
    with pytest.raises(OSError): ed.quarantine(x)
    assert x.is_file() and not list(ed.quarantine_dir.rglob('*.png'))

def test_data_root(fm):
    assert CL.data_root(list((fm/'valid').rglob('*.png'))[:5]) == fm
    assert CL.data_root([fm/'valid'/'bag'/'x.png', fm/'valid'/'coat'/'y.png']) == fm
