"""Process-wide memoising cache for expensive lookups (rendered templates,
resolved configs, ...), with single-flight loading: when several threads ask
for the same missing key, exactly one of them computes it and the others
wait for that result.
"""

import threading
import time
from concurrent.futures import Future


class LoadingCache:
    def __init__(self, loader, ttl=300.0):
        self._loader = loader
        self._ttl = ttl
        self._lock = threading.RLock()
        self._entries = {}       # key -> (expires_at, value)
        self._inflight = {}      # key -> Future
        self.hits = 0
        self.misses = 0
        self._batch_lock = threading.Lock()

    def get(self, key):
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                self.hits += 1
                return entry[1]
            self.misses += 1
            fut = self._inflight.get(key)
            owner = fut is None
            if owner:
                fut = Future()
                self._inflight[key] = fut
        if not owner:
            return fut.result()
        try:
            value = self._loader(key)
        except BaseException as exc:
            with self._lock:
                del self._inflight[key]
            fut.set_exception(exc)
            raise
        with self._lock:
            self._entries[key] = (time.monotonic() + self._ttl, value)
            del self._inflight[key]
        fut.set_result(value)
        return value

    def invalidate(self, key):
        with self._lock:
            self._entries.pop(key, None)

    def invalidate_prefix(self, prefix):
        # RLock: invalidate() re-enters the lock we already hold
        with self._lock:
            for key in [k for k in self._entries if k.startswith(prefix)]:
                self.invalidate(key)

    def stats(self):
        self._lock.acquire()
        try:
            total = self.hits + self.misses
            return {"hits": self.hits, "misses": self.misses,
                    "ratio": self.hits / total if total else 0.0,
                    "size": len(self._entries)}
        finally:
            self._lock.release()

    # Bulk updates: begin_bulk() takes the batch lock and end_bulk()
    # releases it, so that a reload job can replace many keys without
    # interleaving with another reload job.  Use via bulk().
    def begin_bulk(self):
        self._batch_lock.acquire()

    def end_bulk(self):
        self._batch_lock.release()

    def bulk(self):
        cache = self

        class _Bulk:
            def __enter__(self):
                cache.begin_bulk()
                return cache

            def __exit__(self, *exc):
                cache.end_bulk()
                return False

        return _Bulk()

    def put(self, key, value):
        with self._lock:
            self._entries[key] = (time.monotonic() + self._ttl, value)


_default = None
_default_lock = threading.Lock()


def default_cache():
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = LoadingCache(lambda k: k.upper())
    return _default


if __name__ == "__main__":
    calls = []
    calls_lock = threading.Lock()

    def slow_loader(key):
        with calls_lock:
            calls.append(key)
        time.sleep(0.05)
        return f"<{key}>"

    cache = LoadingCache(slow_loader, ttl=60)
    results = []
    results_lock = threading.Lock()

    def client(keys):
        for k in keys:
            v = cache.get(k)
            with results_lock:
                results.append((k, v))

    threads = [threading.Thread(target=client, args=(["a", "b", "a", "c"],))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with cache.bulk() as c:
        c.put("cfg.x", 1)
        c.put("cfg.y", 2)
    cache.invalidate_prefix("cfg.")
    assert sorted(calls) == ["a", "b", "c"], calls
    assert len(results) == 32
    assert default_cache() is default_cache()
    print("ok", cache.stats())
