"ONNX export: graph and metadata, dynamic batch, parity on real files, int8, torch-free classification, and PyTorch == ONNX Runtime."
import hashlib, json, shutil, subprocess, sys, textwrap
from pathlib import Path
import numpy as np, pandas as pd, onnx, pytest
from imgcls_nb.core import BundleError
from imgcls_nb.data import from_folder, from_df
from imgcls_nb.bundle import (load_bundle, read_config, update_config, decode_metadata, refresh_metadata, model_bytes, META_KEYS,
                              ONNX_FILE, INT8_FILE)
from imgcls_nb.train import save_result
from imgcls_nb.calibrate import fit_calibration, set_unknown_threshold, tune_thresholds
from imgcls_nb.runtime import OnnxClassifier, ort_session
from imgcls_nb.evaluate import evaluate
import imgcls_nb.export as ex
from imgcls_nb.export import (ExportError, export_onnx, export_int8, export_bundle, export_data, parity, parity_paths,
                              decode_arrays)

def _copy(bundle, tmp_path, name='b') -> Path:
    "A private copy: the session's `tiny_bundle` is shared and must stay without an export"
    return Path(shutil.copytree(bundle, tmp_path/name))

@pytest.fixture(scope='module')
def exported(tiny_bundle, tmp_path_factory):
    "A copy of the tiny bundle with `model.onnx` (read-only for the tests using it)"
    b = _copy(tiny_bundle, tmp_path_factory.mktemp('exported'))
    export_onnx(b)
    return b

def _valid_paths(fm, step=1): return [str(p) for p in sorted((fm/'valid').rglob('*.png'))][::step]

def _same_decisions(po, pt, thresholds, eps=1e-4):
    "Labels equal, except for inputs whose probability lies within `eps` of a decision threshold (either side is right there)"
    for a, b in zip(po, pt):
        near = any(abs(s - t) <= eps for (_, s) in b.top_k for t in np.atleast_1d(thresholds))
        if not near: assert a.label == b.label, (a, b)

def test_graph_passes_checker_and_carries_the_bundle_facts(exported):
    cfg, f = read_config(exported), exported/ONNX_FILE
    m = onnx.load(str(f))
    onnx.checker.check_model(m, full_check=True)
    assert [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == ['batch', 3, cfg['preprocess']['size'], cfg['preprocess']['size']]
    meta = decode_metadata({p.key: p.value for p in m.metadata_props})
    assert {k: meta[k] for k in META_KEYS} == {k: cfg.get(k) for k in META_KEYS}
    assert decode_metadata(ort_session(f).get_modelmeta().custom_metadata_map) == meta  # readable with onnxruntime alone
    info = cfg['onnx']
    assert info['sha256'] == hashlib.sha256(f.read_bytes()).hexdigest() and info['file'] == ONNX_FILE and info['default'] == 'fp32'
    assert info['opset'] >= 17 and info['exporter'] in ('dynamo', 'torchscript')

def test_dynamic_batch_matches_pytorch_logits(exported, fm):
    clf, oclf = load_bundle(exported), OnnxClassifier.from_bundle(exported)
    x = np.stack([clf.spec.load(p) for p in _valid_paths(fm, 25)])
    for n in (1, 7):
        lo, lt = oclf.predict_logits(x[:n]), clf.predict_logits(x[:n])
        assert lo.shape == (n, len(clf.classes)) and np.abs(lo - lt).max() < 1e-3

def test_parity_numbers_are_recorded_and_reproducible(exported):
    par = read_config(exported)['onnx']['parity']
    assert par['n'] == 64 and par['top1_agreement'] == 1.0 and 0 <= par['max_prob_diff'] <= par['atol'] == 1e-4
    clf = load_bundle(exported)
    x = decode_arrays(clf.spec, parity_paths(export_data(exported), 64))
    again = parity(clf, OnnxClassifier.from_bundle(exported), x)
    assert again['n'] == par['n'] and again['top1_agreement'] == 1.0
    assert abs(again['max_prob_diff'] - par['max_prob_diff']) < 1e-5

def _shift_bias(real):
    "A `torch_to_onnx` whose graph pushes every image towards class 0"
    def wrong(*a, **k):
        proto, used = real(*a, **k)
        gemm = next(n for n in proto.graph.node if n.op_type == 'Gemm')
        bias = next(t for t in proto.graph.initializer if t.name == gemm.input[2])
        arr = onnx.numpy_helper.to_array(bias).copy(); arr[0] += 5
        bias.CopyFrom(onnx.numpy_helper.from_array(arr, bias.name))
        return proto, used
    return wrong

def test_broken_parity_fails_loudly_and_writes_nothing(tiny_bundle, tmp_path, monkeypatch):
    b = _copy(tiny_bundle, tmp_path)
    before = sorted(p.name for p in b.iterdir()), (b/'config.json').read_text()
    monkeypatch.setattr(ex, 'torch_to_onnx', _shift_bias(ex.torch_to_onnx))
    with pytest.raises(ExportError, match='disagrees with PyTorch'): export_onnx(b)
    assert (sorted(p.name for p in b.iterdir()), (b/'config.json').read_text()) == before  # no model.onnx, no temporary file
    with pytest.raises(BundleError, match='imgcls export'): OnnxClassifier.from_bundle(b)

def test_parity_tolerance_is_enforced(exported, tmp_path):
    b = _copy(exported, tmp_path)
    (b/ONNX_FILE).unlink()
    rec = read_config(exported)['onnx']['parity']['max_prob_diff']
    if rec == 0: pytest.skip('ONNX Runtime matched PyTorch bit for bit; no tolerance to undercut')
    with pytest.raises(ExportError, match='largest probability difference'): export_onnx(b, atol=rec/1e3)
    assert not (b/ONNX_FILE).exists()

def test_int8_records_accuracy_and_keeps_fp32_when_it_drops(exported, tmp_path, fm):
    b = _copy(exported, tmp_path)
    with pytest.warns(UserWarning, match='fp32 stays the default'):
        s = export_bundle(b, int8=True, max_drop=-1)  # any int8 model "drops too much"
    info = read_config(b)['onnx']
    q = info['int8']
    assert info['default'] == s['default'] == 'fp32' and s['int8_file'] == str(b/INT8_FILE)
    assert q['sha256'] == hashlib.sha256((b/INT8_FILE).read_bytes()).hexdigest()
    assert {c['format'] for c in q['candidates']} == {'QOperator', 'QDQ'} and q['format'] in ('QOperator', 'QDQ')
    src = from_folder(fm, check=False)
    fp32 = evaluate(OnnxClassifier.from_bundle(b, int8=False), src).metrics['accuracy']
    int8 = evaluate(OnnxClassifier.from_bundle(b, int8=True), src).metrics['accuracy']
    assert abs(q['fp32']['metric'] - fp32) < 1e-9 and abs(q['metric'] - int8) < 1e-9 and q['n'] == 200
    assert abs(q['drop'] - (fp32 - int8)) < 1e-9
    assert OnnxClassifier.from_bundle(b).backend == 'onnx' and OnnxClassifier.from_bundle(b, int8=True).backend == 'onnx-int8'

def test_int8_leaves_the_classifier_head_in_float(exported, fm):
    "The head's Gemm stays a float Gemm (its inputs unquantized); with float_head=False it is quantized like the rest"
    from imgcls_nb.export import quantize_int8, calibration_arrays
    cfg = read_config(exported)
    fp32, xc = model_bytes(exported, cfg['onnx']), calibration_arrays(from_folder(fm, check=False), load_bundle(exported).spec, n=16)
    ops = lambda b: [n.op_type for n in onnx.load_from_string(b).graph.node]
    assert 'Gemm' in ops(fp32)
    kept, quantized = quantize_int8(fp32, xc, ('QOperator',))['QOperator'], quantize_int8(fp32, xc, ('QOperator',), float_head=False)['QOperator']
    assert 'QLinearConv' in ops(kept) and 'Gemm' in ops(kept)
    assert 'Gemm' not in ops(quantized) and 'QGemm' in ops(quantized)

def test_int8_becomes_default_only_when_accurate_and_faster(exported, tmp_path):
    b = _copy(exported, tmp_path)
    q = export_int8(b, formats=('QOperator',), max_drop=1.0)
    speed = lambda m: m['images_per_s']['b1']*m['images_per_s']['b32']
    assert read_config(b)['onnx']['default'] == ('int8' if speed(q) > speed(q['fp32']) else 'fp32')

def test_int8_needs_labelled_data(exported, tmp_path):
    b = _copy(exported, tmp_path)
    update_config(b, dataset={})
    with pytest.raises(ExportError, match='pass data='): export_int8(b)

NO_TORCH = '''
import importlib.abc, json, sys
BLOCKED = {'torch', 'torchvision', 'timm', 'onnx', 'onnxscript'}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED: raise ImportError(f'{name} is blocked in this test')
sys.meta_path.insert(0, Block())
from imgcls_nb.runtime import OnnxClassifier
clf = OnnxClassifier.from_bundle(sys.argv[1])
paths = json.loads(sys.argv[2])
preds = clf.predict(paths, top_k=3)
assert not any(m.split('.')[0] in BLOCKED for m in sys.modules), sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)
print(json.dumps([[p.label, p.top_k, p.error] for p in preds]))
'''

def test_onnx_classifier_runs_without_torch(exported, fm, tmp_path):
    (tmp_path/'bad.png').write_bytes(b'not an image')
    paths = _valid_paths(fm, 20) + [str(tmp_path/'bad.png')]
    r = subprocess.run([sys.executable, '-c', NO_TORCH, str(exported), json.dumps(paths)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    ref = load_bundle(exported).predict(paths, top_k=3)
    assert [row[0] for row in rows[:-1]] == [p.label for p in ref[:-1]]
    assert max(abs(s - t) for row, p in zip(rows, ref) for (_, s), (_, t) in zip(row[1], p.top_k)) <= 1e-4
    assert rows[-1][0] is None and 'not an image' in rows[-1][2]

def test_onnx_equals_torch_after_calibration_and_unknown_threshold(tiny_bundle, fm, tmp_path):
    b = _copy(tiny_bundle, tmp_path)
    export_onnx(b)
    src = from_folder(fm, check=False)
    fit_calibration(b, src)
    t = set_unknown_threshold(b, src, coverage=0.7)
    oc, clf = OnnxClassifier.from_bundle(b), load_bundle(b)
    assert oc.temperature == clf.temperature != 1.0 and oc.unknown_threshold == t
    paths = _valid_paths(fm)
    po, pt = oc.predict(paths, top_k=10), clf.predict(paths, top_k=10)
    assert np.abs(oc.predict_proba(paths)[0] - clf.predict_proba(paths)[0]).max() <= 1e-4
    _same_decisions(po, pt, t)
    assert 0.2 <= np.mean([p.label == 'unknown' for p in po]) <= 0.4

ATTRS = {'t-shirt': 'upper', 'shirt': 'upper;sleeves', 'pullover': 'upper;sleeves', 'coat': 'upper;sleeves',
         'dress': 'upper;lower', 'trouser': 'lower', 'sandal': 'footwear', 'sneaker': 'footwear', 'ankle-boot': 'footwear', 'bag': ''}

def test_multi_label_thresholds_agree(fm, tmp_path):
    from imgcls_nb.train import train
    df = pd.DataFrame([(str(p), ATTRS[p.parent.name], p.parts[-3] == 'valid') for p in sorted(fm.rglob('*.png'))], columns=['path', 'tags', 'valid'])
    msrc = from_df(df, label_col='tags', label_delim=';', valid_col='valid', check=False)
    mb = save_result(train(msrc, epochs=1, size=32, loss='focal', progress=False), tmp_path/'tags')
    export_onnx(mb, data=msrc)
    th = tune_thresholds(mb, msrc)  # after the export: read from config.json
    oc, clf = OnnxClassifier.from_bundle(mb), load_bundle(mb)
    assert oc.task == 'multi_label' and oc.thresholds.tolist() == th
    paths = list(msrc.valid.path)
    pro, prt = oc.predict_proba(paths)[0], clf.predict_proba(paths)[0]
    assert np.abs(pro - prt).max() <= 1e-4
    far = (np.abs(prt - np.array(th)) > 1e-4).all(1)
    assert far.mean() > 0.9
    po, pt = oc.predict(paths), clf.predict(paths)
    assert [p.labels for p,f in zip(po, far) if f] == [p.labels for p,f in zip(pt, far) if f]

def test_unreadable_files_get_error_rows(exported, fm, tmp_path):
    (tmp_path/'trunc.png').write_bytes((fm/'valid'/'bag').glob('*.png').__next__().read_bytes()[:60])
    out = OnnxClassifier.from_bundle(exported).predict([_valid_paths(fm)[0], tmp_path/'trunc.png', tmp_path/'missing.jpg'])
    assert out[0].error is None and out[0].label
    assert out[1].label is None and out[1].error and out[2].error == 'file not found'

def test_bundle_problems_are_refused_with_the_fix(tiny_bundle, exported, tmp_path):
    with pytest.raises(BundleError, match='imgcls export'): OnnxClassifier.from_bundle(tiny_bundle)
    with pytest.raises(BundleError, match='--int8'): OnnxClassifier.from_bundle(exported, int8=True)
    b = _copy(exported, tmp_path)
    (b/ONNX_FILE).write_bytes((b/ONNX_FILE).read_bytes()[:-1] + b'\1')
    with pytest.raises(BundleError, match='sha256'): OnnxClassifier.from_bundle(b)

def test_refresh_metadata_follows_config(exported, tmp_path):
    b = _copy(exported, tmp_path)
    update_config(b, temperature=2.5)   # update_config refreshes the ONNX metadata itself
    oc = OnnxClassifier.from_bundle(b)  # the recorded sha256 follows the rewritten file
    assert decode_metadata(oc.session.get_modelmeta().custom_metadata_map)['temperature'] == 2.5 == oc.temperature
    assert OnnxClassifier.from_onnx(b/ONNX_FILE).temperature == 2.5
    refresh_metadata(b)  # idempotent, and still leaves a loadable bundle
    assert OnnxClassifier.from_bundle(b).temperature == 2.5

def test_predict_threads_reach_the_model(exported, fm, tmp_path):
    "`threads=` (`imgcls predict --threads`) sets the ONNX Runtime session's intra-op threads"
    from imgcls_nb.predict import load_classifier, predict_files
    one = load_classifier(exported, threads=1)
    assert one.backend == 'onnx' and one.session.get_session_options().intra_op_num_threads == 1
    assert load_classifier(exported).session.get_session_options().intra_op_num_threads == ex.compute_threads()
    r = predict_files(exported, fm/'valid'/'bag', tmp_path/'p.csv', threads=1, workers=1, progress=False)
    assert r['classified'] == 20 and r['backend'] == 'onnx'
    assert list(pd.read_csv(tmp_path/'p.csv').path) == sorted(str(p) for p in (fm/'valid'/'bag').iterdir())

def test_predict_files_turns_spinning_off_when_decoding_shares_the_cores(exported, fm, tmp_path, monkeypatch):
    "ONNX Runtime's idle threads spin-wait by default; predict_files loads the model without spinning when it decodes alongside"
    from imgcls_nb import predict as P
    spin = lambda c: c.session.get_session_options().get_session_config_entry('session.intra_op.allow_spinning')
    assert spin(P.load_classifier(exported)) == '1' and spin(P.load_classifier(exported, spinning=False)) == '0'
    seen, load = [], P.load_classifier
    monkeypatch.setattr(P, 'load_classifier', lambda *a, **k: seen.append(spin(load(*a, **k))) or load(*a, **k))
    for kw in (dict(workers=0, decode_threads=2), dict(workers=1), dict(workers=0, decode_threads=0)):
        assert P.predict_files(exported, fm/'valid'/'bag', tmp_path/'p.csv', progress=False, **kw)['classified'] == 20
    assert seen == ['0', '0', '1']
