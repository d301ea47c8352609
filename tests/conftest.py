import hashlib, shutil
from pathlib import Path
import pytest
from imgcls_nb.data import sample_data

@pytest.fixture(scope='session')
def fm() -> Path:
    "The embedded Fashion-MNIST sample (read-only: copy before changing anything)"
    return sample_data()

@pytest.fixture(scope='session')
def tiny_bundle(tmp_path_factory, fm):
    "A bundle trained briefly on the sample set (shared by tests that only need *a* trained bundle)"
    from imgcls_nb.train import train
    from imgcls_nb.train import save_result
    res = train(fm, epochs=1, size=32, progress=False)
    return save_result(res, tmp_path_factory.mktemp('bundles')/'tiny')

@pytest.fixture
def data(tmp_path, fm) -> Path:
    "A private copy of the sample data: the package's own copy is never modified"
    return Path(shutil.copytree(fm, tmp_path/'data'))

def tree(*roots) -> dict:
    "relative path -> content hash of every file under `roots` (keyed by root name)"
    return {f"{r.name}/{p.relative_to(r)}": hashlib.sha256(p.read_bytes()).hexdigest()
            for r in roots if r.exists() for p in sorted(r.rglob('*')) if p.is_file()}
