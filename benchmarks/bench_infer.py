"""Inference speed of the default backbone on this CPU: eager PyTorch, PyTorch channels_last, ONNX Runtime fp32 and int8.

    python benchmarks/bench_infer.py [--bundle DIR] [--size 224] [--threads 1,2] [--rounds 7]

Model: `tf_efficientnet_lite0` with 10 classes at 224 px, weights from a bundle trained for one frozen + one
unfrozen epoch on the embedded Fashion-MNIST sample from the offline ImageNet weights (made once and kept in
`--bundle`, by default in the temporary folder; pass an existing bundle to skip the training). The ONNX models come from `imgcls_nb.export`:
`export_onnx` (parity-checked against PyTorch) and `quantize_int8` in both formats (QOperator and QDQ,
per-channel weights, percentile calibration on 128 training images).

Speed: images/s of the model alone (preprocessed float32 batches of real validation images; decoding is the
same for every backend), at batch 1 and 32, for each intra-op thread count. Each round times every backend once,
in turn, so that a change in the machine's load hits them alike; each ONNX Runtime backend runs in a session of
its own made for its turn, as in a deployment (sessions left alive spin-wait and slow whichever runs next). The
table shows the median over the rounds and the ratio to eager PyTorch at the same batch size and thread count. Accuracy: the 200 sample validation images.
"""
import argparse, os, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np

def get_bundle(path:Path, size:int, epochs:int) -> Path:
    "A bundle of the default backbone trained briefly on the sample data (reused when `path` holds one)"
    if (path/'config.json').is_file(): return path
    from imgcls_nb.train import train, save_result
    from imgcls_nb.data import sample_data
    t = time.time()
    res = train(sample_data(), epochs=epochs, size=size, progress=False)
    print(f"trained {res.arch} at {size} px in {time.time() - t:.0f} s: {res.metrics}", file=sys.stderr)
    return save_result(res, path)

def onnx_models(bundle:Path) -> dict:
    "{name: model bytes} for ONNX fp32 and int8 in both formats"
    from imgcls_nb.export import export_onnx, quantize_int8, calibration_arrays, export_data
    from imgcls_nb.bundle import read_config, model_bytes, ONNX_FILE
    from imgcls_nb.preprocess import PreprocessSpec
    if not (bundle/ONNX_FILE).is_file(): export_onnx(bundle)
    cfg = read_config(bundle)
    fp32 = model_bytes(bundle, cfg['onnx'])
    xc = calibration_arrays(export_data(bundle), PreprocessSpec.from_dict(cfg['preprocess']))
    t = time.time()
    q = quantize_int8(fp32, xc, ('QDQ', 'QOperator'))
    print(f"quantized in {time.time() - t:.0f} s", file=sys.stderr)
    return {'ORT fp32': fp32, 'ORT int8 QDQ': q['QDQ'], 'ORT int8 QOperator': q['QOperator']}

def torch_runner(model, channels_last:bool):
    import torch
    m = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    def run(x):
        with torch.inference_mode(): return m(torch.from_numpy(x).contiguous(memory_format=fmt)).numpy()
    return run

def runners(bundle:Path, models:dict, threads:int) -> dict:
    "{backend name: function that makes a runner (a function of a float32 batch)}, all with `threads` intra-op threads"
    import copy, torch
    from imgcls_nb.bundle import read_config
    from imgcls_nb.models import build_model, load_weights
    from imgcls_nb.runtime import ort_session
    torch.set_num_threads(threads)
    m = load_weights(bundle, build_model(read_config(bundle))).eval()
    eager, cl = torch_runner(m, False), torch_runner(copy.deepcopy(m), True)
    rs = {'PyTorch eager': lambda: eager, 'PyTorch channels_last': lambda: cl}
    for name, blob in models.items():
        rs[name] = lambda blob=blob: (lambda x, s=ort_session(blob, threads): s.run(None, {'input': x})[0])
    return rs

def time_round(rs:dict, xb:np.ndarray, calls:int) -> dict:
    """Seconds per call of every backend, one after the other. Each ONNX Runtime backend gets a fresh session that
    is dropped after its turn: a live session's idle threads spin-wait for work and take the cores from whichever
    backend runs next (measured: two 2-thread sessions called in turn both ran at about half speed)"""
    out = {}
    for name, make in rs.items():
        run = make()
        time.sleep(0.05)      # let the previous backend's threads go idle
        run(xb); run(xb)      # warm-up
        t = time.perf_counter()
        for _ in range(calls): run(xb)
        out[name] = (time.perf_counter() - t)/calls
        del run
    return out

def measure(rs:dict, x:np.ndarray, bs:int, rounds:int) -> dict:
    "Median images/s of every backend at batch `bs` over `rounds` interleaved rounds"
    xb = np.ascontiguousarray(np.resize(x, (bs, *x.shape[1:])))
    calls = 16 if bs == 1 else 2
    secs = [time_round(rs, xb, calls) for _ in range(rounds)]
    return {name: bs/statistics.median(s[name] for s in secs) for name in rs}

def accuracy(bundle:Path, models:dict) -> dict:
    "Accuracy on the sample validation images of PyTorch and of each ONNX model, and top-1 agreement with ONNX fp32"
    from imgcls_nb.bundle import load_bundle, read_config
    from imgcls_nb.runtime import OnnxClassifier, ort_session
    from imgcls_nb.export import export_data
    from imgcls_nb.evaluate import evaluate
    data, cfg = export_data(bundle), read_config(bundle)
    res = {'PyTorch': evaluate(load_bundle(bundle), data)}
    res.update({n: evaluate(OnnxClassifier(ort_session(b), cfg), data) for n, b in models.items()})
    ref = res['ORT fp32'].probs.argmax(1)
    return {n: (r.metrics['accuracy'], float((r.probs.argmax(1) == ref).mean())) for n, r in res.items()}

def table(speeds:dict, acc:dict) -> str:
    "Markdown table: one row per backend, images/s and ratio to eager PyTorch per (threads, batch)"
    keys = sorted(speeds)
    head = '| backend | ' + ' | '.join(f'{t} thr, bs {bs}' for t, bs in keys) + ' | accuracy | agrees with fp32 |\n'
    head += '|---|' + '---|'*(len(keys) + 2) + '\n'
    rows = []
    for name in speeds[keys[0]]:
        cells = [f"{speeds[k][name]:.1f} ({speeds[k][name]/speeds[k]['PyTorch eager']:.2f}x)" for k in keys]
        a = acc.get(name) or (acc['PyTorch'] if name.startswith('PyTorch') else None)
        rows.append(f"| {name} | {' | '.join(cells)} | {a[0]:.3f} | {a[1]:.1%} |")
    return head + '\n'.join(rows)

def targets(speeds:dict, acc:dict) -> str:
    "The issue's targets, per (threads, batch): ORT fp32 >= 2x eager PyTorch; int8 >= 1.6x fp32 with <= 1 point accuracy loss"
    lines = []
    for (t, bs), sp in sorted(speeds.items()):
        q = max(('ORT int8 QDQ', 'ORT int8 QOperator'), key=sp.get)
        drop = 100*(acc['ORT fp32'][0] - acc[q][0])
        lines.append(f"- {t} thread(s), batch {bs}: ORT fp32 / eager PyTorch {sp['ORT fp32']/sp['PyTorch eager']:.2f}x (target 2x); "
                     f"{q} / ORT fp32 {sp[q]/sp['ORT fp32']:.2f}x (target 1.6x), {drop:.1f} accuracy points lost (target <= 1)")
    return '\n'.join(lines)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--bundle', default=str(Path(tempfile.gettempdir())/'imgcls_bench_infer_bundle'), help='bundle to use, trained here if missing')
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--threads', default=None, help='comma-separated thread counts (default: 1 and every available core)')
    p.add_argument('--rounds', type=int, default=7)
    a = p.parse_args()
    from imgcls_nb.core import available_cores
    from imgcls_nb.export import parity_paths, decode_arrays, export_data
    from imgcls_nb.preprocess import PreprocessSpec
    from imgcls_nb.bundle import read_config
    bundle = get_bundle(Path(a.bundle), a.size, a.epochs)
    models = onnx_models(bundle)
    cfg = read_config(bundle)
    x = decode_arrays(PreprocessSpec.from_dict(cfg['preprocess']), parity_paths(export_data(bundle), 32))
    threads = [int(t) for t in a.threads.split(',')] if a.threads else sorted({1, available_cores()})
    load0, speeds = os.getloadavg(), {}
    for t in threads:
        rs = runners(bundle, models, t)
        for bs in (1, 32): speeds[(t, bs)] = measure(rs, x, bs, a.rounds)
    load1 = os.getloadavg()
    acc = accuracy(bundle, models)
    import onnxruntime, torch
    print(f"\n{cfg['arch']}, {len(cfg['classes'])} classes, {cfg['preprocess']['size']} px; {available_cores()} cores "
          f"({os.cpu_count()} CPUs), torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, ONNX opset {cfg['onnx']['opset']}; "
          f"load average {load0[0]:.1f} before, {load1[0]:.1f} after; median of {a.rounds} rounds; images/s (ratio to eager PyTorch)\n")
    print(table(speeds, acc))
    print('\n' + targets(speeds, acc))

if __name__ == '__main__': main()
