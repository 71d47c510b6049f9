"""Accuracy table of swiftq's int8 models: every ../shared model with labels x method x per-channel/per-tensor,
ONNX Runtime running swiftq's Q/DQ model on ../shared/images/val. Calibrates once per model (the first 500
images of calib/labels.txt, the set ../shared/anchors/ort_ptq.py uses) and reuses the table for every method.
usage: quant_table.py SWIFTQ_BINARY [--methods max,percentile,entropy,mse] [--out DIR]"""
import argparse, json, os, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shared_path import shared_dir

ap = argparse.ArgumentParser()
ap.add_argument('swiftq'); ap.add_argument('--methods', default='max,percentile,entropy,mse'); ap.add_argument('--out')
a = ap.parse_args()
SHARED = shared_dir()
out = a.out or tempfile.mkdtemp(prefix='swiftq-table-')
os.makedirs(out, exist_ok=True)
calib = os.path.join(SHARED, 'images', 'calib')
val = os.path.join(SHARED, 'images', 'val')
models = json.load(open(os.path.join(SHARED, 'models', 'models.json')))

def ort_top1(model, m):
    r = subprocess.run([sys.executable, os.path.join(SHARED, 'anchors', 'ort_eval.py'), model, m['ort_preproc'], os.path.join(val, 'labels.txt'),
                        '--threads', '2'], capture_output=True, text=True)
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr.strip()[-300:]
    return float(line.split('top1=')[1].split()[0]) if 'top1=' in line else None

print('| model | fp32 top-1 (ORT) | ORT quantize_static MinMax (pc / pt) | method | per-channel int8 top-1 | per-tensor int8 top-1 |')
print('|---|---|---|---|---|---|')
for m in models:
    path = os.path.join(SHARED, 'models', m['file'])
    base = os.path.join(out, m['file'][:-5])
    r = subprocess.run([a.swiftq, 'quantize', path, '--calib', calib, '--calib-list', os.path.join(calib, 'labels.txt'), '--preset', m['preset'],
                        '-o', base + '.int8.onnx'], capture_output=True, text=True)
    if r.returncode != 0: print(f"| {m['file']} | calibration failed: {r.stderr.strip()[-200:]} |"); continue
    for method in a.methods.split(','):
        row = []
        for pt in (False, True):
            o = f"{base}.{method}{'.pt' if pt else ''}.onnx"
            r = subprocess.run([a.swiftq, 'quantize', path, '--calib-table', base + '.int8.calib.json', '--preset', m['preset'], '--method', method,
                                '-o', o] + (['--per-tensor'] if pt else []), capture_output=True, text=True)
            row.append(ort_top1(o, m) if r.returncode == 0 else None)
        fmt = lambda v: f'{v:.2f}' if v is not None else 'failed'
        print(f"| {m['file']} | {m['ort_fp32_top1']:.2f} | {m['ort_int8_pc_minmax500_top1']:.2f} / {m['ort_int8_pt_minmax500_top1']:.2f} | {method} | {fmt(row[0])} | {fmt(row[1])} |", flush=True)
