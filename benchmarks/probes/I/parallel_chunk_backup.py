#!/usr/bin/env python3
"""Chunked parallel backup uploader.

Walks a source directory, splits every file into fixed-size chunks, uploads
the chunks to an object store with a pool of upload workers, verifies what was
stored, and finally writes a JSON manifest (file -> whole-file digest + chunk
keys) next to the uploaded data.  The object store here is an in-memory fake
with simulated latency and the occasional transient error.

Run:  python3 parallel_chunk_backup.py
"""

import hashlib
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from threading import Lock as _Lock
from typing import Dict, List, Optional

log = logging.getLogger("backup")

CHUNK_SIZE = 16 * 1024
UPLOAD_WORKERS = 4
MAX_ATTEMPTS = 3


class UploadError(Exception):
    pass


class TransientStoreError(UploadError):
    pass


class QuotaExceeded(UploadError):
    pass


@dataclass(frozen=True)
class Chunk:
    path: str
    index: int
    offset: int
    data: bytes = field(repr=False)

    @property
    def key(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class FakeObjectStore:
    """In-memory content-addressed store with latency and flaky puts."""

    def __init__(self, quota_bytes: int):
        self._lock = _Lock()
        self._objects: Dict[str, bytes] = {}
        self._used = 0
        self._quota = quota_bytes
        self._calls = 0
        self._attempts: Dict[str, int] = {}

    def _check_quota(self, size: int) -> None:
        if self._used + size > self._quota:
            raise QuotaExceeded(f"quota exceeded: {self._used + size} > {self._quota}")

    def put(self, key: str, data: bytes) -> None:
        time.sleep(0.002)  # network round trip
        with self._lock:
            self._calls += 1
            previous = self._attempts.get(key, 0)
            self._attempts[key] = previous + 1
        # Throttling hits some first attempts; a retry always goes through.
        if previous == 0 and key[0] in "05a":
            raise TransientStoreError(f"503 slow down ({key[:8]})")
        self._lock.acquire()
        if key not in self._objects:
            self._check_quota(len(data))
            self._objects[key] = data
            self._used += len(data)
        self._lock.release()

    def get(self, key: str) -> Optional[bytes]:
        time.sleep(0.001)
        with self._lock:
            return self._objects.get(key)

    def usage(self) -> int:
        with self._lock:
            return self._used


class Progress:
    def __init__(self, total_bytes: int):
        self._lock = _Lock()
        self.total = total_bytes
        self.done = 0
        self.failed: List[str] = []

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n

    def remaining(self) -> int:
        with self._lock:
            return self.total - self.done

    def fail(self, chunk: Chunk, exc: Exception) -> None:
        with self._lock:
            self.failed.append(f"{chunk.path}#{chunk.index}: {exc}")
            log.error("giving up on %s#%d (%d bytes still pending)",
                      chunk.path, chunk.index, self.remaining())

    def render(self) -> str:
        with self._lock:
            pct = 100.0 * self.done / self.total if self.total else 100.0
            return f"{self.done}/{self.total} bytes ({pct:.0f}%)"


class FileDigester(threading.Thread):
    """Computes whole-file SHA-256 digests for the manifest in the background."""

    def __init__(self, paths: List[str]):
        super().__init__(name="digester")
        self.paths = paths
        self.digests: Dict[str, str] = {}

    def run(self) -> None:
        for path in self.paths:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(8192), b""):
                    h.update(block)
                    time.sleep(0.0005)  # pretend the disk is slow
            self.digests[path] = h.hexdigest()


class BackupJob:
    def __init__(self, source: str, store: FakeObjectStore):
        self.source = source
        self.store = store
        self.files = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(source) for name in names)
        self.progress = Progress(sum(os.path.getsize(p) for p in self.files))
        self._chunk_q: "queue.Queue[Optional[Chunk]]" = queue.Queue(maxsize=32)
        self._chunks_by_file: Dict[str, List[str]] = {p: [] for p in self.files}
        self._index_lock = _Lock()
        self._verify_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")
        self.verified = 0
        self._checkpoint_path = os.path.join(source, ".backup-checkpoint")

    # -- producers -----------------------------------------------------
    def _iter_chunks(self, path: str):
        with open(path, "rb") as fh:
            index = 0
            while True:
                data = fh.read(CHUNK_SIZE)
                if not data:
                    break
                yield Chunk(path, index, index * CHUNK_SIZE, data)
                index += 1

    # -- consumers -----------------------------------------------------
    def _upload_with_retry(self, chunk: Chunk) -> None:
        delay = 0.005
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                self.store.put(chunk.key, chunk.data)
                return
            except TransientStoreError:
                if attempt == MAX_ATTEMPTS:
                    raise
                time.sleep(delay)
                delay *= 2

    def _verify(self, chunk: Chunk) -> None:
        stored = self.store.get(chunk.key)
        if stored is None or hashlib.sha256(stored).hexdigest() != chunk.key:
            raise UploadError(f"verification failed for {chunk.path}#{chunk.index}")
        with self._index_lock:
            self.verified += 1

    def _upload_worker(self) -> None:
        while True:
            chunk = self._chunk_q.get()
            if chunk is None:
                self._chunk_q.task_done()
                return
            try:
                self._upload_with_retry(chunk)
            except UploadError as exc:
                self.progress.fail(chunk, exc)
                continue
            with self._index_lock:
                keys = self._chunks_by_file[chunk.path]
                while len(keys) <= chunk.index:
                    keys.append("")
                keys[chunk.index] = chunk.key
            self.progress.advance(len(chunk.data))
            self._verify_pool.submit(self._verify, chunk)
            self._chunk_q.task_done()

    # -- checkpointing -------------------------------------------------
    def _checkpoint(self) -> None:
        with self._index_lock:
            state = {p: list(keys) for p, keys in self._chunks_by_file.items()}
        with open(self._checkpoint_path, "w", encoding="utf-8") as fh:
            json.dump({"progress": self.progress.render(), "chunks": state}, fh)

    # -- driver --------------------------------------------------------
    def run(self, manifest_path: str) -> dict:
        digester = FileDigester(self.files)
        digester.start()

        workers = [threading.Thread(target=self._upload_worker, name=f"upload-{i}")
                   for i in range(UPLOAD_WORKERS)]
        for w in workers:
            w.start()

        for n, path in enumerate(self.files):
            for chunk in self._iter_chunks(path):
                self._chunk_q.put(chunk)
            if n % 3 == 2:
                threading.Thread(target=self._checkpoint(), name="checkpoint").start()

        self._chunk_q.join()
        for _ in workers:
            self._chunk_q.put(None)
        for w in workers:
            w.join()
        self._verify_pool.shutdown(wait=True)

        with self._index_lock:
            chunk_index = {p: list(k) for p, k in self._chunks_by_file.items()}
        manifest = {
            "source": self.source,
            "files": {
                os.path.relpath(p, self.source): {
                    "sha256": digester.digests.get(p, ""),
                    "size": os.path.getsize(p),
                    "chunks": chunk_index[p],
                }
                for p in self.files
            },
        }
        with open(manifest_path, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
        digester.join()
        return manifest


def make_sample_tree(root: str) -> None:
    seed = hashlib.sha256(b"backup-demo").digest()
    for i in range(9):
        sub = os.path.join(root, f"dir{i % 3}")
        os.makedirs(sub, exist_ok=True)
        size = 5_000 + i * 13_337
        blob = (seed * (size // len(seed) + 1))[:size]
        # Make every file distinct so chunk keys don't all collapse together.
        blob = bytes([i]) + blob[1:]
        with open(os.path.join(sub, f"file{i}.bin"), "wb") as fh:
            fh.write(blob)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(threadName)s %(message)s")
    workdir = tempfile.mkdtemp(prefix="backup-")
    try:
        source = os.path.join(workdir, "src")
        os.makedirs(source)
        make_sample_tree(source)
        store = FakeObjectStore(quota_bytes=64 * 1024 * 1024)
        job = BackupJob(source, store)
        started = time.monotonic()
        manifest = job.run(os.path.join(workdir, "manifest.json"))
        elapsed = time.monotonic() - started
        missing = [f for f, e in manifest["files"].items() if not e["sha256"]]
        print(f"files={len(manifest['files'])} progress={job.progress.render()} "
              f"stored={store.usage()} verified={job.verified} "
              f"failed={len(job.progress.failed)} in {elapsed:.2f}s")
        print(f"manifest entries without digest: {len(missing)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
