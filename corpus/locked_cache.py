"""A thread-safe memoising cache: the dict is only touched under the lock, and the slow
load happens outside it, so one slow key never blocks lookups of the others."""

import threading


class Cache:
    def __init__(self, load):
        self._load = load
        self._data = {}
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._data:
                return self._data[key]
        value = self._load(key)
        with self._lock:
            return self._data.setdefault(key, value)

    def invalidate(self, key):
        with self._lock:
            self._data.pop(key, None)

    def snapshot(self):
        with self._lock:
            return dict(self._data)


def warm(cache, keys, workers=4):
    chunks = [keys[i::workers] for i in range(workers)]
    threads = [threading.Thread(target=_warm_chunk, args=(cache, chunk)) for chunk in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _warm_chunk(cache, keys):
    for key in keys:
        cache.get(key)


if __name__ == "__main__":
    c = Cache(lambda k: k * 2)
    warm(c, list(range(100)))
    print(len(c.snapshot()))
