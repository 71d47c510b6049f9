"""The PP-OCRv4 text detector (../shared/models/detection) quantized by swiftq and by ONNX Runtime's quantize_static on
the same calibration images, both measured against the float model on the same validation images (no labels:
output SQNR and the agreement of the text masks rapidocr binarizes at 0.3). Also: ONNX Runtime loads swiftq's
model and fuses every Conv and ConvTranspose, and swiftq's integer runtime agrees with ONNX Runtime on
swiftq's Q/DQ model.

usage: detector_check.py SWIFTQ [--calib N] [--val N] [--size S]   (SWIFTQ_SHARED or ../shared)
Prints one PASS/FAIL line per check and a table; exits 1 on any failure.
"""
import argparse, collections, json, os, subprocess, sys, tempfile, time
import numpy as np, onnx, onnxruntime as ort
from onnx import version_converter
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shared_path import shared_dir, EXACT, NO_VNNI, ort_exact_int8, Tally

ap = argparse.ArgumentParser()
ap.add_argument('swiftq'); ap.add_argument('--calib', type=int, default=32); ap.add_argument('--val', type=int, default=50)
ap.add_argument('--size', type=int, default=640)
a = ap.parse_args()
SHARED = shared_dir()
MODEL = os.path.join(SHARED, 'models', 'detection', 'ppocrv4-det.onnx')
PREP = ['--size', str(a.size), '--resize', str(a.size), '--mean', '0.5,0.5,0.5', '--std', '0.5,0.5,0.5', '--scale', '1/255', '--bgr']
tally = Tally()
check = tally.check



def listed(folder, n):
    root = os.path.join(SHARED, 'images', folder)
    rels = [l.split()[0] for l in open(os.path.join(root, 'labels.txt')) if l.strip() and not l.startswith('#')]
    return root, rels[:n]


def prep(path):
    """rapidocr's input at a fixed size: BGR, shorter side to S (bilinear, as swiftq's --resize), center S x S, (x/255 − 0.5)/0.5."""
    im = Image.open(path).convert('RGB')
    w, h = im.size
    s = a.size / min(w, h)
    im = im.resize((max(a.size, round(w * s)), max(a.size, round(h * s))), Image.BILINEAR)
    w, h = im.size
    l, t = (w - a.size) // 2, (h - a.size) // 2
    x = np.asarray(im.crop((l, t, l + a.size, t + a.size)), dtype=np.float32)[..., ::-1]
    return np.ascontiguousarray(((x / 255.0 - 0.5) / 0.5).transpose(2, 0, 1))[None].astype(np.float32)


def session(path, optimized=None):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 2
    if optimized:
        so.optimized_model_filepath = optimized
    return ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])


def fidelity(ref, got):
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    sqnr = 10 * np.log10((ref ** 2).sum() / max(((ref - got) ** 2).sum(), 1e-30))
    m, n = ref > 0.3, got > 0.3
    return sqnr, (m & n).sum() / max((m | n).sum(), 1)


with tempfile.TemporaryDirectory() as tmp:
    croot, calib = listed('calib', a.calib)
    vroot, val = listed('val', a.val)
    clist = os.path.join(croot, 'labels.txt')  # swiftq reads the first N entries of the list (--calib-list keeps its order)
    results = {}
    # swiftq, every threshold method from one calibration pass.
    out = os.path.join(tmp, 'swiftq.onnx')
    t0 = time.time()
    r = subprocess.run([a.swiftq, 'quantize', MODEL, '--calib', croot, '--calib-list', clist, '--calib-limit', str(a.calib), '--seed', '0',
                        '--input-shape', f'x=1,3,{a.size},{a.size}', '-o', out, '--json', os.path.join(tmp, 'q.json')] + PREP, capture_output=True, text=True)
    swiftq_seconds = time.time() - t0
    check('swiftq quantize', r.returncode == 0, r.stderr.strip().splitlines()[-1] if r.returncode else f'{swiftq_seconds:.1f} s')
    if r.returncode:
        sys.exit(1)
    models = {'swiftq max': out}
    for method in ('entropy', 'percentile', 'mse'):
        o = os.path.join(tmp, f'swiftq-{method}.onnx')
        subprocess.run([a.swiftq, 'quantize', MODEL, '--calib-table', out[:-5] + '.calib.json', '--method', method,
                        '--input-shape', f'x=1,3,{a.size},{a.size}', '-o', o], capture_output=True, check=True)
        models[f'swiftq {method}'] = o
    # ONNX Runtime's quantize_static (MinMax, per channel, QDQ) on the same images, after the conversion it needs.
    from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType, CalibrationMethod
    m = onnx.load(MODEL)
    keep = []
    for n in m.graph.node:
        if n.op_type == 'Constant' and n.attribute[0].name == 'value':
            t = n.attribute[0].t
            t.name = n.output[0]
            m.graph.initializer.append(t)
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    m = version_converter.convert_version(m, 13)
    converted = os.path.join(tmp, 'det13.onnx')
    onnx.save(m, converted)

    class Reader(CalibrationDataReader):
        def __init__(self): self.it = iter(calib)
        def get_next(self):
            p = next(self.it, None)
            return None if p is None else {'x': prep(os.path.join(croot, p))}
    t0 = time.time()
    quantize_static(converted, os.path.join(tmp, 'ort.onnx'), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    ort_seconds = time.time() - t0
    models['onnxruntime minmax'] = os.path.join(tmp, 'ort.onnx')
    # Every model in ONNX Runtime on the same validation pixels, against the float model.
    float_session = session(MODEL)
    # Without VNNI ONNX Runtime's u8 x s8 kernels saturate: every int8 model then runs with its weights restated as
    # uint8 (shared_path.ort_exact_int8), the same arithmetic; the fusion check reads the model as written.
    if not EXACT:
        print(NO_VNNI)
    sessions = {k: session(ort_exact_int8(v)) for k, v in models.items()}
    session(models['swiftq max'], os.path.join(tmp, 'opt.onnx'))
    ops = collections.Counter(n.op_type for n in onnx.load(os.path.join(tmp, 'opt.onnx')).graph.node)
    refs, outs = [], {k: [] for k in models}
    for p in val:
        x = prep(os.path.join(vroot, p))
        refs.append(float_session.run(None, {'x': x})[0])
        for k, s in sessions.items():
            outs[k].append(s.run(None, {'x': x})[0])
    print(f'\n{len(val)} validation images at {a.size}x{a.size}; calibration: {len(calib)} images (swiftq {swiftq_seconds:.1f} s, ONNX Runtime {ort_seconds:.1f} s)')
    print(f'{"model":22s} {"SQNR dB":>8s} {"mask IoU @0.3":>14s}')
    for k in models:
        results[k] = fidelity(np.concatenate([r.ravel() for r in refs]), np.concatenate([o.ravel() for o in outs[k]]))
        print(f'{k:22s} {results[k][0]:8.2f} {results[k][1]:14.4f}')
    print()
    check(f'swiftq (default method) output SQNR {results["swiftq max"][0]:.2f} dB >= ONNX Runtime quantize_static {results["onnxruntime minmax"][0]:.2f} dB',
          results['swiftq max'][0] >= results['onnxruntime minmax'][0])
    float_left = {k: v for k, v in ops.items() if k in ('Conv', 'ConvTranspose', 'HardSwish', 'HardSigmoid', 'Mul', 'Add', 'Sigmoid')}
    check('ONNX Runtime fuses every Conv (QLinearConv) of swiftq\'s model', ops['Conv'] == 0 and ops['QLinearConv'] > 0, f'optimized graph {dict(ops)}')
    print(f'  in float in ONNX Runtime (no int8 kernel there): {float_left}')
    # swiftq's integer runtime against ONNX Runtime on swiftq's Q/DQ model, the first 8 validation images.
    folder = os.path.join(tmp, 'val8')
    os.makedirs(folder)
    few = val[:8]
    for i, p in enumerate(few):
        os.symlink(os.path.join(vroot, p), os.path.join(folder, f'{i:02d}.JPEG'))
    r = subprocess.run([a.swiftq, 'eval', MODEL, out, '--data', folder, '--save-outputs', os.path.join(tmp, 'o.npy'), '--json', os.path.join(tmp, 'e.json')] + PREP,
                       capture_output=True, text=True)
    check('swiftq eval fp32 against int8 (fidelity report)', r.returncode == 0, r.stderr.strip().splitlines()[-1] if r.returncode else '')
    if r.returncode == 0:
        e = json.load(open(os.path.join(tmp, 'e.json')))
        saved = np.load(os.path.join(tmp, 'o.npy'))
        ort_int8 = np.concatenate([o.ravel() for o in outs['swiftq max'][:8]])
        agree = fidelity(ort_int8, saved[1].ravel())[0]
        check(f'integer runtime ({e["models"][1]["runtime"]}) against ONNX Runtime on the same Q/DQ model: {agree:.1f} dB >= 30 dB',
              e['models'][1]['runtime'] == 'integer' and agree >= 30, f'float islands {e["models"][1]["float_islands"]}')
        print(f'  swiftq eval fidelity: {e["fidelity"]}')

tally.finish()
