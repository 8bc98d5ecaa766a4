"""Resumable chunked HTTP-range downloader.

The object is split into fixed-size byte ranges that are fetched on a worker
pool and written in place into a pre-allocated destination file.  A small JSON
journal next to the destination records finished chunks so an interrupted
download can be resumed without re-fetching what is already on disk.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Dict, List, Optional

CHUNK_SIZE = 4 * 1024 * 1024
JOURNAL_SUFFIX = ".part.json"

FetchFn = Callable[[str, int, int], bytes]


@dataclass
class Chunk:
    index: int
    start: int
    end: int  # inclusive
    done: bool = False
    attempts: int = 0

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass
class DownloadJob:
    url: str
    dest: str
    total_size: int
    chunks: List[Chunk] = field(default_factory=list)

    @property
    def journal_path(self) -> str:
        return self.dest + JOURNAL_SUFFIX


def plan_chunks(total_size: int, chunk_size: int = CHUNK_SIZE) -> List[Chunk]:
    chunks: List[Chunk] = []
    offset = 0
    while offset < total_size:
        end = min(offset + chunk_size, total_size) - 1
        chunks.append(Chunk(len(chunks), offset, end))
        offset = end + 1
    return chunks


def load_journal(job: DownloadJob) -> int:
    """Mark chunks recorded in the journal as done; returns how many."""
    try:
        with open(job.journal_path) as fh:
            state = json.load(fh)
    except (FileNotFoundError, ValueError):
        return 0
    if state.get("url") != job.url or state.get("size") != job.total_size:
        return 0
    finished = set(state.get("done", []))
    for c in job.chunks:
        c.done = c.index in finished
    return len(finished)


def make_file_fetcher(root: str) -> FetchFn:
    """Fetcher that serves byte ranges from a local mirror directory."""

    def fetch(url: str, start: int, end: int) -> bytes:
        path = os.path.join(root, os.path.basename(url))
        with open(path, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start + 1)

    return fetch


class ProgressReporter(threading.Thread):
    """Prints throughput once per interval and checkpoints the journal."""

    def __init__(self, manager: "DownloadManager", interval: float = 1.0) -> None:
        super().__init__(name="dl-progress", daemon=True)
        self.manager = manager
        self.interval = interval
        self._stop_evt = threading.Event()

    def run(self) -> None:
        last = self.manager.bytes_done
        while not self._stop_evt.wait(self.interval):
            done = self.manager.bytes_done
            rate = (done - last) / self.interval
            last = done
            pct = 100.0 * done / max(1, self.manager.job.total_size)
            sys.stderr.write(f"\r{pct:5.1f}%  {rate / 1024:9.1f} KiB/s")
            sys.stderr.flush()
            self.manager.write_journal()
        self.manager.write_journal()
        sys.stderr.write("\n")
        sys.stderr.flush()

    def stop(self) -> None:
        self._stop_evt.set()


class DownloadManager:
    def __init__(self, job: DownloadJob, fetch: FetchFn, workers: int = 6,
                 on_chunk: Optional[Callable[[Chunk], None]] = None) -> None:
        self.job = job
        self._fetch = fetch
        self._workers = workers
        self._on_chunk = on_chunk or (lambda chunk: None)
        self._lock = threading.Lock()
        self._file_lock = threading.Lock()
        self._notify_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dl-notify")
        self.bytes_done = sum(c.length for c in job.chunks if c.done)
        self.failed: List[int] = []
        self._reporter = ProgressReporter(self)

    def write_journal(self) -> None:
        with self._lock:
            done = [c.index for c in self.job.chunks if c.done]
        tmp = self.job.journal_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"url": self.job.url, "size": self.job.total_size, "done": done}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.job.journal_path)

    def discard(self, chunk: Chunk) -> None:
        """Forget a finished chunk (e.g. checksum mismatch) so it is fetched again."""
        with self._lock:
            if chunk.done:
                chunk.done = False
                self.bytes_done -= chunk.length

    def _fetch_chunk(self, fh: BinaryIO, chunk: Chunk) -> int:
        chunk.attempts += 1
        data = self._fetch(self.job.url, chunk.start, chunk.end)
        if len(data) != chunk.length:
            raise IOError(f"short read on chunk {chunk.index}: {len(data)}/{chunk.length}")
        with self._file_lock:
            fh.seek(chunk.start)
            fh.write(data)
        with self._lock:
            chunk.done = True
        self.bytes_done += len(data)
        self._notify_pool.submit(self._on_chunk, chunk)
        return len(data)

    def _collect_failures(self, futures: Dict[Future, Chunk]) -> None:
        for fut, chunk in futures.items():
            exc = fut.exception()
            if exc is not None:
                sys.stderr.write(f"\nchunk {chunk.index} failed (attempt {chunk.attempts}): {exc}\n")
                self.failed.append(chunk.index)

    def download(self, max_retries: int = 2) -> bool:
        pending = [c for c in self.job.chunks if not c.done]
        mode = "r+b" if os.path.exists(self.job.dest) else "w+b"
        with open(self.job.dest, mode) as fh:
            fh.truncate(self.job.total_size)
            self._reporter.start()
            with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="dl") as pool:
                futures = {pool.submit(self._fetch_chunk, fh, c): c for c in pending}
                wait(futures)
                self._collect_failures(futures)
                for _ in range(max_retries):
                    if not self.failed:
                        break
                    retry = [c for c in self.job.chunks if c.index in self.failed]
                    self.failed.clear()
                    futures = {}
                    for c in retry:
                        futures[pool.submit(lambda: self._fetch_chunk(fh, c))] = c
                    wait(futures)
                    self._collect_failures(futures)
            fh.flush()
        self._notify_pool.shutdown(wait=True)
        self._reporter.stop()
        return not self.failed


def main(argv: List[str]) -> int:
    if len(argv) != 4:
        sys.stderr.write("usage: dl_manager.py URL DEST MIRROR_DIR\n")
        return 2
    url, dest, mirror = argv[1:]
    size = os.path.getsize(os.path.join(mirror, os.path.basename(url)))
    job = DownloadJob(url, dest, size, plan_chunks(size))
    resumed = load_journal(job)
    if resumed:
        sys.stderr.write(f"resuming: {resumed}/{len(job.chunks)} chunks already on disk\n")
    mgr = DownloadManager(job, make_file_fetcher(mirror), workers=8)
    ok = mgr.download()
    if ok:
        sys.stderr.write(f"{dest}: {size} bytes\n")
    else:
        sys.stderr.write(f"{dest}: failed chunks {sorted(mgr.failed)}, rerun to resume\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
