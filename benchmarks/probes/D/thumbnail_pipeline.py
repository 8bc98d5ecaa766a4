"""Generate thumbnails for a directory tree of binary PPM/PGM images.

Pipeline stages:

    scanner thread --> work queue --> thumbnail workers --> resize pool
                                                         \\-> writes + manifest

A prune scan runs alongside and removes thumbnails whose source image no
longer exists.  The result is ``index.json`` in the destination directory.
"""

import json
import logging
import os
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Optional

log = logging.getLogger("thumbs")

THUMB_SIZES = (64, 128, 256)
IMAGE_EXTS = (".ppm", ".pgm")

_stats = {"scanned": 0, "resized": 0, "failed": 0, "bytes_written": 0}
_stats_lock = threading.Lock()


def bump(name: str, n: int = 1) -> None:
    with _stats_lock:
        _stats[name] += n


def stats_snapshot() -> Dict[str, int]:
    with _stats_lock:
        return dict(_stats)


class Image(NamedTuple):
    width: int
    height: int
    channels: int
    maxval: int
    pixels: bytes


def read_pnm(path: str) -> Image:
    with open(path, "rb") as fh:
        data = fh.read()
    tokens: List[bytes] = []
    pos = 0
    while len(tokens) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            while data[pos:pos + 1] not in (b"\n", b""):
                pos += 1
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        tokens.append(data[start:pos])
    magic, width, height, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic not in (b"P5", b"P6"):
        raise ValueError(f"{path}: unsupported format {magic!r}")
    if maxval > 255:
        raise ValueError(f"{path}: 16-bit images are not supported")
    channels = 3 if magic == b"P6" else 1
    pos += 1
    pixels = data[pos:pos + width * height * channels]
    if len(pixels) != width * height * channels:
        raise ValueError(f"{path}: truncated pixel data")
    return Image(width, height, channels, maxval, pixels)


def write_pnm(path: str, img: Image) -> int:
    magic = b"P6" if img.channels == 3 else b"P5"
    header = b"%s\n%d %d\n%d\n" % (magic, img.width, img.height, img.maxval)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(header)
        fh.write(img.pixels)
    os.replace(tmp, path)
    return len(header) + len(img.pixels)


def downscale(img: Image, max_side: int) -> Image:
    """Box-filter downscale so that the longer side is at most *max_side*."""
    scale = max(img.width, img.height) / max_side
    if scale <= 1.0:
        return img
    tw = max(1, int(img.width / scale))
    th = max(1, int(img.height / scale))
    ch = img.channels
    src = img.pixels
    out = bytearray(tw * th * ch)
    for ty in range(th):
        y0 = int(ty * scale)
        y1 = max(y0 + 1, int((ty + 1) * scale))
        for tx in range(tw):
            x0 = int(tx * scale)
            x1 = max(x0 + 1, int((tx + 1) * scale))
            area = (y1 - y0) * (x1 - x0)
            for c in range(ch):
                total = 0
                for y in range(y0, y1):
                    row = y * img.width * ch
                    for x in range(x0, x1):
                        total += src[row + x * ch + c]
                out[(ty * tw + tx) * ch + c] = total // area
    return Image(tw, th, ch, img.maxval, bytes(out))


class ThumbnailPipeline:
    def __init__(self, src_root: str, dst_root: str, workers: Optional[int] = None) -> None:
        self.src_root = os.path.abspath(src_root)
        self.dst_root = os.path.abspath(dst_root)
        self.workers = workers or 4
        self.work_q: "queue.Queue[Optional[str]]" = queue.Queue(maxsize=256)
        self.manifest: Dict[str, Dict[int, str]] = {}
        self._manifest_lock = threading.Lock()
        self._active: Dict[str, float] = {}
        self._active_lock = threading.Lock()
        self._done = threading.Event()

    def _thumb_path(self, rel: str, size: int) -> str:
        stem, ext = os.path.splitext(rel)
        return os.path.join(self.dst_root, str(size), stem + ext)

    def _scan(self) -> None:
        for dirpath, dirs, files in os.walk(self.src_root):
            dirs.sort()
            for name in sorted(files):
                self.work_q.put(os.path.join(dirpath, name))
                bump("scanned")

    def _find_stale(self, out: List[str]) -> None:
        for size in THUMB_SIZES:
            base = os.path.join(self.dst_root, str(size))
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    thumb = os.path.join(dirpath, name)
                    rel = os.path.relpath(thumb, base)
                    if not os.path.exists(os.path.join(self.src_root, rel)):
                        out.append(thumb)

    def _remove_stale(self, paths: List[str]) -> int:
        removed = 0
        for p in paths:
            try:
                os.remove(p)
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def _worker(self, resize_pool: ThreadPoolExecutor) -> None:
        while True:
            path = self.work_q.get()
            if path is None:
                self.work_q.task_done()
                return
            if not path.lower().endswith(IMAGE_EXTS):
                continue
            try:
                self._process(path, resize_pool)
            except Exception:
                log.exception("failed to thumbnail %s", path)
                bump("failed")
            finally:
                self.work_q.task_done()

    def _process(self, path: str, resize_pool: ThreadPoolExecutor) -> None:
        with self._active_lock:
            self._active[path] = time.monotonic()
        try:
            img = read_pnm(path)
            futures = {size: resize_pool.submit(downscale, img, size) for size in THUMB_SIZES}
            rel = os.path.relpath(path, self.src_root)
            outputs: Dict[int, str] = {}
            for size, fut in futures.items():
                thumb = fut.result()
                dst = self._thumb_path(rel, size)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                n = write_pnm(dst, thumb)
                _stats["bytes_written"] += n
                outputs[size] = dst
            with self._manifest_lock:
                self.manifest[rel] = outputs
            bump("resized")
        finally:
            with self._active_lock:
                del self._active[path]

    def _watchdog(self, interval: float = 5.0, slow_after: float = 30.0) -> None:
        while not self._done.wait(interval):
            now = time.monotonic()
            for path, started in self._active.items():
                if now - started > slow_after:
                    log.warning("still working on %s after %.0fs", path, now - started)
            log.info("progress: %s", stats_snapshot())

    def _write_index(self, removed: int) -> None:
        index = {
            "generated": time.time(),
            "sizes": list(THUMB_SIZES),
            "images": self.manifest,
            "stats": stats_snapshot(),
            "pruned": removed,
        }
        path = os.path.join(self.dst_root, "index.json")
        with open(path + ".tmp", "w") as fh:
            json.dump(index, fh, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)

    def run(self) -> Dict[str, Dict[int, str]]:
        os.makedirs(self.dst_root, exist_ok=True)
        stale: List[str] = []
        pruner = threading.Thread(target=self._find_stale, args=(stale,), name="prune-scan")
        pruner.start()
        watchdog = threading.Thread(target=self._watchdog, name="watchdog", daemon=True)
        watchdog.start()
        scanner = threading.Thread(target=self._scan, name="scanner")
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 4, thread_name_prefix="resize") as resize_pool:
            workers = [
                threading.Thread(target=self._worker, args=(resize_pool,), name=f"thumb-{i}")
                for i in range(self.workers)
            ]
            for w in workers:
                w.start()
            scanner.start()
            scanner.join()
            self.work_q.join()
            for _ in workers:
                self.work_q.put(None)
            for w in workers:
                w.join()
        self._done.set()
        watchdog.join()
        removed = self._remove_stale(stale)
        self._write_index(removed)
        return self.manifest


def main(argv: List[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} SRC_DIR DST_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    started = time.monotonic()
    manifest = ThumbnailPipeline(argv[1], argv[2]).run()
    log.info("%d images in %.1fs: %s", len(manifest), time.monotonic() - started, stats_snapshot())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
