"""The `imgcls` command as a user runs it: real files, exit codes and messages; real processes where the process
matters (the console script, training and prediction runs, the install without torch), `cli.main` in this process
for parsing, help and error messages."""
import argparse, inspect, json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from imgcls_nb import cli
from imgcls_nb.data import TASKS, from_folder, from_df
from imgcls_nb.preprocess import AUG_PRESETS
from imgcls_nb.bundle import BACKENDS, REGISTRY
from imgcls_nb.predict import FORMATS, predict_files, zeroshot_predict, benchmark_bundle
from imgcls_nb.video import VIDEO_MODES, predict_media

IMGCLS = str(Path(sys.executable).parent/'imgcls')

def run(*args, cwd=None):
    return subprocess.run([IMGCLS, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=900)

def here(capsys, *args):
    "`imgcls ARGS` run by `cli.main` in this process (as the console script runs it): exit code, stdout, stderr"
    try: code = cli.main(list(map(str, args)))
    except SystemExit as e: code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err

def test_help_in_a_real_process():
    r = run('--help')
    assert r.returncode == 0 and 'usage: imgcls' in r.stdout and 'predict' in r.stdout

@pytest.mark.parametrize('cmd', [['train'], ['predict'], ['evaluate'], ['export'], ['bench'], ['zeroshot'], ['demo']])
def test_help(cmd, capsys):
    code, out, _ = here(capsys, *cmd, '--help')
    assert code == 0 and f'usage: imgcls {cmd[0]}' in out

@pytest.mark.parametrize('args,msg', [
    (['train', '/no/such/folder', '--out', '/tmp/x'], 'not a folder'),
    (['predict', '/no/such/bundle', '.'], 'not a bundle folder'),
    (['train', '.', '--out', '/tmp/x', '--multi-label'], 'needs --csv'),
])
def test_errors_are_one_line_with_nonzero_exit(args, msg, capsys):
    code, _, err = here(capsys, *args)
    assert code == 1, err
    lines = [l for l in err.splitlines() if l.startswith('imgcls')]
    assert len(lines) == 1 and msg in lines[0], err

def test_usage_error_exit_code(capsys):
    assert here(capsys, 'train')[0] == 2
    assert run('--no-such-option').returncode == 2  # and the console script passes the code on

def test_predict_folder_and_bad_file(tiny_bundle, fm, tmp_path):
    (tmp_path/'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated')
    nested = tmp_path/'more'/'deeper'; nested.mkdir(parents=True)
    (nested/'img.png').write_bytes((fm/'valid'/'bag'/os.listdir(fm/'valid'/'bag')[0]).read_bytes())
    r = run('predict', tiny_bundle, fm/'valid'/'trouser', tmp_path, '--out', tmp_path/'p.csv', '--top-k', '2')
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path/'p.csv', keep_default_na=False)
    assert list(df.columns) == ['path', 'label', 'score', 'error', 'top1_label', 'top1_score', 'top2_label',
                                'top2_score']
    assert len(df) == 22 and (df.error != '').sum() == 1
    bad = df[df.path.str.endswith('broken.jpg')].iloc[0]
    assert bad.label == '' and ('truncated' in bad.error or 'corrupt' in bad.error)
    assert 'could not be read' in r.stderr

def test_predict_to_stdout(tiny_bundle, fm):
    r = run('predict', tiny_bundle, fm/'valid'/'bag')
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0] == 'path,label,score,error' and len(lines) == 21

def test_predict_videos_among_images(fm, tmp_path, capsys):
    "Videos in a folder of inputs get rows of their own (in-process: `main` is what the console script runs)"
    pytest.importorskip('av')
    from imgcls_nb.train import sample_bundle
    from imgcls_nb.video import write_video
    from imgcls_nb.data import load_image
    imgs = [load_image(p) for c in ('trouser', 'bag') for p in sorted((fm/'valid'/c).iterdir())[:2]]
    write_video(tmp_path/'in'/'clip.mkv', [im for im in imgs for _ in range(8)], fps=8, size=64)  # 1 s a photo
    (tmp_path/'in'/'voice.mp4').write_bytes(b'')
    (tmp_path/'in'/'shirt.png').write_bytes(next((fm/'valid'/'shirt').iterdir()).read_bytes())
    argv = ['predict', str(sample_bundle()), str(tmp_path/'in'), '--out', str(tmp_path/'s.csv'), '--workers', '0']
    assert cli.main(argv + ['--video-mode', 'segments', '--fps', '4', '--smooth', '3']) == 0
    assert '2 videos, 1 with an error row' in capsys.readouterr().err
    df = pd.read_csv(tmp_path/'s.csv', keep_default_na=False)
    assert list(df.columns) == ['path', 'start', 'end', 'label', 'score', 'error']
    clip = df[df.path.str.endswith('clip.mkv')]
    assert list(clip.label) == ['trouser', 'bag'] and [float(s) for s in clip.start] == [0.0, 2.0], clip
    assert 'empty file' in df[df.path.str.endswith('voice.mp4')].error.iloc[0]
    assert df[df.path.str.endswith('shirt.png')].start.iloc[0] == ''

def test_train_multilabel_csv_focal(fm, tmp_path):
    attrs = {'t-shirt': 'upper', 'shirt': 'upper;sleeves', 'pullover': 'upper;sleeves', 'coat': 'upper;sleeves',
             'dress': 'upper;lower', 'trouser': 'lower', 'sandal': 'footwear', 'sneaker': 'footwear',
             'ankle-boot': 'footwear', 'bag': ''}
    rows = [(str(p.relative_to(fm)), attrs[p.parent.name], p.parts[-3] == 'valid') for p in sorted(fm.rglob('*.png'))]
    pd.DataFrame(rows, columns=['path', 'tags', 'is_valid']).to_csv(tmp_path/'tags.csv', index=False)
    r = run('train', fm, '--csv', tmp_path/'tags.csv', '--label-col', 'tags', '--valid-col', 'is_valid',
            '--multi-label', '--label-delim', ';', '--loss', 'focal', '--epochs', '1', '--size', '32',
            '--out', tmp_path/'tags_bundle')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'accuracy_multi' in r.stdout
    import json
    cfg = json.loads((tmp_path/'tags_bundle'/'config.json').read_text())
    assert cfg['task'] == 'multi_label' and cfg['classes'] == ['footwear', 'lower', 'sleeves', 'upper']
    r = run('predict', tmp_path/'tags_bundle', fm/'valid'/'sneaker', '--out', tmp_path/'p.csv')
    df = pd.read_csv(tmp_path/'p.csv', keep_default_na=False)
    assert (df.label.str.contains('footwear')).mean() > 0.5, df.label.value_counts()

def test_monitor_json_has_a_boolean_verdict_and_signals(tiny_bundle, fm):
    "`imgcls monitor --json`: a top-level boolean `drift` and a `signals` object; a folder of bags only is drift"
    import json
    r = run('monitor', tiny_bundle, fm/'valid'/'bag', '--json', '--n-perm', '100')
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out['drift'] is True and out['signals']['classes_chi2']['verdict'] == 'drift', out

def test_train_with_separate_valid_folder(fm, tmp_path):
    r = run('train', fm/'train', '--valid', fm/'valid', '--epochs', '0', '--size', '32', '--out', tmp_path/'b')
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    assert json.loads((tmp_path/'b'/'config.json').read_text())['dataset']['n_valid'] == 200

# --- Defaults and choices come from the library -------------------------------------------------------------------

# command: (a minimal command line, the library functions its options feed, its options that feed none of them)
COMMANDS = {
    'train': (['DATA', '--out', 'X'], lambda: [cli.lib('train'), from_folder, from_df], {'out', 'multi_label', 'csv'}),
    'predict': (['B', 'x.jpg'], lambda: [predict_files, predict_media], set()),
    'zeroshot': (['x.jpg', '--labels', 'a,b'], lambda: [zeroshot_predict], set()),
    'export': (['B'], lambda: [cli.lib('export_bundle')], set()),
    'bench': (['B'], lambda: [benchmark_bundle], set()),
    'evaluate': (['B', 'DATA'], lambda: [cli.lib('evaluate')], {'json', 'report', 'record'}),
    'demo': ([], lambda: [cli.run_demo], set()),
    'monitor': (['B', 'x.jpg'], lambda: [cli.monitor, cli.least_certain],
                {'json', 'report', 'sample_out'}),
}
COMMANDS['explain'] = (['B', 'x.jpg', '--out', 'D'], lambda: [cli.explain_files], set())
COMMANDS.update({  # the label audit (chapter 16_audit)
    'audit': (['DATA', '--out', 'a.csv'], lambda: [cli.lib('audit')], {'out', 'report'}),
    'similar': (['B', 'q.jpg'], lambda: [cli.lib('SimilarityIndex').search], {'index', 'images', 'out'}),
})

def test_every_command_is_checked():
    assert set(COMMANDS) == set(cli.COMMANDS)

def _subparser(cmd):
    p = cli.make_parser({cmd})
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[cmd]

@pytest.mark.parametrize('cmd', COMMANDS)
def test_defaults_are_the_library_defaults(cmd):
    "Parsed with only the required arguments, each option holds the default of the library parameter it feeds"
    argv, funcs, cli_only = COMMANDS[cmd]
    a = vars(cli.make_parser({cmd}).parse_args([cmd, *argv]))
    positional = {x.dest for x in _subparser(cmd)._actions if not x.option_strings}
    checked = set()
    for f in funcs():
        for name, prm in inspect.signature(f).parameters.items():
            if name not in a or name in positional or prm.default is inspect.Parameter.empty: continue
            checked.add(name)
            assert a[name] == prm.default, (f"imgcls {cmd}: the option for {f.__name__}({name}=...) defaults to "
                                            f"{a[name]!r}, the library to {prm.default!r}")
    params = {n for f in funcs() for n in inspect.signature(f).parameters}
    stray = set(a) - params - cli_only - positional - {'command', 'func'}
    assert not stray, f"imgcls {cmd}: options {stray} are no parameter of {[f.__name__ for f in funcs()]}"
    assert checked, f"imgcls {cmd}: no option checked"

def test_train_defaults_follow_train():
    "The example from the issue: `imgcls train DATA --out X` parses to `train`'s own defaults"
    a = cli.make_parser({'train'}).parse_args(['train', 'DATA', '--out', 'X'])
    sig = inspect.signature(cli.lib('train')).parameters
    for name in ('arch', 'pretrained', 'epochs', 'size', 'bs', 'lr', 'loss', 'weighted', 'balanced', 'aug', 'schedule',
                 'patience', 'seed', 'ckpt_dir', 'resume'):
        assert getattr(a, name) == sig[name].default, name
    assert a.arch == cli.lib('train').__globals__['DEFAULT_ARCH']

def test_choices_are_the_library_constants():
    expected = {('train', 'loss'): cli.lib('LOSSES'), ('train', 'aug'): ('auto', *AUG_PRESETS),
                ('train', 'schedule'): cli.lib('SCHEDULES'), ('predict', 'format'): FORMATS,
                ('predict', 'backend'): BACKENDS, ('predict', 'video_mode'): VIDEO_MODES,
                ('zeroshot', 'format'): FORMATS, ('zeroshot', 'task'): TASKS, ('monitor', 'backend'): BACKENDS}
    expected[('explain', 'method')] = ('auto', *cli.CAM_METHODS)
    expected[('predict', 'engine')] = ('local', *REGISTRY['engine'])
    expected[('train', 'valid_every')] = ('auto', *cli.lib('VALID_EVERY'))
    found = {(cmd, x.dest): tuple(x.choices) for cmd in COMMANDS for x in _subparser(cmd)._actions if x.choices}
    assert found == {k: tuple(v) for k,v in expected.items()}

def test_help_shows_library_defaults():
    h = _subparser('train').format_help()
    assert f"(default: {inspect.signature(cli.lib('train')).parameters['epochs'].default})" in h

# --- The light install: no torch, no scikit-learn ---------------------------------------------------------------
# A finder that refuses these imports, as where they are not installed (a None in sys.modules would be seen as
# "imported" by libraries that look there, such as scipy's array-API check)
NO_TORCH = """
import sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'torchvision', 'timm', 'sklearn', 'transformers', 'matplotlib'}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
from imgcls_nb.cli import main
sys.exit(main(sys.argv[1:]))
"""

def run_without_torch(*args):
    cmd = [sys.executable, '-c', NO_TORCH, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)

def test_predict_onnx_bundle_without_torch(tiny_bundle, fm, tmp_path):
    "`imgcls predict` with an exported bundle starts and runs where torch and scikit-learn cannot be imported"
    from imgcls_nb.export import export_bundle
    b = Path(shutil.copytree(tiny_bundle, tmp_path/'b'))
    export_bundle(b, data=fm)
    r = run_without_torch('predict', b, fm/'valid'/'bag', '--out', tmp_path/'p.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'with onnx' in r.stderr and len(pd.read_csv(tmp_path/'p.csv')) == 20
    r = run_without_torch('monitor', b, fm/'valid'/'bag', '--backend', 'onnx', '--json')  # the ONNX graph's embeddings
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert rep['skipped'] == {} and {'embedding_mmd', 'brightness_ks', 'contrast_ks'} <= set(rep['signals'])

def test_torch_command_without_torch_names_the_extra():
    for args in (['train', '.', '--out', 'x'], ['train', '--help'], ['evaluate', 'b', 'd']):
        r = run_without_torch(*args)
        assert r.returncode == 1 and "pip install 'imgcls_nb[train]'" in r.stderr, (args, r.stderr[-2000:])
    assert run_without_torch('predict', '--help').returncode == 0
