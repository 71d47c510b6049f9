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
