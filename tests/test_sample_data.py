"The embedded sample is exactly what tools/make_sample_data.py takes from Debian's Fashion-MNIST package."
import gzip
from pathlib import Path
import numpy as np, pytest
from PIL import Image

SRC = Path('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')
CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']

def test_layout_and_licence(fm):
    for split, n in (('train', 60), ('valid', 20)):
        assert sorted(p.name for p in (fm/split).iterdir()) == sorted(CLASSES)
        assert all(len(list((fm/split/c).iterdir())) == n for c in CLASSES)
    assert 'Zalando' in (fm/'LICENSE').read_text() and 'Permission is hereby granted' in (fm/'LICENSE').read_text()

@pytest.mark.skipif(not SRC.exists(), reason='Debian package dataset-fashion-mnist not installed (.ci/run installs it)')
def test_pixels_and_labels_match_debian_package(fm):
    with gzip.open(SRC) as f: x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(SRC.with_name('train-labels-idx1-ubyte.gz')) as f: y = np.frombuffer(f.read(), np.uint8, offset=8)
    files = sorted(fm.rglob('*.png'))
    assert len(files) == 800
    for p in files:
        i = int(p.stem)
        assert CLASSES[y[i]] == p.parent.name
        assert np.array_equal(np.asarray(Image.open(p)), x[i])
    valid = {int(p.stem) for p in (fm/'valid').rglob('*.png')}
    assert not valid & {int(p.stem) for p in (fm/'train').rglob('*.png')}
