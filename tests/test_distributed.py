"The Ray engine on a cluster the test starts with `ray start --head` on 127.0.0.1 (and stops), and from the CLI."
import os, shutil, signal, socket, subprocess, sys, threading, time
from pathlib import Path
import pandas as pd, pytest
pytest.importorskip('ray')
from imgcls_nb.predict import predict_files
from imgcls_nb.train import sample_bundle
from imgcls_nb.export import export_onnx
from imgcls_nb.distributed import predict_ray

BIN = Path(sys.executable).parent
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def _cluster_pids(tmp:Path, title:str='') -> list:
    "PIDs of the processes of the cluster whose files are in `tmp` (optionally: whose command line has `title`)"
    # found by their open log files: Ray's processes rewrite their command line and environment
    pids = []
    for d in Path('/proc').iterdir():
        try:
            if d.name.isdigit() and int(d.name) != os.getpid() and title.encode() in (d/'cmdline').read_bytes() \
               and any(os.readlink(f).startswith(str(tmp)) for f in (d/'fd').iterdir()): pids.append(int(d.name))
        except OSError: pass
    return pids

def _stop(tmp:Path, pids_of=_cluster_pids):
    "Stop this cluster's processes (only those: `ray stop` would stop every Ray on the machine)"
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids_of(tmp):
            try: os.kill(pid, sig)
            except OSError: pass
        t0 = time.time()
        while pids_of(tmp) and time.time() - t0 < 3: time.sleep(0.2)

@pytest.fixture(scope='module')
def cluster(request):
    "HOST:PORT of a 2-CPU Ray head on 127.0.0.1, stopped (nothing left running) after the module's tests"
    port = _free_port()
    tmp = Path(f'/tmp/ray-imgcls-{port}')
    path = [str(Path(__file__).parents[1])] + os.environ.get('PYTHONPATH', '').split(os.pathsep)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED='0', OMP_NUM_THREADS='1', RAY_AUTH_MODE='disabled',
               PYTHONPATH=os.pathsep.join(path))  # the workers import this checkout
    cmd = [str(BIN/'ray'), 'start', '--head', f'--port={port}', '--node-ip-address=127.0.0.1', '--num-cpus=2',
           '--include-dashboard=false', '--object-store-memory=200000000', '--disable-usage-stats', f'--temp-dir={tmp}']
    log = tmp.with_name(tmp.name + '.log')
    try:
        with open(log, 'w') as fh: head = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        request.getfixturevalue('bundle')  # exported while the head starts
        if head.wait(180) != 0 and 'timed out during startup' in log.read_text():
            # Ray gives its raylet a fixed 30 s to register, which a loaded 2-core machine can miss: once more
            _stop(tmp)
            with open(log, 'a') as fh: head = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        assert head.wait(180) == 0, log.read_text()
        yield f'127.0.0.1:{port}'
    finally:
        _stop(tmp)
        left = _cluster_pids(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        log.unlink(missing_ok=True)
        assert not left, f'Ray processes outlived the test cluster: {left}'

@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    "The sample bundle with its ONNX export, and the inputs: the validation images and a broken file"
    d = tmp_path_factory.mktemp('dist')
    b = sample_bundle(d/'b')
    export_onnx(b)
    (d/'broken.jpg').write_bytes(b'\xff\xd8 not a jpeg')
    return b

def _inputs(b, fm): return [str(fm/'valid'), str(b.parent/'broken.jpg')]

def _same_rows(a:pd.DataFrame, b:pd.DataFrame):
    assert list(a.columns) == list(b.columns) and list(a.path) == list(b.path)
    assert list(a.label) == list(b.label) and list(a.error) == list(b.error)
    num = lambda s: pd.to_numeric(s, errors='coerce')
    assert (num(a.score) - num(b.score)).abs().max() < 1e-5 and a.error.iloc[-1]

def test_cluster_gives_the_local_rows_and_resumes(cluster, bundle, fm, tmp_path):
    "On the cluster, through the CLI, with half the rows already written: the local rows, each input once"
    ins = _inputs(bundle, fm)
    predict_files(bundle, ins, tmp_path/'local.csv', top_k=2, progress=False)
    ref = pd.read_csv(tmp_path/'local.csv', keep_default_na=False)
    ref.iloc[:100].to_csv(tmp_path/'ray.csv', index=False)  # an interrupted run
    cmd = [str(BIN/'imgcls'), 'predict', str(bundle), *ins, '--out', str(tmp_path/'ray.csv'), '--top-k', '2',
           '--engine', 'ray', '--ray-address', cluster, '--resume']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert 'skipped 100' in r.stderr
    _same_rows(pd.read_csv(tmp_path/'ray.csv', keep_default_na=False), ref)
    host, port = cluster.split(':')
    socket.create_connection((host, int(port)), 5).close()  # the cluster is still running

def test_killed_actor_is_replaced_and_each_input_written_once(cluster, bundle, fm, tmp_path):
    "SIGKILL a model actor mid-run: Ray starts another and retries its batches; no row lost, none repeated"
    ins = _inputs(bundle, fm)
    killed, out, done = [], tmp_path/'ray.jsonl', threading.Event()
    def kill_one():
        t0 = time.time()
        while not killed and not done.is_set() and time.time() - t0 < 120:
            pids = _cluster_pids(Path(f"/tmp/ray-imgcls-{cluster.split(':')[1]}"), 'MapWorker')
            if pids and out.exists() and out.stat().st_size:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)
    t = threading.Thread(target=kill_one, daemon=True)
    t.start()
    try: r = predict_ray(bundle, ins, out, bs=4, progress=False, address=cluster, actors=1)
    finally: done.set()
    assert killed and r['classified'] == 200 and r['unreadable'] == 1
    df = pd.read_json(out, lines=True)
    assert len(df) == 201 and df.path.is_unique

def test_unreachable_cluster_is_a_one_line_error(bundle, fm, tmp_path):
    t0 = time.time()
    r = subprocess.run([str(BIN/'imgcls'), 'predict', str(bundle), str(fm/'valid'), '--out', str(tmp_path/'p.csv'),
                        '--engine', 'ray', '--ray-address', f'127.0.0.1:{_free_port()}'], capture_output=True, text=True)
    assert r.returncode == 1 and time.time() - t0 < 15
    assert r.stderr.count('\n') == 1 and 'cannot reach a Ray cluster' in r.stderr, r.stderr

def test_train_processes_above_the_cores_is_a_one_line_error(fm, tmp_path):
    "`imgcls train --processes N` with more processes than cores (or GPUs): one line naming the limit, at once"
    pytest.importorskip('accelerate')
    from imgcls_nb.core import available_cores, default_device
    n = available_cores() + 1 if default_device() == 'cpu' else 1000
    cmd = [str(BIN/'imgcls'), 'train', str(fm), '--out', str(tmp_path/'b'), '--processes', str(n), '--bs', str(8*n)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.count('\n') == 1, r.stderr
    assert f'processes={n}: this machine has' in r.stderr and 'use 1 to' in r.stderr, r.stderr
    assert not (tmp_path/'b').exists()
