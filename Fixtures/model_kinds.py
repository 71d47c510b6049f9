"""Generates small random-weight networks shaped like the CNNs users bring, for swiftq's tests (`make fixtures`
runs it; the outputs are committed so the tests need no Python). Each is built the way its exporter writes it.

effnet_b0_like.onnx    EfficientNet-B0's blocks (PyTorch export, opset 13): Conv + unfolded BatchNormalization, SiLU
                       spelled Sigmoid · Mul everywhere, MBConv (expand 1x1, depthwise 3x3, squeeze-excitation:
                       GlobalAveragePool, 1x1 reduce + SiLU, 1x1 expand, Sigmoid, Mul of the map by the gate,
                       project 1x1), residual Add, head 1x1 + SiLU, GlobalAveragePool, Flatten, Gemm. 1x3x64x64 → 1x10.
yolov8_like.onnx       YOLOv8's layout (Ultralytics export, opset 17): Conv + SiLU, C2f (1x1, Split, bottlenecks with
                       residual Add, Concat, 1x1), SPPF (three chained MaxPool 5x5, Concat), nearest Resize (scales)
                       and Concat in the neck, two detection scales; per scale box (4·16) and class (3) branches
                       joined by Concat and Reshape; the DFL head (Reshape, Transpose, Softmax, 1x1 Conv with fixed
                       weights 0..15); the anchor grid computed from Shape → Gather → Cast → Range → … (folds when
                       the input shape is fixed); dist2bbox (Slice, Sub, Add, Div, Concat) times the stride; class
                       scores by Sigmoid; the output Concat joins boxes in pixels with scores in [0, 1]. 1x3x64x64 →
                       1x7x80.
keras_resnet_nhwc.onnx A ResNet block net as tf2onnx writes a Keras model (opset 13): NHWC input 1x32x32x3,
                       Transpose around every Conv, BatchNormalization spelled Sub/Mul/Add on the channel-last
                       axis, Relu, residual Add in NHWC, GlobalAveragePool as ReduceMean over H and W, MatMul + Add.
                       → 1x10.
Each comes with STEM.input.pb and STEM.output.pb: a fixed input and ONNX Runtime's float output for it.
two_inputs.onnx        a model with two inputs, an image [1, 3, 16, 16] and a vector [1, 8] (Conv, Relu,
                       GlobalAveragePool, Flatten, Concat with the vector, Gemm), with arrays/: calibration data as
                       .npz files holding 'image' and 'aux' (three stored, three deflated), and arrays-single/: .npy
                       images for tiny_cnn.onnx.
"""
import os
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto

OUT = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(1515)


class Net:
    def __init__(self):
        self.nodes, self.inits, self.k = [], [], 0

    def name(self, base):
        self.k += 1
        return f'{base}_{self.k}'

    def const(self, value, base='c'):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def op(self, op, inputs, n_out=1, **attrs):
        base = self.name(op.lower())
        outs = [f'{base}_out{i}' if n_out > 1 else base for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=base, **attrs))
        return outs if n_out > 1 else outs[0]

    def conv(self, x, cin, cout, k=1, s=1, group=1, bias=True, bn=False, scale=None):
        w = (rng.standard_normal((cout, cin // group, k, k)) * (scale or (1.5 / np.sqrt(cin // group * k * k)))).astype(np.float32)
        ins = [x, self.const(w, 'w')] + ([self.const((rng.standard_normal(cout) * 0.1).astype(np.float32), 'b')] if bias else [])
        y = self.op('Conv', ins, kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4, group=group)
        if bn:
            y = self.op('BatchNormalization', [y, self.const((1 + 0.2 * rng.standard_normal(cout)).astype(np.float32), 'bn_s'),
                                               self.const((0.1 * rng.standard_normal(cout)).astype(np.float32), 'bn_b'),
                                               self.const((0.1 * rng.standard_normal(cout)).astype(np.float32), 'bn_m'),
                                               self.const((1 + np.abs(0.3 * rng.standard_normal(cout))).astype(np.float32), 'bn_v')], epsilon=1e-3)
        return y

    def silu(self, x):
        return self.op('Mul', [x, self.op('Sigmoid', [x])])

    def model(self, name, inputs, outputs, opset):
        g = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)], producer_name='swiftq-fixtures', ir_version=8)
        onnx.checker.check_model(m, full_check=True)
        return m


def effnet_b0_like():
    n = Net()
    x = n.silu(n.conv('images', 3, 16, 3, 2, bias=False, bn=True))

    def mbconv(x, cin, cout, expand, s):
        h = n.silu(n.conv(x, cin, cin * expand, 1, bias=False, bn=True)) if expand > 1 else x
        c = cin * expand
        h = n.silu(n.conv(h, c, c, 3, s, group=c, bias=False, bn=True))
        g = n.op('GlobalAveragePool', [h])
        g = n.silu(n.conv(g, c, max(4, c // 4), 1))
        g = n.op('Sigmoid', [n.conv(g, max(4, c // 4), c, 1)])
        h = n.op('Mul', [h, g])
        h = n.conv(h, c, cout, 1, bias=False, bn=True)
        return n.op('Add', [h, x]) if s == 1 and cin == cout else h

    x = mbconv(x, 16, 16, 1, 1)
    x = mbconv(x, 16, 24, 4, 2)
    x = mbconv(x, 24, 24, 4, 1)
    x = n.silu(n.conv(x, 24, 64, 1, bias=False, bn=True))
    x = n.op('Flatten', [n.op('GlobalAveragePool', [x])], axis=1)
    y = n.op('Gemm', [x, n.const((rng.standard_normal((10, 64)) * 0.2).astype(np.float32), 'fc_w'),
                      n.const((0.1 * rng.standard_normal(10)).astype(np.float32), 'fc_b')], transB=1)
    return n.model('effnet_b0_like', [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 64, 64])],
                   [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 10])], 13)


def yolov8_like():
    n = Net()
    i64 = lambda v: np.array(v, np.int64)

    def cbs(x, cin, cout, k=1, s=1):
        return n.silu(n.conv(x, cin, cout, k, s))

    def c2f(x, cin, cout, blocks):
        h = cbs(x, cin, cout, 1)
        parts = n.op('Split', [h, n.const(i64([cout // 2, cout // 2]), 'split')], n_out=2, axis=1)
        outs = list(parts)
        y = parts[1]
        for _ in range(blocks):
            y = n.op('Add', [y, cbs(cbs(y, cout // 2, cout // 2, 3), cout // 2, cout // 2, 3)])
            outs.append(y)
        return cbs(n.op('Concat', outs, axis=1), cout // 2 * len(outs), cout, 1)

    p1 = cbs('images', 3, 8, 3, 2)            # 32x32
    p2 = c2f(cbs(p1, 8, 16, 3, 2), 16, 16, 1)  # 16x16 (stride 4)
    p3 = c2f(cbs(p2, 16, 32, 3, 2), 32, 32, 1) # 8x8 (stride 8)
    p4 = cbs(p3, 32, 32, 3, 2)                 # 4x4 (stride 16)
    s = cbs(p4, 32, 16, 1)                     # SPPF
    m1 = n.op('MaxPool', [s], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])
    m2 = n.op('MaxPool', [m1], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])
    m3 = n.op('MaxPool', [m2], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])
    p4 = cbs(n.op('Concat', [s, m1, m2, m3], axis=1), 64, 32, 1)
    up = n.op('Resize', [p4, '', n.const(np.array([1, 1, 2, 2], np.float32), 'scales')], mode='nearest')
    n3 = c2f(n.op('Concat', [up, p3], axis=1), 64, 32, 1)                       # 8x8
    n4 = c2f(n.op('Concat', [cbs(n3, 32, 32, 3, 2), p4], axis=1), 64, 32, 1)    # 4x4
    reg, nc = 16, 3
    heads = []
    for feat in (n3, n4):
        box = n.conv(cbs(cbs(feat, 32, 16, 3), 16, 16, 3), 16, 4 * reg, 1)
        cls = n.conv(cbs(cbs(feat, 32, 16, 3), 16, 16, 3), 16, nc, 1)
        heads.append(n.op('Reshape', [n.op('Concat', [box, cls], axis=1), n.const(i64([1, 4 * reg + nc, -1]), 'shape')]))
    cat = n.op('Concat', heads, axis=2)                                          # 1 x 67 x 80
    box, cls = n.op('Split', [cat, n.const(i64([4 * reg, nc]), 'split')], n_out=2, axis=1)
    # DFL: softmax over the 16 bins of each side, expectation by a 1x1 Conv with weights 0..15.
    d = n.op('Reshape', [box, n.const(i64([1, 4, reg, -1]), 'shape')])
    d = n.op('Softmax', [n.op('Transpose', [d], perm=[0, 2, 1, 3])], axis=1)
    d = n.op('Conv', [d, n.const(np.arange(reg, dtype=np.float32).reshape(1, reg, 1, 1), 'dfl_w')], kernel_shape=[1, 1])
    dist = n.op('Reshape', [d, n.const(i64([1, 4, -1]), 'shape')])
    # The anchor grid and strides, computed from the feature maps' shapes as the export does.
    points, strides = [], []
    for feat, stride in ((n3, 8), (n4, 16)):
        shape = n.op('Shape', [feat])
        h = n.op('Cast', [n.op('Gather', [shape, n.const(i64(2), 'idx')], axis=0)], to=TensorProto.FLOAT)
        w = n.op('Cast', [n.op('Gather', [shape, n.const(i64(3), 'idx')], axis=0)], to=TensorProto.FLOAT)
        half = n.const(np.array(0.5, np.float32), 'half')
        zero, one = n.const(np.array(0, np.float32), 'zero'), n.const(np.array(1, np.float32), 'one')
        sx = n.op('Add', [n.op('Range', [zero, w, one]), half])
        sy = n.op('Add', [n.op('Range', [zero, h, one]), half])
        hw = n.op('Concat', [n.op('Cast', [n.op('Unsqueeze', [h, n.const(i64([0]), 'ax')])], to=TensorProto.INT64),
                             n.op('Cast', [n.op('Unsqueeze', [w, n.const(i64([0]), 'ax')])], to=TensorProto.INT64)], axis=0)
        gx = n.op('Expand', [n.op('Unsqueeze', [sx, n.const(i64([0]), 'ax')]), hw])
        gy = n.op('Expand', [n.op('Unsqueeze', [sy, n.const(i64([1]), 'ax')]), hw])
        grid = n.op('Concat', [n.op('Reshape', [gx, n.const(i64([1, -1]), 'shape')]), n.op('Reshape', [gy, n.const(i64([1, -1]), 'shape')])], axis=0)
        points.append(grid)
        strides.append(n.op('Expand', [n.const(np.array([[stride]], np.float32), 'stride'),
                                       n.op('Concat', [n.const(i64([1]), 'one'), n.op('Gather', [n.op('Shape', [grid]), n.const(i64([1]), 'idx')], axis=0)], axis=0)]))
    anchors = n.op('Unsqueeze', [n.op('Concat', points, axis=1), n.const(i64([0]), 'ax')])   # 1 x 2 x 80
    stride = n.op('Concat', strides, axis=1)                                                   # 1 x 80
    lt, rb = n.op('Split', [dist, n.const(i64([2, 2]), 'split')], n_out=2, axis=1)
    x1y1 = n.op('Sub', [anchors, lt])
    x2y2 = n.op('Add', [anchors, rb])
    c = n.op('Div', [n.op('Add', [x1y1, x2y2]), n.const(np.array(2, np.float32), 'two')])
    wh = n.op('Sub', [x2y2, x1y1])
    boxes = n.op('Mul', [n.op('Concat', [c, wh], axis=1), stride])
    y = n.op('Concat', [boxes, n.op('Sigmoid', [cls])], axis=1)
    return n.model('yolov8_like', [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, 64, 64])],
                   [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 4 + nc, 80])], 17)


def effnet_b0_full(size=224):
    """EfficientNet-B0 at full size (the paper's stages: 16 MBConv blocks, 3x3 and 5x5 depthwise, SiLU and
    squeeze-excitation throughout, 1000 classes), random weights, for `make bench`'s model kinds: not written here
    (21 MB), generated where it is timed."""
    n = Net()
    x = n.silu(n.conv('images', 3, 32, 3, 2, bias=False, bn=True))

    def mbconv(x, cin, cout, expand, s, k):
        h = n.silu(n.conv(x, cin, cin * expand, 1, bias=False, bn=True)) if expand > 1 else x
        c = cin * expand
        h = n.silu(n.conv(h, c, c, k, s, group=c, bias=False, bn=True))
        g = n.op('GlobalAveragePool', [h])
        g = n.silu(n.conv(g, c, max(1, cin // 4), 1))
        g = n.op('Sigmoid', [n.conv(g, max(1, cin // 4), c, 1)])
        h = n.conv(n.op('Mul', [h, g]), c, cout, 1, bias=False, bn=True)
        return n.op('Add', [h, x]) if s == 1 and cin == cout else h

    cin = 32
    for e, c, r, s, k in [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5), (6, 192, 4, 2, 5),
                          (6, 320, 1, 1, 3)]:
        for i in range(r):
            x = mbconv(x, cin, c, e, s if i == 0 else 1, k)
            cin = c
    x = n.silu(n.conv(x, 320, 1280, 1, bias=False, bn=True))
    x = n.op('Flatten', [n.op('GlobalAveragePool', [x])], axis=1)
    y = n.op('Gemm', [x, n.const((rng.standard_normal((1000, 1280)) * 0.02).astype(np.float32), 'fc_w'),
                      n.const((0.1 * rng.standard_normal(1000)).astype(np.float32), 'fc_b')], transB=1)
    return n.model('effnet_b0_full', [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, size, size])],
                   [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 1000])], 13)


def yolov8n_full(size=640):
    """YOLOv8n's backbone and neck at full size (width 0.25, depth 0.33: C2f, SPPF, nearest upsampling, three detection
    scales, SiLU throughout), random weights, raw head outputs (1 x 144 x anchors); for `make bench`'s model kinds."""
    n = Net()

    def cbs(x, cin, cout, k=1, s=1):
        return n.silu(n.conv(x, cin, cout, k, s))

    def c2f(x, cin, cout, blocks, shortcut=True):
        h = cbs(x, cin, cout, 1)
        parts = n.op('Split', [h, n.const(np.array([cout // 2, cout // 2], np.int64), 'split')], n_out=2, axis=1)
        outs, y = list(parts), parts[1]
        for _ in range(blocks):
            b = cbs(cbs(y, cout // 2, cout // 2, 3), cout // 2, cout // 2, 3)
            y = n.op('Add', [y, b]) if shortcut else b
            outs.append(y)
        return cbs(n.op('Concat', outs, axis=1), cout // 2 * len(outs), cout, 1)

    up = lambda t: n.op('Resize', [t, '', n.const(np.array([1, 1, 2, 2], np.float32), 'scales')], mode='nearest')
    p3 = c2f(cbs(c2f(cbs(cbs('images', 3, 16, 3, 2), 16, 32, 3, 2), 32, 32, 1), 32, 64, 3, 2), 64, 64, 2)
    p4 = c2f(cbs(p3, 64, 128, 3, 2), 128, 128, 2)
    s = cbs(c2f(cbs(p4, 128, 256, 3, 2), 256, 256, 1), 256, 128, 1)
    pools = [s]
    for _ in range(3):
        pools.append(n.op('MaxPool', [pools[-1]], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2]))
    p5 = cbs(n.op('Concat', pools, axis=1), 512, 256, 1)
    n4 = c2f(n.op('Concat', [up(p5), p4], axis=1), 384, 128, 1, False)
    n3 = c2f(n.op('Concat', [up(n4), p3], axis=1), 192, 64, 1, False)
    n4 = c2f(n.op('Concat', [cbs(n3, 64, 64, 3, 2), n4], axis=1), 192, 128, 1, False)
    n5 = c2f(n.op('Concat', [cbs(n4, 128, 128, 3, 2), p5], axis=1), 384, 256, 1, False)
    outs = []
    for feat, c in ((n3, 64), (n4, 128), (n5, 256)):
        box = n.conv(cbs(cbs(feat, c, 64, 3), 64, 64, 3), 64, 64, 1)
        cls = n.conv(cbs(cbs(feat, c, 80, 3), 80, 80, 3), 80, 80, 1)
        outs.append(n.op('Reshape', [n.op('Concat', [box, cls], axis=1), n.const(np.array([1, 144, -1], np.int64), 'shape')]))
    anchors = sum((size // s) ** 2 for s in (8, 16, 32))
    return n.model('yolov8n_full', [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, size, size])],
                   [helper.make_tensor_value_info(n.op('Concat', outs, axis=2), TensorProto.FLOAT, [1, 144, anchors])], 17)


def keras_resnet_nhwc():
    n = Net()

    def conv_bn(x, cin, cout, k, s=1, relu=True):
        # tf2onnx: NHWC → Transpose → Conv → Transpose → NHWC, then the BatchNormalization of Keras as
        # (x − mean) · (gamma / sqrt(var + eps)) + beta on the last axis.
        t = n.op('Transpose', [x], perm=[0, 3, 1, 2])
        t = n.conv(t, cin, cout, k, s, bias=True)
        y = n.op('Transpose', [t], perm=[0, 2, 3, 1])
        y = n.op('Sub', [y, n.const((0.1 * rng.standard_normal(cout)).astype(np.float32), 'mean')])
        y = n.op('Mul', [y, n.const((1 + 0.2 * rng.standard_normal(cout)).astype(np.float32), 'k')])
        y = n.op('Add', [y, n.const((0.1 * rng.standard_normal(cout)).astype(np.float32), 'beta')])
        return n.op('Relu', [y]) if relu else y

    x = conv_bn('input_1', 3, 16, 3, 2)                 # 16x16x16
    for cout, s in ((16, 1), (32, 2)):
        cin = 16
        h = conv_bn(conv_bn(x, cin, cout, 3, s), cout, cout, 3, 1, relu=False)
        short = x if s == 1 else conv_bn(x, cin, cout, 1, s, relu=False)
        x = n.op('Relu', [n.op('Add', [h, short])])
    g = n.op('ReduceMean', [x], axes=[1, 2], keepdims=0)  # 1 x 32
    y = n.op('Add', [n.op('MatMul', [g, n.const((rng.standard_normal((32, 10)) * 0.3).astype(np.float32), 'dense_w')]),
                     n.const((0.1 * rng.standard_normal(10)).astype(np.float32), 'dense_b')])
    return n.model('keras_resnet_nhwc', [helper.make_tensor_value_info('input_1', TensorProto.FLOAT, ['N', 32, 32, 3])],
                   [helper.make_tensor_value_info(y, TensorProto.FLOAT, ['N', 10])], 13)


def write_io(model, stem):
    """A fixed input and ONNX Runtime's float output for it (`STEM.input.pb`, `STEM.output.pb`)."""
    import onnxruntime as ort
    i = model.graph.input[0]
    shape = [d.dim_value or 1 for d in i.type.tensor_type.shape.dim]
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)   # its own generator: the weights stay as they were
    s = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    y = s.run(None, {i.name: x})[0]
    open(os.path.join(OUT, stem + '.input.pb'), 'wb').write(numpy_helper.from_array(x, i.name).SerializeToString())
    open(os.path.join(OUT, stem + '.output.pb'), 'wb').write(numpy_helper.from_array(y, model.graph.output[0].name).SerializeToString())


def two_inputs():
    n = Net()
    x = n.op('Relu', [n.conv('image', 3, 8, 3)])
    x = n.op('Flatten', [n.op('GlobalAveragePool', [x])], axis=1)
    x = n.op('Concat', [x, 'aux'], axis=1)
    y = n.op('Gemm', [x, n.const((rng.standard_normal((4, 16)) * 0.3).astype(np.float32), 'fc_w'), n.const(np.zeros(4, np.float32), 'fc_b')], transB=1)
    return n.model('two_inputs', [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, 16, 16]),
                                  helper.make_tensor_value_info('aux', TensorProto.FLOAT, [1, 8])],
                   [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 4])], 13)


def arrays():
    g = np.random.default_rng(8)
    d = os.path.join(OUT, 'arrays')
    os.makedirs(d, exist_ok=True)
    os.makedirs(d + '-single', exist_ok=True)
    for i in range(6):
        save = np.savez_compressed if i % 2 else np.savez
        save(os.path.join(d, f'sample{i}.npz'), image=g.standard_normal((1, 3, 16, 16)).astype(np.float32),
             aux=g.uniform(0, 1, (1, 8)).astype(np.float32))
    for i in range(4):
        np.save(os.path.join(d + '-single', f'x{i}.npy'), g.standard_normal((1, 3, 32, 32)).astype(np.float32))


if __name__ == '__main__':
    for make, name in ((effnet_b0_like, 'effnet_b0_like'), (yolov8_like, 'yolov8_like'), (keras_resnet_nhwc, 'keras_resnet_nhwc')):
        m = make()
        onnx.save(m, os.path.join(OUT, name + '.onnx'))
        write_io(m, name)
    onnx.save(two_inputs(), os.path.join(OUT, 'two_inputs.onnx'))   # after the others: the shared generator
    arrays()
    print('model-kind fixtures written to', OUT)
