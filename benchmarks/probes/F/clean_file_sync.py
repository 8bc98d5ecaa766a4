"""One-way directory sync daemon.

Watches a source directory by polling, debounces bursts of changes to the
same file, copies changed files to a mirror directory on a small thread pool
and keeps a JSON manifest of the mirrored files and their digests.
"""

import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Set

POLL_INTERVAL_S = 1.0
DEBOUNCE_S = 0.5
COPY_WORKERS = 4
HEARTBEAT_S = 30.0
MANIFEST_NAME = ".sync-manifest.json"
MAX_TRACKED = 50_000

log = logging.getLogger("filesync")


def file_digest(path: Path, chunk: int = 1 << 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


class SyncState:
    """Digest of every mirrored file.  Uses an RLock: record() calls _prune()."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._digests: Dict[str, str] = {}

    def record(self, rel: str, digest: str) -> None:
        with self._lock:
            self._digests.pop(rel, None)
            self._digests[rel] = digest
            self._prune()

    def _prune(self) -> None:
        with self._lock:
            while len(self._digests) > MAX_TRACKED:
                del self._digests[next(iter(self._digests))]

    def digest(self, rel: str) -> Optional[str]:
        with self._lock:
            return self._digests.get(rel)

    def snapshot(self) -> Dict[str, str]:
        with self._lock:
            return dict(self._digests)


class DirectoryWatcher(threading.Thread):
    """Polls a tree for changed mtimes and reports relative paths."""

    def __init__(self, root: Path, events: "queue.Queue[Optional[str]]",
                 interval: float = POLL_INTERVAL_S) -> None:
        super().__init__(name="watcher")
        self.root, self._events, self._interval = root, events, interval
        self._stopped = threading.Event()
        self._mtimes: Dict[str, float] = {}

    def stop(self) -> None:
        self._stopped.set()

    def _scan(self) -> Dict[str, float]:
        seen = {}
        for full in self.root.rglob("*"):
            try:
                if full.is_file() and not full.name.startswith("."):
                    seen[str(full.relative_to(self.root))] = full.stat().st_mtime
            except FileNotFoundError:
                continue
        return seen

    def run(self) -> None:
        while True:
            current = self._scan()
            for rel, mtime in current.items():
                if self._mtimes.get(rel) != mtime:
                    self._events.put(rel)
            self._mtimes = current
            if self._stopped.wait(self._interval):
                break
        self._events.put(None)


class Debouncer:
    """Delays a callback per key until changes stop arriving for `delay` seconds."""

    def __init__(self, callback, delay: float = DEBOUNCE_S) -> None:
        self._callback, self._delay = callback, delay
        self._cond = threading.Condition()
        self._timers: Dict[str, threading.Timer] = {}
        self._firing = 0

    def touch(self, key: str) -> None:
        timer = threading.Timer(self._delay, self._fire, args=(key,))
        timer.daemon = True
        with self._cond:
            previous = self._timers.get(key)
            self._timers[key] = timer
        if previous is not None:
            previous.cancel()
        timer.start()

    def _fire(self, key: str) -> None:
        with self._cond:
            if self._timers.get(key) is not threading.current_thread():
                return
            del self._timers[key]
            self._firing += 1
        try:
            self._callback(key)
        finally:
            with self._cond:
                self._firing -= 1
                self._cond.notify_all()

    def flush(self) -> None:
        """Cancel pending timers, wait for running callbacks, then run the rest now."""
        with self._cond:
            pending = list(self._timers.items())
            self._timers.clear()
            while self._firing:
                self._cond.wait()
        for key, timer in pending:
            timer.cancel()
            self._callback(key)


class ManifestWriter(threading.Thread):
    """The only thread that writes the manifest file; woken when state changes."""

    def __init__(self, state: SyncState, path: Path) -> None:
        super().__init__(name="manifest")
        self._state, self._path = state, path
        self._cond = threading.Condition()
        self._dirty = self._stopping = False

    def mark_dirty(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._stopping:
                    self._cond.wait()
                stopping = self._stopping
                self._dirty = False
            self._write(self._state.snapshot())
            if stopping:
                return

    def _write(self, digests: Dict[str, str]) -> None:
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(digests, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self._path)


class SyncEngine:
    """Glues the watcher, debouncer, copy pool and manifest writer together."""

    def __init__(self, source: Path, mirror: Path) -> None:
        self.source, self.mirror = source, mirror
        self.state = SyncState()
        self._events: "queue.Queue[Optional[str]]" = queue.Queue()
        self._watcher = DirectoryWatcher(source, self._events)
        self._debouncer = Debouncer(self._enqueue_copy)
        self._pool = ThreadPoolExecutor(COPY_WORKERS, thread_name_prefix="copy")
        self._manifest = ManifestWriter(self.state, mirror / MANIFEST_NAME)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active: Set[str] = set()
        self._rerun: Set[str] = set()
        self._failures = 0
        self._heartbeat = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            log.info("alive; %d files tracked", len(self.state.snapshot()))

    def _enqueue_copy(self, rel: str) -> None:
        """Copy `rel`; if a copy of it is already running, run once more afterwards."""
        with self._lock:
            if rel in self._active:
                self._rerun.add(rel)
                return
            self._active.add(rel)
        self._submit(rel)

    def _submit(self, rel: str) -> None:
        fut = self._pool.submit(self._copy_one, rel)
        fut.add_done_callback(lambda f, rel=rel: self._copy_done(rel, f))

    def _copy_done(self, rel: str, fut: Future) -> None:
        exc = fut.exception()
        with self._lock:
            self._failures += exc is not None
            again = rel in self._rerun
            self._rerun.discard(rel)
            if not again:
                self._active.discard(rel)
                self._idle.notify_all()
        if exc is not None:
            log.error("copy of %s failed: %s", rel, exc)
        if again:
            self._submit(rel)

    def _copy_one(self, rel: str) -> None:
        src = self.source / rel
        dst = self.mirror / rel
        digest = file_digest(src)
        if self.state.digest(rel) == digest and dst.exists():
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{threading.get_ident()}.part")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
        self.state.record(rel, digest)
        self._manifest.mark_dirty()

    def status(self) -> Dict[str, object]:
        if not self._lock.acquire(timeout=1.0):
            return {"busy": True}
        try:
            return {"active": len(self._active), "failures": self._failures}
        finally:
            self._lock.release()

    def verify(self, rels: List[str]) -> List[str]:
        """Re-hash mirrored files in parallel; returns paths whose digest differs."""
        results: List[Optional[str]] = [None] * len(rels)

        def digest_into(i: int, rel: str) -> None:
            if (self.mirror / rel).is_file():
                results[i] = file_digest(self.mirror / rel)

        threads = [threading.Thread(target=digest_into, args=(i, rel)) for i, rel in enumerate(rels)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [rel for rel, got in zip(rels, results) if got != self.state.digest(rel)]

    def run(self, duration: float) -> None:
        self.mirror.mkdir(parents=True, exist_ok=True)
        self._manifest.start()
        self._heartbeat.start()
        self._watcher.start()
        deadline = time.monotonic() + duration
        try:
            while time.monotonic() < deadline:
                try:
                    rel = self._events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if rel is None:
                    break
                self._debouncer.touch(rel)
        finally:
            self._watcher.stop()
            self._watcher.join()
            self._debouncer.flush()
            with self._idle:
                while self._active:
                    self._idle.wait()
            self._pool.shutdown(wait=True)
            self._manifest.stop()
            self._manifest.join()
        mismatched = self.verify(sorted(self.state.snapshot())[:64])
        log.info("sync stopped: %s, %d mismatches", self.status(), len(mismatched))


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    SyncEngine(Path(sys.argv[1]), Path(sys.argv[2])).run(float(sys.argv[3]))
