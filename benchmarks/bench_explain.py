"""Grad-CAM explanations, measured: faithfulness by the deletion test, and time per explanation.

    OMP_NUM_THREADS=1 python benchmarks/bench_explain.py [--n 200] [--draws 5] [--frac 0.2] [--runs 9]
        [--method auto] [--layer NAME] [--no-speed]

1. Faithfulness (the deletion test). The model is `sample_bundle()` (the default backbone, EfficientNet-Lite0,
   trained on the embedded sample at 96 px); the images are the first `--n` of the official Fashion-MNIST *test*
   set (Debian package `dataset-fashion-mnist`), 28x28 grayscale as in the sample. For each image, the CAM map
   (`--method`, default `explain`'s 'auto': HiResCAM on this CNN, on the layer `target_layer` picks times its
   gate to the power 0.25, as `explain` does; or on the module named by `--layer` alone) of the predicted class
   over the model input (96 x 96, before mapping back to the image) ranks the pixels; blanking the top `--frac`
   of them must lower the predicted class's probability more than blanking a random `--frac` (the mean of
   `--draws` random draws). Two blanks, each reported: 'mean' = 0 after
   normalisation, i.e. the spec's mean colour (mid grey for this bundle's mean 0.5), on all three channels, the
   issue's blank; 'blur' = the same pixels of the image under a Gaussian blur (radius a tenth of its shorter
   side), the blank of most deletion metrics, which adds no colour the image lacks (grey salt on a black
   background). Reported per blank: the share of images where the map's blanking drops more (all images, and
   the first and second halves: choices were made on the first), and the mean drop of each (probabilities,
   0-1). The target is a share of at least 80%.
   Two diagnostics beside it: the drop when the map's *lowest* `--frac` is blanked (a map that ranks nothing
   gives the same drop at both ends), and a random baseline of the same shape: the map's own top-`--frac` mask
   shifted by a random offset (with wrap-around), `--draws` times. Scattered random pixels are a different
   perturbation (grey salt on a black background, which this CNN never saw) from one contiguous blob.
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
from imgcls_nb.explain import explain, torch_classifier, deletion_drop, target_layer, _layers, _blurred, _cam, _cams

FM = Path('/usr/share/datasets/fashion-mnist')

def fm_test(n:int) -> list:
    with gzip.open(FM/'t10k-images-idx3-ubyte.gz') as f: x = np.frombuffer(f.read(), np.uint8, offset=16)
    return [Image.fromarray(a).convert('RGB') for a in x.reshape(-1, 28, 28)[:n]]

def input_maps(clf, images:list, method:str, layer:str|None, bs:int=25) -> np.ndarray:
    "CAM maps of the predicted classes over the model input, on the library's layer or the module `layer`"
    import pytorch_grad_cam
    from imgcls_nb.explain import CAM_METHODS
    out, m = [], clf.model
    cam = _cam(m, method, clf.spec.size) if layer is None else \
        getattr(pytorch_grad_cam, CAM_METHODS[method])(m, [dict(m.named_modules())[layer]])
    with cam:
        for s in range(0, len(images), bs):
            out.append(_cams(clf, cam, images[s:s + bs], None))
    return np.concatenate(out)

def blanked_drops(clf, img, cam_map:np.ndarray, frac:float, draws:int, seed:int, blank:str) -> tuple:
    "(drop with the map's lowest `frac` blanked, mean drop with its top mask shifted randomly `draws` times)"
    x, S = clf.spec(img), cam_map.shape[0]
    fill = clf.spec(_blurred(img)) if blank == 'blur' else np.zeros_like(x)
    p0 = clf.predict_arrays(x[None])[0]
    k, order = int(p0.argmax()), np.argsort(-cam_map.ravel(), kind='stable')
    top, low = np.zeros(S*S, bool), np.zeros(S*S, bool)
    top[order[:int(frac*S*S)]], low[order[::-1][:int(frac*S*S)]] = True, True
    rng = np.random.default_rng(seed)
    masks = [low.reshape(S, S)] + [np.roll(top.reshape(S, S), tuple(rng.integers(0, S, 2)), (0, 1)) for _ in range(draws)]
    xs = np.repeat(x[None], len(masks), 0)
    for i,m in enumerate(masks): xs[i][:, m] = fill[:, m]
    p = clf.predict_arrays(xs)[:, k]
    return float(p0[k] - p[0]), float((p0[k] - p[1:]).mean())

def faithfulness(n:int, draws:int, frac:float, method:str, layer:str|None) -> dict:
    clf = torch_classifier(sample_bundle())
    images = fm_test(n)
    maps = input_maps(clf, images, method, layer)
    out = dict(images=n, frac=frac, random_draws=draws, input_px=clf.spec.size, method=method,
               layer=layer or target_layer(clf.model, clf.spec.size)[0],
               gate=None if layer else (_layers(clf.model, clf.spec.size)[3] or [None])[0])
    for blank in ('mean', 'blur'):
        d = np.array([deletion_drop(clf, im, m, frac, draws, seed=i, blank=blank)
                      for i,(im, m) in enumerate(zip(images, maps))])
        e = np.array([blanked_drops(clf, im, m, frac, draws, i, blank) for i,(im, m) in enumerate(zip(images, maps))])
        out[f'blank_{blank}'] = drop_stats(d, e)
    return out

def drop_stats(d:np.ndarray, e:np.ndarray) -> dict:
    "The deletion test's figures from the (map, random) drops `d` and the (lowest, shifted) drops `e`"
    wins, h = d[:, 0] > d[:, 1], len(d)//2
    return dict(share_map_drops_more=float(wins.mean()), share_first_half=float(wins[:h].mean()),
                share_second_half=float(wins[h:].mean()), mean_drop_map=float(d[:, 0].mean()),
                mean_drop_random=float(d[:, 1].mean()), median_drop_map=float(np.median(d[:, 0])),
                median_drop_random=float(np.median(d[:, 1])), mean_drop_lowest=float(e[:, 0].mean()),
                share_map_drops_more_than_lowest=float((d[:, 0] > e[:, 0]).mean()),
                mean_drop_shifted=float(e[:, 1].mean()), share_map_drops_more_than_shifted=float((d[:, 0] > e[:, 1]).mean()))

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
    p.add_argument('--layer', default=None, help="a module of the model (e.g. bn2, blocks.4); default: target_layer's")
    p.add_argument('--no-speed', action='store_true')
    a = p.parse_args()
    t0 = time.perf_counter()
    res = dict(threads=torch.get_num_threads(), faithfulness=faithfulness(a.n, a.draws, a.frac, a.method, a.layer))
    if not a.no_speed: res['speed'] = speed(a.runs)
    res['seconds'] = time.perf_counter() - t0
    print(json.dumps(res, indent=2))
