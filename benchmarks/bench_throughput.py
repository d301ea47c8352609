"""Training throughput of the default backbone against what this CPU can compute (issue 13, target 4).

    python benchmarks/bench_throughput.py [--sizes 64 96 224] [--bs 64] [--steps 6] [--runs 3]

1. The machine's rate: a 2048 x 2048 float32 matmul in PyTorch (2 n^3 FLOPs), the median of `--runs` timings of
   10 products, with every core (`core.compute_threads`).
2. A training step of the default model (`models.create_model`, 10 classes, ImageNet weights from the offline
   package), as `train` runs it on a CPU: channels_last, AdamW, cross-entropy, the whole network trainable (the
   unfrozen phase), at each `--sizes`, batch `--bs`: images/s, the median of `--runs` runs of `--steps` steps after
   two warm-up steps. FLOPs per image: the forward pass counted by `torch.utils.flop_counter.FlopCounterMode`
   (convolutions and matmuls), times 3 for forward + backward (the usual estimate: the backward pass computes two
   products per forward one). The counter's own backward count is not used: for the depthwise (grouped)
   convolutions of this backbone it ignores the groups (measured: 32.2 GFLOP for forward + backward of one 224 px
   image against 0.77 for the forward). So the table gives the achieved GFLOP/s and their share of the matmul
   rate measured in the same run. Then `train`'s default, with the first 2% of the body's parameters (the stem and
   the first three stages of Lite0) left frozen (`keep_frozen=0.02`): their weights get no gradient and nothing
   flows back into them, so a step costs 3 x forward less 2 x the frozen layers' forward. Also: the frozen phase
   (the backbone's weights get no gradient, but its batch norms still train, so gradients flow back through the
   network: 2 x forward), bf16 autocast and contiguous (NCHW) memory at 64 px, for the levers the issue asks to
   measure.

No timed test: figures are ratios in one run; compare only within a run (the CPU model changes between machines).
"""
import argparse, statistics, time
import torch, torch.nn as nn
from imgcls_nb.core import set_threads
from imgcls_nb.models import create_model, freeze
from imgcls_nb.train import freeze_first

def matmul_gflops(runs:int, n:int=2048, reps:int=10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(reps): a @ b
        ts.append(time.perf_counter() - t)
    return 2*n**3*reps/statistics.median(ts)/1e9

def _step(model, opt, x, y, amp:bool):
    with torch.autocast('cpu', torch.bfloat16, enabled=amp):
        loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()

def step_flops(model, x, frozen:bool=False) -> float:
    """Training FLOPs of one step on batch `x`: 3 x the counted forward FLOPs (2 x with the backbone's weights frozen),
    less 2 x the forward FLOPs of leaf layers whose weights are all frozen (no backward reaches them)"""
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as fc: model(x)
    if frozen: return 2.0*fc.get_total_flops()
    mods, root = dict(model.named_modules()), type(model).__name__ + '.'
    def still(name):  # a leaf layer with weights, none of them trained
        m = mods.get(name[len(root):]) if name.startswith(root) else None
        ps = list(m.parameters(recurse=False)) if m is not None and not list(m.children()) else []
        return bool(ps) and not any(p.requires_grad for p in ps)
    fixed = sum(sum(v.values()) for k, v in fc.get_flop_counts().items() if still(k))
    return 3.0*fc.get_total_flops() - 2.0*fixed

def train_rate(size:int, bs:int, steps:int, runs:int, channels_last=True, amp=False, frozen=False,
               keep_frozen=0.0) -> tuple:
    "(images/s median, FLOPs per step) of training steps at `size`"
    torch.manual_seed(0)
    model = create_model(n_classes=10).train()
    if frozen: freeze(model)
    if keep_frozen: freeze_first(model, keep_frozen)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-3)
    x, y = torch.randn(bs, 3, size, size).contiguous(memory_format=fmt), torch.randint(0, 10, (bs,))
    flops = step_flops(model, x, frozen)
    for _ in range(2): _step(model, opt, x, y, amp)
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(steps): _step(model, opt, x, y, amp)
        rates.append(bs*steps/(time.perf_counter() - t))
    return statistics.median(rates), flops

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[64, 96, 224])
    ap.add_argument('--bs', type=int, default=64)
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--runs', type=int, default=3)
    a = ap.parse_args()
    threads = set_threads()
    peak = matmul_gflops(a.runs)
    print(f"threads {threads}; 2048x2048 float32 matmul: {peak:.0f} GFLOP/s (median of {a.runs})\n")
    print("| setting | px | images/s | GFLOP per image (training) | achieved GFLOP/s | share of matmul rate |")
    print("|---|---|---|---|---|---|")
    cases = [('channels_last, fp32, all trainable', s, {}) for s in a.sizes]
    cases += [("`train`'s default: channels_last, fp32, first 2% frozen", s, dict(keep_frozen=0.02)) for s in a.sizes]
    cases += [('frozen backbone (head phase)', a.sizes[0], dict(frozen=True)),
              ('bf16 autocast', a.sizes[0], dict(amp=True)),
              ('contiguous NCHW', a.sizes[0], dict(channels_last=False))]
    for name, size, kw in cases:
        rate, flops = train_rate(size, a.bs, a.steps, a.runs, **kw)
        per = flops/a.bs/1e9
        print(f"| {name} | {size} | {rate:.0f} | {per:.3f} | {rate*per:.1f} | {rate*per/peak:.1%} |", flush=True)

if __name__ == '__main__': main()
