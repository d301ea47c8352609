"""Video frames decoded and classified per second, sampling 1, 2 or 5 frames per second of video against every frame.

    python benchmarks/bench_video.py [--seconds 20] [--width 640] [--rate 30] [--runs 2]

The model is the default backbone (tf_efficientnet_lite0) at 224 px on PyTorch (channels_last, CPU): the cached
`sample_bundle()` weights with the input size set to 224 (EfficientNet takes any size; the speed is what is
measured here, not the accuracy). The video is H.264 (.mp4, yuv420p), `--width` x 9/16 at `--rate` frames/s,
a slow pan across the photographs that ship with scikit-image, so every frame differs. `predict_video` runs on it
at each sampling rate (and at 0 = every frame); decoding every frame without classifying it is the floor.
Prints a markdown table: frames classified, wall seconds, classified frames/s, seconds of video handled per
wall second, and how much faster than classifying every frame.
"""
import argparse, statistics, tempfile, time
from pathlib import Path
import numpy as np
from PIL import Image

def panorama(width:int) -> Image.Image:
    "The scikit-image colour photographs side by side, `width` x 9/16 high"
    from skimage import data
    h = width*9//16
    imgs = [Image.fromarray(getattr(data, n)()).convert('RGB') for n in ('astronaut', 'chelsea', 'coffee', 'rocket')]
    imgs = [im.resize((im.width*h//im.height, h)) for im in imgs]
    out = Image.new('RGB', (sum(im.width for im in imgs), h))
    x = 0
    for im in imgs:
        out.paste(im, (x, 0))
        x += im.width
    return out

def pan(width:int, n:int):
    "`n` frames panning across `panorama(width)`"
    pano = panorama(width)
    h = width*9//16
    for i in range(n):
        x = round(i*(pano.width - width)/max(1, n - 1))
        yield pano.crop((x, 0, x + width, h))

def decode_only(path) -> tuple:
    "(frames, seconds) to decode every frame (no conversion, no model)"
    import av
    t = time.perf_counter()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = 'AUTO'
        n = sum(1 for _ in c.decode(s))
    return n, time.perf_counter() - t

def classifier_224():
    "The sample bundle's model with a 224 px input, on PyTorch"
    from imgcls_nb.bundle import read_config
    from imgcls_nb.models import Classifier, build_model, load_weights
    from imgcls_nb.train import sample_bundle
    b = sample_bundle()
    cfg = read_config(b)
    cfg['preprocess'] = {**cfg['preprocess'], 'size': 224}
    return Classifier(load_weights(b, build_model(cfg)), cfg)

def markdown(rows:list) -> str:
    cols = list(rows[0])
    lines = [cols, ['---']*len(cols)] + [[str(r[c]) for c in cols] for r in rows]
    return '\n'.join('| ' + ' | '.join(l) + ' |' for l in lines)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seconds', type=float, default=20)
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--rate', type=int, default=30)
    ap.add_argument('--runs', type=int, default=2)
    a = ap.parse_args()
    from imgcls_nb.core import available_cores
    from imgcls_nb.video import predict_video, write_video
    clf = classifier_224()
    with tempfile.TemporaryDirectory() as d:
        video = write_video(Path(d)/'pan.mp4', pan(a.width, int(a.seconds*a.rate)), fps=a.rate, crf=23)
        n, dt = min((decode_only(video) for _ in range(a.runs)), key=lambda r: r[1])
        rows = [dict(sampling='decode every frame, no model', frames=n, seconds=round(dt, 2),
                     frames_per_s=round(n/dt, 1), video_s_per_s=round(a.seconds/dt, 1), vs_every_frame='')]
        predict_video(clf, video, fps=1)  # warm-up: first model call, thread pools
        for fps in (0, 5, 2, 1):
            times = []
            for _ in range(a.runs):
                t = time.perf_counter()
                res = predict_video(clf, video, fps=fps)
                times.append(time.perf_counter() - t)
            dt = statistics.median(times)
            rows.append(dict(sampling='every frame' if fps == 0 else f'{fps} frame/s', frames=len(res.frames),
                             seconds=round(dt, 2), frames_per_s=round(len(res.frames)/dt, 1),
                             video_s_per_s=round(a.seconds/dt, 1), vs_every_frame=dt))
    every = rows[1]['vs_every_frame']
    for r in rows[1:]: r['vs_every_frame'] = f"{every/r['vs_every_frame']:.1f}x"
    print(f"{a.seconds:.0f} s of {a.width}x{a.width*9//16} H.264 at {a.rate} frames/s; tf_efficientnet_lite0 at 224 px "
          f"on PyTorch (channels_last), {available_cores()} cores; median of {a.runs} runs")
    print(markdown(rows))

if __name__ == '__main__': main()
