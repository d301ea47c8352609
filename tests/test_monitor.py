"""Drift monitoring on real images: no drift on the model's own kind, statistics against scipy, bad input,
predictions files, the CLI's JSON, report and sample, the widget (drift on blur and other images: the monitor chapter)"""
import contextlib, gzip, io, json, shutil
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image
from scipy import stats
from imgcls_nb.core import BundleError
from imgcls_nb.bundle import CONFIG, REFERENCE, read_config
from imgcls_nb.train import sample_bundle
from imgcls_nb.predict import predict_files, PROFILE_FIELDS
from imgcls_nb import monitor as M, cli

FM_TEST = Path('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz')

def fm_test(n:int, start:int) -> list:
    "Fashion-MNIST test images (the sample data came from the training set) as 28x28 grayscale images"
    with gzip.open(FM_TEST) as f: x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    return [Image.fromarray(a) for a in x[start:start + n]]

@pytest.fixture(scope='module')
def bundle() -> Path: return sample_bundle()

@pytest.fixture(scope='module')
def folder(tmp_path_factory) -> Path:
    "120 Fashion-MNIST test images as PNG files, a truncated PNG and a text file named .jpg"
    d = tmp_path_factory.mktemp('current')
    for i,im in enumerate(fm_test(120, 3000)): im.save(d/f'{i:04d}.png')
    (d/'0000.png').with_name('truncated.png').write_bytes((d/'0000.png').read_bytes()[:60])
    (d/'notes.jpg').write_text('not an image')
    return d

@pytest.fixture(scope='module')
def same(bundle, folder): return M.monitor(bundle, folder, progress=False)

def test_same_distribution_is_no_drift_and_broken_files_are_listed(same, folder):
    assert same.drift is False, same.summary()
    d = same.to_dict()
    assert d['n_current'] == 120 and isinstance(d['drift'], bool)
    assert {u['path'] for u in d['unreadable']} == {str(folder/'truncated.png'), str(folder/'notes.jpg')}
    assert all(u['reason'] for u in d['unreadable'])
    assert all(s['p_value'] > s['threshold'] for s in same.signals.values() if s['decides'])

def test_statistics_agree_with_scipy(same):
    ref, cur = same.reference, same.current
    for name in ('confidence', 'entropy'):
        ks = stats.ks_2samp(getattr(ref, name), getattr(cur, name))
        assert same.signals[f'{name}_ks']['p_value'] == pytest.approx(ks.pvalue)
        assert same.signals[f'{name}_ks']['statistic'] == pytest.approx(ks.statistic)
    r, c = np.bincount(ref.predicted, minlength=10), np.bincount(cur.predicted, minlength=10)
    keep = (r + c) > 0
    chi = stats.chi2_contingency(np.stack([r[keep], c[keep]]))
    assert same.signals['classes_chi2']['p_value'] == pytest.approx(chi.pvalue)
    assert same.signals['embedding_mmd']['p_value'] >= 1/1001

def test_bundle_without_profile_says_how_to_record_one(tmp_path, fm):
    "(`imgcls evaluate --record` recording one is tested in the cli chapter, `record_reference` in calibrate)"
    b = sample_bundle(tmp_path/'b')
    (b/REFERENCE).unlink()
    cfg = json.loads((b/CONFIG).read_text())
    del cfg['reference']
    (b/CONFIG).write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match=r'no drift reference profile.*imgcls evaluate .* --record'):
        M.monitor(b, fm/'valid'/'bag', progress=False)
    with contextlib.redirect_stderr(io.StringIO()) as err: assert cli.main(['monitor', str(b), str(fm/'valid')]) == 1
    assert 'imgcls evaluate' in err.getvalue() and 'Traceback' not in err.getvalue()

def test_predictions_file_runs_the_signals_it_can(bundle, folder, same, tmp_path):
    predict_files(bundle, folder, tmp_path/'full.parquet', workers=0, progress=False, embeddings=True)
    full = M.monitor(bundle, tmp_path/'full.parquet')
    assert full.skipped == {}
    for k in ('confidence_ks', 'entropy_ks', 'classes_chi2', 'embedding_mmd', 'brightness_ks', 'contrast_ks'):
        # the same numbers as from the images
        assert full.signals[k]['statistic'] == pytest.approx(same.signals[k]['statistic'], rel=1e-3, abs=1e-6), k
    plain_rows = pd.read_parquet(tmp_path/'full.parquet').drop(columns=list(PROFILE_FIELDS))
    plain_rows.to_csv(tmp_path/'plain.csv', index=False)
    plain = M.monitor(bundle, tmp_path/'plain.csv')  # what `imgcls predict` writes without --embeddings
    assert set(plain.skipped) == {'entropy_ks', 'entropy_psi', 'embedding_mmd', 'brightness_ks', 'brightness_psi',
                                  'contrast_ks', 'contrast_psi'}
    assert 'imgcls predict --embeddings' in plain.skipped['entropy_ks']
    assert len(plain.current.errors) == 2 and plain.drift is False
    assert plain.signals['classes_chi2']['statistic'] == pytest.approx(same.signals['classes_chi2']['statistic'])

def test_cli_json_report_and_a_diverse_sample(bundle, folder, same, tmp_path):
    d = tmp_path/'dups'
    d.mkdir()
    for p in sorted(folder.glob('00[0-3]*.png')) + [folder/'truncated.png']: shutil.copy(p, d)  # 40 images
    first = [i for i,p in enumerate(same.current.paths) if Path(p).name < '0040']
    worst = d/Path(same.current.paths[max(first, key=lambda i: same.current.entropy[i])]).name
    for i in range(6): shutil.copy(worst, d/f'copy{i}.png')
    argv = ['monitor', str(bundle), str(d), '--json', '--report', str(tmp_path/'r.html'),
            '--sample-out', str(tmp_path/'s.csv'), '--sample', '8', '--n-perm', '200']
    with contextlib.redirect_stdout(io.StringIO()) as out: assert cli.main(argv) == 0
    r = json.loads(out.getvalue())
    assert r['drift'] in (True, False) and 'embedding_mmd' in r['signals'] and r['n_current'] == 46
    s = pd.read_csv(tmp_path/'s.csv')
    assert len(s) == 8 and s.entropy.is_monotonic_decreasing
    assert sum(Path(p).name.startswith('copy') or Path(p) == worst for p in s.path) == 1  # near-copies: one
    page = (tmp_path/'r.html').read_text()
    assert 'Per-class shift' in page and 'To label next' in page and 'truncated.png' in page

def test_drift_monitor_widget(bundle, fm):
    from imgcls_nb.widgets import DriftMonitor
    dm = DriftMonitor(bundle, str(fm/'valid'/'sandal'), n_perm=100)
    dm.check_button.click()
    assert dm.report.drift and 'DRIFT' in dm.verdict.value and bytes(dm.plot.value[:4]) == b'\x89PNG'
    dm.folder.value = str(fm/'nope')
    dm.check_button.click()
    assert 'no such file or folder' in dm.status.value
