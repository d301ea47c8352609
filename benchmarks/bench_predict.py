"""End-to-end batch prediction against the model-only rate, on real photos, with the default backbone at 224 px.

    python benchmarks/bench_predict.py [--files 512] [--runs 5]

Builds a bundle of the default backbone (tf_efficientnet_lite0, 224 px) with a linear head fitted on the
embedded Fashion-MNIST sample (`fit_probe(stages=0)`: the plain timm model with a trained classifier, in
seconds), exports it to ONNX (fp32 and int8), and writes `--files` real photo files: random crops of the
photographs shipped with scikit-image and scikit-learn, 256-640 px, alternately JPEG (quality 90) and PNG.
Then, on this machine, in one run:

1. `benchmark_bundle` (the table of `imgcls bench`): model-only images/s per backend at batch 1 and 32;
2. `predict_files` end to end (decode, preprocess, model, CSV output) with 0, 1 and 2 decoding workers,
   as a share of the model-only rate of the same backend; with Pillow alone as the decoder (the baseline) and
   with the fast decoders; and with the model on one thread and one decoding worker on the other core, as a
   share of the one-thread model-only rate (is the model kept fed when decoding has a core of its own?).
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
    from imgcls_nb.bundle import save_result
    from imgcls_nb.export import export_bundle
    from imgcls_nb.predict import benchmark_bundle, load_classifier, model_rate, e2e_rate, _prepare
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
    clf = load_classifier(bundle)   # what predict_files uses: the bundle's default ONNX model
    one = load_classifier(bundle, threads=1)
    x = _prepare(files[:64], clf.spec)[0]
    base, base1 = model_rate(clf, x, 32, a.runs), model_rate(one, x, 32, a.runs)
    print(f"\nint8 kept as default: {clf.backend == 'onnx-int8'}")
    def decode_ms() -> dict:
        "ms per file to decode and preprocess, {fast: ms}: each file both ways in turn, so the machine's drift hits both alike"
        tot = {True: 0.0, False: 0.0}
        for i, f in enumerate(files*2):
            for fast in ((True, False) if i % 2 else (False, True)):
                D.FAST_DECODE = fast
                t = time.perf_counter(); _prepare([f], clf.spec); tot[fast] += time.perf_counter() - t
        D.FAST_DECODE = True
        return {k: 1000*v/(2*len(files)) for k, v in tot.items()}
    ms = decode_ms()
    print(f"\ndecoding + preprocessing one file in one process: {ms[True]:.2f} ms with the fast decoders "
          f"({', '.join(sorted(D.fast_decoders())) or 'none installed'}), {ms[False]:.2f} ms with Pillow alone")
    print(f"\n### end to end, predict_files over {len(files)} photo files (JPEG + PNG), batch 32, {e2e['backend']}\n")
    print(f"model-only rate in this run: {base:.1f} images/s on {available_cores()} threads, {base1:.1f} on 1 thread\n")
    print('| model threads | decoding workers | decoder | images/s | share of model-only, same threads | share of model-only, all cores |\n|---|---|---|---|---|---|')
    setups, rates = [(None, 0, False), (None, 0, True), (None, 1, True), (None, 2, True), (1, 1, True)], {}
    for _ in range(3):   # rounds over all setups, so that the machine's drift hits them alike
        for threads, w, fast in setups:
            D.FAST_DECODE = fast
            try: rates.setdefault((threads, w, fast), []).append(e2e_rate(one if threads == 1 else clf, files, 32, w, runs=1))
            finally: D.FAST_DECODE = True
    for (threads, w, fast), rs in rates.items():
        r, ref = statistics.median(rs), base1 if threads == 1 else base
        print(f"| {threads or available_cores()} | {w} | {'fast' if fast else 'Pillow'} | {r:.1f} | {r/ref:.2f} | {r/base:.2f} |")
    from imgcls_nb.data import sample_data
    small = [str(f) for f in sorted((sample_data()/'valid').rglob('*.png'))]
    r = e2e_rate(clf, small, 32, 0, runs=3)
    print(f"\nthe same over the {len(small)} 28-px PNG files of the sample (cheap to decode), workers 0: {r:.1f} images/s = {r/base:.2f} of model-only")
    shutil.rmtree(work)

if __name__ == '__main__': main()
