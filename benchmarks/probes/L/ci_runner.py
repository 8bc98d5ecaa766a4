"""tinyci - a home-brew CI runner.

Jobs are executed by a fixed pool of build agents.  Build steps pull
dependencies through a shared artifact cache (one build per cache key,
guarded by per-key locks), stream their log lines to any number of
subscribers, and can be cancelled while running.
"""

import hashlib
import os
import queue
import shutil
import tempfile
import time
import threading
from concurrent.futures import ThreadPoolExecutor, wait as wait_futures
from threading import Lock as _Lock, Event

STATUS_BOARD = {}
_board_lock = _Lock()


# --------------------------------------------------------------------------
# artifact cache
# --------------------------------------------------------------------------

class ArtifactCache:
    def __init__(self, root):
        self.root = root
        self._index = {}
        self._index_lock = _Lock()
        self._key_locks = {}
        self._key_locks_guard = _Lock()
        self.builds = 0

    def _lock_for(self, key):
        with self._key_locks_guard:
            lk = self._key_locks.get(key)
            if lk is None:
                lk = self._key_locks[key] = _Lock()
            return lk

    def _write_blob(self, key, data):
        path = os.path.join(self.root, hashlib.sha1(key.encode()).hexdigest())
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return path

    def publish(self, key, data):
        with self._index_lock:
            path = self._write_blob(key, data)
            self._index[key] = path
            self.builds += 1
        return path

    def lookup(self, key):
        with self._index_lock:
            return self._index.get(key)

    def get_or_build(self, key, builder):
        with self._lock_for(key):
            path = self.lookup(key)
            if path is not None:
                return path
            return self.publish(key, builder())


_cache = None
_cache_lock = _Lock()


def get_cache():
    global _cache
    if _cache is None:
        with _cache_lock:
            _cache = ArtifactCache(tempfile.mkdtemp(prefix="tinyci-"))
    return _cache


# --------------------------------------------------------------------------
# log streaming
# --------------------------------------------------------------------------

class LogStream:
    def __init__(self):
        self._subscribers = []
        self._lock = _Lock()
        self.history = []

    def subscribe(self):
        q = queue.Queue()
        with self._lock:
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q):
        with self._lock:
            self._subscribers.remove(q)

    def emit(self, job_id, line):
        msg = f"[{job_id}] {line}"
        with self._lock:
            self.history.append(msg)
        for sub in self._subscribers:
            sub.put(msg)


def tail(stream, max_lines, sink):
    q = stream.subscribe()
    try:
        while len(sink) < max_lines:
            try:
                sink.append(q.get(timeout=0.5))
            except queue.Empty:
                break
    finally:
        stream.unsubscribe(q)


# --------------------------------------------------------------------------
# jobs and agents
# --------------------------------------------------------------------------

class Job:
    def __init__(self, job_id, steps, deps):
        self.id = job_id
        self.steps = steps
        self.deps = deps
        self.state = "queued"
        self.cancel_event = Event()
        self.started = Event()


def post_status(job_id, state):
    """Push state to the (fake) code-review system."""
    if state not in ("running", "passed", "failed"):
        raise ValueError(f"review system rejects state {state!r}")
    with _board_lock:
        STATUS_BOARD.setdefault(job_id, []).append(state)


class AgentPool:
    def __init__(self, agents, stream):
        self._lock = _Lock()
        self._jobs = {}
        self._stream = stream
        self._agents = ThreadPoolExecutor(max_workers=agents, thread_name_prefix="agent")
        self._notifier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify")
        self._futures = []

    def _set_state(self, job, state):
        with self._lock:
            job.state = state
        self._notifier.submit(post_status, job.id, state)

    def submit(self, job):
        with self._lock:
            self._jobs[job.id] = job
        fut = self._agents.submit(self._run, job)
        self._futures.append(fut)
        return fut

    def _run(self, job):
        if job.cancel_event.is_set():
            return job.state
        self._set_state(job, "running")
        job.started.set()
        cache = get_cache()
        for dep in job.deps:
            cache.get_or_build(dep, lambda d=dep: self._compile(job, d))
        for step in job.steps:
            if job.cancel_event.is_set():
                self._stream.emit(job.id, "cancelled by user")
                self._set_state(job, "cancelled")
                return "cancelled"
            self._stream.emit(job.id, f"$ {step}")
            time.sleep(0.02)
            if "fail" in step:
                self._set_state(job, "failed")
                return "failed"
        self._set_state(job, "passed")
        return "passed"

    def _compile(self, job, dep):
        self._stream.emit(job.id, f"building {dep}")
        digest = dep.encode()
        for _ in range(20000):
            digest = hashlib.sha256(digest).digest()
        return digest * 64

    def cancel(self, job_id):
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            job.cancel_event.set()
            if job.state == "queued":
                self._set_state(job, "cancelled")
                return True
        while job.state == "running":
            time.sleep(0.005)
        return True

    def shutdown(self):
        wait_futures(self._futures)
        self._agents.shutdown(wait=True)
        self._notifier.shutdown(wait=True)
        return [f.result() for f in self._futures]


def main():
    stream = LogStream()
    pool = AgentPool(agents=3, stream=stream)
    lines = []
    tailer = threading.Thread(target=tail, args=(stream, 40, lines))
    tailer.start()

    jobs = []
    for i in range(8):
        steps = ["checkout", "configure", "make -j4", "make test", "package"]
        if i == 5:
            steps[3] = "make test-fail"
        if i == 2:
            steps = steps + [f"integration-{n}" for n in range(10)]
        deps = [f"libfoo-1.{i % 3}", "toolchain-12"]
        jobs.append(Job(f"job-{i}", steps, deps))

    for job in jobs:
        pool.submit(job)

    jobs[2].started.wait(timeout=2)
    pool.cancel("job-2")

    results = pool.shutdown()
    tailer.join()
    cache = get_cache()
    print("results:", dict(zip((j.id for j in jobs), results)))
    print("artifact builds:", cache.builds, "log lines:", len(stream.history),
          "tailed:", len(lines))
    print("status board entries:", sum(len(v) for v in STATUS_BOARD.values()))
    shutil.rmtree(cache.root, ignore_errors=True)


if __name__ == "__main__":
    main()
