"evaluate() on real bundles: class mismatches are errors, empty classes are reported, multi-label works."
import shutil
import numpy as np, pandas as pd, pytest
from imgcls_nb.core import DataError
from imgcls_nb.data import from_folder, from_df
from imgcls_nb.bundle import load_bundle
from imgcls_nb.evaluate import evaluate

def test_renamed_class_is_an_error_unless_mapped(tiny_bundle, fm, tmp_path):
    shutil.copytree(fm/'valid', tmp_path/'v')
    (tmp_path/'v'/'bag').rename(tmp_path/'v'/'handbag')
    src = from_folder(tmp_path/'v', valid_pct=0.0)
    clf = load_bundle(tiny_bundle)
    with pytest.raises(DataError, match=r"does not know: \['handbag'\]"): evaluate(clf, src)
    res = evaluate(clf, src, class_map={'handbag': 'bag'})
    assert res.metrics['per_class']['bag']['support'] == 20 and res.metrics['n'] == 200

def test_missing_classes_are_reported_not_averaged(tiny_bundle, fm, tmp_path):
    for c in ('bag', 'coat'): shutil.copytree(fm/'valid'/c, tmp_path/'v'/c)
    res = evaluate(load_bundle(tiny_bundle), from_folder(tmp_path/'v', valid_pct=0.0))
    m = res.metrics
    assert len(m['empty_classes']) == 8 and 'bag' not in m['empty_classes']
    recalls = [m['per_class'][c]['recall'] for c in ('bag', 'coat')]
    assert m['balanced_accuracy'] == pytest.approx(np.mean(recalls))

def test_undecodable_files_are_listed(tiny_bundle, fm, tmp_path):
    shutil.copytree(fm/'valid'/'bag', tmp_path/'v'/'bag')
    src = from_folder(tmp_path/'v', valid_pct=0.0)
    (tmp_path/'v'/'bag'/sorted(p.name for p in (tmp_path/'v'/'bag').iterdir())[0]).write_bytes(b'gone bad')
    res = evaluate(load_bundle(tiny_bundle), src)
    assert len(res.errors) == 1 and res.metrics['n'] == 19
