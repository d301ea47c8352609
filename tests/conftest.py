import shutil
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
