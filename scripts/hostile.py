"""Hostile and careless input against the built swiftq binary (issue 14's cases and more).

Every case builds its files in a fresh folder, runs one swiftq command under a memory limit
(`ulimit -v 8000000`, as a user would meet it) and a time limit, and checks:
  - the exit code;
  - on failure: exactly one `swiftq: error:` line, naming the file (and node, tensor or image) at fault,
    and no crash (no backtrace, no signal);
  - warnings that must name an image or node;
  - nothing left in the output folder after a failure (no temporary file, no partial output), and the
    expected outputs, and only those, after a success;
  - the input files' bytes unchanged.
It prints one line per case and `N passed, N failed`; exit 1 when any failed.

usage: hostile.py path/to/swiftq [--only SUBSTRING] [--keep] [--sanitized]
(--sanitized: the binary is an AddressSanitizer build, `make sanitize`'s: no address-space limit, and any
sanitizer report fails the case)
Needs onnx, numpy and pillow (the Makefile's .venv); nothing from ../shared.
"""
import hashlib, os, resource, shutil, signal, struct, subprocess, sys, tempfile, time, zlib
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, '..', 'Fixtures')
MEMORY_LIMIT = 8_000_000 * 1024
TIMEOUT = 120

def limit_memory():
    # An AddressSanitizer build reserves terabytes of address space for its shadow: no limit on those.
    if not SANITIZED:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


# ---------------------------------------------------------------- files the cases use

def tiny_model():
    return onnx.load(os.path.join(FIXTURES, 'tiny_cnn.onnx'))

def save(model, path):
    onnx.save(model, path)
    return path

def png(w, h, depth, ctype, pixels, extra=b''):
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    raw = b''.join(b'\x00' + bytes(int(v) for v in row.ravel()) for row in pixels)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, 0)) + extra
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))

def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)

def images(folder, kinds=('photo',)):
    """A class folder of small images; kinds add hostile ones."""
    os.makedirs(os.path.join(folder, 'a'), exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(os.path.join(folder, 'a', f'photo{i}.jpg'), quality=90)
    for k in kinds:
        p = os.path.join(folder, 'a', k)
        if k == 'strip.png':  # 1 x 100000 pixels, a few hundred bytes
            open(p, 'wb').write(png(1, 100000, 8, 0, np.zeros((100000, 1), int)))
        elif k == 'bomb.png':  # 30000 x 30000 declared
            open(p, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 30000, 30000, 8, 0, 0, 0, 0))
                                + chunk(b'IDAT', zlib.compress(bytes(30001 * 64))) + chunk(b'IEND', b''))
        elif k == 'cut.jpg':
            b = open(os.path.join(folder, 'a', 'photo0.jpg'), 'rb').read()
            open(p, 'wb').write(b[:len(b) * 6 // 10])
        elif k == 'trns.png':  # palette + tRNS
            pal = bytes(rng.integers(0, 256, 48).astype(np.uint8))
            open(p, 'wb').write(png(40, 30, 8, 3, rng.integers(0, 16, (30, 40)), chunk(b'PLTE', pal) + chunk(b'tRNS', bytes([0, 0, 128]))))
        elif k == 'rgba.png':
            a = rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)
            a[:, :, 3] = np.where(a[:, :, 3] > 128, 0, 255)
            Image.fromarray(a, 'RGBA').save(p)
        elif k == 'grey16.png':
            Image.fromarray(rng.integers(0, 600, (30, 40)).astype(np.uint16)).save(p)
        elif k == 'la.png':
            Image.fromarray(rng.integers(0, 256, (30, 40, 2), dtype=np.uint8), 'LA').save(p)
        elif k == 'cmyk.jpg':
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).convert('CMYK').save(p, quality=90)
        elif k == 'progressive.jpg':
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(p, progressive=True)
        elif k == 'not_an_image.png':
            open(p, 'w').write('hello')
    return folder


def with_input_dims(model, dims):
    d = model.graph.input[0].type.tensor_type.shape.dim
    for i, v in enumerate(dims):
        d[i].Clear()
        if isinstance(v, str):
            d[i].dim_param = v
        else:
            d[i].dim_value = v
    return model

def node(model, name):
    return next(n for n in model.graph.node if n.name == name)

def initializer(model, name):
    return next(t for t in model.graph.initializer if t.name == name)

def set_initializer(model, name, array):
    t = initializer(model, name)
    t.CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))


# ---------------------------------------------------------------- the cases

class Case:
    def __init__(self, name, setup, argv, rc, names=(), warns=(), outputs=(), stdin_kill=None, seconds=None):
        self.name, self.setup, self.argv, self.rc = name, setup, argv, rc
        self.names, self.warns, self.outputs, self.seconds = names, warns, outputs, seconds

CASES = []

def case(name, argv, rc, names=(), warns=(), outputs=(), seconds=None):
    def wrap(setup):
        CASES.append(Case(name, setup, argv, rc, names, warns, outputs, seconds=seconds))
        return setup
    return wrap

def plain(d):
    save(tiny_model(), os.path.join(d, 'm.onnx'))
    images(os.path.join(d, 'imgs'))

# 1. outputs that would replace an input, or each other
case('quantize -o INPUT', ['quantize', 'm.onnx', '--calib', 'imgs', '--preset', 'torch', '-o', 'm.onnx'], 2, ['m.onnx'])(plain)
case('quantize --json INPUT', ['quantize', 'm.onnx', '--calib', 'imgs', '--json', 'm.onnx'], 2, ['m.onnx'])(plain)
case('quantize --json == -o', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx', '--json', 'q.onnx'], 2, ['q.onnx'])(plain)
case('quantize -o = symlink to the input', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'link.onnx'], 2, ['link.onnx', 'm.onnx'])(
    lambda d: (plain(d), os.symlink('m.onnx', os.path.join(d, 'link.onnx'))))
case('quantize -o hard link to the input', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'hard.onnx'], 2, ['hard.onnx'])(
    lambda d: (plain(d), os.link(os.path.join(d, 'm.onnx'), os.path.join(d, 'hard.onnx'))))
case('quantize -o sub/../m.onnx', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'imgs/../m.onnx'], 2, ['m.onnx'])(plain)
case('quantize --calib-table = -o', ['quantize', 'm.onnx', '--calib-table', 't.calib.json', '-o', 't.calib.json'], 2, ['t.calib.json'])(
    lambda d: (plain(d), open(os.path.join(d, 't.calib.json'), 'w').write('{}')))
case('eval --json = the model', ['eval', 'm.onnx', '--data', 'imgs', '--json', 'm.onnx'], 2, ['m.onnx'])(plain)
case('eval --predictions = --json', ['eval', 'm.onnx', '--data', 'imgs', '--json', 'o.json', '--predictions', 'o.json'], 2, ['o.json'])(plain)
case('eval --save-outputs = labels', ['eval', 'm.onnx', '--data', 'imgs', '--labels', 'labels.txt', '--save-outputs', 'labels.txt'], 2, ['labels.txt'])(
    lambda d: (plain(d), open(os.path.join(d, 'labels.txt'), 'w').write('a/photo0.jpg 1\n')))
case('quantize --max-drop with a missing --eval-data', ['quantize', 'm.onnx', '--calib', 'imgs', '--weight-bits', '4', '--max-drop', '0.5',
     '--eval-data', 'nowhere', '-o', 'q.onnx'], 2, ['nowhere'])(plain)
# --exclude and --bits names that would do nothing
case('quantize --exclude a misspelt node', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx', '--exclude', 'convl'], 2, ['m.onnx', 'convl', 'conv1'])(plain)
case('quantize --exclude a folded BatchNormalization', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx', '--exclude', 'bn1'], 2, ['bn1', 'conv1'])(plain)
case('quantize --bits on a node without weights', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx', '--weight-bits', '4', '--bits', 'relu1=8'], 2,
     ['m.onnx', 'relu1', 'Relu'])(plain)
case('sensitivity --bits on an unknown node', ['sensitivity', 'm.onnx', '--calib', 'imgs', '--data', 'imgs', '--bits', 'nosuch=4'], 2, ['m.onnx', 'nosuch'])(plain)
def map_model(d):
    """A model whose only output is a feature map (a detector's shape): no class scores."""
    w = numpy_helper.from_array(np.random.default_rng(1).standard_normal((4, 3, 1, 1)).astype(np.float32), 'w')
    g = helper.make_graph([helper.make_node('Conv', ['input', 'w'], ['map'], name='conv')], 'map',
                          [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info('map', TensorProto.FLOAT, [1, 4, 32, 32])], [w])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), os.path.join(d, 'm.onnx'))
    images(os.path.join(d, 'imgs'))
case('quantize --max-drop on a model without class scores', ['quantize', 'm.onnx', '--calib', 'imgs', '--max-drop', '0.5', '--eval-data', 'imgs',
     '-o', 'q.onnx'], 2, ['m.onnx', "'map'", '--min-sqnr'])(map_model)
case('quantize --min-sqnr on a model without class scores', ['quantize', 'm.onnx', '--calib', 'imgs', '--weight-bits', '4', '--min-sqnr', '10',
     '--eval-data', 'imgs', '-o', 'q.onnx'], 0, outputs=['q.onnx', 'q.swq', 'q.calib.json'])(map_model)
def flat_images(d):
    plain(d)
    os.makedirs(os.path.join(d, 'flat'))
    for f in os.listdir(os.path.join(d, 'imgs', 'a')): shutil.copy(os.path.join(d, 'imgs', 'a', f), os.path.join(d, 'flat', f))
case('eval --max-drop on unlabelled images', ['eval', 'm.onnx', 'm.onnx', '--data', 'flat', '--max-drop', '1', '--json', 'e.json'], 2,
     ['flat', '--max-drop'])(flat_images)
case('eval --max-drop with labels past the classes', ['eval', 'm.onnx', 'm.onnx', '--data', 'imgs', '--labels', 'labels.txt', '--max-drop', '1',
     '--json', 'e.json'], 2, ['a/photo0.jpg', '50', 'not this model'])(
    lambda d: (plain(d), open(os.path.join(d, 'labels.txt'), 'w').write('a/photo0.jpg 50\na/photo1.jpg 3\n')))
case('sensitivity --json = the model', ['sensitivity', 'm.onnx', '--calib', 'imgs', '--data', 'imgs', '--json', 'm.onnx'], 2, ['m.onnx'])(plain)
case('sensitivity on a missing --data', ['sensitivity', 'm.onnx', '--calib', 'imgs', '--data', 'nowhere', '--json', 's.json'], 2, ['nowhere'])(plain)
case('quantize --report = the model', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx', '--report', 'm.onnx'], 2, ['m.onnx'])(plain)
case('quantize --report in a missing folder', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx', '--report', 'no/r.html'], 2, ['no'])(plain)
case('eval --report = --json', ['eval', 'm.onnx', '--data', 'imgs', '--json', 'o.json', '--report', 'o.json'], 2, ['o.json'])(plain)
case('sensitivity --report = the model', ['sensitivity', 'm.onnx', '--calib', 'imgs', '--data', 'imgs', '--report', 'm.onnx'], 2, ['m.onnx'])(plain)
case('inspect --json = the model', ['inspect', 'm.onnx', '--json', 'm.onnx'], 2, ['m.onnx'])(plain)
case('convert -o = the input by another spelling', ['convert', 'm.onnx', '-o', './m.onnx'], 2, ['m.onnx'])(plain)

# 7. outputs that cannot be written: found before the work, nothing left behind
case('quantize -o an existing folder', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'out'], 2, ['out'])(
    lambda d: (plain(d), os.mkdir(os.path.join(d, 'out'))))
case('quantize: the .swq is an existing folder', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx'], 2, ['q.swq'])(
    lambda d: (plain(d), os.mkdir(os.path.join(d, 'q.swq'))))
case('quantize -o in a missing folder', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'nowhere/q.onnx'], 2, ['nowhere'])(plain)
case('quantize -o in an unwritable folder', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', '/proc/q.onnx'], 2, ['/proc'], seconds=5)(plain)
case('quantize -o under a regular file', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'm.onnx/q.onnx'], 2, ['m.onnx'])(plain)
case('eval --json in a missing folder', ['eval', 'm.onnx', '--data', 'imgs', '--json', 'no/r.json'], 2, ['no'])(plain)
case('quantize -o /dev/null', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', '/dev/null'], 2, ['/dev/null'])(plain)

# 2. what would ask for gigabytes
case('eval: a 1x100000 image', ['eval', 'm.onnx', '--data', 'imgs'], 0, warns=['strip.png'])(
    lambda d: (save(tiny_model(), os.path.join(d, 'm.onnx')), images(os.path.join(d, 'imgs'), ['strip.png'])))
case('quantize: a 1x100000 image', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx'], 0, warns=['strip.png'],
     outputs=['q.onnx', 'q.swq', 'q.calib.json'])(
    lambda d: (save(tiny_model(), os.path.join(d, 'm.onnx')), images(os.path.join(d, 'imgs'), ['strip.png'])))
case('eval: a PNG bomb (30000x30000)', ['eval', 'm.onnx', '--data', 'imgs'], 0, warns=['bomb.png'], seconds=10)(
    lambda d: (save(tiny_model(), os.path.join(d, 'm.onnx')), images(os.path.join(d, 'imgs'), ['bomb.png'])))
huge = lambda d: (save(with_input_dims(tiny_model(), [1, 3, 100000, 100000]), os.path.join(d, 'm.onnx')), images(os.path.join(d, 'imgs')))
case('quantize: declared input 1x3x100000x100000', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'input'])(huge)
case('eval: declared input 1x3x100000x100000', ['eval', 'm.onnx', '--data', 'imgs'], 2, ['m.onnx', 'input'])(huge)
case('bench: declared input 1x3x100000x100000', ['bench', 'm.onnx'], 2, ['m.onnx', 'input'])(huge)
case('quantize --input-shape 1x3x100000x100000', ['quantize', 'm.onnx', '--calib', 'imgs', '--input-shape', 'input=1x3x100000x100000'], 2, ['input'])(plain)

def no_outputs(d):
    m = tiny_model()
    del m.graph.output[:]
    save(m, os.path.join(d, 'm.onnx'))
    images(os.path.join(d, 'imgs'))
case('eval: no graph outputs', ['eval', 'm.onnx', '--data', 'imgs'], 2, ['m.onnx', 'output'])(no_outputs)
case('quantize: no graph outputs', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'output'])(no_outputs)

# 5, 6. damaged images: skipped with a warning naming them
case('eval: truncated JPEG', ['eval', 'm.onnx', '--data', 'imgs'], 0, warns=['cut.jpg'])(
    lambda d: (save(tiny_model(), os.path.join(d, 'm.onnx')), images(os.path.join(d, 'imgs'), ['cut.jpg'])))
case('eval: a text file named .png', ['eval', 'm.onnx', '--data', 'imgs'], 0, warns=['not_an_image.png'])(
    lambda d: (save(tiny_model(), os.path.join(d, 'm.onnx')), images(os.path.join(d, 'imgs'), ['not_an_image.png'])))
def only_bad(d):
    save(tiny_model(), os.path.join(d, 'm.onnx'))
    os.makedirs(os.path.join(d, 'imgs', 'a'))
    open(os.path.join(d, 'imgs', 'a', 'x.jpg'), 'wb').write(b'\xff\xd8\xff')
case('quantize: every image broken', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx'], 2, ['image'], warns=['x.jpg'])(only_bad)

# 6. damaged models
def nonfinite(d):
    m = tiny_model()
    w = numpy_helper.to_array(initializer(m, 'pw.w')).copy()
    w[0, 0, 0, 0] = np.nan
    set_initializer(m, 'pw.w', w)
    w = numpy_helper.to_array(initializer(m, 'fc.w')).copy()
    w[1, 1] = np.inf
    set_initializer(m, 'fc.w', w)
    save(m, os.path.join(d, 'm.onnx'))
    images(os.path.join(d, 'imgs'))
case('quantize: NaN and Inf weights', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx'], 2, ['m.onnx', 'pwconv', 'pw.w', 'nan'])(nonfinite)
case('quantize: NaN and Inf weights, those nodes excluded', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx', '--exclude', 'pwconv', '--exclude', 'fc'], 0,
     outputs=['q.onnx', 'q.swq', 'q.calib.json'])(nonfinite)
def nan_bias(d):
    m = tiny_model()
    set_initializer(m, 'c1.b', np.full(8, np.nan))
    save(m, os.path.join(d, 'm.onnx'))
    images(os.path.join(d, 'imgs'))
case('quantize: NaN bias', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx'], 2, ['conv1', 'c1.b'])(nan_bias)

def unknown_domain(d):
    m = tiny_model()
    r = node(m, 'relu1')
    r.domain = 'com.example'
    m.opset_import.append(helper.make_opsetid('com.example', 1))
    save(m, os.path.join(d, 'm.onnx'))
    images(os.path.join(d, 'imgs'))
case('eval: com.example:Relu', ['eval', 'm.onnx', '--data', 'imgs'], 2, ['m.onnx', 'relu1', 'com.example'])(unknown_domain)
case('quantize: com.example:Relu', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'relu1', 'com.example'])(unknown_domain)

def dims(values):
    def setup(d):
        save(with_input_dims(tiny_model(), values), os.path.join(d, 'm.onnx'))
        images(os.path.join(d, 'imgs'))
    return setup
case('eval: input dim 0', ['eval', 'm.onnx', '--data', 'imgs'], 2, ['m.onnx', 'input'])(dims([1, 3, 0, 32]))
case('quantize: input dim -5', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'input'])(dims([1, 3, -5, 32]))
case('quantize: 5 channels', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'input'])(dims([1, 5, 32, 32]))

def attribute(name, value):
    def setup(d):
        m = tiny_model()
        c = node(m, 'conv1')
        old = [a for a in c.attribute if a.name == name]
        for a in old:
            c.attribute.remove(a)
        c.attribute.append(helper.make_attribute(name, value))
        save(m, os.path.join(d, 'm.onnx'))
        images(os.path.join(d, 'imgs'))
    return setup
case('quantize: kernel_shape as a string', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'conv1', 'kernel_shape'])(attribute('kernel_shape', '3x3'))
case('quantize: kernel_shape not the weight\'s', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'conv1', 'kernel_shape'])(attribute('kernel_shape', [5, 5]))
case('eval: kernel_shape of rank 3', ['eval', 'm.onnx', '--data', 'imgs'], 2, ['m.onnx', 'conv1', 'kernel_shape'])(attribute('kernel_shape', [3, 3, 3]))
case('quantize: pads of length 3', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'conv1', 'pads'])(attribute('pads', [1, 1, 1]))
case('quantize: strides 0', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'conv1', 'strides'])(attribute('strides', [0, 1]))
case('quantize: group as a float', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'conv1', 'group'])(attribute('group', 1.5))

def opset(v):
    def setup(d):
        m = tiny_model()
        m.opset_import[0].version = v
        save(m, os.path.join(d, 'm.onnx'))
        images(os.path.join(d, 'imgs'))
    return setup
case('quantize: opset 99', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'opset'])(opset(99))
case('inspect: opset 99 is still described', ['inspect', 'm.onnx'], 0)(opset(99))

def appended(build):
    """tiny_cnn with nodes appended after its output (`build(graph, output_name)` returns the new output)."""
    def setup(d):
        m = tiny_model()
        out = m.graph.output[0].name
        m.graph.output[0].name = build(m.graph, out)
        save(m, os.path.join(d, 'm.onnx'))
        images(os.path.join(d, 'imgs'))
    return setup
def reshape_overflow(g, out):
    g.initializer.append(numpy_helper.from_array(np.array([2**40, 2**40], np.int64), 'rs'))
    g.node.append(helper.make_node('Reshape', [out, 'rs'], ['r2'], name='reshape_big'))
    return 'r2'
def constant_bomb(g, out):
    g.initializer.append(numpy_helper.from_array(np.array([1, 10, 100000, 100000], np.int64), 'bomb_shape'))
    g.node.append(helper.make_node('ConstantOfShape', ['bomb_shape'], ['bomb'], name='bomb',
                                   value=helper.make_tensor('v', TensorProto.FLOAT, [1], [1.0])))
    g.node.append(helper.make_node('ReduceMax', ['bomb'], ['bmax'], name='bmax', keepdims=0))
    g.node.append(helper.make_node('Add', [out, 'bmax'], ['y2'], name='addb'))
    return 'y2'
def einsum(g, out):
    # A standard op swiftq's runtime has no kernel for.
    g.node.append(helper.make_node('Einsum', [out], ['e'], name='the_einsum', equation='...->...'))
    return 'e'
case('quantize: Reshape to 2^40 x 2^40', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'reshape_big'])(appended(reshape_overflow))
case('eval: Reshape to 2^40 x 2^40', ['eval', 'm.onnx', '--data', 'imgs'], 2, ['m.onnx', 'reshape_big'])(appended(reshape_overflow))
case('inspect: Reshape to 2^40 x 2^40 is still described', ['inspect', 'm.onnx'], 0)(appended(reshape_overflow))
case('quantize: ConstantOfShape of 10^11 values', ['quantize', 'm.onnx', '--calib', 'imgs'], 2, ['m.onnx', 'bomb'])(appended(constant_bomb))
case('bench: ConstantOfShape of 10^11 values', ['bench', 'm.onnx', '--seconds', '0'], 2, ['m.onnx', 'bomb'])(appended(constant_bomb))
case('eval: an op swiftq cannot run', ['eval', 'm.onnx', '--data', 'imgs'], 2, ['m.onnx', 'the_einsum'])(appended(einsum))

# Calibration arrays (.npy/.npz) that are damaged or do not fit the model: one line naming the file, exit 2.
def arrays(kind):
    def setup(d):
        save(tiny_model(), os.path.join(d, 'm.onnx'))
        os.makedirs(os.path.join(d, 'arr'))
        x = np.zeros((1, 3, 32, 32), np.float32)
        if kind == 'truncated':
            np.save(os.path.join(d, 'arr', 'a.npy'), x)
            p = os.path.join(d, 'arr', 'a.npy'); open(p, 'r+b').truncate(300)
        elif kind == 'shape':
            np.save(os.path.join(d, 'arr', 'a.npy'), np.zeros((1, 3, 8, 8), np.float32))
        elif kind == 'names':
            np.savez(os.path.join(d, 'arr', 'a.npz'), left=x, right=x)
        elif kind == 'bomb':
            h = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 3), }"
            h += b' ' * (63 - (10 + len(h)) % 64) + b'\n'
            open(os.path.join(d, 'arr', 'a.npy'), 'wb').write(b'\x93NUMPY\x01\x00' + len(h).to_bytes(2, 'little') + h)
    return setup
for kind, words in (('truncated', ['a.npy', 'needs']), ('shape', ['a.npy', 'x3x32x32']), ('names', ['a.npz', "'input'"]), ('bomb', ['a.npy', 'more than'])):
    case(f'quantize: calibration array {kind}', ['quantize', 'm.onnx', '--calib', 'arr'], 2, words)(arrays(kind))

def calib_table(change):
    def setup(d):
        plain(d)
        subprocess.run([BIN, 'quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx'], cwd=d, capture_output=True, check=True)
        import json
        t = json.load(open(os.path.join(d, 'q.calib.json')))
        change(next(iter(sorted(t['tensors'].items())))[1])
        json.dump(t, open(os.path.join(d, 'q.calib.json'), 'w'))
        for f in ('q.onnx', 'q.swq'):
            os.remove(os.path.join(d, f))
    return setup
def swap(s): s['min'], s['max'] = s['max'], s['min']
case('quantize: table with min > max', ['quantize', 'm.onnx', '--calib-table', 'q.calib.json', '-o', 'r.onnx'], 2, ['q.calib.json', 'tensor'])(calib_table(swap))
case('quantize: table with a zero range', ['quantize', 'm.onnx', '--calib-table', 'q.calib.json', '-o', 'r.onnx'], 2, ['q.calib.json', 'tensor'])(
    calib_table(lambda s: s.update(range=0)))
case('quantize: table with negative counts', ['quantize', 'm.onnx', '--calib-table', 'q.calib.json', '-o', 'r.onnx'], 2, ['q.calib.json', 'tensor'])(
    calib_table(lambda s: s['histogram'].__setitem__(0, -7)))
case('quantize: table that is not JSON', ['quantize', 'm.onnx', '--calib-table', 'imgs/a/photo0.jpg', '-o', 'r.onnx'], 2, ['photo0.jpg'])(plain)

# 8. external data through a link out of the model's folder
def external_link(d):
    m = tiny_model()
    os.makedirs(os.path.join(d, 'model'))
    onnx.save(m, os.path.join(d, 'model', 'm.onnx'), save_as_external_data=True, all_tensors_to_one_file=True, location='w.data', size_threshold=0)
    os.remove(os.path.join(d, 'model', 'w.data'))
    os.symlink('/etc/passwd', os.path.join(d, 'model', 'w.data'))
case('convert: external data is a link to /etc/passwd', ['convert', 'model/m.onnx', '-o', 'copy.onnx'], 2, ['model/m.onnx', 'w.data'])(external_link)
def external_fifo(d):
    m = tiny_model()
    onnx.save(m, os.path.join(d, 'm.onnx'), save_as_external_data=True, all_tensors_to_one_file=True, location='w.data', size_threshold=0)
    os.remove(os.path.join(d, 'w.data'))
    os.mkfifo(os.path.join(d, 'w.data'))
case('inspect: external data is a FIFO', ['inspect', 'm.onnx'], 2, ['m.onnx', 'w.data'], seconds=10)(external_fifo)
def external_fine(d):
    onnx.save(tiny_model(), os.path.join(d, 'm.onnx'), save_as_external_data=True, all_tensors_to_one_file=True, location='m.onnx.data', size_threshold=0)
case('convert --external-data always onto the input\'s data', ['convert', 'm.onnx', '-o', 'm2.onnx', '--external-data', 'always'], 0,
     outputs=['m2.onnx', 'm2.onnx.data'])(external_fine)

# 9. messages
case('quantize --calib-limit -5', ['quantize', 'm.onnx', '--calib', 'imgs', '--calib-limit', '-5'], 64, ['--calib-limit must be positive'])(plain)
case('eval --threads -1', ['eval', 'm.onnx', '--data', 'imgs', '--threads', '-1'], 64, ['--threads must be positive'])(plain)
case('eval --data a regular file', ['eval', 'm.onnx', '--data', 'm.onnx'], 2, ['m.onnx', 'not a folder'])(plain)
case('eval --classes empty', ['eval', 'm.onnx', '--data', 'imgs', '--classes', 'classes.txt'], 2, ['classes.txt'])(
    lambda d: (plain(d), open(os.path.join(d, 'classes.txt'), 'w').close()))
case('inspect a folder', ['inspect', 'imgs'], 2, ['imgs'])(plain)
case('inspect a JPEG', ['inspect', 'imgs/a/photo0.jpg'], 2, ['photo0.jpg'])(plain)
case('inspect a missing file', ['inspect', 'gone.onnx'], 2, ['gone.onnx'])(plain)
case('inspect m (a one-letter name)', ['inspect', 'm'], 0)(lambda d: save(tiny_model(), os.path.join(d, 'm')))
case('inspect a truncated model', ['inspect', 'cut.onnx'], 2, ['cut.onnx'])(
    lambda d: open(os.path.join(d, 'cut.onnx'), 'wb').write(open(os.path.join(FIXTURES, 'tiny_cnn.onnx'), 'rb').read()[:1500]))
case('eval: a FIFO named like an image', ['eval', 'm.onnx', '--data', 'imgs'], 0, warns=['fifo.jpg'], seconds=20)(
    lambda d: (plain(d), os.mkfifo(os.path.join(d, 'imgs', 'a', 'fifo.jpg'))))
case('inspect a FIFO', ['inspect', 'pipe.onnx'], 2, ['pipe.onnx'], seconds=20)(lambda d: os.mkfifo(os.path.join(d, 'pipe.onnx')))
case('quantize --calib-table a FIFO', ['quantize', 'm.onnx', '--calib-table', 't.json'], 2, ['t.json'], seconds=20)(
    lambda d: (plain(d), os.mkfifo(os.path.join(d, 't.json'))))
case('eval --labels a FIFO', ['eval', 'm.onnx', '--data', 'imgs', '--labels', 'labels.txt'], 2, ['labels.txt'], seconds=20)(
    lambda d: (plain(d), os.mkfifo(os.path.join(d, 'labels.txt'))))
case('eval --labels not UTF-8', ['eval', 'm.onnx', '--data', 'imgs', '--labels', 'labels.txt'], 2, ['labels.txt', 'UTF-8'])(
    lambda d: (plain(d), open(os.path.join(d, 'labels.txt'), 'wb').write(b'a/photo0.jpg 1\n\xff\xfe\n')))
def int8_with(change):
    def setup(d):
        plain(d)
        subprocess.run([BIN, 'quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx'], cwd=d, capture_output=True, check=True)
        os.remove(os.path.join(d, 'q.calib.json'))
        change(d)
    return setup
case('eval: the .swq beside an int8 model is a folder', ['eval', 'q.onnx', '--data', 'imgs'], 2, ['q.swq'])(
    int8_with(lambda d: (os.remove(os.path.join(d, 'q.swq')), os.mkdir(os.path.join(d, 'q.swq')))))
case('eval: the .swq beside an int8 model is cut short', ['eval', 'q.onnx', '--data', 'imgs'], 2, ['q.swq'])(
    int8_with(lambda d: open(os.path.join(d, 'q.swq'), 'r+b').truncate(100)))
case('eval: the .swq belongs to another model', ['eval', 'q.onnx', '--data', 'imgs'], 2, ['q.swq'])(
    int8_with(lambda d: (subprocess.run([BIN, 'quantize', 'm.onnx', '--calib', 'imgs', '--per-tensor', '-o', 'p.onnx'], cwd=d, capture_output=True, check=True),
                         [os.remove(os.path.join(d, f)) for f in ('p.onnx', 'p.calib.json')], os.replace(os.path.join(d, 'p.swq'), os.path.join(d, 'q.swq')))))
case('eval --calib-table of a folder', ['quantize', 'm.onnx', '--calib-table', 'imgs'], 2, ['imgs'])(plain)

# success, with every output where it belongs
case('quantize (all outputs)', ['quantize', 'm.onnx', '--calib', 'imgs', '-o', 'q.onnx', '--json', 'q.json'], 0,
     outputs=['q.onnx', 'q.swq', 'q.calib.json', 'q.json'])(plain)
case('quantize m (one-letter name)', ['quantize', 'm', '--calib', 'imgs', '--preset', 'torch'], 0,
     outputs=['m.int8.onnx', 'm.int8.swq', 'm.int8.calib.json'])(lambda d: (save(tiny_model(), os.path.join(d, 'm')), images(os.path.join(d, 'imgs'))))


# ---------------------------------------------------------------- running

def digest(path):
    h = hashlib.sha256()
    for root, _, files in os.walk(path):
        for f in sorted(files):
            p = os.path.join(root, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            h.update(p.encode())
            h.update(open(p, 'rb').read())
    return h.hexdigest()

def listing(d):
    out = set()
    for root, dirs, files in os.walk(d):
        for f in files + dirs:
            out.add(os.path.relpath(os.path.join(root, f), d))
    return out

def run_case(c, keep):
    d = tempfile.mkdtemp(prefix='swiftq-hostile-')
    problems = []
    try:
        c.setup(d)
        before = listing(d)
        sums = {p: digest(os.path.join(d, p)) for p in before if not os.path.islink(os.path.join(d, p)) and not p.endswith('w.data')}
        start = time.time()
        try:
            r = subprocess.run([BIN] + c.argv, cwd=d, capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=limit_memory)
        except subprocess.TimeoutExpired:
            return [f'no answer in {TIMEOUT} s (a hang)'], d
        took = time.time() - start
        err = r.stderr
        if r.returncode < 0:
            problems.append(f'killed by signal {-r.returncode}')
        if 'Sanitizer' in err or 'runtime error:' in err:
            problems.append('sanitizer report: ' + next(l for l in err.splitlines() if 'Sanitizer' in l or 'runtime error:' in l)[:200])
        if 'Backtrac' in err or 'crashed' in err or 'Fatal error' in err:
            problems.append('crashed: ' + err.strip().splitlines()[0][:200])
        if r.returncode != c.rc:
            problems.append(f'exit {r.returncode}, expected {c.rc}: {err.strip()[-300:]}')
        errors = [l for l in err.splitlines() if l.startswith('swiftq: error:') or l.startswith('Error:')]
        if c.rc != 0:
            if len(errors) != 1:
                problems.append(f'{len(errors)} error lines: {err.strip()[-300:]}')
            text = '\n'.join(errors)
            for n in c.names:
                if n not in text:
                    problems.append(f'the error does not name {n!r}: {text[:300]}')
            for bad in ('NSCocoaErrorDomain', 'Error Domain=', 'Swift.', 'node \'', ):
                if bad == 'node \'' and text.count(bad) < 2:
                    continue
                if bad in text:
                    problems.append(f'raw or doubled text ({bad!r}) in: {text[:300]}')
        warnings = [l for l in err.splitlines() if 'warning' in l]
        for w in c.warns:
            if not any(w in l for l in warnings):
                problems.append(f'no warning names {w!r}: {err.strip()[-300:]}')
        if c.seconds is not None and took > c.seconds:
            problems.append(f'took {took:.1f} s, more than {c.seconds} s')
        after = listing(d)
        new = after - before
        temps = [p for p in after if os.path.basename(p).startswith('.swiftq-tmp-')]
        if temps:
            problems.append(f'temporary files left: {temps}')
        expected = set(c.outputs) if r.returncode == 0 else set()
        if new - expected - set(temps):
            problems.append(f'unexpected files: {sorted(new - expected - set(temps))}')
        if r.returncode == 0 and expected - after:
            problems.append(f'missing outputs: {sorted(expected - after)}')
        for p, s in sums.items():
            if os.path.exists(os.path.join(d, p)) and digest(os.path.join(d, p)) != s:
                problems.append(f'input {p} was changed')
            elif not os.path.exists(os.path.join(d, p)):
                problems.append(f'input {p} was removed')
        return problems, d
    finally:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)

def main():
    global BIN
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    BIN = os.path.abspath(args[0])
    only = args[args.index('--only') + 1] if '--only' in args else None
    keep = '--keep' in args
    global SANITIZED
    SANITIZED = '--sanitized' in args
    passed = failed = 0
    for c in CASES:
        if only and only not in c.name:
            continue
        problems, d = run_case(c, keep)
        if problems:
            failed += 1
            print(f'FAIL {c.name}' + (f' ({d})' if keep else ''))
            for p in problems:
                print(f'     {p}')
        else:
            passed += 1
            print(f'PASS {c.name}')
        sys.stdout.flush()
    if not only or only in 'determinism':
        problems = determinism()
        if problems:
            failed += 1
            print('FAIL determinism: ' + '; '.join(problems))
        else:
            passed += 1
            print('PASS determinism: quantize gives the same bytes on every run, with --threads 1 and 2, on images of every kind')
    print(f'{passed} passed, {failed} failed')
    sys.exit(1 if failed else 0)


def determinism():
    """Output bytes identical across runs and thread counts, calibrating on every image kind (Fixtures/image-kinds,
    damaged ones included, which are skipped) plus the transparent and 16-bit PNGs made here."""
    d = tempfile.mkdtemp(prefix='swiftq-determinism-')
    try:
        save(tiny_model(), os.path.join(d, 'm.onnx'))
        shutil.copytree(os.path.join(FIXTURES, 'image-kinds'), os.path.join(d, 'imgs', 'kinds'), ignore=shutil.ignore_patterns('*.json'))
        images(os.path.join(d, 'imgs'), ['trns.png', 'rgba.png', 'grey16.png', 'la.png', 'cmyk.jpg', 'progressive.jpg'])
        digests = []
        for threads in ('1', '2', '1', '2'):
            out = f'q{len(digests)}'
            r = subprocess.run([BIN, 'quantize', 'm.onnx', '--calib', 'imgs', '--preset', 'torch', '--threads', threads, '-o', out + '.onnx'],
                               cwd=d, capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=limit_memory)
            if r.returncode != 0:
                return [f'--threads {threads}: exit {r.returncode}: {r.stderr.strip()[-300:]}']
            skipped = [l for l in r.stderr.splitlines() if 'skipped' in l]
            if len(skipped) != 4:  # bomb.png, truncated.png, truncated.jpg, no_end_marker.jpg
                return [f'expected 4 images skipped, got {len(skipped)}: {skipped}']
            digests.append(tuple(hashlib.sha256(open(os.path.join(d, out + ext), 'rb').read()).hexdigest()
                                 for ext in ('.onnx', '.swq', '.calib.json')))
        if len(set(digests)) != 1:
            return [f'outputs differ between runs: {digests}']
        return []
    finally:
        shutil.rmtree(d, ignore_errors=True)

BIN = None
SANITIZED = False
if __name__ == '__main__':
    main()
