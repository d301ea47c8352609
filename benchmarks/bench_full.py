"""Time to accuracy on the full Fashion-MNIST: `imgcls train --time-budget` at several budgets, on 2 cores.

    python benchmarks/bench_full.py                       # budgets 1m 3m 10m 30m
    python benchmarks/bench_full.py --budgets 30m --work /tmp/fm_full

Data: the 60,000 official training images and the 10,000 official test images of Fashion-MNIST (Debian package
`dataset-fashion-mnist`), written once as PNG files into `--work` (train/<class>/, test/<class>/) and reused.
Each budget runs `imgcls train WORK/train --out BUNDLE --time-budget B` as a user would (a subprocess; the budget
counts from the start of the command, reading the 60,000 files included; 20% of the training images validate).
Reported per budget: the plan, wall time against the budget, peak resident memory of the training process,
test accuracy on the 10,000 test images, and the validation accuracy after each epoch against wall time.
"""
import argparse, gzip, json, os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
from PIL import Image

FM = Path('/usr/share/datasets/fashion-mnist')
CLASSES = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']

def read_idx(name, offset):
    with gzip.open(FM/name) as f: return np.frombuffer(f.read(), np.uint8, offset=offset)

def write_all(root:Path, images:str, labels:str):
    "Every image of one official split as root/<class>/<index>.png (skipped when already written)"
    if (root/'.complete').is_file(): return root
    x, y = read_idx(images, 16).reshape(-1, 28, 28), read_idx(labels, 8)
    for c in CLASSES: (root/c).mkdir(parents=True, exist_ok=True)
    for i, (img, lab) in enumerate(zip(x, y)): Image.fromarray(img).save(root/CLASSES[lab]/f'{i:05d}.png')
    (root/'.complete').write_text(str(len(x)))
    return root

def run_budget(train:Path, test:Path, out:Path, budget:str) -> dict:
    "One `imgcls train --time-budget` run: wall time, peak RSS (its own process tree's largest), test accuracy"
    exe = Path(sys.executable).parent/'imgcls'
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    p = subprocess.Popen([str(exe), 'train', str(train), '--out', str(out), '--time-budget', budget],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t
    if status:  # a budget too small is refused with the smallest that would do: a result, not a crash
        return dict(budget=budget, seconds=secs, peak_rss_gb=usage.ru_maxrss/2**20, accuracy=None, plan=None,
                    history=[], log=log, error=log.strip().splitlines()[-1] if log.strip() else f'exit {status}')
    from imgcls_nb.bundle import load_bundle
    clf = load_bundle(out)
    fs = sorted(test.rglob('*.png'))
    labels = np.array([f.parent.name for f in fs])
    pred = np.array([r.label for r in clf.predict(fs, bs=256)])
    tr = json.loads((out/'config.json').read_text())['training']
    return dict(budget=budget, seconds=secs, peak_rss_gb=usage.ru_maxrss/2**20, accuracy=float((pred == labels).mean()),
                plan=tr.get('budget_plan'), history=tr['history'], log=log)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--budgets', nargs='+', default=['1m', '3m', '10m', '30m'])
    ap.add_argument('--work', default=str(Path(tempfile.gettempdir())/'imgcls_fashion_full'),
                    help='folder for the PNG files (kept and reused) and the bundles')
    ap.add_argument('--json', help='also write the results here')
    a = ap.parse_args()
    work = Path(a.work)
    t = time.perf_counter()
    train = write_all(work/'train', 'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz')
    test = write_all(work/'test', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
    print(f"data ready in {time.perf_counter() - t:.0f} s: {work}", flush=True)
    from imgcls_nb.train import parse_duration
    rows = []
    for b in a.budgets:
        r = run_budget(train, test, work/f'bundle_{b}', b)
        rows.append(r)
        acc = f"test accuracy {r['accuracy']:.2%}" if r['accuracy'] is not None else r['error']
        print(f"{b}: {acc} in {r['seconds']:.0f} s, peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)
    print(f"\nFull Fashion-MNIST (60,000 training PNGs, 20% of them validating; 10,000 test PNGs), "
          f"`imgcls train --time-budget B`, {os.cpu_count()} cores\n")
    print('| budget | plan | wall time (s) | vs budget | peak RSS (GB) | test accuracy |\n|---|---|---|---|---|---|')
    for r in rows:
        p = r['plan'] or {}
        plan = (f"{p.get('size')} px, {p.get('freeze_epochs')}+{p.get('epochs')} epochs"
                + (f" of {p['epoch_images']} images" if p.get('epoch_images') else '')) if p else 'refused'
        acc = f"{r['accuracy']:.2%}" if r['accuracy'] is not None else r['error']
        print(f"| {r['budget']} | {plan} | {r['seconds']:.0f} | {r['seconds']/parse_duration(r['budget']):.2f} "
              f"| {r['peak_rss_gb']:.2f} | {acc} |")
    for r in rows:
        print(f"\nValidation accuracy after each epoch, budget {r['budget']} (wall time from the start of the command: "
              f"the epochs' own times, added to the time before the first)\n")
        print('| epoch | phase | wall time (s) | valid accuracy |\n|---|---|---|---|')
        h = r['history']
        start = r['seconds'] - sum(e['time'] for e in h)  # reading, measuring, saving: not part of an epoch
        clock = start
        for e in h:
            clock += e['time']
            acc = '-' if e.get('accuracy') is None else f"{e['accuracy']:.2%}"  # an epoch not validated
            print(f"| {e['epoch']} | {e['phase']} | {clock:.0f} | {acc} |")
    if a.json: Path(a.json).write_text(json.dumps(rows, indent=2))

if __name__ == '__main__': main()
