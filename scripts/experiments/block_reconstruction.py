"""Experiment (issue 16), not product code: BRECQ-style block reconstruction (AdaRound's soft rounding trained
over blocks of layers) on a W4 Q/DQ model that `swiftq quantize --weight-bits 4` wrote, to measure what it
gains over GPTQ before it is built natively. It reads the Q/DQ model (weight scales, activation Q/DQ, GPTQ's
integers as the starting rounding) and the float model (float weights; BatchNormalization folded as swiftq
names it, <conv>_bnfolded_weight/_bias), cuts the graph into blocks where one tensor is live (merged to at
least --min-layers weighted layers), and for each block in order trains the rounding of its weights (and,
with --train-bias, its biases) so that the block, fed the quantized model's input (activations fake-quantized
at the model's own scales, straight-through), reproduces the float model's block output (squared error summed
over channels, AdaRound's rounding regularizer with beta annealed 20 -> 2 after 20% of the iterations).
Early blocks train on random --crop x --crop windows of their input, the loss taken --margin output pixels in
from the window's edges. The integers and biases are written back into a copy of the Q/DQ model, and both
models are scored by ONNX Runtime on the val images.

Needs PyTorch (CPU), onnx, onnxruntime, numpy, Pillow in its own venv (not the Makefile's):
  python3 -m venv /tmp/tenv && /tmp/tenv/bin/pip install torch onnx onnxruntime numpy pillow
usage: block_reconstruction.py QDQ FLOAT PREPROC CALIB_LABELS VAL_LABELS [--n 500 --iters 1000 --crop 32
       --init model --init-conf 0.25 --lr 3e-3 --bias model --train-bias 1e-4 --out OUT.onnx]
PREPROC is one of ../shared/anchors/preprocess.py's modes (torch, caffe_bgr, effnet_lite).
--bias-only trains the biases alone on the hard integers of --init (MobileNetV2 W4, `--init gptq --bias model
--train-bias 5e-4 --bias-only --iters 400 --n 500 --crop 32`, 623 s: every block's error fell 2-42%, the network's
top-1 76.23 -> 73.92 and output SQNR 8.37 -> 7.73 dB on val, 8.54 -> 7.97 on calibration images)."""
import os, sys, time, argparse, numpy as np, onnx, onnxruntime as ort
import torch, torch.nn.functional as TF
torch.set_num_threads(2)
from onnx import numpy_helper as nh, TensorProto, helper
sys.path.insert(0, os.path.join(os.environ.get('SWIFTQ_SHARED', os.path.join(os.path.dirname(__file__), '../../../shared')), 'anchors'))
from preprocess import prep

ap = argparse.ArgumentParser()
ap.add_argument('qdq'); ap.add_argument('float'); ap.add_argument('preproc'); ap.add_argument('calib'); ap.add_argument('val')
ap.add_argument('--n', type=int, default=256); ap.add_argument('--iters', type=int, default=2000)
ap.add_argument('--batch', type=int, default=32); ap.add_argument('--lam', type=float, default=0.01)
ap.add_argument('--lr', type=float, default=1e-3); ap.add_argument('--min-layers', type=int, default=3)
ap.add_argument('--train-bias', type=float, default=0.0, help='lr for the bias (0: float bias fixed)')
ap.add_argument('--bias-only', action='store_true', help='train only the biases (--train-bias), on the hard integers --init gives')
ap.add_argument('--bias', default='float', choices=['float', 'model'])
ap.add_argument('--init', default='nearest', choices=['nearest', 'model', 'gptq'],
                help='nearest: AdaRound between floor and ceil of W/s; model: the same, starting at GPTQ\'s integers where they are floor or ceil; gptq: between GPTQ\'s integer and its neighbour toward W/s, starting at GPTQ\'s')
ap.add_argument('--val-limit', type=int, default=0); ap.add_argument('--out', required=True)
ap.add_argument('--cache', default='/tmp', help='where the preprocessed images are kept between runs')
ap.add_argument('--no-act-quant', action='store_true'); ap.add_argument('--blocks', type=int, default=0); ap.add_argument('--crop', type=int, default=0); ap.add_argument('--init-conf', type=float, default=0.25); ap.add_argument('--margin', type=int, default=2)
a = ap.parse_args()
if a.bias_only and not a.train_bias: sys.exit('--bias-only needs --train-bias LR')

def cached(labels, limit, tag):
    path = os.path.join(a.cache, f'brecq_cache_{tag}_{a.preproc}_{limit}.npy')
    root = os.path.dirname(labels)
    items = [(os.path.join(root, l.split()[0]), int(l.split()[1])) for l in open(labels) if l.strip() and not l.startswith('#')]
    if limit: items = items[:limit]
    if os.path.exists(path): x = np.load(path)
    else:
        x = np.concatenate([prep(p, a.preproc) for p, _ in items]); np.save(path, x)
    return x, np.array([l for _, l in items])

m = onnx.load(a.qdq); g = m.graph
I = {t.name: nh.to_array(t) for t in g.initializer}
fm = onnx.load(a.float)
F = {t.name: nh.to_array(t) for t in fm.graph.initializer}
for n in fm.graph.node:  # BatchNormalization folded as swiftq folds it: <conv>_bnfolded_weight/_bias
    if n.op_type != 'Conv': continue
    bn = [c for c in fm.graph.node if c.op_type == 'BatchNormalization' and c.input[0] == n.output[0]]
    if not bn: continue
    bn = bn[0]; eps = next((at.f for at in bn.attribute if at.name == 'epsilon'), 1e-5)
    gm, bt, mu, var = (F[i].astype(np.float64) for i in bn.input[1:5])
    k = gm / np.sqrt(var + eps)
    w = F[n.input[1]].astype(np.float64); b = F[n.input[2]].astype(np.float64) if len(n.input) > 2 and n.input[2] else 0
    F[n.name + '_bnfolded_weight'] = (w * k.reshape(-1, 1, 1, 1)).astype(np.float32)
    F[n.name + '_bnfolded_bias'] = (bt + (b - mu) * k).astype(np.float32)

# ---- collapse the Q/DQ graph into ops over activations
ops = []; layers = {}; deq_w = {}; deq_b = {}
nodes = list(g.node)
qnodes = {n.output[0]: n for n in nodes if n.op_type == 'QuantizeLinear'}
for n in nodes:
    if n.op_type == 'Cast': deq_w[n.output[0]] = n.input[0]; continue
    if n.op_type == 'DequantizeLinear':
        src = n.input[0]
        if src in deq_w: deq_w[n.output[0]] = (deq_w[src], n.input[1]); continue
        if src in I and I[src].dtype == np.int32: deq_b[n.output[0]] = (src, n.input[1]); continue
        q = qnodes[src]  # activation Q/DQ pair
        ops.append(('FQ', [q.input[0]], [n.output[0]], dict(scale=float(I[q.input[1]]), zp=int(I[q.input[2]]),
                    lo=0 if I[q.input[2]].dtype == np.uint8 else -128, hi=255 if I[q.input[2]].dtype == np.uint8 else 127)))
        continue
    if n.op_type == 'QuantizeLinear': continue
    attrs = {at.name: helper.get_attribute_value(at) for at in n.attribute}
    ins = list(n.input)
    if n.op_type in ('Conv', 'Gemm'):
        wq, ws = deq_w[ins[1]]
        wname = wq[:-len('_quantized')]
        bname = None; bscale = None
        if len(ins) > 2 and ins[2]:
            bq, bs = deq_b[ins[2]]; bname = bq[:-len('_quantized')]; bscale = I[bs]
        s = I[ws].astype(np.float32)
        Wf = F[wname].astype(np.float32)
        bf = F[bname].astype(np.float32) if bname else None
        qint = I[wq].astype(np.int32)
        layers[n.name] = dict(w=wname, b=bname, s=s, W=Wf, bf=bf, bscale=bscale, bq=I[bq] if bname else None,
                              qint=qint, qmax=7, qmin=-7)
        ops.append((n.op_type, [ins[0]], list(n.output), dict(attrs, layer=n.name)))
        continue
    if n.op_type == 'Clip':
        ops.append(('Clip', [ins[0]], list(n.output), dict(lo=float(I[ins[1]]), hi=float(I[ins[2]])))); continue
    ops.append((n.op_type, [i for i in ins if i not in I], list(n.output), attrs))
print(f'{len(ops)} ops, {len(layers)} weighted layers', flush=True)

# ---- blocks: cut where one tensor is live
consumers_after = {}
for i, (_, ins, _, _) in enumerate(ops):
    for t in ins: consumers_after[t] = max(consumers_after.get(t, -1), i)
inp = g.input[0].name; outname = g.output[0].name
cuts = []
live = {inp}
for i, (_, ins, outs, _) in enumerate(ops):
    live |= set(outs)
    live = {t for t in live if consumers_after.get(t, -1) > i or t == outname}
    if len(live) == 1: cuts.append((i, next(iter(live))))
blocks = []; start = 0; cur_in = inp
for i, t in cuts:
    seg_layers = [o[3]['layer'] for o in ops[start:i + 1] if o[0] in ('Conv', 'Gemm')]
    if len(seg_layers) >= a.min_layers or i == len(ops) - 1:
        blocks.append(dict(ops=ops[start:i + 1], inp=cur_in, out=t, layers=seg_layers)); start = i + 1; cur_in = t
if start < len(ops):
    blocks[-1]['ops'] += ops[start:]; blocks[-1]['out'] = outname
    blocks[-1]['layers'] += [o[3]['layer'] for o in ops[start:] if o[0] in ('Conv', 'Gemm')]
print('blocks:', [len(b['layers']) for b in blocks], flush=True)

ZETA, GAMMA = 1.1, -0.1
def hsoft(V): return torch.clamp(torch.sigmoid(V) * (ZETA - GAMMA) + GAMMA, 0, 1)
def sview(L): return L['s'].reshape((-1,) + (1,) * (L['W'].ndim - 1))

def weight(L, p, mode):
    if mode == 'float': return L['Wt']
    if mode == 'soft': q = L['floor'] + hsoft(p['V'])
    else: q = L['floor'] + (p['V'] >= 0).float()
    return torch.clamp(q, L['qmin'], L['qmax']) * L['st']

def ste_round(x): return x + (torch.round(x) - x).detach()

def run(opl, env, params, mode, actq):
    for op, ins, outs, at in opl:
        x = [env[t] for t in ins]
        if op == 'FQ':
            if actq:
                sc, zp = at['scale'], at['zp']
                q = torch.clamp(ste_round(x[0] / sc) + zp, at['lo'], at['hi'])
                y = (q - zp) * sc
            else: y = x[0]
        elif op in ('Conv', 'Gemm'):
            L = layers[at['layer']]; p = params.get(at['layer'], {})
            W = weight(L, p, mode)
            b = p['b'] if 'b' in p else (L['bt'] if L['bf'] is not None else None)
            if op == 'Conv':
                pads = at.get('pads', [0, 0, 0, 0]); st = at.get('strides', [1, 1]); xin = x[0]
                if pads[0] != pads[2] or pads[1] != pads[3]:
                    xin = TF.pad(xin, (pads[1], pads[3], pads[0], pads[2])); pads = [0, 0, 0, 0]
                y = TF.conv2d(xin, W, b, st, (pads[0], pads[1]), at.get('dilations', [1, 1]), at.get('group', 1))
            else:
                A = x[0]
                y = A @ (W.T if at.get('transB', 0) else W)
                if b is not None: y = y + b
        elif op == 'Clip': y = torch.clamp(x[0], at['lo'], at['hi'])
        elif op == 'Relu': y = torch.relu(x[0])
        elif op == 'Add': y = x[0] + x[1]
        elif op == 'GlobalAveragePool': y = torch.mean(x[0], dim=(2, 3), keepdim=True)
        elif op == 'Flatten': y = x[0].reshape(x[0].shape[0], -1)
        elif op == 'Concat': y = torch.cat(x, dim=at['axis'])
        elif op == 'MaxPool':
            k = at['kernel_shape']; st = at.get('strides', [1, 1]); pads = at.get('pads', [0, 0, 0, 0])
            y = TF.max_pool2d(x[0], k, st, (pads[0], pads[1]), ceil_mode=bool(at.get('ceil_mode', 0)))
        elif op == 'Softmax': y = torch.softmax(x[0], dim=at.get('axis', -1))
        else: raise SystemExit(f'op {op} not in the prototype')
        env[outs[0]] = y
    return env

for name, L in layers.items():
    s = sview(L)
    L['fl'] = base = np.floor(L['W'] / s)
    if a.init == 'gptq':  # the pair {g - 1, g} when GPTQ rounded W/s up, else {g, g + 1}
        gq = L['qint'].astype(np.float64); base = np.where(gq > L['W'] / s, gq - 1, gq)
    L['floor'] = torch.from_numpy(base.astype(np.float32)); L['st'] = torch.from_numpy(s.astype(np.float32)); L['Wt'] = torch.from_numpy(L['W'])
    if a.bias == 'model' and L['bf'] is not None: L['bias0'] = (L['bq'].astype(np.float32) * L['bscale']).astype(np.float32)
    else: L['bias0'] = L['bf']
    L['bt'] = torch.from_numpy(L['bias0']) if L['bf'] is not None else None

def init_params(names):
    P = {}
    for nme in names:
        L = layers[nme]; s = sview(L)
        if a.init == 'model':  # start from the model's (GPTQ) integers where they are floor or ceil
            rest = np.where(L['qint'] > L['fl'], 0.5 + a.init_conf, 0.5 - a.init_conf)
        elif a.init == 'gptq':
            rest = np.where(L['qint'] > L['floor'].numpy(), 0.5 + a.init_conf, 0.5 - a.init_conf)
        else: rest = L['W'] / s - L['fl']
        if a.init != 'nearest':
            print(f'  {nme}: gptq ints at floor {np.mean(L["qint"] == L["fl"]):.3f} ceil {np.mean(L["qint"] == L["fl"] + 1):.3f}')
        rest = np.clip(rest, 0.01, 0.99)
        V = -np.log((ZETA - GAMMA) / (rest - GAMMA) - 1)
        P[nme] = {'V': torch.tensor(V.astype(np.float32), requires_grad=True)}
        if a.train_bias and L['bf'] is not None: P[nme]['b'] = torch.tensor(L['bias0'], requires_grad=True)
    return P

def block_fn(B, mode, actq):
    def f(params, x):
        return run(B['ops'], {B['inp']: x}, params, mode, actq)[B['out']]
    return f

def chunked(f, params, X, bs=32):
    with torch.no_grad():
        return np.concatenate([f(params, torch.from_numpy(X[i:i + bs])).numpy() for i in range(0, len(X), bs)])

Xc, _ = cached(a.calib, a.n, 'calib')
Xq = Xc.copy(); Xf = Xc.copy()
actq = not a.no_act_quant
t_all = time.time()
final = {}
for bi, B in enumerate(blocks[:a.blocks] if a.blocks else blocks):
    t0 = time.time()
    ffloat = block_fn(B, 'float', False)
    Yf = chunked(ffloat, {}, Xf)
    P = init_params(B['layers'])
    ftrain = block_fn(B, 'hard' if a.bias_only else 'soft', actq)
    groups = [] if a.bias_only else [{'params': [P[k]['V'] for k in P], 'lr': a.lr}]
    if a.train_bias: groups.append({'params': [P[k]['b'] for k in P if 'b' in P[k]], 'lr': a.train_bias})
    opt = torch.optim.Adam(groups)
    rng = np.random.default_rng(bi)
    warm = int(0.2 * a.iters)
    fhard = block_fn(B, 'hard', actq)
    def hard_err(P):
        sub = slice(0, min(64, len(Xq)))
        o = chunked(fhard, P, Xq[sub]); return float(np.mean(np.sum((o - Yf[sub]) ** 2, axis=1)))
    e0 = hard_err(P)
    titer = time.time()
    cropping = bool(a.crop) and Yf.ndim == 4 and Xq.ndim == 4 and Xq.shape[2] > a.crop
    if cropping:
        H, Wd = Xq.shape[2:]; stride = H // Yf.shape[2]
        cropping = H == Yf.shape[2] * stride and a.crop % stride == 0
    for it in range(a.iters):
        idx = rng.choice(len(Xq), a.batch, replace=False)
        xb = Xq[idx]; yb = Yf[idx]
        if cropping:
            oy = rng.integers(0, (H - a.crop) // stride + 1) * stride; ox = rng.integers(0, (Wd - a.crop) // stride + 1) * stride
            xb = xb[:, :, oy:oy + a.crop, ox:ox + a.crop]
            co = a.crop // stride; mg = a.margin
            yb = yb[:, :, oy // stride + mg:oy // stride + co - mg, ox // stride + mg:ox // stride + co - mg]
        if it < warm: beta, lam = 20.0, 0.0
        else: beta, lam = 2 + 18 * (1 - (it - warm) / max(1, a.iters - warm)), a.lam
        out = ftrain(P, torch.from_numpy(np.ascontiguousarray(xb)))
        if cropping: out = out[:, :, mg:out.shape[2] - mg, mg:out.shape[3] - mg]
        rec = torch.mean(torch.sum((out - torch.from_numpy(np.ascontiguousarray(yb))) ** 2, dim=1))
        loss = rec
        if lam and not a.bias_only: loss = loss + lam * sum(torch.sum(1 - torch.abs(2 * hsoft(P[k]['V']) - 1) ** beta) for k in P)
        opt.zero_grad(); loss.backward(); opt.step()
    per_it = (time.time() - titer) / max(1, a.iters)
    e1 = hard_err(P)
    Xq = chunked(fhard, P, Xq); Xf = Yf
    final.update(P)
    print(f'block {bi} ({",".join(B["layers"])}): error at start {e0:.4g} -> {e1:.4g}, {time.time() - t0:.1f} s ({1000*per_it:.0f} ms/iter)', flush=True)
print(f'reconstruction {time.time() - t_all:.0f} s', flush=True)

# ---- write back the integers and biases
Iproto = {t.name: t for t in g.initializer}
for nme, P in final.items():
    L = layers[nme]
    q = torch.clamp(L['floor'] + (P['V'] >= 0).float(), L['qmin'], L['qmax']).detach().numpy().astype(np.int8)
    t = Iproto[L['w'] + '_quantized']
    nt = helper.make_tensor(t.name, TensorProto.INT4, list(q.shape), q.ravel().tolist())
    t.CopyFrom(nt)
    if L['bf'] is not None:
        b = P['b'].detach().numpy() if 'b' in P else L['bias0']
        bt = Iproto[L['b'] + '_quantized']
        bt.CopyFrom(nh.from_array(np.round(b / L['bscale']).astype(np.int32), bt.name))
onnx.save(m, a.out)

Xv, yv = cached(a.val, a.val_limit, 'val')
so = ort.SessionOptions(); so.intra_op_num_threads = 2
def logits(path, X):
    s = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    iname = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {iname: X[i:i + 1]})[0].reshape(1, -1) for i in range(len(X))])
ref = {'val': logits(a.float, Xv[:600]), 'calib': logits(a.float, Xc[:300])}
for path in (a.qdq, a.out):
    y = logits(path, Xv)
    line = f'{os.path.basename(path)}: top1 {100 * np.mean(y.argmax(1) == yv):.2f} on {len(yv)} val images'
    for nm, f in ref.items():  # the logits against the float model's: the first 600 val, the first 300 calibration images
        q = y[:600] if nm == 'val' else logits(path, Xc[:300])
        line += f'; {nm}: SQNR {10 * np.log10((f ** 2).sum() / ((f - q) ** 2).sum()):.2f} dB, agreement {100 * np.mean(f.argmax(1) == q.argmax(1)):.2f}%'
    print(line, flush=True)
