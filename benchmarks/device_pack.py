"""Carry a dataset to the lent GPU machine: JPEG-pack a subset of drives, unpack it there.

The GPU machine takes at most 64 MiB of working tree per call, and a dataset stores raw
80x160 HSV frames (37.5 KiB each, ~2.4x with zlib). This packs whole drives, frames as
JPEG (BGR after HSV->BGR, quality 85: ~3.7 KiB per frame, mean |error| ~7 HSV levels,
mostly in the ill-defined hue of grey pixels), labels.csv and the manifest entry verbatim,
masks zlib-compressed. Unpacking rebuilds a dataset in the standard layout whose frames are
the JPEG round trip of the originals: every model trained there sees the same degraded
frames, so comparisons between them are fair, but they are not bit-identical to a CPU run.

    python benchmarks/device_pack.py pack DATASET PACKED --train-frames 8000 --val-frames 2000
    python benchmarks/device_pack.py unpack PACKED DATASET
"""

import argparse
import json
from pathlib import Path
import shutil
import sys

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from signattn_driver.data.dataset import Dataset, LABELS, MANIFEST  # noqa: E402


def pack(dataset: Path, out: Path, train_frames: int, val_frames: int, quality: int,
         per_drive: int) -> dict:
    """Pack the first `per_drive` frames of drives until each split's budget is reached.

    A prefix of a drive is a valid drive: eq. 2 smoothing is causal, so its labels are the
    same rows as in the full drive. Taking prefixes of many drives keeps map variety.
    """
    ds = Dataset(dataset)
    manifest = dict(ds.manifest)
    # 'test' drives count as validation here: the device run only trains and validates.
    kept, budget = {}, {'train': train_frames, 'val': val_frames, 'test': val_frames}
    out.mkdir(parents=True, exist_ok=False)
    for name in ds.drive_names:
        entry = dict(ds.manifest['drives'][name])
        split = entry.get('split', 'train')
        n = min(entry['frames'], per_drive, budget.get(split, 0))
        if n < 200:
            continue
        budget[split] -= n
        drive = ds.drive(name)
        if len(set(drive.labels['camera'])) != 1:
            raise SystemExit(f'{name}: packing supports one camera per drive')
        frames = drive.frames(0, n)
        entry['frames'] = n
        blobs = [cv2.imencode('.jpg', cv2.cvtColor(f, cv2.COLOR_HSV2BGR),
                              [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
                 for f in frames]
        sizes = np.array([len(b) for b in blobs], np.int64)
        folder = out / name
        folder.mkdir()
        np.save(folder / 'jpeg_sizes.npy', sizes)
        (folder / 'frames.jpegs').write_bytes(b''.join(blobs))
        if drive.mask_chunks:
            np.savez_compressed(folder / 'masks.npz', masks=drive.masks(0, n))
        lines = (drive.folder / LABELS).read_text().splitlines(keepends=True)
        (folder / LABELS).write_text(''.join(lines[:1 + n]))
        kept[name] = entry
    manifest['drives'] = kept
    manifest['packed'] = {'jpeg_quality': quality, 'source': str(dataset)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return {s: sum(e['frames'] for e in kept.values() if e.get('split') == s)
            for s in ('train', 'val', 'test')}


def unpack(packed: Path, out: Path, chunk_frames: int = 1024) -> Path:
    """Rebuild a standard dataset folder from a pack."""
    manifest = json.loads((packed / MANIFEST).read_text())
    out.mkdir(parents=True, exist_ok=False)
    for name, entry in manifest['drives'].items():
        src, dst = packed / name, out / name
        dst.mkdir()
        sizes = np.load(src / 'jpeg_sizes.npy')
        data = (src / 'frames.jpegs').read_bytes()
        ends = np.cumsum(sizes)
        frames = np.stack([
            cv2.cvtColor(cv2.imdecode(np.frombuffer(data[e - s:e], np.uint8), cv2.IMREAD_COLOR),
                         cv2.COLOR_BGR2HSV) for s, e in zip(sizes, ends)])
        masks = np.load(src / 'masks.npz')['masks'] if (src / 'masks.npz').is_file() else None
        chunks = 0
        for i in range(0, len(frames), chunk_frames):
            np.save(dst / f'frames_{chunks:05d}.npy', frames[i:i + chunk_frames])
            if masks is not None:
                np.save(dst / f'masks_{chunks:05d}.npy', masks[i:i + chunk_frames])
            chunks += 1
        shutil.copy(src / LABELS, dst / LABELS)
        entry['chunks'] = chunks
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    Dataset(out)    # validates the manifest
    return out


def main(argv=None) -> int:
    """Command line: pack | unpack."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('pack')
    p.add_argument('dataset', type=Path)
    p.add_argument('out', type=Path)
    p.add_argument('--train-frames', type=int, default=8000)
    p.add_argument('--val-frames', type=int, default=2000)
    p.add_argument('--quality', type=int, default=85)
    p.add_argument('--per-drive', type=int, default=1000, help='first N frames of each drive')
    u = sub.add_parser('unpack')
    u.add_argument('packed', type=Path)
    u.add_argument('out', type=Path)
    args = parser.parse_args(argv)
    if args.cmd == 'pack':
        print(json.dumps(pack(args.dataset, args.out, args.train_frames, args.val_frames,
                              args.quality, args.per_drive)))
    else:
        print(unpack(args.packed, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
