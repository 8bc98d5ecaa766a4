"""TTL cache with an LRU bound, background expiry and an eviction journal.

The profile service keeps rendered user cards here for a few seconds.
Request threads call get()/set(); a sweeper thread drops expired entries.
Every eviction is appended to a journal (tab-separated) that the nightly
capacity-planning job loads, tagged with the request that caused it.
"""
from __future__ import annotations

import collections
import logging
import os
import random
import threading
import time
from typing import Any, Hashable, Optional

log = logging.getLogger("ttlcache")

# per-request context, populated by the request handler before it touches the cache
_ctx = threading.local()


class TTLCache:
    def __init__(self, ttl: float = 5.0, maxsize: int = 1024, sweep_interval: float = 0.5,
                 journal_path: Optional[str] = None) -> None:
        self._ttl = ttl
        self._maxsize = maxsize
        self._sweep_interval = sweep_interval
        self._lock = threading.Lock()
        self._data: "collections.OrderedDict[Hashable, tuple[float, Any]]" = collections.OrderedDict()
        self._stats: collections.Counter = collections.Counter()
        self._stats_lock = threading.Lock()
        self._journal_lock = threading.Lock()
        self._journal = open(journal_path or os.devnull, "a", buffering=64 * 1024)
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="ttl-sweeper", daemon=True)
        self._sweeper.start()

    # -- stats ---------------------------------------------------------
    def _bump(self, name: str, n: int = 1) -> None:
        with threading.Lock():
            self._stats[name] += n

    def stats(self) -> dict[str, int]:
        with self._stats_lock:
            snap = dict(self._stats)
        with self._lock:
            snap["size"] = len(self._data)
        return snap

    # -- journal -------------------------------------------------------
    def _record_eviction(self, kind: str, key: Hashable) -> None:
        line = f"{time.time():.3f}\t{kind}\t{key}\t{_ctx.request_id}\n"
        with self._journal_lock:
            self._journal.write(line)

    # -- public API ------------------------------------------------------
    def get(self, key: Hashable, default: Any = None) -> Any:
        now = time.monotonic()
        with self._lock:
            entry = self._data.get(key)
            hit = entry is not None and entry[0] > now
            if hit:
                self._data.move_to_end(key)
        self._bump("hits" if hit else "misses")
        return entry[1] if hit else default

    def set(self, key: Hashable, value: Any, ttl: Optional[float] = None) -> None:
        expires = time.monotonic() + (self._ttl if ttl is None else ttl)
        evicted: list[Hashable] = []
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            if len(self._data) > self._maxsize:
                self.purge_expired()
            while len(self._data) > self._maxsize:
                old_key, _ = self._data.popitem(last=False)
                evicted.append(old_key)
        for k in evicted:
            self._record_eviction("lru", k)
        if evicted:
            self._bump("lru_evictions", len(evicted))
        self._bump("sets")

    def delete(self, key: Hashable) -> bool:
        with self._lock:
            return self._data.pop(key, None) is not None

    def purge_expired(self) -> int:
        now = time.monotonic()
        with self._lock:
            dead = [k for k, (exp, _) in self._data.items() if exp <= now]
            for k in dead:
                del self._data[k]
        for k in dead:
            self._record_eviction("expired", k)
        if dead:
            self._bump("expired", len(dead))
        return len(dead)

    # -- lifecycle -------------------------------------------------------
    def _sweep_loop(self) -> None:
        while not self._stop.wait(self._sweep_interval):
            try:
                self.purge_expired()
            except Exception:
                log.exception("sweep failed")
        with self._journal_lock:
            self._journal.flush()
            self._journal.close()

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> "TTLCache":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def render_card(tenant: str, user_id: int) -> dict[str, Any]:
    time.sleep(0.001)  # template rendering + avatar lookup
    return {"tenant": tenant, "id": user_id,
            "html": f"<div class='card' data-tenant='{tenant}'>user {user_id}</div>"}


def serve_tenant(cache: TTLCache, tenant: str, requests: int, seed: int) -> None:
    """Request loop for one tenant shard; keys never overlap between shards."""
    rng = random.Random(seed)
    for i in range(requests):
        _ctx.request_id = f"{tenant}-{i:05d}"
        uid = int(rng.paretovariate(1.2)) % 400
        key = (tenant, uid)
        card = cache.get(key)
        if card is None:
            cache.set(key, render_card(tenant, uid))
        if rng.random() < 0.01:
            cache.delete(key)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    cache = TTLCache(ttl=0.3, maxsize=300, sweep_interval=0.1, journal_path="evictions.tsv")
    with cache:
        shards = [threading.Thread(target=serve_tenant, args=(cache, f"t{i}", 2000, i),
                                   name=f"tenant-{i}") for i in range(6)]
        for t in shards:
            t.start()
        for t in shards:
            t.join()
        snap = cache.stats()
    total = snap.get("hits", 0) + snap.get("misses", 0)
    print(f"hit ratio {snap.get('hits', 0) / max(1, total):.2%} over {total} lookups; "
          f"expired={snap.get('expired', 0)} lru={snap.get('lru_evictions', 0)} size={snap['size']}")


if __name__ == "__main__":
    main()
