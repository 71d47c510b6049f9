"""Independent MAC count: runs the model in ONNX Runtime with every Conv/ConvTranspose/Gemm/MatMul input and
output exposed, and counts multiply-accumulates from the shapes ONNX Runtime actually produced.
usage: count_macs.py MODEL [--input-shape NAME=1x3x224x224]  (symbolic leading dims default to 1)"""
import argparse, numpy as np, onnx, onnxruntime as ort

def count(model_path, input_shapes=None):
    input_shapes = input_shapes or {}
    m = onnx.load(model_path)
    g = m.graph
    inits = {t.name: list(t.dims) for t in g.initializer}
    ops = [n for n in g.node if n.op_type in ('Conv', 'ConvTranspose', 'Gemm', 'MatMul')]
    existing = {o.name for o in g.output}
    wanted = []
    for n in ops:
        for name in list(n.input[:2]) + [n.output[0]]:
            if name and name not in inits and name not in existing and name not in wanted:
                wanted.append(name)
    for name in wanted:
        g.output.append(onnx.ValueInfoProto(name=name))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=['CPUExecutionProvider'])
    feeds = {}
    for i in sess.get_inputs():
        shape = input_shapes.get(i.name) or [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
        feeds[i.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    names = [o.name for o in sess.get_outputs()]
    shapes = dict(zip(names, (v.shape for v in sess.run(None, feeds))))
    shapes.update(inits)
    total = 0
    for n in ops:
        a, w, y = shapes[n.input[0]], shapes[n.input[1]], shapes[n.output[0]]
        if n.op_type == 'Conv':
            total += int(np.prod(y)) * int(np.prod(w[1:]))
        elif n.op_type == 'ConvTranspose':
            total += int(np.prod(a)) * int(np.prod(w[1:]))
        elif n.op_type == 'Gemm':
            trans_a = next((at.i for at in n.attribute if at.name == 'transA'), 0)
            total += int(np.prod(y)) * (a[0] if trans_a else a[1])
        else:
            total += int(np.prod(y)) * a[-1]
    return total

if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('--input-shape', action='append', default=[])
    a = ap.parse_args()
    shapes = {s.split('=')[0]: [int(x) for x in s.split('=')[1].replace(',', 'x').split('x')] for s in a.input_shape}
    print(count(a.model, shapes))
