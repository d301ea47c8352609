"""Default `imgcls train` against fastai and logistic regression on a Fashion-MNIST subset, plus the engine overhead.

    make bench            # or: python benchmarks/bench_train.py [--per-class 100] [--valid 50] [--test 2000] [--runs 3]

Data (issue 13's protocol): `--per-class` training and `--valid` validation images per class from the Fashion-MNIST
*training* set (Debian package `dataset-fashion-mnist`), written as PNG files into DATA/train/<class> and
DATA/valid/<class>, and `--test` images from the official test set, also as files. Accuracy is on the test files.
Every deep-learning method runs as its own process, as a user runs it, so each wall time includes starting Python
and importing its libraries:

1. logistic regression on raw pixels (scikit-learn; C picked by 3-fold CV on the training images);
2. fastai written by hand as its docs teach, 64 px: `ImageDataLoaders.from_folder(DATA, train='train',
   valid='valid', item_tfms=Resize(64), batch_tfms=aug_transforms())`, `vision_learner` on the same backbone and the
   same offline ImageNet weights, `fine_tune(3)`;
3. fastai tuned: the same at 64 px with flips only, the model in channels_last, `fine_tune(6)`;
4. `imgcls train DATA/train --valid DATA/valid --out BUNDLE` with every default.

Then the engine overhead: one epoch of fastai's `Learner.fit_one_cycle` against `imgcls_nb.train.Trainer.fit`
on the same model, data loader (64 px) and batch size; median of `--repeats` epochs each.

`--runs N` runs the fastai and imgcls jobs N times each, interleaved, and reports the median wall time (and
accuracy): on a shared 2-core machine one run of the same job measured 56 s and 67 s. `--seeds 42,1,2` gives
imgcls's runs these seeds in turn (`imgcls train --seed`; 42 is the default), so the accuracy row also shows
the mean over seeds: training is deterministic on one machine, and one seed's test accuracy moves by about
half a point.
"""
import argparse, gzip, json, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
from PIL import Image

FM = Path('/usr/share/datasets/fashion-mnist')
CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']

def read_idx(name, offset):
    with gzip.open(FM/name) as f: return np.frombuffer(f.read(), np.uint8, offset=offset)

def write_split(root, x, y, per_class, seed):
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root/name).mkdir(parents=True, exist_ok=True)
        for i in rng.permutation(np.flatnonzero(y == c))[:per_class]: Image.fromarray(x[i]).save(root/name/f'{i:05d}.png')

def make_data(work, per_class, n_valid, n_test):
    "DATA/train and DATA/valid (disjoint, from the official training set) and DATA/test (from the test set)"
    xtr, ytr = read_idx('train-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28), read_idx('train-labels-idx1-ubyte.gz', 8)
    xte, yte = read_idx('t10k-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28), read_idx('t10k-labels-idx1-ubyte.gz', 8)
    rng = np.random.default_rng(1)
    for c, name in enumerate(CLASSES):
        idx = rng.permutation(np.flatnonzero(ytr == c))[:per_class + n_valid]
        for part, ii in (('train', idx[:per_class]), ('valid', idx[per_class:])):
            (work/part/name).mkdir(parents=True, exist_ok=True)
            for i in ii: Image.fromarray(xtr[i]).save(work/part/name/f'{i:05d}.png')
    write_split(work/'test', xte, yte, n_test//10, seed=2)
    return work/'train', work/'valid', work/'test'

def files_labels(root):
    fs = sorted(root.rglob('*.png'))
    return fs, [f.parent.name for f in fs]

def timed(f, *a, **k):
    t = time.perf_counter(); r = f(*a, **k); return r, time.perf_counter() - t

def bench_logreg(train, test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    def xy(root):
        fs, ls = files_labels(root)
        return np.stack([np.asarray(Image.open(f), np.float32).ravel()/255 for f in fs]), np.array(ls)
    def fit():
        x, y = xy(train)
        return GridSearchCV(LogisticRegression(max_iter=2000), {'C': [0.01, 0.1, 1.0]}, cv=3).fit(x, y)
    m, secs = timed(fit)
    xt, yt = xy(test)
    return dict(method='logistic regression, raw pixels', accuracy=float((m.predict(xt) == yt).mean()), seconds=secs,
                notes=f"C={m.best_params_['C']}")

def bench_imgcls(train, valid, test, work, seed=42):
    exe = Path(sys.executable).parent/'imgcls'
    shutil.rmtree(work/'bundle', ignore_errors=True)  # a bundle from the previous run
    cmd = [str(exe), 'train', str(train), '--valid', str(valid), '--out', str(work/'bundle')]
    r, secs = timed(subprocess.run, cmd + ([] if seed == 42 else ['--seed', str(seed)]), capture_output=True, text=True)
    if r.returncode: raise SystemExit(r.stderr)
    from imgcls_nb.bundle import load_bundle
    clf = load_bundle(work/'bundle')
    fs, ls = files_labels(test)
    acc = float(np.mean([p.label == l for p, l in zip(clf.predict(fs, bs=128), ls)]))
    cfg = json.loads((work/'bundle'/'config.json').read_text())['training']
    return dict(method='imgcls train (defaults)', accuracy=acc, seconds=secs, seed=seed,
                notes=f"{cfg['arch']}, {cfg['size']}px, {cfg['freeze_epochs']}+{cfg['epochs']} epochs, "
                      f"drop_path {cfg.get('drop_path')}, valid_every {cfg.get('valid_every')}")

def _fastai_learner(dls, arch):
    from fastai.vision.all import vision_learner, accuracy
    from imgcls_nb.models import create_model
    learn = vision_learner(dls, arch, pretrained=False, metrics=accuracy)
    body = learn.model[0].model  # timm model without its classifier
    sd = {k: v for k, v in create_model(arch).state_dict().items() if not k.startswith('classifier')}
    missing, unexpected = body.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.startswith('classifier') for k in missing), (missing, unexpected)
    return learn

def fastai_job(root, test, size, arch, epochs, tuned) -> dict:
    "A fastai run by hand (the body of `--fastai-job`): accuracy on the test files and the seconds it took"
    import torch
    from fastai.vision.all import ImageDataLoaders, Resize, aug_transforms, Flip, Normalize
    from imgcls_nb.preprocess import spec_from_timm
    spec = spec_from_timm(arch)
    tfms = [Flip()] if tuned else aug_transforms()
    dls = ImageDataLoaders.from_folder(root, train='train', valid='valid', item_tfms=Resize(size), bs=64,
                                       batch_tfms=[*tfms, Normalize.from_stats(spec.mean, spec.std)])
    learn = _fastai_learner(dls, arch)
    if tuned: learn.model = learn.model.to(memory_format=torch.channels_last)
    with learn.no_bar(), learn.no_logging(): learn.fine_tune(epochs)
    t = time.perf_counter()
    fs, ls = files_labels(Path(test))
    with learn.no_bar(): p, _ = learn.get_preds(dl=learn.dls.test_dl(fs))
    acc = float(np.mean([learn.dls.vocab[i] == l for i, l in zip(p.argmax(1).tolist(), ls)]))
    return dict(accuracy=acc, test_seconds=time.perf_counter() - t)

def bench_fastai(root, test, size, arch, epochs, tuned):
    job = json.dumps(dict(root=str(root), test=str(test), size=size, arch=arch, epochs=epochs, tuned=tuned))
    r, secs = timed(subprocess.run, [sys.executable, __file__, '--fastai-job', job], capture_output=True, text=True)
    if r.returncode: raise SystemExit(r.stderr[-3000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    name = (f"fastai fine_tune({epochs}), 64 px, flips, channels_last" if tuned else
            f"fastai vision_learner fine_tune({epochs}), by hand")
    notes = f"{arch}, {size}px, 1+{epochs} epochs, " + ('Flip()' if tuned else 'aug_transforms()')
    # the process's wall time less the test predictions (imgcls's test predictions run outside its timed process)
    return dict(method=name, accuracy=out['accuracy'], seconds=secs - out['test_seconds'], notes=notes)

def median_row(rows:list) -> dict:
    "One method's row over repeated runs: the median wall time and accuracy, every run's time in the notes"
    out = dict(rows[0], seconds=statistics.median(r['seconds'] for r in rows),
               accuracy=statistics.median(r['accuracy'] for r in rows))
    if len(rows) > 1:
        out['notes'] += (f"; median of {len(rows)} runs: " + ', '.join(f"{r['seconds']:.1f}" for r in rows) + ' s, '
                         + ', '.join(f"{r['accuracy']:.1%}" for r in rows))
    seeds = {r['seed']: r['accuracy'] for r in rows if 'seed' in r}
    if len(seeds) > 1:
        out['accuracy'] = seeds.get(42, out['accuracy'])  # the default's
        out['notes'] += (f"; seeds {', '.join(f'{k}: {v:.2%}' for k, v in seeds.items())}, "
                         f"mean {statistics.mean(seeds.values()):.2%}")
    return out

def bench_engine(train, valid, repeats, arch):
    "Seconds per epoch: fastai Learner vs imgcls Trainer, same model/loader/loss/schedule"
    import torch
    from fastai.vision.all import Learner, DataLoaders as FDataLoaders
    from imgcls_nb.core import set_seed, set_threads
    from imgcls_nb.data import from_folder
    from imgcls_nb.models import create_model
    from imgcls_nb.preprocess import spec_from_timm
    from imgcls_nb.train import make_dataloaders, Trainer
    set_threads()
    src = from_folder(train, valid_dir=valid)
    out = {}
    for engine in ('imgcls Trainer', 'fastai Learner'):
        set_seed(0)
        model = create_model(arch, src.n_classes)
        dls = make_dataloaders(src, spec_from_timm(model, size=64), bs=32)
        times = []
        if engine == 'fastai Learner':
            model = model.to(memory_format=torch.channels_last)
            learn = Learner(FDataLoaders(dls.train, dls.valid), model, loss_func=torch.nn.CrossEntropyLoss())
            for _ in range(repeats):
                with learn.no_bar(), learn.no_logging(): times.append(timed(learn.fit_one_cycle, 1, 1e-3)[1])
        else:
            tr = Trainer(model, dls, torch.nn.CrossEntropyLoss(), progress=False, bn_stats='train')
            for _ in range(repeats): times.append(timed(tr.fit, 1, 1e-3)[1]); tr.done.clear()
        out[engine] = statistics.median(times)
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--per-class', type=int, default=100)
    ap.add_argument('--valid', type=int, default=50, help='validation images per class')
    ap.add_argument('--test', type=int, default=2000)
    ap.add_argument('--fastai-size', type=int, default=64)
    ap.add_argument('--fastai-job', help=argparse.SUPPRESS)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--runs', type=int, default=1, help='run fastai and imgcls this many times each, interleaved; medians')
    ap.add_argument('--seeds', default='42', help="imgcls's seeds, one per run in turn (e.g. 42,1,2)")
    ap.add_argument('--skip-fastai', action='store_true')
    ap.add_argument('--json', help='also write the results here')
    a = ap.parse_args()
    if a.fastai_job: return print(json.dumps(fastai_job(**json.loads(a.fastai_job))))
    arch = 'tf_efficientnet_lite0'
    work = Path(tempfile.mkdtemp(prefix='bench_train_'))
    try:
        train, valid, test = make_data(work, a.per_class, a.valid, a.test)
        rows = [bench_logreg(train, test)]
        jobs = [] if a.skip_fastai else [lambda run: bench_fastai(work, test, a.fastai_size, arch, 3, False),
                                         lambda run: bench_fastai(work, test, a.fastai_size, arch, 6, True)]
        seeds = [int(s) for s in a.seeds.split(',')]
        jobs.append(lambda run: bench_imgcls(train, valid, test, work, seeds[run % len(seeds)]))
        runs = [[job(run) for job in jobs] for run in range(a.runs)]  # interleaved: a slow spell hits every method
        rows += [median_row([r[j] for r in runs]) for j in range(len(jobs))]
        engine = {} if a.skip_fastai else bench_engine(train, valid, a.repeats, arch)
    finally: shutil.rmtree(work, ignore_errors=True)
    ref = next((r['seconds'] for r in rows if r['method'].startswith('fastai')), None)
    print(f"\nFashion-MNIST, {a.per_class} training and {a.valid} validation images per class, accuracy on {a.test} "
          f"test images; wall time of each job as its own process\n")
    print('| method | test accuracy | wall time (s) | time vs fastai | setup |\n|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['method']} | {r['accuracy']:.1%} | {r['seconds']:.1f} | {r['seconds']/ref:.2f}x | {r['notes']} |" if ref else
              f"| {r['method']} | {r['accuracy']:.1%} | {r['seconds']:.1f} | - | {r['notes']} |")
    if engine:
        print(f"\nTraining engine, one epoch at 64 px, batch 32, median of {a.repeats}\n")
        print('| engine | s/epoch | ratio |\n|---|---|---|')
        base = engine['imgcls Trainer']
        for k, v in engine.items(): print(f"| {k} | {v:.2f} | {v/base:.2f}x |")
    if a.json: Path(a.json).write_text(json.dumps(dict(rows=rows, engine=engine), indent=2))

if __name__ == '__main__': main()
