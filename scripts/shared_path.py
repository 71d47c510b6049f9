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
