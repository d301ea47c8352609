"""Grad-CAM explanations, measured: faithfulness by the deletion test, and time per explanation.

    OMP_NUM_THREADS=1 python benchmarks/bench_explain.py [--n 200] [--draws 5] [--frac 0.2] [--runs 9]
        [--method auto] [--bundle DIR] [--no-speed]

1. Faithfulness (the deletion test). The model is `--bundle` (default `sample_bundle()`: the default backbone,
   EfficientNet-Lite0, trained on the embedded sample with `train`'s defaults, 96 px); the images are the first
   `--n` of the official Fashion-MNIST *test* set (Debian package `dataset-fashion-mnist`), 28x28 grayscale as in
   the sample. For each image, `explain` (`--method`, default 'auto': HiResCAM on this CNN, on the layer
   `target_layer` picks times its gate to the power `GATE_POWER`) gives the map of the predicted class in the
   image's own pixels, the map a user sees; `deletion_drop` blanks the top `--frac` of those pixels and, `--draws`
   times, a random `--frac`, and the map's blanking must lower the predicted class's probability more. Two blanks,
   each reported: 'blur' = the same pixels of the image under a Gaussian blur (radius a tenth of its shorter
   side), the blank of most deletion metrics and `deletion_drop`'s default, which adds no colour the image lacks;
   'mean' = the spec's mean colour (mid grey for this bundle), which on Fashion-MNIST's black background scatters
   grey specks the model never saw. Reported per blank: the share of images where the map's blanking drops more
   (all images, and the first and second halves), and the mean and median drop of each (probabilities, 0-1).
   The target is a share of at least 80%. A diagnostic beside it: the drop when the map's *lowest* `--frac` is
   blanked (a map that ranks nothing gives the same drop at both ends).
2. Time per explanation at 224 px: `explain` of one real photo (scikit-image's cat, 451 x 300) end to end
   (decode, forward, backward, map back to the photo, overlay), the median of `--runs` after a warm-up, for the
   default backbone and for a ViT-Tiny/16 (both built locally without weights: the time does not depend on them),
   and per image in a batch of 16.
"""
import argparse, gzip, json, time
from pathlib import Path
import numpy as np, torch, timm
from PIL import Image
from imgcls_nb.bundle import make_config
from imgcls_nb.preprocess import PreprocessSpec
from imgcls_nb.models import Classifier, DEFAULT_ARCH
from imgcls_nb.train import sample_bundle
from imgcls_nb.explain import explain, torch_classifier, deletion_drop, target_layer, _layers, GATE_POWER

FM = Path('/usr/share/datasets/fashion-mnist')

def fm_test(n:int) -> list:
    with gzip.open(FM/'t10k-images-idx3-ubyte.gz') as f: x = np.frombuffer(f.read(), np.uint8, offset=16)
    return [Image.fromarray(a).convert('RGB') for a in x.reshape(-1, 28, 28)[:n]]

def faithfulness(bundle, n:int, draws:int, frac:float, method:str) -> dict:
    clf = torch_classifier(bundle or sample_bundle())
    images = fm_test(n)
    maps = [e.heatmap for e in explain(clf, images, method=method, bs=25)]
    gate = _layers(clf.model, clf.spec.size)[3]
    out = dict(bundle=str(bundle or 'sample_bundle()'), images=n, frac=frac, random_draws=draws,
               input_px=clf.spec.size, method=method, layer=target_layer(clf.model, clf.spec.size)[0],
               gate=gate and gate[0], gate_power=GATE_POWER)
    for blank in ('blur', 'mean'):
        d = np.array([deletion_drop(clf, im, m, frac, draws, seed=i, blank=blank)
                      for i,(im, m) in enumerate(zip(images, maps))])
        low = np.array([deletion_drop(clf, im, -m, frac, 1, seed=i, blank=blank)[0]
                        for i,(im, m) in enumerate(zip(images, maps))])
        out[f'blank_{blank}'] = drop_stats(d, low)
    return out

def drop_stats(d:np.ndarray, low:np.ndarray) -> dict:
    "The deletion test's figures from the (map, random) drops `d` and the drops with the map's lowest pixels `low`"
    wins, h = d[:, 0] > d[:, 1], len(d)//2
    return dict(share_map_drops_more=float(wins.mean()), share_first_half=float(wins[:h].mean()),
                share_second_half=float(wins[h:].mean()), mean_drop_map=float(d[:, 0].mean()),
                mean_drop_random=float(d[:, 1].mean()), median_drop_map=float(np.median(d[:, 0])),
                median_drop_random=float(np.median(d[:, 1])), mean_drop_lowest=float(low.mean()),
                share_map_drops_more_than_lowest=float((d[:, 0] > low).mean()))

def timed(f, runs:int) -> float:
    f()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))

def speed(runs:int) -> dict:
    from skimage import data
    cat = Image.fromarray(data.chelsea())
    out = {}
    for arch in (DEFAULT_ARCH, 'vit_tiny_patch16_224'):
        model = timm.create_model(arch, pretrained=False, num_classes=10).eval()
        clf = Classifier(model, make_config(arch, [str(i) for i in range(10)], 'single_label', PreprocessSpec(size=224)))
        one = timed(lambda: explain(clf, cat), runs)
        batch = timed(lambda: explain(clf, [cat]*16, bs=16), max(3, runs//3))/16
        out[arch] = dict(seconds_per_image=one, seconds_per_image_in_batch_of_16=batch)
    return out

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--n', type=int, default=200)
    p.add_argument('--draws', type=int, default=5)
    p.add_argument('--frac', type=float, default=0.2)
    p.add_argument('--runs', type=int, default=9)
    p.add_argument('--method', default='auto')
    p.add_argument('--bundle', default=None, help='a bundle folder (default: the sample bundle)')
    p.add_argument('--no-speed', action='store_true')
    a = p.parse_args()
    t0 = time.perf_counter()
    res = dict(threads=torch.get_num_threads(), faithfulness=faithfulness(a.bundle, a.n, a.draws, a.frac, a.method))
    if not a.no_speed: res['speed'] = speed(a.runs)
    res['seconds'] = time.perf_counter() - t0
    print(json.dumps(res, indent=2))
