"""Quantize time and peak memory on long chains (issue 14: a 20,000-node graph in under 3 s, memory linear in
the node count). Builds the chains here; prints one line per size.

usage: scale.py path/to/swiftq [--nodes 5000,10000,20000]
"""
import os, subprocess, sys, tempfile, shutil, time
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto

HERE = os.path.dirname(os.path.abspath(__file__))

def chain(path, nodes, relu):
    rng = np.random.default_rng(0)
    graph_nodes, inits, x = [], [], 'input'
    convs = nodes // 2 if relu else nodes
    for i in range(convs):
        w = (rng.standard_normal((3, 3, 1, 1)) * 0.1 + np.eye(3).reshape(3, 3, 1, 1)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f'w{i}'))
        graph_nodes.append(helper.make_node('Conv', [x, f'w{i}'], [f'c{i}'], name=f'conv{i}'))
        x = f'c{i}'
        if relu:
            graph_nodes.append(helper.make_node('Relu', [x], [f'r{i}'], name=f'relu{i}'))
            x = f'r{i}'
    g = helper.make_graph(graph_nodes, 'chain', [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 3, 8, 8])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), path)

def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    binary = os.path.abspath(args[0])
    sizes = [int(v) for v in (args[args.index('--nodes') + 1] if '--nodes' in args else '5000,10000,20000').split(',')]
    d = tempfile.mkdtemp(prefix='swiftq-scale-')
    try:
        for relu in (True, False):
            for n in sizes:
                m = os.path.join(d, 'chain.onnx')
                chain(m, n, relu)
                start = time.time()
                r = subprocess.run(['/usr/bin/time', '-f', '%M', binary, 'quantize', m, '--calib', os.path.join(HERE, '..', 'Fixtures', 'images'),
                                    '--preset', 'torch', '-o', os.path.join(d, 'q.onnx')], capture_output=True, text=True)
                took = time.time() - start
                if r.returncode != 0:
                    sys.exit(f'{n} nodes: exit {r.returncode}: {r.stderr[-300:]}')
                kb = int(r.stderr.strip().splitlines()[-1])
                phases = next(l for l in r.stdout.splitlines() if l.startswith('time'))
                table = os.path.getsize(os.path.join(d, 'q.calib.json'))
                print(f'{n:6d} nodes ({"Conv+Relu" if relu else "Conv"} chain): {took:5.2f} s, peak {kb / 1024:6.0f} MiB, '
                      f'table {table / 2**20:5.1f} MiB; {phases[12:]}')
    finally:
        shutil.rmtree(d, ignore_errors=True)

if __name__ == '__main__':
    main()
