#!/usr/bin/env python3
"""Local build-artifact cache shared by the jobs of a CI runner.

Artifacts are addressed by a cache key (hash of the build inputs) and kept on
local disk up to a byte budget; the least recently used ones are evicted
first.  When two jobs need the same missing artifact, only one builds it and
the other waits for the result.  Every lookup is appended to an access log.
"""

import functools
import hashlib
import itertools
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from threading import Lock as _Lock, RLock as _RLock

log = logging.getLogger("artifact-cache")


@dataclass
class Entry:
    key: str
    path: str
    size: int
    last_used: float
    pins: int = 0


class ArtifactCache:
    def __init__(self, root, capacity_bytes):
        self.root = root
        self.capacity = capacity_bytes
        self._lock = _RLock()
        self._cv = threading.Condition(self._lock)
        self._entries = OrderedDict()
        self._inflight = set()
        self._used = 0
        self._stats_lock = _Lock()
        self.stats = {"hits": 0, "misses": 0, "waited": 0, "evicted": 0, "pruned": 0}

    # Lock order everywhere: self._lock first, then self._stats_lock.
    def _bump(self, name, n=1):
        with self._stats_lock:
            self.stats[name] += n

    def _touch(self, key):
        with self._lock:
            self._entries.move_to_end(key)
            self._entries[key].last_used = time.monotonic()

    def _unpin(self, entry):
        with self._lock:
            entry.pins -= 1

    def _collect_victims(self):
        with self._lock:
            victims = []
            for key, entry in list(self._entries.items()):
                if self._used <= self.capacity:
                    break
                if entry.pins == 0:
                    del self._entries[key]
                    self._used -= entry.size
                    victims.append(entry)
            if victims:
                self._bump("evicted", len(victims))
            return victims

    def _write(self, key, data):
        fd, path = tempfile.mkstemp(dir=self.root, prefix=key[:12] + "-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return path

    def get_or_build(self, key, build):
        with self._cv:
            waited = False
            while key in self._inflight:
                waited = True
                self._cv.wait()
            if waited:
                self._bump("waited")
            entry = self._entries.get(key)
            if entry is not None:
                self._touch(key)
                entry.pins += 1
                self._bump("hits")
            else:
                self._inflight.add(key)
                self._bump("misses")
        if entry is not None:
            try:
                with open(entry.path, "rb") as fh:
                    return fh.read()
            finally:
                self._unpin(entry)

        try:
            data = build(key)
            path = self._write(key, data)
        except BaseException:
            with self._cv:
                self._inflight.discard(key)
                self._cv.notify_all()
            raise
        with self._cv:
            self._inflight.discard(key)
            self._entries[key] = Entry(key, path, len(data), time.monotonic())
            self._used += len(data)
            victims = self._collect_victims()
            self._cv.notify_all()
        for victim in victims:
            os.remove(victim.path)
        return data

    def prune(self, max_age):
        cutoff = time.monotonic() - max_age
        self._lock.acquire()
        try:
            stale = [e for e in self._entries.values() if e.last_used < cutoff and e.pins == 0]
            for entry in stale:
                del self._entries[entry.key]
                self._used -= entry.size
            if stale:
                self._bump("pruned", len(stale))
        finally:
            self._lock.release()
        for entry in stale:
            os.remove(entry.path)
        return len(stale)

    def snapshot(self):
        with self._lock:
            with self._stats_lock:
                return dict(self.stats, entries=len(self._entries), used=self._used)


_default_cache = None
_default_cache_lock = threading.Lock()


def default_cache():
    global _default_cache
    if _default_cache is None:
        with _default_cache_lock:
            if _default_cache is None:
                root = tempfile.mkdtemp(prefix="artifact-cache-")
                _default_cache = ArtifactCache(root, capacity_bytes=4 * 64 * 1024)
    return _default_cache


class AccessLog(threading.Thread):
    """Appends one line per cache lookup; close() drains and flushes."""

    def __init__(self, path):
        super().__init__(name="access-log", daemon=True)
        self.path = path
        self.q = queue.Queue()

    def record(self, runner, key, ms):
        self.q.put(f"{runner} {key[:12]} {ms:.1f}ms")

    def run(self):
        with open(self.path, "w", encoding="utf-8") as fh:
            while True:
                line = self.q.get()
                try:
                    if line is None:
                        return
                    fh.write(line + "\n")
                    if self.q.empty():
                        fh.flush()
                finally:
                    self.q.task_done()

    def close(self):
        self.q.put(None)
        self.join()


class Janitor(threading.Thread):
    def __init__(self, cache, interval, max_age):
        super().__init__(name="cache-janitor")
        self.cache, self.interval, self.max_age = cache, interval, max_age
        self._stop_evt = threading.Event()

    def run(self):
        while not self._stop_evt.wait(self.interval):
            self.cache.prune(self.max_age)

    def stop(self):
        self._stop_evt.set()
        self.join()


_worker_ctx = threading.local()
_runner_numbers = itertools.count(1)
_runner_numbers_lock = threading.Lock()
_upload_slots = threading.BoundedSemaphore(2)


def _init_runner():
    with _runner_numbers_lock:
        _worker_ctx.runner = f"runner-{next(_runner_numbers)}"


def compile_artifact(key):
    time.sleep(0.01)
    seed = hashlib.sha256(key.encode()).digest()
    return seed * 2048  # 64 KiB


def upload_remote(key, data):
    if not _upload_slots.acquire(timeout=0.5):
        log.warning("remote cache busy, skipping upload of %s", key[:12])
        return False
    try:
        time.sleep(0.005)
        return True
    finally:
        _upload_slots.release()


class BuildJob:
    """One CI job step: fetch or build its artifact, verify, upload."""

    def __init__(self, name, inputs, access_log):
        self.name = name
        self.key = hashlib.sha256(inputs.encode()).hexdigest()
        self.access_log = access_log

    def run(self, cache):
        t0 = time.perf_counter()
        data = cache.get_or_build(self.key, compile_artifact)
        digest = hashlib.sha256(data).hexdigest()
        self.access_log.record(_worker_ctx.runner, self.key, (time.perf_counter() - t0) * 1000)
        uploaded = upload_remote(self.key, data)
        return self.name, digest[:10], uploaded


def scan_existing(root, found):
    for name in sorted(os.listdir(root)):
        found.append((name, os.path.getsize(os.path.join(root, name))))


def main():
    logging.basicConfig(level=logging.WARNING)
    cache = default_cache()
    access_log = AccessLog(os.path.join(tempfile.gettempdir(), "artifact-access.log"))
    access_log.start()
    janitor = Janitor(cache, interval=0.05, max_age=0.3)
    janitor.start()

    outcomes, outcomes_lock = {}, threading.Lock()

    def on_done(job_name, fut):
        exc = fut.exception()
        with outcomes_lock:
            outcomes[job_name] = "failed: %r" % exc if exc else "ok"

    try:
        jobs = [BuildJob(f"job{i}", f"target-{i % 6}", access_log) for i in range(18)]
        with ThreadPoolExecutor(max_workers=4, initializer=_init_runner,
                                thread_name_prefix="ci") as pool:
            futures = {}
            for job in jobs:
                fut = pool.submit(job.run, cache)
                fut.add_done_callback(functools.partial(on_done, job.name))
                futures[fut] = job
            for fut in as_completed(futures):
                name, digest, uploaded = fut.result()
                print(f"{name:6s} {digest} uploaded={uploaded}")
        access_log.q.join()

        found = []
        scanner = threading.Thread(target=scan_existing, args=(cache.root, found))
        scanner.start()
        scanner.join()
        print(f"{len(found)} artifacts on disk, {sum(s for _, s in found)} bytes")
        with outcomes_lock:
            print("outcomes:", sorted(set(outcomes.values())))
        print("stats:", cache.snapshot())
    finally:
        janitor.stop()
        access_log.close()
        shutil.rmtree(cache.root, ignore_errors=True)


if __name__ == "__main__":
    main()
