"""Finds ../shared (or $SWIFTQ_SHARED) for the checks that use real models and images."""
import os, sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def shared_dir(required=True):
    p = os.environ.get('SWIFTQ_SHARED') or os.path.join(os.path.dirname(REPO), 'shared')
    if os.path.isdir(os.path.join(p, 'models')):
        return p
    if required:
        sys.exit(f'shared material not found at {p}: set SWIFTQ_SHARED to the folder with models/ and images/')
    return None


def ort_int8_is_exact():
    """Whether ONNX Runtime's int8 kernels sum u8 x s8 products exactly on this CPU. On x86 without VNNI (AVX2, and
    AVX-512 without VNNI) its kernels multiply byte pairs with vpmaddubsw, whose int16 sums saturate when
    |x0 w0 + x1 w1| > 32767 (the reason ONNX Runtime documents `reduce_range` for such machines). Measured on an AVX2
    Zen 3 (model_kinds.py's fixtures): the optimized session against the same Q/DQ graph run unoptimized 14.9-34.7 dB,
    swiftq's integer runtime against the unoptimized run 140-194 dB."""
    try:
        flags = open('/proc/cpuinfo').read()
    except OSError:
        return True
    if ' avx2' not in flags:
        return True   # not x86, or no AVX2: other kernels
    return 'avx512_vnni' in flags or 'avx_vnni' in flags


class Tally:
    """PASS/FAIL lines and their count, for the check scripts: `check(name, ok, detail)`, then `finish()` prints
    'N passed, N failed' and exits 1 when any failed."""
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=''):
        if ok: self.passed += 1
        else: self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)

    def finish(self):
        print(f'{self.passed} passed, {self.failed} failed')
        sys.exit(1 if self.failed else 0)
