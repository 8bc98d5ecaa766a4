"""Multi-threaded thumbnail service with an on-disk cache.

Requests for (image, size) pairs are served from an in-memory index of
files in a cache directory; misses are rendered by a worker pool and
written to disk.  Concurrent requests for the same thumbnail share a
single render.
"""
import hashlib
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from typing import Dict, List, Optional, Tuple

SIZES = (64, 128, 256)

_tls = threading.local()


def _init_worker(prefix: str) -> None:
    _tls.scratch = tempfile.mkdtemp(prefix=prefix)
    _tls.renders = 0


def make_counter():
    """Return (increment, read) closures over a private, shared counter."""
    lock = threading.Lock()
    state = {"n": 0}

    def increment(k: int = 1) -> int:
        with lock:
            state["n"] += k
            return state["n"]

    def read() -> int:
        with lock:
            return state["n"]

    return increment, read


@dataclass
class RenderJob:
    source: str
    size: int
    target: str

    def run(self) -> str:
        """Fake render: write a deterministic blob proportional to the size."""
        digest = hashlib.sha256(f"{self.source}:{self.size}".encode()).digest()
        scratch = os.path.join(_tls.scratch, os.path.basename(self.target))
        with open(scratch, "wb") as fh:
            fh.write(digest * (self.size // 8))
        os.replace(scratch, self.target)
        _tls.renders += 1
        time.sleep(0.003)
        return self.target


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    shared: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str) -> None:
        with self.lock:
            setattr(self, kind, getattr(self, kind) + 1)


class ThumbnailCache:
    def __init__(self, root: str, pool: ThreadPoolExecutor) -> None:
        self.root = root
        self.pool = pool
        self._index: Dict[Tuple[str, int], str] = {}
        self._inflight: Dict[Tuple[str, int], Future] = {}
        self._lock = threading.RLock()
        self.stats = CacheStats()
        self.add_written, self.bytes_written = make_counter()
        self.add_read, self.bytes_read = make_counter()

    def _path_for(self, source: str, size: int) -> str:
        name = hashlib.md5(f"{source}@{size}".encode()).hexdigest() + ".thumb"
        return os.path.join(self.root, name)

    def _lookup(self, key: Tuple[str, int]) -> Optional[str]:
        with self._lock:
            return self._index.get(key)

    def get(self, source: str, size: int) -> Future:
        key = (source, size)
        with self._lock:
            path = self._lookup(key)
            if path is not None:
                self.stats.record("hits")
                done: Future = Future()
                done.set_result(path)
                return done
            fut = self._inflight.get(key)
            if fut is not None:
                self.stats.record("shared")
                return fut
            self.stats.record("misses")
            job = RenderJob(source, size, self._path_for(source, size))
            fut = self.pool.submit(job.run)
            self._inflight[key] = fut
        fut.add_done_callback(partial(self._finish, key, job.target))
        return fut

    def _finish(self, key: Tuple[str, int], target: str, fut: Future) -> None:
        with self._lock:
            self._inflight.pop(key, None)
            if fut.exception() is None:
                self._index[key] = target
        if fut.exception() is None:
            self.add_written(os.path.getsize(fut.result()))

    def evict_older_than(self, max_age: float) -> int:
        with self._lock:
            entries = list(self._index.items())
        now = time.time()
        stale = []
        for key, path in entries:
            try:
                if now - os.path.getmtime(path) > max_age:
                    stale.append(key)
            except FileNotFoundError:
                stale.append(key)
        with self._lock:
            for key in stale:
                self._index.pop(key, None)
        return len(stale)

    def index_size(self) -> int:
        with self._lock:
            return len(self._index)


class RequestGate:
    """Limits concurrent client requests; callers wait for a slot."""

    def __init__(self, slots: int) -> None:
        self._sem = threading.Semaphore(slots)
        self.rejected = 0
        self._rej_lock = threading.Lock()

    def serve(self, fn, *args):
        if not self._sem.acquire(timeout=1.0):
            with self._rej_lock:
                self.rejected += 1
            return None
        try:
            return fn(*args)
        finally:
            self._sem.release()


class Janitor(threading.Thread):
    """Periodically evicts stale thumbnails until stopped."""

    def __init__(self, cache: ThumbnailCache, interval: float) -> None:
        super().__init__(name="janitor", daemon=True)
        self.cache = cache
        self.interval = interval
        self._stop_evt = threading.Event()
        self.evicted = 0

    def run(self) -> None:
        while not self._stop_evt.wait(self.interval):
            self.evicted += self.cache.evict_older_than(60.0)

    def stop(self) -> None:
        self._stop_evt.set()
        self.join()


class WorkBoard:
    """Hands client batches out to client threads in order."""

    def __init__(self) -> None:
        self._batches: List[List[Tuple[str, int]]] = []
        self._cond = threading.Condition()
        self._done = False

    def put(self, batch: List[Tuple[str, int]]) -> None:
        with self._cond:
            self._batches.append(batch)
            self._cond.notify()

    def finish(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def take(self) -> Optional[List[Tuple[str, int]]]:
        with self._cond:
            while not self._batches and not self._done:
                self._cond.wait()
            return self._batches.pop(0) if self._batches else None


def client(board: WorkBoard, cache: ThumbnailCache, gate: RequestGate, out: List[int], out_lock: threading.Lock) -> None:
    while True:
        batch = board.take()
        if batch is None:
            return
        futures = [gate.serve(cache.get, src, size) for src, size in batch]
        for fut in as_completed([f for f in futures if f is not None]):
            path = fut.result()
            cache.add_read(os.path.getsize(path))
            with out_lock:
                out.append(1)


def _record_warm(sink: List[Tuple[int, str]], lock: threading.Lock, size: int, fut: Future) -> None:
    if fut.exception() is not None:
        return
    with lock:
        sink.append((size, fut.result()))


def main() -> None:
    root = tempfile.mkdtemp(prefix="thumbs-")
    pool = ThreadPoolExecutor(max_workers=4, initializer=_init_worker, initargs=("render-",))
    cache = ThumbnailCache(root, pool)
    gate = RequestGate(slots=6)
    janitor = Janitor(cache, interval=0.02)
    janitor.start()

    board = WorkBoard()
    served: List[int] = []
    served_lock = threading.Lock()
    clients = [threading.Thread(target=client, args=(board, cache, gate, served, served_lock), name=f"client-{i}")
               for i in range(3)]
    for c in clients:
        c.start()

    images = [f"img_{i:03d}.jpg" for i in range(12)]
    for round_no in range(5):
        batch = [(images[(round_no * 5 + j) % len(images)], SIZES[j % len(SIZES)]) for j in range(8)]
        board.put(batch)
    board.finish()
    for c in clients:
        c.join()

    warmed: List[Tuple[int, str]] = []
    warmed_lock = threading.Lock()
    warmups = []
    for size in SIZES:
        fut = cache.get("hero.jpg", size)
        fut.add_done_callback(lambda f, s=size: _record_warm(warmed, warmed_lock, s, f))
        warmups.append(fut)
    for fut in as_completed(warmups):
        fut.result()

    janitor.stop()
    pool.shutdown(wait=True)

    print(f"served {len(served)} responses, index={cache.index_size()} evicted={janitor.evicted}")
    print(f"stats: hits={cache.stats.hits} misses={cache.stats.misses} shared={cache.stats.shared}")
    print(f"bytes written={cache.bytes_written()} read={cache.bytes_read()} rejected={gate.rejected}")
    with warmed_lock:
        print(f"warmed sizes: {sorted(s for s, _ in warmed)}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
