"""End-to-end batch prediction against the model-only rate, on real photos, with the default backbone at 224 px.

    python benchmarks/bench_predict.py [--files 512] [--runs 5]

Builds a bundle of the default backbone (tf_efficientnet_lite0, 224 px) with a linear head fitted on the
embedded Fashion-MNIST sample (`fit_probe(stages=0)`: the plain timm model with a trained classifier, in
seconds), exports it to ONNX (fp32 and int8), and writes `--files` real photo files: random crops of the
photographs shipped with scikit-image and scikit-learn, 256-640 px, alternately JPEG (quality 90) and PNG.
Then, on this machine, in one run:

1. `benchmark_bundle` (the table of `imgcls bench`): model-only images/s per backend at batch 1 and 32;
2. `predict_files` end to end (decode, preprocess, model, CSV output), loaded from the bundle folder as
   `imgcls predict` loads it, as a share of the model-only rate of the same backend: decoding in turn with the
   model (the baseline: Pillow alone, then the fast decoders), in 1 or 2 threads beside the model (the default
   on few cores), in 1 or 2 worker processes; and with the model on one thread and decoding on the other core,
   as a share of the one-thread model-only rate (is the model kept fed when decoding has a core of its own?).
"""
import argparse, shutil, statistics, tempfile, time
from pathlib import Path
import numpy as np
from PIL import Image

def photos():
    "RGB photographs (uint8 arrays) that ship with scikit-image and scikit-learn"
    from skimage import data
    from sklearn.datasets import load_sample_images
    out = [getattr(data, n)() for n in ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field', 'immunohistochemistry')]
    out += list(load_sample_images().images)
    return [a for a in out if a.ndim == 3 and a.shape[2] == 3]

def write_files(root, n, seed=0):
    rng, srcs, files = np.random.default_rng(seed), photos(), []
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = srcs[i % len(srcs)]
        h, w = a.shape[:2]
        ch, cw = rng.integers(min(256, h), h + 1), rng.integers(min(256, w), w + 1)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        img = Image.fromarray(a[y:y + ch, x:x + cw])
        if max(img.size) > 640: img.thumbnail((640, 640))
        f = root/(f'{i:05d}.jpg' if i % 2 == 0 else f'{i:05d}.png')
        img.save(f, quality=90) if f.suffix == '.jpg' else img.save(f)
        files.append(str(f))
    return files

def markdown(df):
    cols = [df.index.name or ''] + list(df.columns)
    rows = [[str(i)] + [str(v) for v in r] for i, r in zip(df.index, df.values)]
    return '\n'.join('| ' + ' | '.join(r) + ' |' for r in [cols, ['---']*len(cols)] + rows)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--files', type=int, default=512); ap.add_argument('--runs', type=int, default=5)
    a = ap.parse_args()
    from imgcls_nb.data import sample_data, from_folder
    from imgcls_nb.ladder import fit_probe
    from imgcls_nb.train import save_result
    from imgcls_nb.export import export_bundle
    from imgcls_nb.predict import benchmark_bundle, load_classifier, e2e_rate, _prepare
    from imgcls_nb.core import available_cores
    work = Path(tempfile.mkdtemp())
    src = from_folder(sample_data())
    bundle = save_result(fit_probe(src, size=224, stages=0, progress=False), work/'lite0_224')
    export_bundle(bundle, int8=True, data=src)
    files = write_files(work/'photos', a.files)
    table, e2e = benchmark_bundle(bundle, files, runs=a.runs)
    print(f"### model only, images/s (median of {a.runs}), {len(files)} photos decoded for input\n")
    print(markdown(table))
    import imgcls_nb.data as D
    from imgcls_nb.bench import _timed
    clf = load_classifier(bundle)   # what predict_files uses: the bundle's default ONNX model
    spec, backend = clf.spec, clf.backend
    x = _prepare(files[:64], spec)[0]
    del clf   # every session is made for its turn and dropped after it (idle sessions spin-wait)
    spin = {}
    for _ in range(3):   # interleaved: the default session, without spin-waiting, on one thread
        for name, kw in (('spin', {}), ('nospin', dict(spinning=False)), ('one', dict(threads=1))):
            for k, v in _timed(lambda: load_classifier(bundle, **kw), x, (1, 32), a.runs).items(): spin.setdefault((name, k), []).append(v)
    med = {k: statistics.median(v) for k, v in spin.items()}
    base, base1 = med[('spin', 'batch 32')], med[('one', 'batch 32')]
    print(f"\nint8 kept as default: {backend == 'onnx-int8'}")
    def decode_ms() -> dict:
        "ms per file to decode and preprocess, {fast: ms}: each file both ways in turn, so the machine's drift hits both alike"
        tot = {True: 0.0, False: 0.0}
        for i, f in enumerate(files*2):
            for fast in ((True, False) if i % 2 else (False, True)):
                D.FAST_DECODE = fast
                t = time.perf_counter(); _prepare([f], spec); tot[fast] += time.perf_counter() - t
        D.FAST_DECODE = True
        return {k: 1000*v/(2*len(files)) for k, v in tot.items()}
    ms = decode_ms()
    print(f"\ndecoding + preprocessing one file in one process: {ms[True]:.2f} ms with the fast decoders "
          f"({', '.join(sorted(D.fast_decoders())) or 'none installed'}), {ms[False]:.2f} ms with Pillow alone")
    print(f"\nmodel-only, ONNX Runtime's idle threads spin-waiting (the default) / not (what predict_files loads when it decodes "
          f"alongside): batch 32 {base:.1f} / {med[('nospin', 'batch 32')]:.1f} images/s, batch 1 {med[('spin', 'batch 1')]:.1f} / "
          f"{med[('nospin', 'batch 1')]:.1f} (median of 3 interleaved rounds)")
    print(f"\n### end to end, predict_files over {len(files)} photo files (JPEG + PNG), batch 32, {e2e['backend']}\n")
    print(f"model-only rate in this run: {base:.1f} images/s on {available_cores()} threads, {base1:.1f} on 1 thread\n")
    print('| model threads | decoding | decoder | images/s | vs in turn, Pillow | share of model-only, same threads | share of model-only, all cores |\n|---|---|---|---|---|---|---|')
    # (model threads, decoding processes, decoding threads, fast decoders); the first is the baseline: the pre-threads default
    setups, rates = [(None, 0, 0, False), (None, 0, 0, True), (None, 0, 1, True), (None, 0, 2, True), (None, 1, 0, True), (None, 2, 0, True),
                     (1, 0, 1, True), (1, 1, 0, True)], {}
    for _ in range(3):   # rounds over all setups, so that the machine's drift hits them alike
        for threads, w, t, fast in setups:
            D.FAST_DECODE = fast
            try: rates.setdefault((threads, w, t, fast), []).append(e2e_rate(bundle, files, 32, w, runs=1, decode_threads=t, threads=threads))
            finally: D.FAST_DECODE = True
    first = statistics.median(rates[setups[0]])
    for (threads, w, t, fast), rs in rates.items():
        r, ref = statistics.median(rs), base1 if threads == 1 else base
        how = f"{w} processes" if w else f"{t} threads" if t else "in turn"
        print(f"| {threads or available_cores()} | {how} | {'fast' if fast else 'Pillow'} | {r:.1f} | {r/first:.2f}x | {r/ref:.2f} | {r/base:.2f} |")
    from imgcls_nb.data import sample_data
    small = [str(f) for f in sorted(sample_data().rglob('*.png'))]
    r = e2e_rate(bundle, small, 32, 0, runs=3)
    print(f"\nthe same over the {len(small)} 28-px PNG files of the sample (cheap to decode), default decoding: {r:.1f} images/s = {r/base:.2f} of model-only")
    shutil.rmtree(work)

if __name__ == '__main__': main()
