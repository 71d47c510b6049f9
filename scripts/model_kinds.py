"""The CNN kinds users bring, end to end, on the committed fixtures (Fixtures/model_kinds.py: an EfficientNet-B0-shaped
net, a YOLOv8-shaped detector, an NHWC Keras-style ResNet; random weights): swiftq quantizes each on
Fixtures/image-kinds, then for each

- the int8 model's outputs against the float model's on swiftq's integer runtime (`swiftq eval`'s fidelity
  report): SQNR at least the stated bound;
- ONNX Runtime loads the Q/DQ model, and in its optimized graph every Conv is a QLinearConv and every activation
  swiftq quantized runs in int8 (what is left in float is listed);
- swiftq's integer runtime against ONNX Runtime on the same Q/DQ model and the same pixels: SQNR at least 30 dB (on a CPU
  without VNNI, where ONNX Runtime's u8 x s8 kernels saturate, with the weights restated as uint8: shared_path.ort_exact_int8).

usage: model_kinds.py SWIFTQ   prints `N passed, N failed`, exits 1 on any failure.
"""
import collections, json, os, subprocess, sys, tempfile
import numpy as np, onnx, onnxruntime as ort
from PIL import Image
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shared_path import EXACT, NO_VNNI, ort_exact_int8, Tally

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
FIX = os.path.join(ROOT, 'Fixtures')
IMAGES = os.path.join(FIX, 'image-kinds')
BIN = sys.argv[1]
# (fixture, input side, bound on the int8-vs-float output SQNR in dB, extra quantize flags)
KINDS = [('effnet_b0_like', 64, 27.0, []), ('yolov8_like', 64, 35.0, []), ('keras_resnet_nhwc', 32, 36.0, [])]
tally = Tally()
check = tally.check
# Without VNNI, ONNX Runtime's u8 x s8 kernels saturate: the checks against it then run each int8 model with its
# weights restated as uint8 (shared_path.ort_exact_int8: the same arithmetic on its exact u8 x u8 kernels) and print
# the model-as-written figure beside them.



def pixels(path, size, nhwc):
    """swiftq's default preprocessing (preset torch: shorter side to size/0.875, bilinear, center crop)."""
    im = Image.open(path).convert('RGB')
    resize = round(size / 0.875)
    w, h = im.size
    s = resize / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = im.size
    l, t = (w - size) // 2, (h - size) // 2
    a = np.asarray(im.crop((l, t, l + size, t + size)), dtype=np.float32)
    a = (a / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return (a[None] if nhwc else a.transpose(2, 0, 1)[None]).astype(np.float32)


def sqnr(ref, got):
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    noise = ((ref - got) ** 2).sum()
    return float('inf') if noise == 0 else 10 * np.log10((ref ** 2).sum() / noise)


with tempfile.TemporaryDirectory() as tmp:
    for name, size, bound, flags in KINDS:
        model = os.path.join(FIX, name + '.onnx')
        out = os.path.join(tmp, name + '.int8.onnx')
        r = subprocess.run([BIN, 'quantize', model, '--calib', IMAGES, '--size', str(size), '-o', out, '--json', os.path.join(tmp, 'q.json')] + flags,
                           capture_output=True, text=True)
        check(f'{name}: quantize', r.returncode == 0, r.stderr.strip().splitlines()[-1] if r.returncode else '')
        if r.returncode:
            continue
        q = json.load(open(os.path.join(tmp, 'q.json')))
        print(f'  quantized {q["quantized_by_op"]}; float {q["float_nodes"]}')
        ej, preds, outs = (os.path.join(tmp, f) for f in ('e.json', 'p.txt', 'o.npy'))
        r = subprocess.run([BIN, 'eval', model, out, '--data', IMAGES, '--size', str(size), '--json', ej, '--predictions', preds, '--save-outputs', outs],
                           capture_output=True, text=True)
        check(f'{name}: eval fp32 against int8', r.returncode == 0, r.stderr.strip().splitlines()[-1] if r.returncode else '')
        if r.returncode:
            continue
        e = json.load(open(ej))
        runtime = e['models'][1]['runtime']
        fid = e['fidelity'][0]
        check(f'{name}: int8 output SQNR {fid["sqnr_db"]:.2f} dB (cosine {fid["cosine"]:.5f}) on the {runtime} runtime >= {bound} dB',
              runtime == 'integer' and fid['sqnr_db'] >= bound, f'float islands {e["models"][1]["float_islands"]}')
        # ONNX Runtime: what its optimizer makes of the Q/DQ model.
        so = ort.SessionOptions()
        so.optimized_model_filepath = os.path.join(tmp, 'opt.onnx')
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(out, so, providers=['CPUExecutionProvider'])
        except Exception as ex:
            check(f'{name}: ONNX Runtime loads the int8 model', False, str(ex)[:200])
            continue
        ops = collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)
        left = {k: v for k, v in ops.items() if not k.startswith('QLinear') and k not in ('QuantizeLinear', 'DequantizeLinear', 'QGemm')}
        check(f'{name}: ONNX Runtime runs every Conv as QLinearConv ({ops["QLinearConv"]})', ops['Conv'] == 0 and ops['QLinearConv'] > 0,
              f'left in float: {dict(left)}')
        print(f'  ONNX Runtime optimized graph: {dict(ops)}')
        # The integer runtime against ONNX Runtime, image by image, on the same pixels.
        saved = np.load(outs)
        nhwc = name.endswith('nhwc')
        rows = [l.split()[0] for l in open(preds) if not l.startswith('#')]
        ref, got = [], []
        for i, rel in enumerate(rows):
            if np.isnan(saved[1][i]).any():
                continue
            x = pixels(os.path.join(IMAGES, rel), size, nhwc)
            ref.append(session.run(None, {session.get_inputs()[0].name: x})[0].ravel())
            got.append(saved[1][i])
        agree = sqnr(np.concatenate(ref), np.concatenate(got)) if ref else float('nan')
        if not EXACT:
            exact = ort.InferenceSession(ort_exact_int8(out), providers=['CPUExecutionProvider'])
            print(f'  {NO_VNNI}; the model as written there against the integer runtime: {agree:.1f} dB')
            ref = [exact.run(None, {exact.get_inputs()[0].name: pixels(os.path.join(IMAGES, rel), size, nhwc)})[0].ravel()
                   for i, rel in enumerate(rows) if not np.isnan(saved[1][i]).any()]
            agree = sqnr(np.concatenate(ref), np.concatenate(got)) if ref else float('nan')
        check(f'{name}: integer runtime against ONNX Runtime on the same Q/DQ model, {len(ref)} images: {agree:.1f} dB >= 30 dB', agree >= 30)
        # 4-bit weights (GPTQ, INT4, the model moved to opset 21, which every kind's operators must survive): ONNX
        # Runtime loads and runs the INT4 model and tracks the float model on the same pixels.
        out4 = os.path.join(tmp, name + '.w4.onnx')
        r = subprocess.run([BIN, 'quantize', model, '--calib', IMAGES, '--size', str(size), '--weight-bits', '4', '-o', out4] + flags,
                           capture_output=True, text=True)
        ok, detail = r.returncode == 0, r.stderr.strip()[-200:]
        if ok:
            try:
                s4 = ort.InferenceSession(out4, providers=['CPUExecutionProvider'])
                fl = ort.InferenceSession(model, providers=['CPUExecutionProvider'])
                xs = [pixels(os.path.join(IMAGES, rel), size, nhwc) for i, rel in enumerate(rows) if not np.isnan(saved[1][i]).any()][:8]
                name_in = s4.get_inputs()[0].name
                w4 = sqnr(np.concatenate([fl.run(None, {name_in: x})[0].ravel() for x in xs]), np.concatenate([s4.run(None, {name_in: x})[0].ravel() for x in xs]))
                opset = onnx.load(out4).opset_import[0].version
                ok, detail = opset == 21 and w4 >= 18, f'opset {opset}, {w4:.1f} dB against float on 8 images (at least 18; measured 21.2, 27.9, 31.5)'
            except Exception as ex:
                ok, detail = False, str(ex)[:200]
        check(f'{name}: W4 (GPTQ, INT4) runs in ONNX Runtime', ok, detail)

    # A model with two inputs (an image and a vector), calibrated from .npz arrays; ONNX Runtime runs the int8
    # model on the same arrays, against the float model.
    two, out = os.path.join(FIX, 'two_inputs.onnx'), os.path.join(tmp, 'two.int8.onnx')
    r = subprocess.run([BIN, 'quantize', two, '--calib', os.path.join(FIX, 'arrays'), '-o', out], capture_output=True, text=True)
    check('two_inputs: quantize from .npz arrays', r.returncode == 0, r.stderr.strip().splitlines()[-1] if r.returncode else '')
    if r.returncode == 0:
        fs, qs, qw = (ort.InferenceSession(m, providers=['CPUExecutionProvider']) for m in (two, ort_exact_int8(out), out))
        ref, got, written = [], [], []
        for i in range(6):
            z = np.load(os.path.join(FIX, 'arrays', f'sample{i}.npz'))
            feeds = {'image': z['image'], 'aux': z['aux']}
            ref.append(fs.run(None, feeds)[0].ravel()); got.append(qs.run(None, feeds)[0].ravel()); written.append(qw.run(None, feeds)[0].ravel())
        v = sqnr(np.concatenate(ref), np.concatenate(got))
        ops = collections.Counter(n.op_type for n in onnx.load(out).graph.node)
        check(f'two_inputs: int8 in ONNX Runtime against float on the calibration arrays {v:.1f} dB >= 30 dB, both inputs quantized', v >= 30 and ops['QuantizeLinear'] >= 2, dict(ops))
        if not EXACT:
            print(f'  {NO_VNNI}; the model as written there against float: {sqnr(np.concatenate(ref), np.concatenate(written)):.1f} dB')

tally.finish()
