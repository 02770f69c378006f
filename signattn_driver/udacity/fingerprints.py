"""Fingerprints of converter inputs (size and SHA-256), compared on re-runs."""

import hashlib
from pathlib import Path

_HASH_BLOCK = 1 << 20


def file_fingerprint(path: Path) -> dict:
    """Return {path, size, sha256} of a file (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
    return {'path': str(Path(path).resolve()), 'size': path.stat().st_size,
            'sha256': h.hexdigest()}


def folder_fingerprint(folder: Path, pattern: str = '*.jpg') -> dict:
    """Fingerprint a folder of images: file count, total size, SHA-256 over names and hashes."""
    h = hashlib.sha256()
    size = n = 0
    for p in sorted(folder.glob(pattern)):
        fp = file_fingerprint(p)
        h.update(f'{p.name} {fp["sha256"]}\n'.encode())
        size += fp['size']
        n += 1
    return {'path': str(folder.resolve()), 'files': n, 'size': size, 'sha256': h.hexdigest()}


def same_sources(a: list, b: list) -> bool:
    """Whether two fingerprint lists name the same contents (paths may differ)."""
    key = lambda fps: sorted((x['size'], x['sha256']) for x in fps)  # noqa: E731
    return key(a) == key(b)
