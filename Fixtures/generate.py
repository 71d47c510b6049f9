"""Generates the small ONNX fixtures swiftq's tests use. Run with `make fixtures` (pinned packages in
scripts/requirements.txt); the outputs are committed so the tests need no Python.

tiny_cnn.onnx          Conv-BN-Relu, MaxPool, depthwise Conv + Clip(0,6), 1x1 Conv, residual Add,
                       GlobalAveragePool, Flatten, Gemm, Softmax; symbolic batch. With tiny_cnn.input.pb /
                       tiny_cnn.output.pb, ONNX Runtime's output for a fixed input.
encodings.onnx         initializers in every encoding ONNX allows (raw_data, float_data, int32_data, int64_data,
                       double_data, uint64_data) and types; a Constant node; a custom-domain node carrying every
                       attribute kind; metadata. encodings.expected.json lists each initializer's values.
external.onnx(.data)   tiny_cnn with all tensors in an external data file.
unknown_op.onnx        a default-domain node with an op ONNX does not have.
string_tensor.onnx     an initializer of type STRING, which swiftq does not hold.
images/                small JPEG, PNG and grayscale JPEG images (class folders a/ and b/), a corrupt JPEG,
                       images.expected.json: Pillow's decoded bytes, Pillow's bilinear resize and the
                       reference preprocessing (../shared/anchors/preprocess.py, reproduced here) of each.
image-kinds/           one image of every PNG and JPEG kind (8/16-bit grey, grey+alpha, RGB, RGBA, 1/2/4-bit,
                       palette with and without transparency, interlaced, gamma; baseline, progressive,
                       greyscale, 4:2:0 and CMYK JPEG) and damaged ones (truncated, bomb header);
                       image-kinds/expected.json: Pillow's `Image.open(p).convert('RGB')` bytes, or the
                       refusal Pillow gives.
"""
import json, os
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto

OUT = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(42)

def f32(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)

def save(model, name, **kw):
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, name), **kw)

def tiny_cnn():
    inits = [
        numpy_helper.from_array(f32(8, 3, 3, 3), 'c1.w'), numpy_helper.from_array(f32(8, scale=0.1), 'c1.b'),
        numpy_helper.from_array((1 + f32(8, scale=0.1)), 'bn.scale'), numpy_helper.from_array(f32(8, scale=0.1), 'bn.bias'),
        numpy_helper.from_array(f32(8, scale=0.1), 'bn.mean'), numpy_helper.from_array((1 + np.abs(f32(8, scale=0.2))), 'bn.var'),
        numpy_helper.from_array(f32(8, 1, 3, 3), 'dw.w'), numpy_helper.from_array(f32(8, scale=0.1), 'dw.b'),
        numpy_helper.from_array(np.array(0, np.float32), 'clip.min'), numpy_helper.from_array(np.array(6, np.float32), 'clip.max'),
        numpy_helper.from_array(f32(8, 8, 1, 1), 'pw.w'), numpy_helper.from_array(f32(8, scale=0.1), 'pw.b'),
        numpy_helper.from_array(f32(10, 8), 'fc.w'), numpy_helper.from_array(f32(10, scale=0.1), 'fc.b'),
    ]
    nodes = [
        helper.make_node('Conv', ['input', 'c1.w', 'c1.b'], ['c1'], name='conv1', kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node('BatchNormalization', ['c1', 'bn.scale', 'bn.bias', 'bn.mean', 'bn.var'], ['bn'], name='bn1', epsilon=1e-5),
        helper.make_node('Relu', ['bn'], ['r1'], name='relu1'),
        helper.make_node('MaxPool', ['r1'], ['p1'], name='pool1', kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node('Conv', ['p1', 'dw.w', 'dw.b'], ['dw'], name='dwconv', kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=8),
        helper.make_node('Clip', ['dw', 'clip.min', 'clip.max'], ['dw6'], name='relu6'),
        helper.make_node('Conv', ['dw6', 'pw.w', 'pw.b'], ['pw'], name='pwconv'),
        helper.make_node('Add', ['pw', 'p1'], ['res'], name='residual'),
        helper.make_node('GlobalAveragePool', ['res'], ['gap'], name='gap'),
        helper.make_node('Flatten', ['gap'], ['flat'], name='flatten', axis=1),
        helper.make_node('Gemm', ['flat', 'fc.w', 'fc.b'], ['logits'], name='fc', transB=1),
        helper.make_node('Softmax', ['logits'], ['prob'], name='softmax', axis=1),
    ]
    g = helper.make_graph(nodes, 'tiny_cnn', [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 3, 32, 32])],
                          [helper.make_tensor_value_info('prob', TensorProto.FLOAT, ['N', 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], producer_name='swiftq-fixtures', ir_version=8)

def write_io(model, stem):
    import onnxruntime as ort
    x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    y = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider']).run(None, {'input': x})[0]
    open(os.path.join(OUT, stem + '.input.pb'), 'wb').write(numpy_helper.from_array(x, 'input').SerializeToString())
    open(os.path.join(OUT, stem + '.output.pb'), 'wb').write(numpy_helper.from_array(y, 'prob').SerializeToString())

def encodings():
    expected = {}
    inits = []
    def add(t, values):
        inits.append(t)
        # JSON has no infinity or NaN: those are written as the strings "inf", "-inf", "nan".
        expected[t.name] = {'dtype': TensorProto.DataType.Name(t.data_type), 'shape': list(t.dims),
                            'values': [float(v) if np.isfinite(v) else str(float(v)) for v in np.asarray(values, np.float64).ravel()]}
    fl = np.array([[1.5, -2.25, 3.0], [0.0, -0.0, 1e-20]], np.float32)
    add(helper.make_tensor('float_raw', TensorProto.FLOAT, [2, 3], fl.tobytes(), raw=True), fl)
    add(helper.make_tensor('float_data', TensorProto.FLOAT, [2, 3], fl.ravel().tolist()), fl)
    d = np.array([1.0, -2.5, 1e10], np.float64)
    add(helper.make_tensor('double_data', TensorProto.DOUBLE, [3], d.tolist()), d.astype(np.float32))
    h = np.array([1.0, -2.0, 0.5, 65504.0, 6e-8, np.inf, -0.0, 0.1], np.float16)
    add(helper.make_tensor('float16_raw', TensorProto.FLOAT16, [8], h.tobytes(), raw=True), h.astype(np.float32))
    t = TensorProto(name='float16_int32_data', data_type=TensorProto.FLOAT16, dims=[8])
    t.int32_data.extend(h.view(np.uint16).astype(np.int32).tolist())
    add(t, h.astype(np.float32))
    i8 = np.array([-128, -1, 0, 1, 127], np.int8)
    add(helper.make_tensor('int8_data', TensorProto.INT8, [5], i8.tolist()), i8)
    add(helper.make_tensor('int8_raw', TensorProto.INT8, [5], i8.tobytes(), raw=True), i8)
    u8 = np.array([0, 1, 128, 255], np.uint8)
    add(helper.make_tensor('uint8_data', TensorProto.UINT8, [2, 2], u8.tolist()), u8)
    i32 = np.array([-2147483648, -1, 0, 2147483647], np.int32)
    add(helper.make_tensor('int32_data', TensorProto.INT32, [4], i32.tolist()), i32)
    i64 = np.array([-(2 ** 40), -1, 0, 2 ** 40], np.int64)
    add(helper.make_tensor('int64_data', TensorProto.INT64, [4], i64.tolist()), i64)
    add(helper.make_tensor('int64_raw', TensorProto.INT64, [4], i64.tobytes(), raw=True), i64)
    u32 = np.array([0, 4000000000], np.uint32)
    add(helper.make_tensor('uint32_data', TensorProto.UINT32, [2], u32.tolist()), u32)
    add(helper.make_tensor('bool_data', TensorProto.BOOL, [3], [True, False, True]), [1, 0, 1])
    add(helper.make_tensor('scalar', TensorProto.FLOAT, [], [7.0]), [7.0])
    add(helper.make_tensor('empty', TensorProto.FLOAT, [0, 3], []), [])

    body = helper.make_graph([helper.make_node('Identity', ['a'], ['b'])], 'body',
                             [helper.make_tensor_value_info('a', TensorProto.FLOAT, [1])], [helper.make_tensor_value_info('b', TensorProto.FLOAT, [1])])
    sparse = helper.make_sparse_tensor(helper.make_tensor('v', TensorProto.FLOAT, [2], [1.0, 2.0]), helper.make_tensor('i', TensorProto.INT64, [2], [0, 3]), [4])
    attrs = [
        helper.make_attribute('f', 0.25), helper.make_attribute('i', -7), helper.make_attribute('s', 'héllo'),
        helper.make_attribute('t', helper.make_tensor('at', TensorProto.INT64, [2], [3, 4])), helper.make_attribute('g', body),
        helper.make_attribute('floats', [1.0, 2.5]), helper.make_attribute('ints', [1, -2, 3]), helper.make_attribute('strings', ['a', 'bc']),
        helper.make_attribute('tensors', [helper.make_tensor('t1', TensorProto.FLOAT, [1], [1.0])]), helper.make_attribute('graphs', [body]),
        helper.make_attribute('sparse', sparse), helper.make_attribute('tp', helper.make_tensor_type_proto(TensorProto.FLOAT, [2])),
    ]
    custom = helper.make_node('AllAttributes', ['x'], ['y'], name='all_attributes', domain='test.swiftq', doc_string='every attribute kind')
    custom.attribute.extend(attrs)
    nodes = [
        helper.make_node('Constant', [], ['c'], name='constant', value=helper.make_tensor('cv', TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])),
        helper.make_node('Add', ['x', 'c'], ['x1'], name='add'),
        custom,
    ]
    g = helper.make_graph(nodes, 'encodings', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, [3]), helper.make_tensor_value_info('x1', TensorProto.FLOAT, [3])], inits,
                          doc_string='initializer encodings')
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13), helper.make_opsetid('test.swiftq', 1)], producer_name='swiftq-fixtures',
                          producer_version='1', ir_version=8, doc_string='model doc')
    helper.set_model_props(m, {'author': 'swiftq', 'purpose': 'reader tests'})
    onnx.save(m, os.path.join(OUT, 'encodings.onnx'))
    json.dump(expected, open(os.path.join(OUT, 'encodings.expected.json'), 'w'), indent=1, allow_nan=False)

def broken():
    g = helper.make_graph([helper.make_node('FooBar', ['x'], ['y'], name='mystery')], 'unknown',
                          [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1])], [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), os.path.join(OUT, 'unknown_op.onnx'))
    s = helper.make_tensor('labels', TensorProto.STRING, [2], [b'cat', b'dog'])
    g = helper.make_graph([helper.make_node('Identity', ['labels'], ['y'], name='id')], 'strings', [],
                          [helper.make_tensor_value_info('y', TensorProto.STRING, [2])], [s])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), os.path.join(OUT, 'string_tensor.onnx'))

def images():
    import base64
    from PIL import Image
    d = os.path.join(OUT, 'images')
    for sub in ('a', 'b'):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    yy, xx = np.mgrid[0:37, 0:53]
    smooth = np.stack([(xx * 5) % 256, (yy * 7) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
    noisy = rng.integers(0, 256, (29, 41, 3), dtype=np.uint8)
    Image.fromarray(smooth).save(os.path.join(d, 'a', 'smooth.jpg'), quality=90)
    Image.fromarray(noisy).save(os.path.join(d, 'a', 'noisy.png'))
    Image.fromarray(noisy[:, :, 0]).save(os.path.join(d, 'b', 'gray.jpg'), quality=85)
    Image.fromarray(smooth[:20, :30]).save(os.path.join(d, 'b', 'small.jpg'), quality=75, subsampling=0)
    open(os.path.join(d, 'b', 'corrupt.jpg'), 'wb').write(b'\xff\xd8\xff\xe0 this is not really a jpeg')
    expected = {}
    for rel in ('a/smooth.jpg', 'a/noisy.png', 'b/gray.jpg', 'b/small.jpg'):
        im = Image.open(os.path.join(d, rel)).convert('RGB')
        w, h = im.size
        r = im.resize((31, 17), Image.BILINEAR)
        big = im.resize((97, 61), Image.BILINEAR)
        # The reference preprocessing: shorter side to 18, center crop 16, torch normalization.
        s_ = 18 / min(w, h)
        p = im.resize((max(16, round(w * s_)), max(16, round(h * s_))), Image.BILINEAR)
        pw, ph = p.size
        l, t = (pw - 16) // 2, (ph - 16) // 2
        a = np.asarray(p.crop((l, t, l + 16, t + 16)), dtype=np.float32)
        a = (a / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
        x = np.ascontiguousarray(a.transpose(2, 0, 1)).astype(np.float32)
        expected[rel] = {'size': [w, h], 'decoded': base64.b64encode(im.tobytes()).decode(),
                         'resized_31x17': base64.b64encode(r.tobytes()).decode(),
                         'resized_97x61': base64.b64encode(big.tobytes()).decode(),
                         'torch_16_18': [float(v) for v in x.ravel()]}
    json.dump(expected, open(os.path.join(d, 'images.expected.json'), 'w'), indent=0)

def png_bytes(w, h, depth, ctype, pixels, extra=b'', interlace=False):
    """A PNG written by hand (Pillow writes no 16-bit colour, no 2-bit and no interlaced PNG).
    `pixels` is an array [h, w, channels] of sample values; samples below 8 bits are packed."""
    import struct, zlib
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    def row_bytes(row):
        if depth == 16:
            return b''.join(struct.pack('>H', int(v)) for v in row.ravel())
        if depth == 8:
            return bytes(int(v) for v in row.ravel())
        bits = ''.join(format(int(v), '0%db' % depth) for v in row.ravel())
        bits += '0' * (-len(bits) % 8)
        return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
    if interlace:  # Adam7: seven passes, each a small image of its own rows
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b''
        for x0, y0, dx, dy in passes:
            sub = pixels[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += b''.join(b'\x00' + row_bytes(r) for r in sub)
    else:
        raw = b''.join(b'\x00' + row_bytes(r) for r in pixels)
    ihdr = struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, 1 if interlace else 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + extra + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')

def image_kinds():
    """Every image kind swiftq must decode exactly as Pillow does, and damaged files it must refuse."""
    import base64, struct, zlib, io
    from PIL import Image
    d = os.path.join(OUT, 'image-kinds')
    os.makedirs(d, exist_ok=True)
    r = np.random.default_rng(7)
    h, w = 11, 13
    rgb8 = r.integers(0, 256, (h, w, 3))
    a8 = r.integers(0, 256, (h, w, 1))
    def chunk(t, data):
        return struct.pack('>I', len(data)) + t + data + struct.pack('>I', zlib.crc32(t + data) & 0xffffffff)
    pal = bytes(r.integers(0, 256, 16 * 3).astype(np.uint8))
    files = {
        'grey8.png': png_bytes(w, h, 8, 0, rgb8[:, :, :1]),
        'grey16.png': png_bytes(w, h, 16, 0, r.integers(0, 400, (h, w, 1))),
        'grey1.png': png_bytes(w, h, 1, 0, r.integers(0, 2, (h, w, 1))),
        'grey2.png': png_bytes(w, h, 2, 0, r.integers(0, 4, (h, w, 1))),
        'grey4.png': png_bytes(w, h, 4, 0, r.integers(0, 16, (h, w, 1))),
        'grey_alpha8.png': png_bytes(w, h, 8, 4, np.concatenate([rgb8[:, :, :1], a8], -1)),
        'grey_alpha16.png': png_bytes(w, h, 16, 4, r.integers(0, 65536, (h, w, 2))),
        'grey_trns.png': png_bytes(w, h, 8, 0, rgb8[:, :, :1], chunk(b'tRNS', struct.pack('>H', int(rgb8[0, 0, 0])))),
        'rgb8.png': png_bytes(w, h, 8, 2, rgb8),
        'rgb16.png': png_bytes(w, h, 16, 2, r.integers(0, 65536, (h, w, 3))),
        'rgba8.png': png_bytes(w, h, 8, 6, np.concatenate([rgb8, np.where(a8 > 128, a8, 0)], -1)),
        'rgba16.png': png_bytes(w, h, 16, 6, np.concatenate([r.integers(0, 65536, (h, w, 3)), np.zeros((h, w, 1), int)], -1)),
        'palette.png': png_bytes(w, h, 8, 3, r.integers(0, 16, (h, w, 1)), chunk(b'PLTE', pal)),
        'palette4.png': png_bytes(w, h, 4, 3, r.integers(0, 16, (h, w, 1)), chunk(b'PLTE', pal)),
        'palette_trns.png': png_bytes(w, h, 8, 3, r.integers(0, 16, (h, w, 1)), chunk(b'PLTE', pal) + chunk(b'tRNS', bytes([0, 64, 255, 0]))),
        'interlaced.png': png_bytes(w, h, 8, 2, rgb8, interlace=True),
        'interlaced_grey16.png': png_bytes(w, h, 16, 0, r.integers(0, 300, (h, w, 1)), interlace=True),
        'gamma.png': png_bytes(w, h, 8, 2, rgb8, chunk(b'gAMA', struct.pack('>I', 100000))),
    }
    big = png_bytes(w, h, 8, 2, rgb8)
    files['truncated.png'] = big[:len(big) * 6 // 10]
    # A decompression bomb's header: 30000 x 30000 pixels declared (and a few rows of data); refused before
    # any pixel is decoded.
    files['bomb.png'] = (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 30000, 30000, 8, 0, 0, 0, 0))
                         + chunk(b'IDAT', zlib.compress(bytes(30001 * 8))) + chunk(b'IEND', b''))
    smooth = np.stack(np.mgrid[0:h * 3, 0:w * 3], -1).sum(-1)
    photo = np.stack([(smooth * 5) % 256, (smooth * 3) % 256, 255 - (smooth * 7) % 256], -1).astype(np.uint8)
    def jpeg(img, **kw):
        b = io.BytesIO()
        img.save(b, 'JPEG', **kw)
        return b.getvalue()
    files['baseline.jpg'] = jpeg(Image.fromarray(photo), quality=90, subsampling=0)
    files['subsampled420.jpg'] = jpeg(Image.fromarray(photo), quality=80, subsampling=2)
    files['progressive.jpg'] = jpeg(Image.fromarray(photo), quality=85, progressive=True)
    files['grey.jpg'] = jpeg(Image.fromarray(photo[:, :, 0]), quality=85)
    files['cmyk.jpg'] = jpeg(Image.fromarray(photo).convert('CMYK'), quality=90)
    j = files['baseline.jpg']
    files['truncated.jpg'] = j[:len(j) * 6 // 10]
    files['no_end_marker.jpg'] = j[:-2]
    expected = {}
    for name, data in sorted(files.items()):
        open(os.path.join(d, name), 'wb').write(data)
        try:
            im = Image.open(os.path.join(d, name))
            if im.width * im.height > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError('bomb')
            im = im.convert('RGB')
            expected[name] = {'size': [im.width, im.height], 'rgb': base64.b64encode(im.tobytes()).decode()}
        except Exception as e:
            expected[name] = {'refused': type(e).__name__}
    json.dump(expected, open(os.path.join(d, 'expected.json'), 'w'), indent=0, sort_keys=True)

if __name__ == '__main__':
    m = tiny_cnn()
    save(m, 'tiny_cnn.onnx')
    write_io(m, 'tiny_cnn')
    ext = onnx.ModelProto()
    ext.CopyFrom(m)  # the same weights as tiny_cnn.onnx; onnx.save moves tensors out of the proto it is given
    save(ext, 'external.onnx', save_as_external_data=True, all_tensors_to_one_file=True, location='external.onnx.data', size_threshold=0)
    encodings()
    broken()
    images()
    image_kinds()
    print('fixtures written to', OUT)
