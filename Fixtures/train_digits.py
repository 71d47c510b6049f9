"""Trains the demo model: a small MobileNetV2-style CNN on the handwritten digits that scikit-learn ships inside
its wheel (1797 8x8 greyscale images, 10 classes). Run with `make demo-model` (pinned packages in
Fixtures/train_digits.requirements.txt, a venv of its own); the outputs are committed so `make demo` needs no
Python. Deterministic: the split, the initial weights, the batches and the shifts come from fixed seeds, and
training runs on the CPU in float32; a second run writes the same bytes.

digits/digits.onnx            the float model. Input `image` [N, 1, 8, 8] (pixel / 255), output `logits` [N, 10].
                              Stem Conv 3x3 + BatchNormalization + Clip(0, 6) (ReLU6); an inverted residual block
                              (1x1 expand, depthwise 3x3, 1x1 project, residual Add); MaxPool 2x2; two more
                              inverted residual blocks, the last with a residual Add; GlobalAveragePool, Flatten,
                              Gemm. Its metadata records the preprocessing (grey, 8x8, /255), so swiftq needs no
                              preprocessing flags.
digits/train/<digit>/*.png    the training split (1437 images, 80%, stratified): training and calibration.
digits/test/<digit>/*.png     the held-out split (360 images): evaluation only.

Pixels: scikit-learn's values 0..16, scaled to round(v * 255 / 16), saved as 8-bit greyscale PNG; the network
sees exactly png_byte / 255.
"""
import json, os, shutil
import numpy as np
import jax, jax.numpy as jnp
import onnx
from onnx import helper, numpy_helper, TensorProto
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'digits')
EPOCHS, BATCH, LR, WEIGHT_DECAY, BN_EPS = 60, 64, 3e-3, 1e-4, 1e-5

def dataset():
    d = load_digits()
    pixels = np.rint(d.images * (255 / 16)).astype(np.uint8)
    idx = np.arange(len(pixels))
    tr, te = train_test_split(idx, test_size=0.2, random_state=0, stratify=d.target)
    return pixels, d.target.astype(np.int64), np.sort(tr), np.sort(te)

# ---- the network: a list of layers, parameters in a dict -------------------------------------------------------
# ('conv', name, cin, cout, k, stride, groups, act): Conv (no bias) + BatchNormalization (+ ReLU6 when act)
# ('block_start',) / ('add',): the residual input, and its Add
def inverted_residual(name, cin, hidden, cout):
    """MobileNetV2's block: 1x1 expand + ReLU6, depthwise 3x3 + ReLU6, 1x1 project; a residual Add when the shape keeps."""
    convs = [('conv', f'{name}.expand', cin, hidden, 1, 1, 1, True), ('conv', f'{name}.dw', hidden, hidden, 3, 1, hidden, True),
             ('conv', f'{name}.project', hidden, cout, 1, 1, 1, False)]
    return [('block_start',)] + convs + [('add', f'{name}.add')] if cin == cout else convs

LAYERS = [('conv', 'stem', 1, 16, 3, 1, 1, True)] + inverted_residual('b1', 16, 32, 16) + [('maxpool', 'pool')] \
    + inverted_residual('b2', 16, 48, 24) + inverted_residual('b3', 24, 72, 24)
FEATURES, CLASSES = 24, 10

def init_params(rng):
    params, stats = {}, {}
    for l in LAYERS:
        if l[0] != 'conv':
            continue
        _, name, cin, cout, k, _, groups, _ = l
        fan_in = cin // groups * k * k
        params[name + '.w'] = (rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2 / fan_in)).astype(np.float32)
        params[name + '.gamma'] = np.ones(cout, np.float32)
        params[name + '.beta'] = np.zeros(cout, np.float32)
        stats[name + '.mean'] = np.zeros(cout, np.float32)
        stats[name + '.var'] = np.ones(cout, np.float32)
    params['fc.w'] = (rng.standard_normal((CLASSES, FEATURES)) * np.sqrt(1 / FEATURES)).astype(np.float32)
    params['fc.b'] = np.zeros(CLASSES, np.float32)
    return params, stats

def forward(params, stats, x, train):
    """Logits, and (in training) each BatchNormalization's batch mean and variance."""
    batch_stats, residual = {}, None
    for l in LAYERS:
        if l[0] == 'block_start':
            residual = x
        elif l[0] == 'add':
            x = x + residual
        elif l[0] == 'maxpool':
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), 'VALID')
        else:
            _, name, _, _, k, stride, groups, act = l
            x = jax.lax.conv_general_dilated(x, params[name + '.w'], (stride, stride), [(k // 2, k // 2)] * 2,
                                             dimension_numbers=('NCHW', 'OIHW', 'NCHW'), feature_group_count=groups)
            if train:
                mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
                batch_stats[name] = (mean, var)
            else:
                mean, var = stats[name + '.mean'], stats[name + '.var']
            x = (x - mean[None, :, None, None]) * (params[name + '.gamma'] / jnp.sqrt(var + BN_EPS))[None, :, None, None] \
                + params[name + '.beta'][None, :, None, None]
            if act:
                x = jnp.clip(x, 0, 6)
    x = x.mean(axis=(2, 3))
    return x @ params['fc.w'].T + params['fc.b'], batch_stats

def loss_fn(params, stats, x, y):
    logits, batch_stats = forward(params, stats, x, True)
    nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))
    decay = sum(jnp.sum(v * v) for k, v in params.items() if k.endswith('.w'))
    return nll + WEIGHT_DECAY * decay, batch_stats

@jax.jit
def train_step(params, stats, opt, x, y, lr, t):
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y)
    m, v = opt
    m = {k: 0.9 * m[k] + 0.1 * grads[k] for k in params}
    v = {k: 0.999 * v[k] + 0.001 * grads[k] ** 2 for k in params}
    params = {k: params[k] - lr * (m[k] / (1 - 0.9 ** t)) / (jnp.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8) for k in params}
    n = x.shape[0] * x.shape[2] * x.shape[3]
    for name, (mean, var) in batch_stats.items():
        stats[name + '.mean'] = 0.9 * stats[name + '.mean'] + 0.1 * mean
        stats[name + '.var'] = 0.9 * stats[name + '.var'] + 0.1 * var * n / (n - 1)
    return params, stats, (m, v), loss

def shifted(images, rng):
    """Each image moved by up to one pixel in each direction (zeros shifted in): the only augmentation."""
    out = np.zeros_like(images)
    for i, (dy, dx) in enumerate(rng.integers(-1, 2, size=(len(images), 2))):
        out[i, :, max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)] = \
            images[i, :, max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)]
    return out

def train(x, y):
    rng = np.random.default_rng(0)
    params, stats = init_params(rng)
    opt = ({k: np.zeros_like(v) for k, v in params.items()}, {k: np.zeros_like(v) for k, v in params.items()})
    steps_per_epoch = len(x) // BATCH
    total, t = EPOCHS * steps_per_epoch, 0
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x))
        for s in range(steps_per_epoch):
            b = order[s * BATCH:(s + 1) * BATCH]
            t += 1
            lr = np.float32(LR * 0.5 * (1 + np.cos(np.pi * (t - 1) / total)))
            params, stats, opt, loss = train_step(params, stats, opt, shifted(x[b], rng), y[b], lr, np.float32(t))
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            print(f'epoch {epoch + 1}: loss {float(loss):.4f}')
    return {k: np.asarray(v) for k, v in params.items()}, {k: np.asarray(v) for k, v in stats.items()}

# ---- export ------------------------------------------------------------------------------------------------------
def export(params, stats, path):
    inits, nodes, x, residual = [], [], 'image', None
    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name
    relu6 = (const('relu6.min', 0), const('relu6.max', 6))
    for l in LAYERS:
        if l[0] == 'block_start':
            residual = x
        elif l[0] == 'add':
            nodes.append(helper.make_node('Add', [x, residual], [l[1]], name=l[1]))
            x = l[1]
        elif l[0] == 'maxpool':
            nodes.append(helper.make_node('MaxPool', [x], [l[1]], name=l[1], kernel_shape=[2, 2], strides=[2, 2]))
            x = l[1]
        else:
            _, name, _, _, k, stride, groups, act = l
            nodes.append(helper.make_node('Conv', [x, const(name + '.w', params[name + '.w'])], [name], name=name,
                                          kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=groups))
            nodes.append(helper.make_node('BatchNormalization', [name] + [const(name + p, v) for p, v in (
                ('.gamma', params[name + '.gamma']), ('.beta', params[name + '.beta']), ('.mean', stats[name + '.mean']),
                ('.var', stats[name + '.var']))], [name + '.bn'], name=name + '.bn', epsilon=BN_EPS))
            x = name + '.bn'
            if act:
                nodes.append(helper.make_node('Clip', [x, *relu6], [name + '.relu6'], name=name + '.relu6'))
                x = name + '.relu6'
    nodes += [helper.make_node('GlobalAveragePool', [x], ['gap'], name='gap'),
              helper.make_node('Flatten', ['gap'], ['features'], name='flatten', axis=1),
              helper.make_node('Gemm', ['features', const('fc.w', params['fc.w']), const('fc.b', params['fc.b'])],
                               ['logits'], name='fc', transB=1)]
    graph = helper.make_graph(nodes, 'digits', [helper.make_tensor_value_info('image', TensorProto.FLOAT, ['N', 1, 8, 8])],
                              [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['N', CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], producer_name='swiftq Fixtures/train_digits.py')
    model.ir_version = 8
    preprocessing = {'bgr': False, 'channels': 1, 'divisor': 255, 'mean': [0, 0, 0], 'std': [1, 1, 1],
                     'resize': 8, 'size': 8, 'resizeMode': 'squash'}
    helper.set_model_props(model, {'swiftq.preprocessing': json.dumps(preprocessing, sort_keys=True, separators=(',', ':'))})
    onnx.checker.check_model(model)
    onnx.save(model, path)

def save_split(pixels, labels, indices, folder):
    for i in indices:
        d = os.path.join(folder, str(labels[i]))
        os.makedirs(d, exist_ok=True)
        Image.fromarray(pixels[i], mode='L').save(os.path.join(d, f'{i:04d}.png'), optimize=True)

def main():
    pixels, labels, tr, te = dataset()
    x = (pixels.astype(np.float32) / np.float32(255))[:, None]
    params, stats = train(x[tr], labels[tr])
    for split, idx in (('train', tr), ('test', te)):
        logits, _ = forward(params, stats, x[idx], False)
        print(f'{split}: top-1 {100 * np.mean(np.argmax(np.asarray(logits), 1) == labels[idx]):.2f}% of {len(idx)}')
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    export(params, stats, os.path.join(OUT, 'digits.onnx'))
    save_split(pixels, labels, tr, os.path.join(OUT, 'train'))
    save_split(pixels, labels, te, os.path.join(OUT, 'test'))

if __name__ == '__main__':
    jax.config.update('jax_platforms', 'cpu')
    main()
