"""The Ray engine against the local engine: images/s on the same files and machine, memory per Ray worker,
and the rate to expect from N nodes.

    python benchmarks/bench_distributed.py [--files 1600] [--runs 2] [--bs 32]

Uses the sample bundle (`sample_bundle`, 96 px) exported to ONNX and `--files` real photo files (crops of the
photographs that ship with scikit-image and scikit-learn, 256-640 px, JPEG and PNG: `bench_predict.write_files`).
On this machine, in one run:

1. the local engine, `predict_files` with its defaults (median of `--runs`);
2. the Ray engine in a local Ray (every core, 256 MB object store): one cold call that starts and stops Ray
   (what `imgcls predict --engine ray` costs on one machine), then, in one session, a warm-up and `--runs`
   timed runs (the steady rate a long job sees), with the peak resident memory of each model actor;
3. the per-core cost (core-seconds per image) from the steady rate, and the rate of N such nodes if the
   storage and the driver keep up (the driver only lists paths and writes rows: its rate is measured too).
"""
import argparse, os, statistics, sys, tempfile, threading, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from bench_predict import write_files

def actor_rss_mb(stop:threading.Event, peak:dict):
    "Sample the resident memory of Ray's model actors (ray::MapWorker processes) until `stop`"
    while not stop.is_set():
        for d in Path('/proc').iterdir():
            try:
                if d.name.isdigit() and (d/'cmdline').read_bytes().startswith(b'ray::MapWorker'):
                    rss = next(int(l.split()[1]) for l in (d/'status').read_text().splitlines() if l.startswith('VmRSS'))
                    peak[d.name] = max(peak.get(d.name, 0), rss/1024)
            except (OSError, StopIteration): pass
        time.sleep(0.2)

def writer_rate(n:int=100_000) -> float:
    "Rows/s the driver's CSV writer takes"
    from imgcls_nb.predict import open_writer, row_fields
    rows = [dict(path=f'/data/{i:08d}.jpg', label='coat', score=0.9, error=None) for i in range(1000)]
    with tempfile.TemporaryDirectory() as d:
        w, t = open_writer(Path(d)/'p.csv', 'csv', row_fields()), time.perf_counter()
        for _ in range(n//1000): w.write(rows)
        w.close()
        return n/(time.perf_counter() - t)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--files', type=int, default=1600)
    ap.add_argument('--runs', type=int, default=2)
    ap.add_argument('--bs', type=int, default=32)
    a = ap.parse_args()
    from imgcls_nb.core import available_cores
    from imgcls_nb.train import sample_bundle
    from imgcls_nb.export import export_onnx
    from imgcls_nb.predict import predict_files
    from imgcls_nb.distributed import predict_ray, ray_session
    tmp = Path(tempfile.mkdtemp())
    bundle = sample_bundle(tmp/'b')
    export_onnx(bundle)
    files = write_files(tmp/'photos', a.files)
    out, cores = tmp/'p.csv', available_cores()
    local = statistics.median(predict_files(bundle, files, out, bs=a.bs, progress=False)['images_per_s']
                              for _ in range(a.runs))
    cold = predict_files(bundle, files, out, bs=a.bs, progress=False, engine='ray')
    stop, peak = threading.Event(), {}
    threading.Thread(target=actor_rss_mb, args=(stop, peak), daemon=True).start()
    with ray_session():
        predict_ray(bundle, files, out, bs=a.bs, progress=False)  # warm-up
        runs = [predict_ray(bundle, files, out, bs=a.bs, progress=False) for _ in range(a.runs)]
    stop.set()
    steady = statistics.median(r['images_per_s'] for r in runs)
    per_core = cores/steady
    print(f"{len(files)} photo files (256-640 px JPEG/PNG), sample bundle (96 px, ONNX fp32), batch {a.bs}, "
          f"{cores} cores, {os.cpu_count()} CPUs seen")
    print(f"local engine:            {local:7.1f} images/s (predict_files defaults, median of {a.runs})")
    print(f"ray engine, steady:      {steady:7.1f} images/s = {steady/local:.2f} of local "
          f"({runs[0]['actors']} actors, session already up, median of {a.runs})")
    print(f"ray engine, cold call:   {cold['images_per_s']:7.1f} images/s ({cold['seconds']:.1f} s including "
          f"starting and stopping Ray)")
    print(f"model actor peak RSS:    {', '.join(f'{v:.0f} MB' for v in sorted(peak.values()))}")
    print(f"per-core cost:           {1000*per_core:.1f} core-ms per image; driver CSV writer {writer_rate():,.0f} rows/s")
    for n in (1, 4, 16, 64):
        print(f"estimate, {n:3d} nodes x {cores} cores: {n*cores/per_core:9,.0f} images/s")

if __name__ == '__main__':
    main()
