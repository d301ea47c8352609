"""Rebuild the embedded sample dataset from Debian's `dataset-fashion-mnist` package.

    apt-get install dataset-fashion-mnist
    python tools/make_sample_data.py

Writes `imgcls_nb/sample_data/fashion_mnist/{train,valid}/<class>/<index>.png` (a stratified subset
of the Fashion-MNIST *training* set, so the official test set stays untouched for benchmarks) and
copies the licence notice beside it.
"""
import gzip, shutil
from pathlib import Path
import numpy as np
from PIL import Image

SRC = Path('/usr/share/datasets/fashion-mnist')
DEST = Path(__file__).resolve().parents[1]/'imgcls_nb'/'sample_data'/'fashion_mnist'
CLASSES = ['t-shirt','trouser','pullover','dress','coat','sandal','shirt','sneaker','bag','ankle-boot']
N_TRAIN, N_VALID, SEED = 60, 20, 0

def read_idx(path, offset):
    with gzip.open(path) as f: return np.frombuffer(f.read(), np.uint8, offset=offset)

def main():
    x = read_idx(SRC/'train-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28)
    y = read_idx(SRC/'train-labels-idx1-ubyte.gz', 8)
    rng = np.random.default_rng(SEED)
    if DEST.exists(): shutil.rmtree(DEST)
    for c, name in enumerate(CLASSES):
        idx = rng.permutation(np.flatnonzero(y == c))[:N_TRAIN + N_VALID]
        for split, part in (('train', idx[:N_TRAIN]), ('valid', idx[N_TRAIN:])):
            d = DEST/split/name
            d.mkdir(parents=True, exist_ok=True)
            for i in part: Image.fromarray(x[i]).save(d/f'{i:05d}.png', optimize=True)
    shutil.copy('/usr/share/doc/dataset-fashion-mnist/copyright', DEST/'LICENSE')
    (DEST/'README.md').write_text(
        '# Fashion-MNIST sample\n\n'
        f'{N_TRAIN} training and {N_VALID} validation images per class (10 classes, 28x28 grayscale PNG),\n'
        'a stratified random subset (seed 0) of the Fashion-MNIST training set, taken from the Debian\n'
        'package `dataset-fashion-mnist`. File names are the indices in `train-images-idx3-ubyte`.\n\n'
        'Fashion-MNIST is Copyright 2017 Zalando SE, released under the MIT (Expat) licence; see LICENSE.\n'
        'Rebuild with `python tools/make_sample_data.py`.\n')

if __name__ == '__main__': main()
