"""Each layer alone, swiftq against ONNX Runtime: every Conv and MaxPool of a model cut out as a one-node ONNX model
(its weights with it), run by `swiftq bench` and by ONNX Runtime on the same file, alternating, the best run of
each. The in-network profile (profile_vs_ort.py) counts ONNX Runtime's profiling overhead in each of its nodes, a few
microseconds that add up over a hundred nodes; here nothing is profiled. Against it: alone, a layer runs with its
input and weights in cache, and ONNX Runtime converts its input to its blocked layout and back in every run (so small
layers look slower there than in the network). Read the large layers.
usage: layers_vs_ort.py SWIFTQ [--model squeezenet1.1.onnx] [--threads 1] [--filter NAME] [--seconds 1]"""
import argparse, json, os, subprocess, sys, tempfile, time
import numpy as np, onnx, onnx.helper as helper, onnxruntime as ort
from onnx import shape_inference
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shared_path import shared_dir

ap = argparse.ArgumentParser()
ap.add_argument('swiftq'); ap.add_argument('--model', default='squeezenet1.1.onnx'); ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--filter', default=''); ap.add_argument('--seconds', type=float, default=1.0)
a = ap.parse_args()
m = shape_inference.infer_shapes(onnx.load(os.path.join(shared_dir(), 'models', a.model)))
values = {v.name: v for v in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output)}
inits = {i.name: i for i in m.graph.initializer}


def shape(name):
    return [d.dim_value or 1 for d in values[name].type.tensor_type.shape.dim]


def ort_best(path, x):
    so = ort.SessionOptions(); so.intra_op_num_threads = a.threads; so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    feed = {s.get_inputs()[0].name: x}
    for _ in range(5): s.run(None, feed)
    best, end = float('inf'), time.perf_counter() + a.seconds
    while time.perf_counter() < end:
        t = time.perf_counter(); s.run(None, feed); best = min(best, time.perf_counter() - t)
    return best * 1e3


def swiftq_best(path):
    r = subprocess.run([a.swiftq, 'bench', path, '--threads', str(a.threads), '--seconds', str(a.seconds), '--json', '-'],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)['best_ms']


total_s = total_o = 0.0
print(f'{a.model}, each layer alone, {a.threads} thread(s), best of alternating runs (ms)')
with tempfile.TemporaryDirectory() as tmp:
    for i, n in enumerate(m.graph.node):
        name = n.name or n.output[0]
        if n.op_type not in ('Conv', 'MaxPool') or a.filter not in name: continue
        g = helper.make_graph([n], 'layer', [helper.make_tensor_value_info(n.input[0], onnx.TensorProto.FLOAT, shape(n.input[0]))],
                              [helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, shape(n.output[0]))],
                              [inits[k] for k in n.input[1:] if k in inits])
        path = os.path.join(tmp, f'{i}.onnx')
        onnx.save(helper.make_model(g, opset_imports=m.opset_import), path)
        x = np.random.default_rng(0).uniform(-1, 1, shape(n.input[0])).astype(np.float32)
        s, o = float('inf'), float('inf')
        for _ in range(2):
            s = min(s, swiftq_best(path)); o = min(o, ort_best(path, x))
        total_s += s; total_o += o
        print(f'{name[:28]:28} {n.op_type:7} {"x".join(map(str, shape(n.output[0]))):16} swiftq {s:7.3f}  ORT {o:7.3f}  {s / o:.2f}x', flush=True)
print(f'sum: swiftq {total_s:.3f} ms, ONNX Runtime {total_o:.3f} ms, {total_s / total_o:.3f}x')
