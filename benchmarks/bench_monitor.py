"""Drift monitoring, measured: false alarms, detection per corruption and strength, the smallest batch flagged, speed.

    python benchmarks/bench_monitor.py [--pool 1500] [--draws 10]

The model is `sample_bundle()` (the default backbone trained on the embedded sample, 600 Fashion-MNIST training
images), its reference profile the 200 validation images `train` recorded. Current images are the official
Fashion-MNIST *test* set (Debian package `dataset-fashion-mnist`), as 28x28 grayscale images like the sample's.

1. False alarms: the 10,000 test images cut into 20 disjoint batches of 500 (and into disjoint batches of 50, 100,
   200): the share flagged as drift, overall and per test. The target is at most 5% at 500.
2. Detection: `--pool` test images corrupted (`monitor.CORRUPTIONS`: blur, darker, Gaussian noise, JPEG quality,
   each at a mild and a strong level), and scikit-learn's 1,797 handwritten digits (another distribution, scaled to
   28x28). For each and each batch size, `--draws` random batches from the pool: the share flagged. The smallest
   batch size is the first at which at least 90% of the draws are flagged.
3. Speed: classifying and embedding 10,000 images (PyTorch, this machine), then storing a reference profile of
   10,000 predictions (`write_reference`) and comparing 10,000 current predictions with it (`compare`).

The model runs once per image; every verdict is `monitor.compare` on the stored per-image numbers, which is what
`monitor` computes after the model (the same functions, the same default alpha 0.01 and 1,000 permutations).
"""
import argparse, gzip, json, shutil, sys, tempfile, time
from pathlib import Path
import numpy as np, pandas as pd
from PIL import Image
from imgcls_nb.bundle import load_bundle, read_config, write_reference, probabilities
from imgcls_nb.train import sample_bundle
from imgcls_nb import monitor as M

FM = Path('/usr/share/datasets/fashion-mnist')
FM_CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']
SIZES = (20, 50, 100, 200, 500)

def fm_test() -> list:
    with gzip.open(FM/'t10k-images-idx3-ubyte.gz') as f: x = np.frombuffer(f.read(), np.uint8, offset=16)
    return [Image.fromarray(a) for a in x.reshape(-1, 28, 28)]

def fm_labels(classes:list) -> np.ndarray:
    "The test labels as indices into the bundle's classes (its folders are sorted by name, Fashion-MNIST's are not)"
    with gzip.open(FM/'t10k-labels-idx1-ubyte.gz') as f: y = np.frombuffer(f.read(), np.uint8, offset=8)
    return np.array([classes.index(c) for c in FM_CLASSES])[y]

def digits() -> list:
    from sklearn.datasets import load_digits
    return [Image.fromarray((a*255/16).astype(np.uint8)).resize((28, 28)) for a in load_digits().images]

def features(clf, images, bs=128) -> tuple:
    "(probabilities, embeddings, input statistics) of in-memory images"
    f = clf.profile_inputs(images, bs)
    assert not any(f['errors'])
    return probabilities(f['logits'], clf.task, clf.temperature), f['embeddings'], f['stats']

def md(df:pd.DataFrame) -> str:
    "A Markdown table (floats at two decimals)"
    cell = lambda v: f"{v:.2f}" if isinstance(v, float) else ('' if v is None else str(v))
    head = '| ' + ' | '.join(df.columns) + ' |\n|' + '---|'*len(df.columns) + '\n'
    return head + ''.join('| ' + ' | '.join(cell(v) for v in r) + ' |\n' for r in df.itertuples(index=False))

def snap(probs, emb, st, idx): return M.snapshot_from_probs(probs[idx], 'single_label', emb[idx], inputs=st[idx])

def flagged(ref, cur, classes, seed=0) -> tuple:
    rep = M.compare(ref, cur, classes, seed=seed)
    return rep.drift, [k for k,s in rep.signals.items() if s['decides'] and s['verdict'] == 'drift']

def false_alarms(ref, probs, emb, st, classes) -> pd.DataFrame:
    rows = []
    for n in (50, 100, 200, 500):
        batches = np.arange(len(probs))[:len(probs)//n*n].reshape(-1, n)[:20]
        res = [flagged(ref, snap(probs, emb, st, b), classes, seed=i) for i,b in enumerate(batches)]
        by = pd.Series([k for _,ks in res for k in ks]).value_counts().to_dict()
        rows.append(dict(batch=n, draws=len(res), flagged=sum(d for d,_ in res),
                         rate=np.mean([d for d,_ in res]), by_test=json.dumps(by)))
    return pd.DataFrame(rows)

def detection(ref, probs, emb, st, classes, draws, seed=0) -> dict:
    "share of `draws` random batches flagged per batch size, and which tests fired at the batch size of 100"
    rng, out, fired = np.random.default_rng(seed), {}, {}
    for n in SIZES:
        picks = [rng.choice(len(probs), min(n, len(probs)), replace=False) for _ in range(draws)]
        res = [flagged(ref, snap(probs, emb, st, p), classes, seed=i) for i,p in enumerate(picks)]
        out[n] = np.mean([d for d,_ in res])
        if n == 100: fired = pd.Series([k for _,ks in res for k in ks], dtype=str).value_counts().to_dict()
    return out, fired

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--pool', type=int, default=1500, help='test images corrupted per corruption and level')
    ap.add_argument('--draws', type=int, default=10, help='random batches per batch size in the detection table')
    a = ap.parse_args()
    bundle = sample_bundle()
    cfg, clf = read_config(bundle), load_bundle(bundle)
    ref = M.reference_snapshot(bundle)
    print(f"bundle {bundle.name}: reference of {len(ref)} validation images ({cfg['reference']['data']})", flush=True)
    test, y = fm_test(), fm_labels(cfg['classes'])
    t = time.perf_counter()
    probs, emb, st = features(clf, test)
    t_model = time.perf_counter() - t
    print(f"classified and embedded {len(test):,} images in {t_model:.1f} s", flush=True)

    fa = false_alarms(ref, probs, emb, st, cfg['classes'])
    print("\n## False alarms: disjoint batches of Fashion-MNIST test images (same distribution)\n")
    print(md(fa), flush=True)

    rows = []
    cases = [(k, lvl) for k,(mild, strong) in M.CORRUPTIONS.items() for lvl in (mild, strong)] + [('digits', None)]
    for kind, level in cases:
        imgs = digits() if kind == 'digits' else [M.corrupt(im, kind, level, seed=i) for i,im in enumerate(test[:a.pool])]
        p, e, s = features(clf, imgs)
        rates, fired = detection(ref, p, e, s, cfg['classes'], a.draws)
        smallest = next((n for n in SIZES if rates[n] >= 0.9), None)
        acc = None if kind == 'digits' else float((p.argmax(1) == y[:a.pool]).mean())
        rows.append(dict(shift=kind if kind == 'digits' else f"{kind} {level:g}", accuracy=acc,
                         **{f"n={n}": rates[n] for n in SIZES}, smallest_batch=smallest or f">{SIZES[-1]}",
                         tests_firing_at_100=', '.join(f'{k} {v}' for k,v in fired.items())))
        print(rows[-1], flush=True)
    clean_acc = float((probs.argmax(1)[:a.pool] == y[:a.pool]).mean())
    print(f"\n## Detection rate ({a.draws} random batches per size; accuracy of the model on the shifted images, "
          f"clean: {clean_acc:.3f})\n")
    print(md(pd.DataFrame(rows)))

    with tempfile.TemporaryDirectory() as d:
        b = Path(shutil.copytree(bundle, Path(d)/'b'))
        logits = np.log(np.clip(probs, 1e-12, 1))  # softmax(log p) = p: stand-in logits of 10,000 predictions
        t = time.perf_counter()
        write_reference(b, logits, emb, 'bench', stats=st)
        t_write = time.perf_counter() - t
        t = time.perf_counter()
        big = M.reference_snapshot(b)
        rep = M.compare(big, M.snapshot_from_probs(probs, 'single_label', emb, inputs=st), cfg['classes'])
        t_compare = time.perf_counter() - t
    print(f"\n## Speed\n\nclassify + embed 10,000 images (PyTorch, batch 128): {t_model:.1f} s "
          f"({len(test)/t_model:.0f} images/s)\nstore a reference profile of 10,000 predictions: {t_write:.2f} s\n"
          f"load it and compare 10,000 current predictions with it (all signals, 1,000 permutations): "
          f"{t_compare:.2f} s (verdict: {'drift' if rep.drift else 'no drift'})")

if __name__ == '__main__': main()
