"""Kills `swiftq quantize` at random moments and checks what is left (issue 14).

For each of SIGINT, SIGTERM and SIGKILL: `--rounds` kills during calibration (at a random moment before the
first output byte is written) and `--rounds` during writing (as soon as a temporary output file has content,
after a random extra delay of up to a few milliseconds). After every kill:
  - no output exists under its final name unless all of them do, and then each is complete (the model
    loads, the weight file's and table's sizes are those of an uninterrupted run);
  - after SIGINT or SIGTERM no `.swiftq-tmp-*` file is left (after SIGKILL one may be: nothing can run);
  - the input model is unchanged.
The model is made here: a chain of 3x3 convolutions with 256 channels (about 45 MB of float weights), so
that calibration takes a second or two and writing is long enough to be hit.

usage: killtest.py path/to/swiftq [--rounds N]      prints `N passed, N failed`
"""
import hashlib, os, random, shutil, signal, subprocess, sys, tempfile, time
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
from PIL import Image

def model(path, layers=18, channels=256):
    rng = np.random.default_rng(1)
    nodes, inits = [], []
    x = 'input'
    c_in = 3
    for i in range(layers):
        w = (rng.standard_normal((channels, c_in, 3, 3)) * (1.0 / np.sqrt(9 * c_in))).astype(np.float32)
        inits += [numpy_helper.from_array(w, f'w{i}'), numpy_helper.from_array(np.zeros(channels, np.float32), f'b{i}')]
        nodes.append(helper.make_node('Conv', [x, f'w{i}', f'b{i}'], [f'c{i}'], name=f'conv{i}', pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node('Relu', [f'c{i}'], [f'r{i}'], name=f'relu{i}'))
        x, c_in = f'r{i}', channels
    nodes.append(helper.make_node('GlobalAveragePool', [x], ['gap'], name='gap'))
    nodes.append(helper.make_node('Flatten', ['gap'], ['out'], name='flatten'))
    g = helper.make_graph(nodes, 'chain', [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info('out', TensorProto.FLOAT, [1, channels])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), path)

def images(folder, n=60):
    os.makedirs(os.path.join(folder, 'a'), exist_ok=True)
    rng = np.random.default_rng(2)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(os.path.join(folder, 'a', f'{i}.png'))

def sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()

OUTPUTS = ['q.onnx', 'q.swq', 'q.calib.json']

def temporaries(d):
    return [f for f in os.listdir(d) if f.startswith('.swiftq-tmp-')]

def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    binary = os.path.abspath(args[0])
    rounds = int(args[args.index('--rounds') + 1]) if '--rounds' in args else 10
    work = tempfile.mkdtemp(prefix='swiftq-kill-')
    try:
        model(os.path.join(work, 'm.onnx'))
        images(os.path.join(work, 'imgs'))
        argv = [binary, 'quantize', 'm.onnx', '--calib', 'imgs', '--preset', 'torch', '-o', 'q.onnx']
        start = time.time()
        subprocess.run(argv, cwd=work, capture_output=True, check=True)
        full = time.time() - start
        sizes = {f: os.path.getsize(os.path.join(work, f)) for f in OUTPUTS}
        for f in OUTPUTS:
            os.remove(os.path.join(work, f))
        model_sum = sha(os.path.join(work, 'm.onnx'))
        print(f'an uninterrupted run takes {full:.2f} s; outputs {sizes}')
        rng = random.Random(14)
        passed = failed = 0
        mid_write = 0  # kills that landed while a temporary output file held bytes
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            for phase in ('calibration', 'writing'):
                for r in range(rounds):
                    problems = []
                    p = subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    killed_at = None
                    if phase == 'calibration':
                        time.sleep(rng.uniform(0.05, full * 0.6))
                        if not any(os.path.getsize(os.path.join(work, t)) > 0 for t in temporaries(work) if os.path.exists(os.path.join(work, t))):
                            killed_at = 'calibration'
                    else:
                        deadline = time.time() + full * 3
                        while time.time() < deadline and p.poll() is None:
                            try:
                                if any(os.path.getsize(os.path.join(work, t)) > 0 for t in temporaries(work)):
                                    break
                            except FileNotFoundError:
                                pass
                            time.sleep(0.0005)
                        time.sleep(rng.uniform(0, 0.01))
                        killed_at = 'writing'
                    if p.poll() is None:
                        try:
                            if any(os.path.getsize(os.path.join(work, t)) > 0 for t in temporaries(work)):
                                mid_write += 1
                        except FileNotFoundError:
                            pass
                        p.send_signal(sig)
                    else:
                        killed_at = 'after the end'
                    rc = p.wait()
                    present = [f for f in OUTPUTS if os.path.exists(os.path.join(work, f))]
                    if present and len(present) != len(OUTPUTS):
                        problems.append(f'only some outputs under their final names: {present}')
                    if len(present) == len(OUTPUTS):
                        for f in OUTPUTS:
                            if os.path.getsize(os.path.join(work, f)) != sizes[f]:
                                problems.append(f'{f} is {os.path.getsize(os.path.join(work, f))} bytes, not {sizes[f]}')
                        try:
                            onnx.load(os.path.join(work, 'q.onnx'))
                        except Exception as e:
                            problems.append(f'q.onnx does not load: {e}')
                    left = temporaries(work)
                    if left and sig != signal.SIGKILL:
                        problems.append(f'temporary files left after {sig.name}: {left}')
                    if sha(os.path.join(work, 'm.onnx')) != model_sum:
                        problems.append('the input model changed')
                    if killed_at == 'after the end' and rc != 0:
                        problems.append(f'finished with exit {rc}')
                    name = f'{sig.name} during {phase} #{r + 1}' + (f' (it had ended)' if killed_at == 'after the end' else '')
                    if problems:
                        failed += 1
                        print(f'FAIL {name}: exit {rc}; ' + '; '.join(problems))
                    else:
                        passed += 1
                        print(f'PASS {name}: exit {rc}, {len(present)} outputs, {len(left)} temporary files')
                    sys.stdout.flush()
                    for f in OUTPUTS + left:
                        if os.path.exists(os.path.join(work, f)):
                            os.remove(os.path.join(work, f))
        print(f'{mid_write} of the {6 * rounds} kills landed while an output was being written')
        print(f'{passed} passed, {failed} failed')
        sys.exit(1 if failed else 0)
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__':
    main()
