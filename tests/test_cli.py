"The `imgcls` command as a user runs it: real processes, real files, exit codes and messages."
import os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest

IMGCLS = str(Path(sys.executable).parent/'imgcls')

def run(*args, cwd=None):
    return subprocess.run([IMGCLS, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900)

@pytest.mark.parametrize('cmd', [[], ['train'], ['predict'], ['evaluate'], ['demo']])
def test_help(cmd):
    r = run(*cmd, '--help')
    assert r.returncode == 0 and 'usage: imgcls' in r.stdout

@pytest.mark.parametrize('args,msg', [
    (['train', '/no/such/folder', '--out', '/tmp/x'], 'not a folder'),
    (['predict', '/no/such/bundle', '.'], 'not a bundle folder'),
    (['train', '.', '--out', '/tmp/x', '--multi-label'], 'needs --csv'),
])
def test_errors_are_one_line_with_nonzero_exit(args, msg):
    r = run(*args)
    assert r.returncode == 1, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith('imgcls')]
    assert len(lines) == 1 and msg in lines[0], r.stderr

def test_usage_error_exit_code():
    assert run('train').returncode == 2

def test_predict_folder_and_bad_file(tiny_bundle, fm, tmp_path):
    (tmp_path/'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    nested = tmp_path/'more'/'deeper'; nested.mkdir(parents=True)
    (nested/'img.png').write_bytes((fm/'valid'/'bag'/os.listdir(fm/'valid'/'bag')[0]).read_bytes())
    r = run('predict', tiny_bundle, fm/'valid'/'trouser', tmp_path, '--out', tmp_path/'p.csv', '--top-k', '2')
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path/'p.csv', keep_default_na=False)
    assert list(df.columns) == ['path', 'label', 'score', 'error', 'top1_label', 'top1_score', 'top2_label', 'top2_score']
    assert len(df) == 22 and (df.error != '').sum() == 1
    bad = df[df.path.str.endswith('broken.jpg')].iloc[0]
    assert bad.label == '' and ('truncated' in bad.error or 'corrupt' in bad.error)
    assert 'could not be read' in r.stderr

def test_predict_to_stdout(tiny_bundle, fm):
    r = run('predict', tiny_bundle, fm/'valid'/'bag')
    assert r.returncode == 0 and r.stdout.splitlines()[0] == 'path,label,score,error' and len(r.stdout.splitlines()) == 21

def test_train_multilabel_csv_focal(fm, tmp_path):
    attrs = {'t-shirt': 'upper', 'shirt': 'upper;sleeves', 'pullover': 'upper;sleeves', 'coat': 'upper;sleeves', 'dress': 'upper;lower',
             'trouser': 'lower', 'sandal': 'footwear', 'sneaker': 'footwear', 'ankle-boot': 'footwear', 'bag': ''}
    rows = [(str(p.relative_to(fm)), attrs[p.parent.name], p.parts[-3] == 'valid') for p in sorted(fm.rglob('*.png'))]
    pd.DataFrame(rows, columns=['path', 'tags', 'is_valid']).to_csv(tmp_path/'tags.csv', index=False)
    r = run('train', fm, '--csv', tmp_path/'tags.csv', '--label-col', 'tags', '--valid-col', 'is_valid', '--multi-label',
            '--label-delim', ';', '--loss', 'focal', '--epochs', '1', '--size', '32', '--out', tmp_path/'tags_bundle')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'accuracy_multi' in r.stdout
    import json
    cfg = json.loads((tmp_path/'tags_bundle'/'config.json').read_text())
    assert cfg['task'] == 'multi_label' and cfg['classes'] == ['footwear', 'lower', 'sleeves', 'upper']
    r = run('predict', tmp_path/'tags_bundle', fm/'valid'/'sneaker', '--out', tmp_path/'p.csv')
    df = pd.read_csv(tmp_path/'p.csv', keep_default_na=False)
    assert (df.label.str.contains('footwear')).mean() > 0.5, df.label.value_counts()

def test_train_with_separate_valid_folder(fm, tmp_path):
    r = run('train', fm/'train', '--valid', fm/'valid', '--epochs', '0', '--size', '32', '--out', tmp_path/'b')
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    assert json.loads((tmp_path/'b'/'config.json').read_text())['dataset']['n_valid'] == 200
