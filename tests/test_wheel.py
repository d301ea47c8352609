"""The built wheel carries everything needed at run time: install it into a fresh venv and run `imgcls demo` there.

The fresh venv reuses the heavy third-party dependencies already installed in the test environment
through a .pth file (re-installing a multi-GB torch per test run would dominate CI); the package itself
comes only from the wheel, and the demo runs from an empty folder so the source tree cannot leak in."""
import subprocess, sys, sysconfig, venv, zipfile
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(out), str(ROOT)], check=True)
    return next(out.glob('imgcls_nb-*.whl'))

def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    pngs = [n for n in names if n.startswith('imgcls_nb/sample_data/fashion_mnist/') and n.endswith('.png')]
    assert len(pngs) == 800
    assert 'imgcls_nb/sample_data/fashion_mnist/LICENSE' in names
    assert any(n.endswith('licenses/LICENSE') for n in names)
    assert {'imgcls_nb/cli.py', 'imgcls_nb/train.py', 'imgcls_nb/bundle.py'} <= set(names)

def test_wheel_installs_and_runs_demo(wheel, tmp_path):
    env_dir = tmp_path/'venv'
    venv.create(env_dir, with_pip=True)
    py = env_dir/'bin'/'python'
    site = subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith('site-packages')]
    Path(site, '_deps_from_test_env.pth').write_text('\n'.join(deps) + '\n')
    subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', str(wheel)], check=True)
    run_dir = tmp_path/'empty'; run_dir.mkdir()
    r = subprocess.run([str(env_dir/'bin'/'imgcls'), 'demo', '--out', 'demo', '--epochs', '1'], cwd=run_dir, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'demo: accuracy' in r.stdout and (run_dir/'demo'/'bundle'/'config.json').is_file()
    where = subprocess.run([str(py), '-c', 'import imgcls_nb; print(imgcls_nb.__file__)'], cwd=run_dir, capture_output=True, text=True).stdout
    assert str(env_dir) in where, where  # imported from the wheel install, not the source tree
