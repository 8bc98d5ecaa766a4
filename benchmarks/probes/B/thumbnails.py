"""Thumbnail generator for the media library.

Stage 1 (readers) pull source paths off a work queue and load raw bytes.
Stage 2 (resizers) decode binary PPM, downscale with nearest-neighbour
sampling and re-encode.  Resizing dominates wall time, so it gets one
thread per core.
Stage 3 (writer) persists thumbnails, appends to the manifest and hands
finished batches to an archiver so the CDN sync can pick them up.
Stages are joined by queues; None is the end-of-stream sentinel.
"""
import argparse
import os
import queue
import sys
import tarfile
import threading as th
import time
from pathlib import Path

THUMB_MAX = 128
READERS = 2
RESIZERS = os.cpu_count() or 4
ARCHIVE_BATCH = 50

paths_q: "queue.Queue[Path | None]" = queue.Queue()
raw_q: "queue.Queue[tuple[Path, bytes] | None]" = queue.Queue(maxsize=64)
out_q: "queue.Queue[tuple[str, bytes] | None]" = queue.Queue(maxsize=64)

stats_lock = th.Lock()
stats = {"read": 0, "resized": 0, "written": 0, "errors": 0}


def bump(key: str, n: int = 1) -> None:
    with stats_lock:
        stats[key] += n


def _next_token(data: bytes, pos: int) -> tuple[bytes, int]:
    n = len(data)
    while pos < n and data[pos:pos + 1].isspace():
        pos += 1
    start = pos
    while pos < n and not data[pos:pos + 1].isspace():
        pos += 1
    return data[start:pos], pos


def decode_ppm(data: bytes) -> tuple[int, int, list[bytes]]:
    magic, pos = _next_token(data, 0)
    if magic != b"P6":
        raise ValueError("not a binary PPM")
    w_tok, pos = _next_token(data, pos)
    h_tok, pos = _next_token(data, pos)
    max_tok, pos = _next_token(data, pos)
    if int(max_tok) != 255:
        raise ValueError("only 8-bit PPM is supported")
    w, h = int(w_tok), int(h_tok)
    raster = data[pos + 1: pos + 1 + w * h * 3]
    if len(raster) != w * h * 3:
        raise ValueError("truncated raster")
    return w, h, [raster[i:i + 3] for i in range(0, len(raster), 3)]


def resize_nearest(w: int, h: int, pixels: list[bytes], max_side: int):
    scale = max(w, h) / max_side
    if scale <= 1:
        return w, h, pixels
    nw, nh = max(1, int(w / scale)), max(1, int(h / scale))
    out = []
    for y in range(nh):
        row = min(h - 1, int(y * scale)) * w
        for x in range(nw):
            out.append(pixels[row + min(w - 1, int(x * scale))])
    return nw, nh, out


def encode_ppm(w: int, h: int, pixels: list[bytes]) -> bytes:
    return b"P6\n%d %d\n255\n" % (w, h) + b"".join(pixels)


def reader() -> None:
    while True:
        path = paths_q.get()
        try:
            if path is None:
                return
            raw_q.put((path, path.read_bytes()))
            bump("read")
        except OSError as exc:
            print(f"read {path}: {exc}", file=sys.stderr)
            bump("errors")
        finally:
            paths_q.task_done()


def resizer() -> None:
    while True:
        item = raw_q.get()
        try:
            if item is None:
                return
            path, data = item
            try:
                w, h, px = decode_ppm(data)
            except ValueError as exc:
                print(f"decode {path}: {exc}", file=sys.stderr)
                bump("errors")
                continue
            nw, nh, small = resize_nearest(w, h, px, THUMB_MAX)
            out_q.put((path.stem + "_thumb.ppm", encode_ppm(nw, nh, small)))
            bump("resized")
        finally:
            raw_q.task_done()


def archive_batch(batch: list[str], archive_dir: str, seq: int) -> int:
    """Compress a finished batch in a child process so the writer never
    stalls on gzip.  Returns the child's pid."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            dest = os.path.join(archive_dir, f"batch-{seq:05d}.tar.gz")
            with tarfile.open(dest, "w:gz") as tar:
                for name in batch:
                    tar.add(name, arcname=os.path.basename(name))
        except Exception:
            code = 1
        os._exit(code)
    return pid


def writer(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch: list[str] = []
    children: list[int] = []
    seq = 0
    with open(out / "manifest.tsv", "a") as manifest:
        while True:
            item = out_q.get()
            if item is None:
                break
            name, blob = item
            dest = out / name
            try:
                dest.write_bytes(blob)
            except OSError as exc:
                print(f"write {dest}: {exc}", file=sys.stderr)
                bump("errors")
                continue
            manifest.write(f"{name}\t{len(blob)}\n")
            bump("written")
            batch.append(str(dest))
            if len(batch) >= ARCHIVE_BATCH:
                manifest.flush()
                children.append(archive_batch(batch, out_dir, seq))
                batch, seq = [], seq + 1
        if batch:
            children.append(archive_batch(batch, out_dir, seq))
    for pid in children:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            print(f"archiver {pid} exited with {status}", file=sys.stderr)
            bump("errors")


def run(src_dir: str, out_dir: str) -> int:
    sources = sorted(Path(src_dir).glob("*.ppm"))
    for p in sources:
        paths_q.put(p)
    t0 = time.perf_counter()

    readers = [th.Thread(target=reader, name=f"read-{i}") for i in range(READERS)]
    resizers = [th.Thread(target=resizer, name=f"resize-{i}") for i in range(RESIZERS)]
    writer_t = th.Thread(target=writer, args=(out_dir), name="writer")
    for t in readers + resizers + [writer_t]:
        t.start()

    for _ in readers:
        paths_q.put(None)
    paths_q.join()
    for t in readers:
        t.join()
    for _ in resizers:
        raw_q.put(None)
    for t in resizers:
        t.join()
    out_q.put(None)
    out_q.join()
    writer_t.join()

    elapsed = time.perf_counter() - t0
    print(f"{len(sources)} sources -> {stats['written']} thumbnails, "
          f"{stats['errors']} errors in {elapsed:.2f}s")
    return 1 if stats["errors"] else 0


def main(argv=None) -> int:
    global THUMB_MAX
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="directory containing *.ppm originals")
    ap.add_argument("dst", help="output directory for thumbnails")
    ap.add_argument("--max-side", type=int, default=THUMB_MAX)
    args = ap.parse_args(argv)
    THUMB_MAX = args.max_side
    return run(args.src, args.dst)


if __name__ == "__main__":
    sys.exit(main())
