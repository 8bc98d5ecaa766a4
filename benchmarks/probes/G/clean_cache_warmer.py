"""
Cache warmer.

Before a deploy shifts traffic to a new cache tier, the warmer pre-populates it
from a list of hot keys: values are fetched from the origin with bounded
concurrency and written into the cache.  Progress counters live on an asyncio
event loop running in a background thread (where the status endpoint would be
served), and a refresher re-warms the hot set on a timer until stopped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set

log = logging.getLogger("warmer")

WARM_CONCURRENCY = 8
MAX_ORIGIN_INFLIGHT = 4
ORIGIN_SLOT_TIMEOUT_S = 10.0
REFRESH_INTERVAL_S = 60.0
REGIONS = ("us-east", "eu-west", "ap-south")


class Origin:
    """The system of record (simulated network latency)."""

    def fetch(self, key: str) -> bytes:
        time.sleep(random.uniform(0.002, 0.01))
        if key.endswith(":missing"):
            raise KeyError(key)
        return f"value-of-{key}".encode()


class Cache:
    """Key/value store with a secondary index by key prefix.

    Lock order: ``_index_lock`` is always taken before ``_data_lock``.
    """

    def __init__(self) -> None:
        self._index_lock = threading.Lock()
        self._data_lock = threading.Lock()
        self._data: Dict[str, bytes] = {}
        self._by_prefix: Dict[str, Set[str]] = {}

    def put(self, key: str, value: bytes) -> None:
        prefix = key.split(":", 1)[0]
        with self._index_lock:
            with self._data_lock:
                self._data[key] = value
            self._by_prefix.setdefault(prefix, set()).add(key)

    def evict_prefix(self, prefix: str) -> int:
        with self._index_lock:
            keys = self._by_prefix.pop(prefix, set())
            with self._data_lock:
                for key in keys:
                    self._data.pop(key, None)
        return len(keys)

    def get(self, key: str) -> Optional[bytes]:
        with self._data_lock:
            return self._data.get(key)

    def __len__(self) -> int:
        with self._data_lock:
            return len(self._data)


_default_cache: Optional[Cache] = None
_default_cache_lock = threading.Lock()


def default_cache() -> Cache:
    global _default_cache
    if _default_cache is None:
        with _default_cache_lock:
            if _default_cache is None:
                _default_cache = Cache()
    return _default_cache


class StatusBoard:
    """Progress counters owned by an asyncio loop on a background thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-loop")
        self._counts: Dict[str, int] = {"warmed": 0, "failed": 0}

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(timeout=5.0):
            raise RuntimeError("status loop did not start")

    def _bump(self, key: str) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1

    def record(self, key: str) -> None:
        self._loop.call_soon_threadsafe(self._bump, key)

    async def _snapshot(self) -> Dict[str, int]:
        return dict(self._counts)

    def snapshot(self, timeout: float = 2.0) -> Dict[str, int]:
        return asyncio.run_coroutine_threadsafe(self._snapshot(), self._loop).result(timeout)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


@dataclass
class WarmReport:
    warmed: int = 0
    bytes_loaded: int = 0
    failures: Dict[str, str] = field(default_factory=dict)


class CacheWarmer:
    def __init__(self, origin: Origin, cache: Cache, board: StatusBoard,
                 concurrency: int = WARM_CONCURRENCY) -> None:
        self._origin = origin
        self._cache = cache
        self._board = board
        self._concurrency = concurrency
        self._origin_slots = threading.BoundedSemaphore(MAX_ORIGIN_INFLIGHT)

    def _fetch(self, key: str) -> bytes:
        if not self._origin_slots.acquire(timeout=ORIGIN_SLOT_TIMEOUT_S):
            raise TimeoutError(f"no origin slot for {key}")
        try:
            return self._origin.fetch(key)
        finally:
            self._origin_slots.release()

    def _warm_one(self, key: str) -> int:
        value = self._fetch(key)
        self._cache.put(key, value)
        return len(value)

    def warm(self, keys: List[str]) -> WarmReport:
        report = WarmReport()
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="warm") as pool:
            futures = {pool.submit(self._warm_one, key): key for key in keys}
            for future in as_completed(futures):
                key = futures[future]
                try:
                    size = future.result()
                except Exception as exc:
                    report.failures[key] = repr(exc)
                    self._board.record("failed")
                else:
                    report.warmed += 1
                    report.bytes_loaded += size
                    self._board.record("warmed")
        return report

    def warm_regions(self, keys_for: Callable[[str], List[str]],
                     regions: tuple = REGIONS) -> Dict[str, WarmReport]:
        """Warm each region's hot set on its own thread; return per-region reports."""
        reports: Dict[str, WarmReport] = {}
        reports_lock = threading.Lock()

        def warm_region(region: str) -> None:
            report = self.warm(keys_for(region))
            with reports_lock:
                reports[region] = report

        threads = [threading.Thread(target=warm_region, args=(region,), name=f"warm-{region}")
                   for region in regions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return dict(reports)


class Refresher:
    """Re-warms the hot set every ``interval`` seconds until stopped."""

    def __init__(self, warmer: CacheWarmer, hot_keys: Callable[[], List[str]],
                 interval: float = REFRESH_INTERVAL_S) -> None:
        self._warmer = warmer
        self._hot_keys = hot_keys
        self._interval = interval
        self._lock = threading.Lock()
        self._timer: Optional[threading.Timer] = None
        self._stopped = False
        self.last_report: Optional[WarmReport] = None

    def _arm(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._timer = threading.Timer(self._interval, self._fire)
            self._timer.start()

    def _fire(self) -> None:
        try:
            report = self._warmer.warm(self._hot_keys())
            with self._lock:
                self.last_report = report
        except Exception:
            log.exception("refresh failed")
        finally:
            self._arm()

    def start(self) -> None:
        self._arm()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            timer = self._timer
        if timer is not None:
            timer.cancel()
            timer.join()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    board = StatusBoard()
    board.start()
    warmer = CacheWarmer(Origin(), default_cache(), board)
    formatters = {region: (lambda i, region=region: f"{region}:product:{i}") for region in REGIONS}
    reports = warmer.warm_regions(lambda region: [formatters[region](i) for i in range(40)] + [f"{region}:missing"])
    for region, report in reports.items():
        log.info("%s: warmed %d keys (%d bytes), %d failures", region, report.warmed,
                 report.bytes_loaded, len(report.failures))
    refresher = Refresher(warmer, lambda: [f"us-east:product:{i}" for i in range(10)], interval=0.5)
    refresher.start()
    time.sleep(1.2)
    refresher.stop()
    log.info("cache size %d, status %s", len(default_cache()), board.snapshot())
    board.stop()


if __name__ == "__main__":
    main()
