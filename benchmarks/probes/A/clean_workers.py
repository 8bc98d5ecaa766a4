"""Checksum a set of files with a worker pool and report a manifest.

Two back-ends are provided: a queue-based one (fixed worker threads,
sentinel shutdown) and a concurrent.futures one.  Both produce the same
{path: sha256} mapping.
"""

import functools
import hashlib
import os
import queue
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

_SENTINEL = object()
_tls = threading.local()


def _hasher():
    # each thread lazily gets its own scratch buffer
    buf = getattr(_tls, "buf", None)
    if buf is None:
        buf = _tls.buf = bytearray(1 << 16)
    return buf


def sha256_file(path):
    h = hashlib.sha256()
    buf = _hasher()
    view = memoryview(buf)
    with open(path, "rb") as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


def manifest_with_queue(paths, workers=4):
    jobs = queue.Queue()
    out = {}
    errors = []
    lock = threading.Lock()

    def consume(worker_id):
        while True:
            item = jobs.get()
            try:
                if item is _SENTINEL:
                    return
                digest = sha256_file(item)
                with lock:
                    out[item] = digest
            except OSError as exc:
                with lock:
                    errors.append((worker_id, item, exc))
            finally:
                jobs.task_done()

    threads = []
    for n in range(workers):
        t = threading.Thread(target=consume, args=(n,), name=f"sum-{n}")
        t.start()
        threads.append(t)
    for p in paths:
        jobs.put(p)
    jobs.join()
    for _ in threads:
        jobs.put(_SENTINEL)
    for t in threads:
        t.join()
    return out, errors


def manifest_with_executor(paths, workers=4):
    out, errors = {}, []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futs = {pool.submit(sha256_file, p): p for p in paths}
        for fut in as_completed(futs):
            path = futs[fut]
            try:
                out[path] = fut.result()
            except OSError as exc:
                errors.append((None, path, exc))
    return out, errors


def heartbeat(stop, interval):
    # purely cosmetic progress dots; fine to die with the interpreter
    while not stop.wait(interval):
        print(".", end="", file=sys.stderr, flush=True)


def timed_runs(paths):
    results = {}
    results_lock = threading.Lock()

    def store(name, fn):
        value = fn(paths)
        with results_lock:
            results[name] = value

    def single(ps):
        return {p: sha256_file(p) for p in ps}, []

    threads = []
    for name, fn in (("queue", manifest_with_queue),
                     ("executor", manifest_with_executor)):
        # bind the loop variables now, not when the thread runs
        t = threading.Thread(target=lambda name=name, fn=fn: store(name, fn),
                             name=f"run-{name}")
        threads.append(t)
    threads.append(threading.Thread(target=functools.partial(store, "single", single),
                                    name="run-single"))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


if __name__ == "__main__":
    stop = threading.Event()
    threading.Thread(target=heartbeat, args=(stop, 0.2), daemon=True).start()
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i in range(40):
            p = os.path.join(d, f"f{i}.bin")
            with open(p, "wb") as fh:
                fh.write(os.urandom(1000 + 97 * i))
            paths.append(p)
        paths.append(os.path.join(d, "missing.bin"))
        started = time.monotonic()
        res = timed_runs(paths[:-1])
        q_out, q_err = manifest_with_queue(paths)
        e_out, e_err = manifest_with_executor(paths)
    stop.set()
    assert res["queue"][0] == res["executor"][0] == res["single"][0]
    assert q_out == e_out and len(q_err) == len(e_err) == 1
    print(f"\nok: {len(q_out)} files in {time.monotonic() - started:.2f}s")
