"""Finds ../shared (or $SWIFTQ_SHARED) for the checks that use real models and images."""
import os, sys, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def shared_dir(required=True):
    p = os.environ.get('SWIFTQ_SHARED') or os.path.join(os.path.dirname(REPO), 'shared')
    if os.path.isdir(os.path.join(p, 'models')):
        return p
    if required:
        sys.exit(f'shared material not found at {p}: set SWIFTQ_SHARED to the folder with models/ and images/')
    return None


def ort_int8_is_exact():
    """Whether ONNX Runtime's u8 x s8 kernels sum products exactly on this CPU. On x86 without VNNI (AVX2, and AVX-512
    without VNNI) they multiply byte pairs with vpmaddubsw, whose int16 sums saturate when |x0 w0 + x1 w1| > 32767 (the
    reason ONNX Runtime documents `reduce_range` for such machines). Measured on an AVX2 Zen 3: swiftq's W8 MobileNetV2
    scores 73.69 there against 79.54 as written, and agrees with swiftq's integer runtime on 82.5% of val."""
    try:
        flags = open('/proc/cpuinfo').read()
    except OSError:
        return True
    if ' avx2' not in flags:
        return True   # not x86, or no AVX2: other kernels
    return 'avx512_vnni' in flags or 'avx_vnni' in flags


EXACT = ort_int8_is_exact()
NO_VNNI = ('' if EXACT else
           'NOTE this CPU has no VNNI: ONNX Runtime runs each int8 model with its weights restated as uint8 (w + 128, zero point 128), '
           'the same arithmetic on its exact u8 x u8 kernels; its u8 x s8 kernels saturate here')


def ort_exact_int8(path):
    """A Q/DQ model ONNX Runtime runs exactly on this CPU, for the checks that compare with it: the model itself where its
    int8 kernels are exact (ort_int8_is_exact), otherwise a copy beside it (`.u8w.onnx`) whose int8 initializers feeding
    DequantizeLinear are restated as uint8 with 128 added to values and zero points. That is the same real number for
    every weight, and ONNX Runtime then fuses the same QLinearConv on its u8 x u8 kernels, which widen to int16 and do not
    saturate (AVX2 Zen 3: swiftq's W8 MobileNetV2 agrees with the integer runtime on 100% of val, against 82.5% on the
    saturating kernels). INT4 weights stay: |w| <= 8 cannot saturate."""
    if EXACT:
        return path
    import numpy as np, onnx
    from onnx import numpy_helper, TensorProto
    m = onnx.load(path)
    inits = {i.name: i for i in m.graph.initializer}
    moved = set()
    for n in m.graph.node:
        if n.op_type != 'DequantizeLinear' or len(n.input) < 3:
            continue
        w, z = inits.get(n.input[0]), inits.get(n.input[2])
        if w is None or z is None or w.data_type != TensorProto.INT8 or z.data_type != TensorProto.INT8:
            continue
        for t in (w, z):
            if t.name not in moved:
                u = (numpy_helper.to_array(t).astype(np.int16) + 128).astype(np.uint8)
                t.CopyFrom(numpy_helper.from_array(u, t.name))
                moved.add(t.name)
    out = path + '.u8w.onnx'
    onnx.save(m, out)
    return out


class Tally:
    """PASS/FAIL lines and their count, for the check scripts: `check(name, ok, detail)`, then `finish()` prints
    'N passed, N failed' and exits 1 when any failed. Each line ends with the seconds since the previous one (what
    that check cost, to keep CI inside its budget)."""
    def __init__(self):
        self.passed = self.failed = 0
        self.start = self.last = time.monotonic()

    def check(self, name, ok, detail=''):
        if ok: self.passed += 1
        else: self.failed += 1
        now = time.monotonic()
        print(f"{'PASS' if ok else 'FAIL'} {name}{f': {detail}' if detail else ''} [{now - self.last:.0f} s]", flush=True)
        self.last = now

    def finish(self):
        print(f'{self.passed} passed, {self.failed} failed, {time.monotonic() - self.start:.0f} s')
        sys.exit(1 if self.failed else 0)
