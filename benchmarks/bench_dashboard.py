"""How long the prediction dashboard takes to show one uploaded image, with the default backbone at 224 px.

    python benchmarks/bench_dashboard.py [--repeats 15]

Model: `tf_efficientnet_lite0` at 224 px with the offline ImageNet weights and a 10-class head (latency does not
depend on what the head learned), as a PyTorch bundle and, exported with `export_onnx`, on ONNX Runtime.
Inputs: real photo files as the browser sends them (`FileUpload.value` with the file's bytes): scikit-image's cat
(451x300 JPEG) and the astronaut enlarged to 2048x2048 (a camera-sized JPEG).

Each row times, per upload, from setting `PredictDashboard.upload.value` to the filled result card (decode,
preprocess, model, thumbnail, HTML), the median and 90th percentile over `--repeats` uploads, against the bare
library call `clf.predict([bytes], top_k=3)` measured in the same rounds (the dashboard's own overhead is the
difference). With `+ zero-shot` a tiny CLIP (built locally, random weights, 32 px) runs beside it, so that row
shows the dashboard's cost of a second model, not a real CLIP's (none is available offline).
"""
import argparse, io, os, statistics, sys, tempfile, time
os.environ.setdefault('HF_HUB_OFFLINE', '1')
from pathlib import Path
import numpy as np
from PIL import Image

def photos(root:Path) -> list:
    "Two real JPEG files: a small photo and a camera-sized one"
    import skimage.data
    cat, big = root/'chelsea.jpg', root/'astronaut_2048.jpg'
    Image.fromarray(skimage.data.chelsea()).save(cat, quality=90)
    Image.fromarray(skimage.data.astronaut()).resize((2048, 2048), Image.BICUBIC).save(big, quality=90)
    return [cat, big]

def default_bundle(root:Path) -> Path:
    "The default backbone at 224 px with a 10-class head, saved as a bundle and exported to ONNX"
    from imgcls_nb.models import create_model, DEFAULT_ARCH, save_bundle
    from imgcls_nb.preprocess import spec_from_timm
    from imgcls_nb.bundle import make_config
    from imgcls_nb.data import sample_data
    from imgcls_nb.export import export_onnx
    classes = sorted(p.name for p in (sample_data()/'train').iterdir())
    m = create_model(DEFAULT_ARCH, len(classes), True)
    b = save_bundle(root/'lite0', m, make_config(DEFAULT_ARCH, classes, 'single_label', spec_from_timm(m)))
    export_onnx(b)
    return b

def time_upload(dash, photo:Path) -> float:
    from imgcls_nb.widgets import upload_value
    v = upload_value(photo)
    t = time.perf_counter(); dash.upload.value = v; dt = time.perf_counter() - t
    assert len(dash.cards) == 1 and dash.fine[0].error is None, dash.status.value
    return dt

def time_bare(clf, photo:Path) -> float:
    b = photo.read_bytes()
    t = time.perf_counter(); p = clf.predict([b], 3)[0]; dt = time.perf_counter() - t
    assert p.error is None
    return dt

def ms(ts): return f"{1000*statistics.median(ts):.0f} / {1000*float(np.percentile(ts, 90)):.0f}"

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--repeats', type=int, default=15)
    a = ap.parse_args()
    from imgcls_nb.bundle import load_bundle
    from imgcls_nb.widgets import PredictDashboard
    from imgcls_nb.zeroshot import ZeroShotClassifier, tiny_clip
    from imgcls_nb.core import available_cores
    work = Path(tempfile.mkdtemp())
    files, bundle = photos(work), default_bundle(work)
    torch_clf, onnx_clf = load_bundle(bundle), load_bundle(bundle, 'onnx')
    zs = ZeroShotClassifier(torch_clf.classes, tiny_clip(work/'tiny-clip'))
    setups = [('pytorch', torch_clf, None), ('onnxruntime fp32', onnx_clf, None), ('onnxruntime fp32 + zero-shot', onnx_clf, zs)]
    print(f"### one uploaded image to its filled card, default backbone at 224 px, {available_cores()} cores\n")
    print(f"median / 90th percentile ms over {a.repeats} uploads\n")
    print('| backend | photo | dashboard | bare `predict` | dashboard overhead |\n|---|---|---|---|---|')
    for name, clf, z in setups:
        dash = PredictDashboard(clf, z, samples=[])
        for f in files:
            time_upload(dash, f); time_bare(clf, f)  # warm-up
            up, bare = [], []
            for _ in range(a.repeats): up.append(time_upload(dash, f)); bare.append(time_bare(clf, f))
            over = 1000*(statistics.median(up) - statistics.median(bare))
            w, h = Image.open(f).size
            print(f"| {name} | {f.name} ({w}x{h}) | {ms(up)} | {ms(bare)} | {over:+.0f} ms |")

if __name__ == '__main__': main()
