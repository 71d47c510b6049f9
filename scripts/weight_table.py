"""Sub-8-bit weights on every ../shared labelled model: model x {nearest (RTN), GPTQ} x {W8, W6, W4, W3}, activations
8-bit, per channel, calibration on the first 500 images of calib/labels.txt, top-1 on all of val by swiftq's integer
runtime. For W4 GPTQ also ONNX Runtime's top-1 on the same INT4 Q/DQ model and the share of images on which both
runtimes predict the same class, the model file's size against W8's, and the calibration/GPTQ time against plain
calibration. Then quantize --max-drop 0.5 on W4: the layers it moved and the evaluations it took.
usage: weight_table.py SWIFTQ_BINARY [--bits 8,6,4,3] [--out DIR] [--no-budget]"""
import argparse, json, os, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shared_path import shared_dir

ap = argparse.ArgumentParser()
ap.add_argument('swiftq'); ap.add_argument('--bits', default='8,6,4,3'); ap.add_argument('--out'); ap.add_argument('--no-budget', action='store_true')
a = ap.parse_args()
SHARED = shared_dir()
out = a.out or tempfile.mkdtemp(prefix='swiftq-weights-')
os.makedirs(out, exist_ok=True)
calib = os.path.join(SHARED, 'images', 'calib'); val = os.path.join(SHARED, 'images', 'val')
labels = os.path.join(val, 'labels.txt')
models = json.load(open(os.path.join(SHARED, 'models', 'models.json')))

def run(args):
    t = time.time()
    r = subprocess.run(args, capture_output=True, text=True)
    return r, time.time() - t

def quantize(path, m, o, extra):
    r, secs = run([a.swiftq, 'quantize', path, '--calib', calib, '--calib-list', os.path.join(calib, 'labels.txt'), '--preset', m['preset'],
                   '-o', o, '--threads', '2', '--json', o + '.json'] + extra)
    if r.returncode not in (0, 1): raise SystemExit(f"quantize {o} failed: {r.stderr.strip()[-300:]}")
    return json.load(open(o + '.json')), secs

def swiftq_top1(o, m, pred=None):
    r, _ = run([a.swiftq, 'eval', o, '--data', val, '--labels', labels, '--preset', m['preset'], '--threads', '2', '--json', o + '.eval.json']
               + (['--predictions', pred] if pred else []))
    if r.returncode != 0: raise SystemExit(f"eval {o} failed: {r.stderr.strip()[-300:]}")
    e = json.load(open(o + '.eval.json'))['models'][0]
    return e['top1'], e['runtime']

def ort_top1(o, m, pred):
    r, _ = run([sys.executable, os.path.join(SHARED, 'anchors', 'ort_eval.py'), o, m['ort_preproc'], labels, '--threads', '2', '--predictions', pred])
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr.strip()[-300:]
    return float(line.split('top1=')[1].split()[0]) if 'top1=' in line else None

def agreement(p1, p2):
    mine = {l.split()[0]: l.split()[2] for l in open(p1) if not l.startswith('#')}
    theirs = {l.split()[0]: l.split()[2] for l in open(p2) if not l.startswith('#')}
    return 100 * sum(mine.get(k) == v for k, v in theirs.items()) / max(len(theirs), 1)

bits = [int(b) for b in a.bits.split(',')]
rows, notes = [], []
for m in models:
    path = os.path.join(SHARED, 'models', m['file']); base = os.path.join(out, m['file'][:-5])
    # Plain calibration (nearest rounding, 8 bits): the time GPTQ is measured against, and the table RTN reuses.
    j8, plain = quantize(path, m, base + '.w8.onnx', [])
    top = {}
    for b in bits:
        for how in ('nearest', 'gptq'):
            o = f'{base}.w{b}.{how}.onnx'
            if how == 'nearest':
                j, _ = quantize(path, m, o, ['--calib-table', base + '.w8.calib.json', '--weight-bits', str(b), '--weight-rounding', 'nearest'])
            else:
                j, secs = quantize(path, m, o, ['--weight-bits', str(b), '--weight-rounding', 'gptq'])
                if b == 4: gptq_secs = secs
            pred = o + '.swiftq.txt'
            top[(b, how)] = swiftq_top1(o, m, pred)[0]
    o4 = f'{base}.w4.gptq.onnx'
    ort4 = ort_top1(o4, m, o4 + '.ort.txt')
    agree = agreement(o4 + '.swiftq.txt', o4 + '.ort.txt')
    size = os.path.getsize(o4) / os.path.getsize(base + '.w8.onnx')
    rows.append((m, top, ort4, agree, size, plain, gptq_secs))
    print(f"{m['file']}: fp32 {m['ort_fp32_top1']:.2f}; " + ', '.join(f"W{b} {top[(b, 'nearest')]:.2f}/{top[(b, 'gptq')]:.2f}" for b in bits)
          + f"; W4 GPTQ ORT {ort4}, agreement {agree:.2f}%, size {size:.3f}x W8, time {gptq_secs:.1f} s vs {plain:.1f} s", flush=True)
    if not a.no_budget:
        o = f'{base}.w4.budget.onnx'
        jb, secs = quantize(path, m, o, ['--weight-bits', '4', '--max-drop', '0.5', '--eval-data', val, '--eval-limit', '1300'])
        bud = jb['accuracy_budget']
        t1, _ = swiftq_top1(o, m, o + '.swiftq.txt')
        ortb = ort_top1(o, m, o + '.ort.txt')
        notes.append(f"| {m['file']} | {'met' if bud['met'] else 'NOT met'} | {bud['start']['top1_drop']:.2f} → {(bud['steps'][-1]['score']['top1_drop'] if bud['steps'] else bud['start']['top1_drop']):.2f} "
                     f"| {bud['moved']} of {len(jb['layers'])} | {bud['evaluations']} | {t1:.2f} / {ortb:.2f} | {secs:.0f} s |")
        print(notes[-1], flush=True)

print()
print('| model | fp32 | ' + ' | '.join(f'W{b} RTN | W{b} GPTQ' for b in bits) + ' | W4 GPTQ in ONNX Runtime (agreement) | W4 file / W8 file | calibration + GPTQ / calibration |')
print('|---|---|' + '---|---|' * len(bits) + '---|---|---|')
for m, top, ort4, agree, size, plain, g in rows:
    print(f"| {m['file']} | {m['ort_fp32_top1']:.2f} | " + ' | '.join(f"{top[(b, 'nearest')]:.2f} | {top[(b, 'gptq')]:.2f}" for b in bits)
          + f" | {ort4:.2f} ({agree:.2f}%) | {size:.3f} | {g:.1f} s / {plain:.1f} s |")
if notes:
    print()
    print('| model (W4, --max-drop 0.5 on all 1300 val images) | budget | top-1 drop start → end | layers moved | evaluations | top-1 swiftq / ONNX Runtime | whole run |')
    print('|---|---|---|---|---|---|---|')
    print('\n'.join(notes))
