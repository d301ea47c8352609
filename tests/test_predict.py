"Batch prediction as production uses it: killed runs resumed, every format, workers, and the CLI flags."
import json, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest
from imgcls_nb.predict import predict_files, iter_inputs, done_paths

IMGCLS = str(Path(sys.executable).parent/'imgcls')

def _processes_mentioning(text, wait=0.0):
    "PIDs whose command line contains `text`, polling up to `wait` seconds for them to go away"
    t0 = time.time()
    while True:
        pids = []
        for d in Path('/proc').iterdir():
            try:
                if d.name.isdigit() and text in (d/'cmdline').read_bytes().decode(errors='ignore'): pids.append(int(d.name))
            except OSError: pass
        if not pids or time.time() - t0 > wait: return pids
        time.sleep(0.2)

def test_killed_run_resumes_without_gaps_or_repeats(tiny_bundle, fm, tmp_path):
    "SIGKILL the CLI mid-run; --resume must finish the job with each input exactly once"
    out = tmp_path/'p.csv'
    cmd = [IMGCLS, 'predict', str(tiny_bundle), str(fm), '--out', str(out), '--workers', '1', '--backend', 'torch']
    proc = subprocess.Popen(cmd + ['--batch-size', '4'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 120 and (not out.exists() or out.read_text().count('\n') < 50): time.sleep(0.05)
    proc.send_signal(signal.SIGKILL); proc.wait()
    n_before = out.read_text().count('\n') - 1
    assert not _processes_mentioning(str(out), wait=10), 'decoding workers outlived the killed run'
    assert 0 < n_before < 800, n_before  # really interrupted
    r = subprocess.run(cmd + ['--resume', '--batch-size', '64'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out, keep_default_na=False)
    assert len(df) == 800 and df.path.is_unique and (df.error == '').all()
    assert 'skipped' in r.stderr

def test_every_decoding_mode_gives_the_same_rows(tiny_bundle, fm, tmp_path):
    "In turn with the model, in threads of this process, in worker processes: the same rows in the same order"
    modes = {'turn': dict(workers=0, decode_threads=0), 'threads': dict(workers=0, decode_threads=2, bs=7),
             'processes': dict(workers=2, bs=7)}
    rows = {}
    for name, kw in modes.items():
        r = predict_files(tiny_bundle, fm/'valid', tmp_path/f'{name}.jsonl', progress=False, backend='torch', **kw)
        assert r['classified'] == 200 and r['decode_threads'] == (0 if kw['workers'] else kw['decode_threads'])
        rows[name] = pd.read_json(tmp_path/f'{name}.jsonl', lines=True)
    ref = rows.pop('turn')
    for df in rows.values():
        assert list(df.path) == list(ref.path) and list(df.label) == list(ref.label)
        assert (df.score - ref.score).abs().max() < 1e-5

def test_decoding_threads_do_the_decoding(tiny_bundle, fm, tmp_path, monkeypatch):
    "With decode_threads, the batches are decoded in the decoding threads, not in the thread that runs the model"
    import threading
    from imgcls_nb import predict as P
    seen, prepare = [], P._prepare
    monkeypatch.setattr(P, '_prepare', lambda *a, **k: seen.append(threading.current_thread().name) or prepare(*a, **k))
    for t in (2, 0):
        seen.clear()
        assert predict_files(tiny_bundle, fm/'valid', tmp_path/f'{t}.csv', workers=0, decode_threads=t, bs=16, progress=False, backend='torch')['classified'] == 200
        assert len(seen) == 13 and all(n.startswith('decode') if t else n == threading.main_thread().name for n in seen), seen

def test_parquet_resume_appends(tiny_bundle, fm, tmp_path):
    out = tmp_path/'p.parquet'
    predict_files(tiny_bundle, fm/'valid'/'bag', out, progress=False, backend='torch')
    s = predict_files(tiny_bundle, [fm/'valid'/'bag', fm/'valid'/'coat'], out, resume=True, progress=False, backend='torch')
    df = pd.read_parquet(out)
    assert s['skipped'] == 20 and s['classified'] == 20 and len(df) == 40 and df.path.is_unique
    assert df.score.dtype.kind == 'f'
    assert not list(tmp_path.glob('.*partial'))

def test_csv_list_and_glob_inputs(tiny_bundle, fm, tmp_path):
    files = sorted((fm/'valid'/'sandal').iterdir())[:5]
    (tmp_path/'list.csv').write_text('path,note\n' + ''.join(f'{f},x\n' for f in files))
    got = list(iter_inputs([tmp_path/'list.csv', str(fm/'valid'/'sandal'/'*.png')]))
    assert got[:5] == [str(f) for f in files] and len(got) == 20
    (tmp_path/'nocol.csv').write_text('file\na.png\n')
    with pytest.raises(Exception, match="no 'path' column"): list(iter_inputs(tmp_path/'nocol.csv'))

def test_cli_formats_and_stdout(tiny_bundle, fm, tmp_path):
    r = subprocess.run([IMGCLS, 'predict', str(tiny_bundle), str(fm/'valid'/'bag'), '--format', 'jsonl', '--workers', '0'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(rows) == 20 and set(rows[0]) == {'path', 'label', 'score', 'error'}
    assert done_paths(tmp_path/'missing.csv') == set()
    r = subprocess.run([IMGCLS, 'predict', str(tiny_bundle), str(fm/'valid'/'bag'), '--backend', 'onnx'], capture_output=True, text=True)
    assert r.returncode == 1 and 'imgcls export' in r.stderr
