"""The ladder on the Fashion-MNIST sample: linear probe against fine-tuning (and zero-shot when a CLIP model is given).

    python benchmarks/bench_ladder.py [--clip DIR_OR_ID] [--test 2000] [--repeats 3]

Both methods train on the embedded sample (600 training images; its 200 validation images are used
by `train` for model selection and by `fit_probe` for nothing). Accuracy is measured on the sample's
200 validation images and, when Debian's `dataset-fashion-mnist` is installed, on `--test` images
of the official test set. Training time is the median of `--repeats` runs of each method from
scratch (no feature cache), all in this process on this machine, so the ratio is like for like.
"""
import argparse, gzip, shutil, statistics, tempfile, time
from pathlib import Path
import numpy as np
from PIL import Image
from imgcls_nb.data import sample_data, from_folder
from imgcls_nb.train import train, save_result
from imgcls_nb.ladder import fit_probe, compare
from imgcls_nb.bundle import load_bundle

FM = Path('/usr/share/datasets/fashion-mnist')
CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']

def test_folder(root, n):
    "The first n/10 official test images of each class as PNG files, or None without the Debian package"
    if not (FM/'t10k-images-idx3-ubyte.gz').exists(): return None
    read = lambda f, o: np.frombuffer(gzip.open(FM/f).read(), np.uint8, offset=o)
    x, y = read('t10k-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28), read('t10k-labels-idx1-ubyte.gz', 8)
    for c, name in enumerate(CLASSES):
        (root/name).mkdir(parents=True)
        for i in np.flatnonzero(y == c)[:n//10]: Image.fromarray(x[i]).save(root/name/f'{i:05d}.png')
    return from_folder(root, valid_pct=0.0)

def markdown(df):
    cols = [df.index.name or ''] + list(df.columns)
    rows = [[str(i)] + [str(v) for v in r] for i, r in zip(df.index, df.values)]
    return '\n'.join('| ' + ' | '.join(r) + ' |' for r in [cols, ['---']*len(cols)] + rows)

def timed_runs(f, repeats):
    out, secs = None, []
    for _ in range(repeats):
        t = time.perf_counter(); out = f(); secs.append(time.perf_counter() - t)
    return out, statistics.median(secs), secs

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--clip', help='CLIP model id or directory for the zero-shot rung (default: skipped)')
    ap.add_argument('--test', type=int, default=2000); ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    src = from_folder(sample_data())
    probe, t_probe, probe_runs = timed_runs(lambda: fit_probe(src, progress=False), a.repeats)
    ft, t_ft, ft_runs = timed_runs(lambda: train(src, progress=False), a.repeats)
    clfs = dict(probe=load_bundle(save_result(probe, work/'probe')), fine_tuned=load_bundle(save_result(ft, work/'ft')))
    if a.clip:
        from imgcls_nb.zeroshot import ZeroShotClassifier
        clfs = dict(zero_shot=ZeroShotClassifier(a.clip, labels=src.classes), **clfs)
    train_s = dict(zero_shot=0.0, probe=t_probe, fine_tuned=t_ft)
    print(f"training seconds, each run: probe {[round(s, 1) for s in probe_runs]}, fine-tune {[round(s, 1) for s in ft_runs]}")
    test = test_folder(work/'test', a.test)
    for name, data in [('sample validation (200)', src), (f'Fashion-MNIST test ({a.test})', test)]:
        if data is None: print(f"\n{name}: skipped (apt-get install dataset-fashion-mnist)"); continue
        table, _, dis = compare(data, **clfs)
        table['train_s'] = [train_s[n] for n in table.index]
        table['train_time_vs_fine_tune'] = table.train_s/t_ft
        table['accuracy_vs_fine_tune_pts'] = 100*(table.accuracy - table.loc['fine_tuned', 'accuracy'])
        print(f"\n### {name}; {len(dis)} images where the approaches disagree\n")
        print(markdown(table.round(3)))
    if not a.clip: print("\nzero-shot: skipped (no CLIP model given; pass --clip DIR_OR_ID)")
    shutil.rmtree(work)

if __name__ == '__main__': main()
