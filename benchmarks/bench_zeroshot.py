"""Zero-shot: `ZeroShotClassifier` (text embeddings computed once) against the transformers pipeline called per image.

    python benchmarks/bench_zeroshot.py [--model DIR_OR_ID] [--labels 100] [--images 256] [--repeats 5] [--threads 1]

Images: real files, the colour photos that ship with scikit-image (cat, coffee, astronaut, rocket, ...)
written as JPEG/PNG, then Fashion-MNIST PNGs from the embedded sample data, up to `--images`.
Labels: `--labels` everyday nouns. Model: the tiny random-weight CLIP of `imgcls_nb.zeroshot.tiny_clip`
(no download) unless `--model` names a real one (a local folder, or a hub id already in the cache).

Both methods get the same file paths, the same model and one template, "a photo of a {}." (passed to the
pipeline as `hypothesis_template`), so their scores must agree; the table shows their largest difference.

1. `pipeline('zero-shot-image-classification')(path, candidate_labels=labels)` once per image: every call
   encodes all the label prompts again;
2. `ZeroShotClassifier(labels).predict_proba(paths, bs=32)`, cold: the in-memory cache cleared first, so
   the one text pass over the labels is included;
3. the same, warm: the label embeddings already cached (a second folder against the same labels);
4. cold again with the default 8-template ensemble (8x the prompts in its one text pass).

Each timing is the median of `--repeats` runs.
"""
import argparse, os, statistics, sys, tempfile, time
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np
from PIL import Image

NOUNS = ('cat dog car bus truck bicycle motorcycle airplane boat train horse sheep cow elephant bear zebra giraffe bird '
         'fish frog snake turtle lizard spider butterfly bee flower tree grass mountain beach river lake ocean sky cloud '
         'building house bridge road street city forest desert snow rock person woman man child baby face hand shoe '
         'sandal sneaker boot shirt dress coat trouser bag hat umbrella chair table bed sofa lamp clock book bottle cup '
         'bowl plate spoon knife pizza cake apple banana orange carrot bread coffee laptop phone keyboard television '
         'camera guitar piano rocket astronaut planet star moon galaxy coin robot microscope painting').split()

SKIMAGE = [('chelsea', 'jpg'), ('coffee', 'jpg'), ('astronaut', 'png'), ('rocket', 'jpg'), ('cat', 'png'),
           ('hubble_deep_field', 'jpg'), ('immunohistochemistry', 'png'), ('colorwheel', 'png'), ('coins', 'png'),
           ('camera', 'jpg'), ('logo', 'png'), ('retina', 'jpg')]

def make_images(work:Path, n:int) -> list:
    "`n` real image files: scikit-image's photos first, then Fashion-MNIST sample PNGs"
    import skimage.data
    from imgcls_nb.data import sample_data
    out = []
    for name, ext in SKIMAGE:
        a = getattr(skimage.data, name)()
        img = Image.fromarray(a).convert('RGB') if ext == 'jpg' else Image.fromarray(a)
        img.save(work/f'{name}.{ext}'); out.append(str(work/f'{name}.{ext}'))
    return (out + [str(p) for p in sorted(sample_data().rglob('*.png'))])[:n]

def median_time(f, repeats:int):
    "(result of the last run, median seconds)"
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); r = f(); times.append(time.perf_counter() - t)
    return r, statistics.median(times)

def run_pipeline(pipe, paths, labels, template):
    rows = []
    for p in paths:
        s = {d['label']: d['score'] for d in pipe(p, candidate_labels=labels, hypothesis_template=template)}
        rows.append([s[l] for l in labels])
    return np.array(rows, np.float32)

def run_ours(zs, paths, cold:bool):
    from imgcls_nb.zeroshot import clear_text_cache
    if cold: clear_text_cache()
    return zs.predict_proba(paths, bs=32)[0]

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', help='CLIP-family model folder or hub id (default: a tiny random-weight CLIP written to a temp folder)')
    ap.add_argument('--labels', type=int, default=100); ap.add_argument('--images', type=int, default=256)
    ap.add_argument('--repeats', type=int, default=5); ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    import torch, transformers
    from transformers import pipeline
    from imgcls_nb.zeroshot import ZeroShotClassifier, tiny_clip, _no_progress_bars
    torch.set_num_threads(a.threads)
    work = Path(tempfile.mkdtemp())
    model = a.model or str(tiny_clip(work/'tiny-clip'))
    paths, labels, template = make_images(work, a.images), list(NOUNS[:a.labels]), 'a photo of a {}.'
    assert len(labels) == a.labels, f'only {len(NOUNS)} labels available'
    with _no_progress_bars(transformers): pipe = pipeline('zero-shot-image-classification', model=model)
    zs = ZeroShotClassifier(labels, model, templates=[template])
    ens = ZeroShotClassifier(labels, model)
    ref, t_pipe = median_time(lambda: run_pipeline(pipe, paths, labels, template), a.repeats)
    cold, t_cold = median_time(lambda: run_ours(zs, paths, True), a.repeats)
    warm, t_warm = median_time(lambda: run_ours(zs, paths, False), a.repeats)
    _, t_ens = median_time(lambda: run_ours(ens, paths, True), a.repeats)
    diff = max(np.abs(cold - ref).max(), np.abs(warm - ref).max())
    n = len(paths)
    print(f"model {'tiny random CLIP (tiny_clip)' if not a.model else a.model}; {n} images, {len(labels)} labels, "
          f"torch threads {a.threads}, median of {a.repeats}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"| method | seconds | images/s | speed-up vs pipeline |\n|---|---|---|---|")
    for name, t in [('transformers pipeline, per image', t_pipe), ('ZeroShotClassifier, cold text cache (1 template)', t_cold),
                    ('ZeroShotClassifier, warm text cache', t_warm), (f'ZeroShotClassifier, cold, {len(ens.templates)}-template ensemble', t_ens)]:
        print(f"| {name} | {t:.2f} | {n/t:.0f} | {t_pipe/t:.1f}x |")
    print(f"max |score difference| pipeline vs ZeroShotClassifier: {diff:.1e}")
    return dict(pipeline=t_pipe, cold=t_cold, warm=t_warm, ensemble=t_ens, max_diff=float(diff))

if __name__ == '__main__':
    r = main()
    sys.exit(0 if r['max_diff'] < 1e-5 else 1)
