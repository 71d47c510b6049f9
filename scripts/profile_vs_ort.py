"""Where the float time goes, layer by layer, swiftq against ONNX Runtime (issue 17's first step: measure before
changing kernels). For each model: `swiftq bench --profile --json` (per node: ms, multiply-accumulates, GFLOP/s,
and this machine's peak FLOP/s measured with fused multiply-adds on the same threads) and ONNX Runtime's own
profile (enable_profiling, same input, same threads) on the same float model; nodes matched by name (both fuse a
Conv with its activation under the Conv's name; a fused expand + depthwise pair 'A+B' against the sum of both).
Every time is a node's best run, on both sides (a node's mean swings with whatever else the machine ran). Prints per
model the heaviest nodes: ms in each, the ratio, and swiftq's fraction of peak; then per op type each runtime's time.
usage: profile_vs_ort.py SWIFTQ [--threads 2] [--models a.onnx,b.onnx] [--top 12]"""
import argparse, collections, json, os, subprocess, sys, tempfile
import numpy as np, onnx, onnxruntime as ort
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shared_path import shared_dir

ap = argparse.ArgumentParser()
ap.add_argument('swiftq'); ap.add_argument('--threads', type=int, default=2); ap.add_argument('--models', default='')
ap.add_argument('--top', type=int, default=12); ap.add_argument('--runs', type=int, default=200)
a = ap.parse_args()
SHARED = shared_dir()
models = a.models.split(',') if a.models else ['squeezenet1.1.onnx', 'efficientnet-lite0.onnx', 'mobilenetv2-1.0.onnx', 'ppocr-mobile-v2-cls.onnx']
SHAPES = {'ppocr-mobile-v2-cls.onnx': [1, 3, 48, 192], 'detection/ppocrv4-det.onnx': [1, 3, 640, 640]}


def ort_profile(path, shape, tmp):
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads; so.inter_op_num_threads = 1
    so.enable_profiling = True; so.profile_file_prefix = os.path.join(tmp, 'ort')
    s = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    feed = {s.get_inputs()[0].name: x}
    for _ in range(10): s.run(None, feed)
    for _ in range(a.runs): s.run(None, feed)
    events = json.load(open(s.end_profiling()))
    # Per node its fastest run (ms): on a shared machine a node's mean swings with whatever else ran.
    per, op = collections.defaultdict(lambda: float('inf')), {}
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'):
            n = e['name'][:-len('_kernel_time')]
            per[n] = min(per[n], e['dur'] / 1000.0)
            op[n] = e['args'].get('op_name', '?')
    # ORT's NCHWc transformer names a node after its output ('<tensor>_nchwc'): back to the model's node, a fused
    # activation to the Conv it was fused into (whose name swiftq reports).
    g = onnx.load(path).graph
    producer = {o: n for n in g.node for o in n.output}
    def original(k):
        """Every name the node behind ORT's `k` may go by in swiftq's profile: the Conv's name, its output, and the
        outputs of the activations fused into it."""
        t = k[:-len('_nchwc')] if k.endswith('_nchwc') else k
        n = producer.get(t)
        if n is None: return [k]
        keys = [t]
        while n.op_type in ('Relu', 'Clip', 'BatchNormalization') and n.input[0] in producer:
            n = producer[n.input[0]]
            keys.append(n.output[0])
        return [n.name] + keys if n.name else keys
    merged = collections.defaultdict(float)
    for n, t in per.items():
        for key in original(n):
            merged[key] += t
    return merged, op, dict(per)


with tempfile.TemporaryDirectory() as tmp:
    for f in models:
        path = os.path.join(SHARED, 'models', f)
        shape = SHAPES.get(f) or [d.dim_value or 1 for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]
        out = os.path.join(tmp, 'b.json')
        r = subprocess.run([a.swiftq, 'bench', path, '--threads', str(a.threads), '--profile', '--seconds', '3', '--json', out,
                            '--input-shape', 'x=' + 'x'.join(map(str, shape))] if f in SHAPES else
                           [a.swiftq, 'bench', path, '--threads', str(a.threads), '--profile', '--seconds', '3', '--json', out], capture_output=True, text=True)
        if r.returncode: sys.exit(f'swiftq bench {f}: {r.stderr.strip()[-300:]}')
        b = json.load(open(out))
        theirs, their_op, their_nodes = ort_profile(path, shape, tmp)
        mine = {n['node']: n for n in b['nodes']}
        peak = b['peak_gflops']
        total_mine, total_theirs = sum(n['best_ms'] for n in b['nodes']), sum(their_nodes.values())
        print(f"\n{f} (each node's best run): swiftq {b['best_ms']:.2f} ms per image (nodes {total_mine:.2f} ms), ONNX Runtime nodes {total_theirs:.2f} ms; "
              f"peak {peak:.0f} GFLOP/s on {a.threads} threads; swiftq's whole network {2 * b['macs'] / b['best_ms'] / 1e6:.0f} GFLOP/s "
              f"({100 * 2 * b['macs'] / b['best_ms'] / 1e6 / peak:.0f}% of peak)")
        print(f"{'node':28}{'op':8}{'output':>16}{'MMAC':>8}{'swiftq ms':>11}{'ORT ms':>9}{'ratio':>7}{'GFLOP/s':>9}{'% peak':>8}")
        for n in sorted(b['nodes'], key=lambda n: -n['best_ms'])[:a.top]:
            # swiftq names an unnamed node 'Op → output'.
            # A fused pair (expand + depthwise) is named 'A+B': ONNX Runtime's time for both.
            parts = [theirs.get(p) or theirs.get(p.split(' → ')[-1]) for p in n['node'].split('+')]
            t = sum(parts) if all(parts) else None
            shp = 'x'.join(map(str, n['shape']))
            gflops = 2 * n['macs'] / n['best_ms'] / 1e6
            print(f"{n['node'][:27]:28}{n['op'][:7]:8}{shp:>16}{n['macs'] / 1e6:8.1f}{n['best_ms']:11.3f}"
                  + (f"{t:9.3f}{n['best_ms'] / t:6.2f}x" if t else f"{'-':>9}{'':7}")
                  + (f"{gflops:9.1f}{100 * gflops / peak:7.0f}%" if n['macs'] else ''))
        by_mine, by_theirs = collections.defaultdict(float), collections.defaultdict(float)
        for n in b['nodes']: by_mine[n['op']] += n['best_ms']
        for n, t in their_nodes.items(): by_theirs[their_op[n]] += t
        print('time by op type: swiftq ' + ', '.join(f'{o} {t:.2f} ms' for o, t in sorted(by_mine.items(), key=lambda x: -x[1])[:6])
              + ' | ONNX Runtime ' + ', '.join(f'{o} {t:.2f} ms' for o, t in sorted(by_theirs.items(), key=lambda x: -x[1])[:6]), flush=True)
