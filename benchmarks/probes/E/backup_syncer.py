"""Incremental directory backup, rsync style.

Each run creates a new snapshot directory under DEST named after the current
time.  Files whose size and mtime match the previous snapshot's manifest are
hard-linked from it; everything else is copied.  A weak block checksum of
every file goes into the new manifest so the next run (and `--verify`) can
detect silent corruption, and the manifest is also archived as a compressed
tarball alongside the snapshot.

    python backup_syncer.py /home/alice /backups/alice --workers 8
"""
import argparse
import io
import json
import logging
import os
import queue
import shutil
import stat
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

log = logging.getLogger("backup")

CHUNK = 1 << 20
BLOCK = 64 * 1024
MOD_ADLER = 65521


def weak_checksum(path: str) -> List[int]:
    sums = []
    with open(path, "rb") as fh:
        while True:
            block = fh.read(BLOCK)
            if not block:
                break
            a, b = 1, 0
            for byte in block:
                a = (a + byte) % MOD_ADLER
                b = (b + a) % MOD_ADLER
            sums.append((b << 16) | a)
    return sums


class Progress:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files_done = 0
        self.files_linked = 0
        self.bytes_copied = 0
        self.errors: List[Tuple[str, str]] = []

    def file_done(self, linked: bool) -> None:
        with self._lock:
            self.files_done += 1
            if linked:
                self.files_linked += 1

    def add_bytes(self, n: int) -> None:
        self.bytes_copied += n

    def error(self, rel: str, exc: Exception) -> None:
        with self._lock:
            self.errors.append((rel, str(exc)))

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return {"files": self.files_done, "linked": self.files_linked,
                    "bytes": self.bytes_copied, "errors": len(self.errors)}


class CopyWorker(threading.Thread):
    def __init__(self, work: "queue.Queue[Optional[Tuple[str, os.stat_result]]]",
                 src: str, snap: str, prev: Optional[str], prev_manifest: Dict[str, dict],
                 progress: Progress) -> None:
        super().__init__()
        self.work = work
        self.src, self.snap, self.prev = src, snap, prev
        self.prev_manifest = prev_manifest
        self.progress = progress
        self.finished = False

    def run(self) -> None:
        try:
            while True:
                item = self.work.get()
                if item is None:
                    return
                rel, st = item
                try:
                    self._sync_one(rel, st)
                except OSError as exc:
                    self.progress.error(rel, exc)
        finally:
            self.finished = True

    def _sync_one(self, rel: str, st: os.stat_result) -> None:
        dst = os.path.join(self.snap, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        old = self.prev_manifest.get(rel)
        if self.prev and old and old["size"] == st.st_size and old["mtime"] == st.st_mtime_ns:
            os.link(os.path.join(self.prev, rel), dst)
            self.progress.file_done(linked=True)
            return
        with open(os.path.join(self.src, rel), "rb") as fin, open(dst, "wb") as fout:
            while True:
                chunk = fin.read(CHUNK)
                if not chunk:
                    break
                fout.write(chunk)
                self.progress.add_bytes(len(chunk))
        shutil.copystat(os.path.join(self.src, rel), dst)
        self.progress.file_done(linked=False)


class Syncer:
    def __init__(self, src: str, dest: str, workers: int, excludes: List[str]) -> None:
        self.src = os.path.abspath(src)
        self.dest = os.path.abspath(dest)
        self.nworkers = workers
        self.excludes = excludes
        self.progress = Progress()
        self.work: "queue.Queue" = queue.Queue(maxsize=1000)
        self.sources: Dict[str, os.stat_result] = {}
        self._stop_report = threading.Event()

    def _previous_snapshot(self) -> Tuple[Optional[str], Dict[str, dict]]:
        snaps = sorted(d for d in os.listdir(self.dest)
                       if os.path.isfile(os.path.join(self.dest, d, ".manifest.json")))
        if not snaps:
            return None, {}
        prev = os.path.join(self.dest, snaps[-1])
        with open(os.path.join(prev, ".manifest.json")) as fh:
            return prev, json.load(fh)["files"]

    def _scan(self, root: str) -> None:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in self.excludes]
            for name in filenames:
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except OSError as exc:
                    self.progress.error(os.path.relpath(full, root), exc)
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                rel = os.path.relpath(full, root)
                self.sources[rel] = st
                self.work.put((rel, st))

    def _report(self) -> None:
        while not self._stop_report.wait(2.0):
            p = self.progress.snapshot()
            log.info("%d files (%d linked), %.1f MiB copied, %d errors",
                     p["files"], p["linked"], p["bytes"] / 2**20, p["errors"])

    def _write_archive(self, snap: str, manifest: dict) -> None:
        data = json.dumps(manifest, indent=1).encode()
        with tarfile.open(snap + ".manifest.tar.gz", "w:gz") as tar:
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        final = self.progress.snapshot()
        log.info("archived manifest for %d files", final["files"])

    def run(self) -> int:
        os.makedirs(self.dest, exist_ok=True)
        prev, prev_manifest = self._previous_snapshot()
        snap = os.path.join(self.dest, time.strftime("%Y%m%d-%H%M%S"))
        os.makedirs(snap)
        reporter = threading.Thread(target=self._report, name="report")
        reporter.start()

        scanner = threading.Thread(target=self._scan(self.src), name="scan")
        scanner.start()
        workers = [CopyWorker(self.work, self.src, snap, prev, prev_manifest, self.progress)
                   for _ in range(self.nworkers)]
        for w in workers:
            w.start()
        scanner.join()
        for _ in workers:
            self.work.put(None)
        while not all(w.finished for w in workers):
            time.sleep(0.05)

        rels = sorted(self.sources)
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            sums = list(pool.map(weak_checksum, [os.path.join(snap, r) for r in rels]))
        manifest = {"created": time.time(), "source": self.src, "files": {
            rel: {"size": self.sources[rel].st_size, "mtime": self.sources[rel].st_mtime_ns,
                  "blocks": s}
            for rel, s in zip(rels, sums)}}
        with open(os.path.join(snap, ".manifest.json"), "w") as fh:
            json.dump(manifest, fh)

        pid = os.fork()
        if pid == 0:
            try:
                os.nice(10)
                self._write_archive(snap, manifest)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        self._stop_report.set()
        reporter.join()

        p = self.progress.snapshot()
        for rel, err in self.progress.errors:
            log.error("%s: %s", rel, err)
        log.info("snapshot %s: %d files, %d linked, %.1f MiB copied, archive exit %d",
                 snap, p["files"], p["linked"], p["bytes"] / 2**20, os.waitstatus_to_exitcode(status))
        return 1 if p["errors"] else 0


def main() -> int:
    ap = argparse.ArgumentParser(description="incremental hard-link snapshot backup")
    ap.add_argument("src")
    ap.add_argument("dest")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--exclude", action="append", default=[".cache", "node_modules", ".git"])
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    return Syncer(args.src, args.dest, args.workers, args.exclude).run()


if __name__ == "__main__":
    sys.exit(main())
