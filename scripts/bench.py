"""Side-by-side benchmark of swiftq and ONNX Runtime on the models in ../shared/models (or $SWIFTQ_SHARED).
usage: bench.py SWIFTQ_BINARY [--threads N] [--seconds S] [--rounds R] [--e2e-images N] [--models a,b] [--sections float,kinds,e2e,calib,int8]
Float network throughput (and, last, int8: swiftq's integer runtime against ONNX Runtime on the same Q/DQ model): batch 1, the same deterministic input shape, the same thread count; each tool is
timed for S seconds per round, rounds alternate between the tools (the machine is shared and noisy) and the
best round's median counts. End to end: `swiftq eval` and the ONNX Runtime anchor (ort_eval.py, PIL decoding)
on the first N val images. Prints images/s for both and the ratio swiftq / ONNX Runtime. Model kinds: the float section
on full-size networks of the kinds users bring that ../shared lacks (Fixtures/model_kinds.py: EfficientNet-B0 with SiLU
and squeeze-excitation at 224, YOLOv8n at 640; random weights, generated into a temporary directory)."""
import argparse, atexit, json, os, shutil, subprocess, sys, tempfile, time
import numpy as np, onnxruntime as ort
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shared_path import shared_dir, EXACT, ort_exact_int8

ap = argparse.ArgumentParser()
ap.add_argument('swiftq'); ap.add_argument('--threads', type=int, default=os.cpu_count())
ap.add_argument('--seconds', type=float, default=1.5); ap.add_argument('--rounds', type=int, default=5)
ap.add_argument('--e2e-images', type=int, default=300); ap.add_argument('--models', default='')
ap.add_argument('--sections', default='float,kinds,e2e,calib,int8', help='which parts to run (comma-separated)')
ap.add_argument('--float-threads', default='', help='thread counts of the float section (default: --threads, then 1)')
ap.add_argument('--calib-images', type=int, default=1000, help='calibration side by side with ORT quantize_static MinMax (0: skip)')
a = ap.parse_args()
SECTIONS = set(a.sections.split(','))
if 'e2e' not in SECTIONS: a.e2e_images = 0
if 'calib' not in SECTIONS: a.calib_images = 0
FLOAT_THREADS = [int(t) for t in a.float_threads.split(',')] if a.float_threads else sorted({a.threads, 1}, reverse=True)
SWIFTQ = os.path.abspath(a.swiftq)
SHARED = shared_dir()
INFO = {m['file']: m for m in json.load(open(os.path.join(SHARED, 'models', 'models.json')))}
DET = 'detection/ppocrv4-det.onnx'
FIXED = {'ppocr-mobile-v2-cls.onnx': [1, 3, 48, 192], DET: [1, 3, 640, 640]}
# The detector's own preprocessing (models/README.md) for quantizing it; ImageNet models use their preset.
DET_QUANT = ['--size', '640', '--resize', '640', '--mean', '0.5,0.5,0.5', '--std', '0.5,0.5,0.5', '--scale', '1/255', '--bgr', '--input-shape', 'x=1,3,640,640']
models = sorted(f for f in os.listdir(os.path.join(SHARED, 'models')) if f.endswith('.onnx'))
if os.path.exists(os.path.join(SHARED, 'models', DET)): models.append(DET)
# Quantized models of the calibration section, reused by the int8 section; removed at exit.
tmp = tempfile.mkdtemp(prefix='swiftq-bench-'); atexit.register(shutil.rmtree, tmp, True)
if a.models: models = [m for m in models if any(k in m for k in a.models.split(','))]
VAL = os.path.join(SHARED, 'images', 'val')
CALIB = os.path.join(SHARED, 'images', 'calib')

def ort_rate(sess, feeds):
    for _ in range(5): sess.run(None, feeds)
    times = []; start = time.perf_counter()
    while len(times) < 10 or time.perf_counter() - start < a.seconds:
        t0 = time.perf_counter(); sess.run(None, feeds); times.append(time.perf_counter() - t0)
    return 1 / float(np.median(times))

def swiftq_rate(path, shape_args, threads=None):
    r = subprocess.run([SWIFTQ, 'bench', path, '--threads', str(threads or a.threads), '--seconds', str(a.seconds), '--json', '-', *shape_args],
                       capture_output=True, text=True)
    if r.returncode != 0: sys.exit(f'swiftq bench {path} failed: {r.stderr.strip()}')
    return json.loads(r.stdout)['images_per_second']

def profile_facts(path, shape_args, threads):
    """Multiply-accumulates of one image and this machine's peak FLOP/s on `threads` (swiftq bench --profile)."""
    r = subprocess.run([SWIFTQ, 'bench', path, '--threads', str(threads), '--seconds', '0.2', '--profile', '--json', '-', *shape_args],
                       capture_output=True, text=True)
    if r.returncode != 0: sys.exit(f'swiftq bench --profile {path} failed: {r.stderr.strip()}')
    j = json.loads(r.stdout)
    return j['macs'], j['peak_gflops']

ratios = {}; float_rate = {}
# The float section's networks: ../shared's, then (section kinds) the generated full-size kinds.
float_runs = [(f, os.path.join(SHARED, 'models', f)) for f in models] if 'float' in SECTIONS else []
if 'kinds' in SECTIONS:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'Fixtures'))
    import onnx, model_kinds
    for make in (model_kinds.effnet_b0_full, model_kinds.yolov8n_full):
        kind = os.path.join(tmp, make.__name__ + '.onnx')
        onnx.save(make(), kind)
        float_runs.append((f'{make.__name__} (kind)', kind))
for threads in (FLOAT_THREADS if float_runs else []):
    print(f'float throughput, batch 1, {threads} thread{"s" if threads > 1 else ""}, best of {a.rounds} rounds x {a.seconds:g} s (ONNX Runtime {ort.__version__})')
    print(f"{'model':28}{'swiftq img/s':>14}{'ORT img/s':>12}{'ratio':>8}{'swiftq % peak':>15}{'ORT % peak':>12}")
    for f, path in float_runs:
        so = ort.SessionOptions(); so.intra_op_num_threads = threads
        sess = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
        i = sess.get_inputs()[0]
        shape = FIXED.get(f) or [d if isinstance(d, int) else 1 for d in i.shape]
        x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
        shape_args = ['--input-shape', f"{i.name}={'x'.join(map(str, shape))}"] if f in FIXED else []
        macs, peak = profile_facts(path, shape_args, threads)
        mine = theirs = 0.0
        for _ in range(a.rounds):
            mine = max(mine, swiftq_rate(path, shape_args, threads))
            theirs = max(theirs, ort_rate(sess, {i.name: x}))
        del sess
        ratios[(f, threads)] = mine / theirs
        if threads == a.threads: float_rate[f] = mine
        pct = lambda rate: 100 * 2 * macs * rate / (peak * 1e9)
        print(f'{f:28}{mine:14.1f}{theirs:12.1f}{mine / theirs:7.2f}x{pct(mine):14.0f}%{pct(theirs):11.0f}%', flush=True)
    shared = [r for (f, t), r in ratios.items() if t == threads and not f.endswith('(kind)')]
    kinds = [r for (f, t), r in ratios.items() if t == threads and f.endswith('(kind)')]
    line = f"lowest ratio at {threads} thread{'s' if threads > 1 else ''}"
    if shared: line += f" on ../shared {min(shared):.2f}x (target 1.0x: {'met' if min(shared) >= 1 else 'NOT met'})"
    if kinds: line += f"{',' if shared else ''} on the kinds {min(kinds):.2f}x"
    print(line + '\n')

labelled = [f for f in models if f in INFO]
if a.e2e_images and labelled:
    # Alternating rounds (swiftq, then ONNX Runtime + Pillow, R times), best of each: single runs of about a second
    # each swung by up to 1.4x between minutes on this shared machine.
    rounds = max(1, min(a.rounds, 3))
    print(f'\nend to end (decode + preprocess + network), first {a.e2e_images} val images, {a.threads} threads, best of {rounds} alternating rounds')
    print(f"{'model':28}{'swiftq img/s':>14}{'ORT img/s':>12}{'ratio':>8}")
    low = float('inf')
    for f in labelled:
        m = INFO[f]; path = os.path.join(SHARED, 'models', f)
        mine = theirs = 0.0
        for _ in range(rounds):
            r = subprocess.run([SWIFTQ, 'eval', path, '--data', VAL, '--labels', os.path.join(VAL, 'labels.txt'), '--preset', m['preset'],
                                '--limit', str(a.e2e_images), '--threads', str(a.threads), '--json', '-'], capture_output=True, text=True)
            if r.returncode != 0: sys.exit(f'swiftq eval {f} failed: {r.stderr.strip()}')
            mine = max(mine, json.loads(r.stdout)['models'][0]['end_to_end_images_per_second'])
            r = subprocess.run([sys.executable, os.path.join(SHARED, 'anchors', 'ort_eval.py'), path, m['ort_preproc'], os.path.join(VAL, 'labels.txt'),
                                '--limit', str(a.e2e_images), '--threads', str(a.threads), '--size', str(m['size']), '--resize', str(m['resize'])],
                               capture_output=True, text=True)
            if r.returncode != 0: sys.exit(f'ort_eval.py {f} failed: {r.stderr.strip()}')
            theirs = max(theirs, float(r.stdout.split('e2e_img_s=')[1].split()[0]))
        low = min(low, mine / theirs)
        print(f'{f:28}{mine:14.1f}{theirs:12.1f}{mine / theirs:7.2f}x', flush=True)
    print(f"lowest ratio {low:.2f}x (target 1.3x: {'met' if low >= 1.3 else 'NOT met'})")

if a.calib_images and labelled:
    # Calibration over N images with every statistic swiftq keeps (min/max, 2048-bin histograms), against ONNX
    # Runtime's quantize_static MinMax (ort_ptq.py) on the same N images, one after the other in this run.
    print(f'\ncalibration of {a.calib_images} images (../shared/images/calib): wall seconds and peak RSS')
    print(f"{'model':28}{'swiftq s':>10}{'ORT s':>8}{'ratio':>8}{'swiftq MiB':>12}{'ORT MiB':>9}")
    for f in labelled:
        m = INFO[f]; path = os.path.join(SHARED, 'models', f)
        out = os.path.join(tmp, f[:-5] + '.int8.onnx')
        t0 = time.perf_counter()
        r = subprocess.run(['/usr/bin/time', '-f', 'peak_kib=%M', SWIFTQ, 'quantize', path, '--calib', CALIB, '--calib-list', os.path.join(CALIB, 'labels.txt'),
                            '--calib-limit', str(a.calib_images), '--preset', m['preset'], '-o', out], capture_output=True, text=True)
        mine = time.perf_counter() - t0
        if r.returncode != 0: sys.exit(f'swiftq quantize {f} failed: {r.stderr.strip()[-400:]}')
        mine_mib = int(r.stderr.split('peak_kib=')[1].split()[0]) / 1024
        r = subprocess.run([sys.executable, os.path.join(SHARED, 'anchors', 'ort_ptq.py'), path, m['ort_preproc'], os.path.join(CALIB, 'labels.txt'),
                            str(a.calib_images), 'minmax', os.path.join(tmp, f[:-5] + '.ort.onnx')], capture_output=True, text=True)
        if 'wall_s=' not in r.stdout: sys.exit(f'ort_ptq.py {f} failed: {r.stderr.strip()[-400:]}')
        theirs = float(r.stdout.split('wall_s=')[1].split()[0]); theirs_mib = float(r.stdout.split('peak_rss_mib=')[1].split()[0])
        print(f'{f:28}{mine:10.1f}{theirs:8.1f}{mine / theirs:7.2f}x{mine_mib:12.0f}{theirs_mib:9.0f}', flush=True)
    print('(swiftq: whole process, including reading the model and writing three files; ONNX Runtime: quantize_static only)')

    # GPTQ (W4A8) against plain calibration on the 500 images the accuracy tables use: whole swiftq processes,
    # alternating, best of two each; the target is GPTQ under 2x plain, peak memory under 1 GiB.
    print(f'\nGPTQ W4A8 against plain calibration, 500 images (first 500 of calib/labels.txt): wall seconds, best of 2 alternating')
    print(f"{'model':28}{'plain s':>9}{'GPTQ s':>8}{'ratio':>8}{'GPTQ MiB':>10}")
    worst = 0
    for f in labelled:
        m = INFO[f]; path = os.path.join(SHARED, 'models', f)
        best = {}
        for rnd in range(2):
            for how, extra in (('plain', []), ('gptq', ['--weight-bits', '4'])):
                out = os.path.join(tmp, f[:-5] + f'.{how}.onnx')
                t0 = time.perf_counter()
                r = subprocess.run(['/usr/bin/time', '-f', 'peak_kib=%M', SWIFTQ, 'quantize', path, '--calib', CALIB, '--calib-list', os.path.join(CALIB, 'labels.txt'),
                                    '--calib-limit', '500', '--preset', m['preset'], '--threads', str(a.threads), '-o', out, *extra], capture_output=True, text=True)
                secs = time.perf_counter() - t0
                if r.returncode != 0: sys.exit(f'swiftq quantize {f} ({how}) failed: {r.stderr.strip()[-400:]}')
                mib = int(r.stderr.split('peak_kib=')[1].split()[0]) / 1024
                if how not in best or secs < best[how][0]: best[how] = (secs, mib)
        ratio = best['gptq'][0] / best['plain'][0]; worst = max(worst, ratio)
        print(f"{f:28}{best['plain'][0]:9.1f}{best['gptq'][0]:8.1f}{ratio:7.2f}x{best['gptq'][1]:10.0f}", flush=True)
    print(f"highest GPTQ / plain {worst:.2f}x (target under 2x: {'met' if worst < 2 else 'NOT met'})")

int8_models = labelled + [f for f in models if f == DET]
if int8_models and 'int8' in SECTIONS:
    # int8: swiftq's Q/DQ model with its weight file runs on swiftq's integer runtime; ONNX Runtime runs the same
    # Q/DQ model (it fuses it into QLinearConv & co.). Same input, batch 1, same threads, alternating rounds.
    print(f'\nint8 throughput, batch 1, {a.threads} threads, best of {a.rounds} rounds x {a.seconds:g} s (the same swiftq Q/DQ model in both)')
    # Without VNNI ONNX Runtime's u8 x s8 kernels saturate (shared_path.ort_exact_int8): its exact run of the same model
    # (weights restated as uint8, u8 x u8 kernels) is timed beside it.
    exact_cols = '' if EXACT else f"{'ORT exact':>11}{'vs exact':>9}"
    print(f"{'model':28}{'swiftq img/s':>14}{'ORT img/s':>12}{'vs ORT':>8}{exact_cols}{'swiftq fp32':>13}{'vs fp32':>9}")
    low_ort = low_fp32 = float('inf')
    for f in int8_models:
        path = os.path.join(SHARED, 'models', f)
        out = os.path.join(tmp, os.path.basename(f)[:-5] + '.int8.onnx')
        if not os.path.exists(out):
            flags = DET_QUANT if f == DET else ['--preset', INFO[f]['preset']]
            r = subprocess.run([SWIFTQ, 'quantize', path, '--calib', CALIB, '--calib-limit', '32' if f == DET else '100', *flags, '-o', out], capture_output=True, text=True)
            if r.returncode != 0: sys.exit(f'swiftq quantize {f} failed: {r.stderr.strip()[-400:]}')
        so = ort.SessionOptions(); so.intra_op_num_threads = a.threads
        sess = ort.InferenceSession(out, so, providers=['CPUExecutionProvider'])
        i = sess.get_inputs()[0]
        x = np.random.default_rng(0).uniform(-1, 1, FIXED.get(f) or [d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
        exact = None if EXACT else ort.InferenceSession(ort_exact_int8(out), so, providers=['CPUExecutionProvider'])
        mine = theirs = exact_rate = 0.0
        for _ in range(a.rounds):
            mine = max(mine, swiftq_rate(out, ['--input-shape', 'x=1x3x640x640'] if f == DET else []))
            theirs = max(theirs, ort_rate(sess, {i.name: x}))
            if exact: exact_rate = max(exact_rate, ort_rate(exact, {i.name: x}))
        del sess, exact
        fp = float_rate.get(f, 0)
        low_ort = min(low_ort, mine / theirs); low_fp32 = min(low_fp32, mine / fp if fp else float('inf'))
        fp_cols = f'{fp:13.1f}{mine / fp:8.2f}x' if fp else f"{'-':>13}{'-':>9}"
        exact_cols = '' if EXACT else f'{exact_rate:11.1f}{mine / exact_rate:8.2f}x'
        print(f'{f:28}{mine:14.1f}{theirs:12.1f}{mine / theirs:7.2f}x{exact_cols}{fp_cols}', flush=True)
    against_fp32 = (f"vs swiftq fp32 {low_fp32:.2f}x (target 1.5x: {'met' if low_fp32 >= 1.5 else 'NOT met'})" if low_fp32 != float('inf')
                    else 'vs swiftq fp32 not measured (run the float section too)')
    print(f"lowest int8 ratio vs ORT int8 {low_ort:.2f}x (target 1.0x: {'met' if low_ort >= 1 else 'NOT met'}), {against_fp32}")
