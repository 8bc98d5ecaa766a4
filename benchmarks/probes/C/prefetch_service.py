"""Edge cache warmer.

Periodically pulls the list of hot keys from the analytics feed and fetches
each one from the origin so the edge cache is populated before traffic
arrives.  Origin requests go through one shared client that caps the number
of requests in flight and retries transient failures with backoff.
"""
from __future__ import annotations

import logging
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional

log = logging.getLogger("prefetch")

ORIGIN_URL = "http://origin.internal:8080"
TRANSIENT_STATUS = {429, 502, 503, 504}

_stats: Dict[str, int] = {"fetched": 0, "bytes": 0, "retries": 0, "errors": 0}
_stats_lock = threading.Lock()


def _bump(counter: str, n: int = 1) -> None:
    with threading.Lock():
        _stats[counter] += n


def stats_snapshot() -> Dict[str, int]:
    with _stats_lock:
        return dict(_stats)


class TransientError(Exception):
    pass


@dataclass
class ClientConfig:
    base_url: str
    max_in_flight: int = 8
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.2


class OriginClient:
    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._slots = threading.Semaphore(config.max_in_flight)
        self._opener = urllib.request.build_opener()
        self._opener.addheaders = [("User-Agent", "cache-warmer/1.4"), ("X-Prefetch", "1")]

    def _get(self, key: str) -> bytes:
        url = f"{self.config.base_url}/{key.lstrip('/')}"
        try:
            with self._opener.open(url, timeout=self.config.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code in TRANSIENT_STATUS:
                raise TransientError(f"{key}: HTTP {exc.code}") from exc
            raise
        except (urllib.error.URLError, TimeoutError) as exc:
            raise TransientError(f"{key}: {exc}") from exc

    def fetch(self, key: str) -> bytes:
        self._slots.acquire()
        try:
            return self._get(key)
        except TransientError:
            self._slots.release()
            raise
        finally:
            self._slots.release()

    def fetch_with_retry(self, key: str) -> bytes:
        delay = self.config.backoff
        for attempt in range(self.config.retries + 1):
            try:
                return self.fetch(key)
            except TransientError:
                if attempt == self.config.retries:
                    raise
                _bump("retries")
                time.sleep(delay * (1 + random.random()))
                delay *= 2
        raise AssertionError("unreachable")


_client: Optional[OriginClient] = None


def get_client() -> OriginClient:
    global _client
    if _client is None:
        _client = OriginClient(ClientConfig(ORIGIN_URL))
    return _client


def make_memory_store(limit: int) -> Callable[[str, bytes], None]:
    data: "OrderedDict[str, bytes]" = OrderedDict()
    lock = threading.Lock()

    def put(key: str, value: bytes) -> None:
        with lock:
            data[key] = value
            data.move_to_end(key)
            while len(data) > limit:
                data.popitem(last=False)

    return put


class Prefetcher:
    def __init__(self, key_source: Callable[[], List[str]], store: Callable[[str, bytes], None],
                 hot_keys: Iterable[str] = (), workers: int = 16, batch_timeout: float = 60.0,
                 on_error: Optional[Callable[[str, BaseException], None]] = None) -> None:
        self.key_source = key_source
        self.store = store
        self.hot_keys = list(hot_keys)
        self.workers = workers
        self.batch_timeout = batch_timeout
        self.on_error = on_error or (lambda key, exc: log.warning("warm %s failed: %s", key, exc))

    def warm_key(self, key: str) -> int:
        data = get_client().fetch_with_retry(key)
        self.store(key, data)
        _bump("fetched")
        _bump("bytes", len(data))
        return len(data)

    def warm_hot_keys(self) -> None:
        """Pinned keys are warmed first, each on its own thread, before the bulk batch."""
        threads = []
        for key in self.hot_keys:
            t = threading.Thread(target=self.warm_key, args=(key), name=f"hot-{key[:24]}")
            t.start()
            threads.append(t)
        for t in threads:
            t.join()

    def warm_batch(self, keys: List[str]) -> int:
        warmed = 0
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="warm") as pool:
            futures = {pool.submit(self.warm_key, key): key for key in keys}
            _, not_done = wait(futures, timeout=self.batch_timeout)
            for fut in not_done:
                fut.cancel()
        for fut, key in futures.items():
            if fut.cancelled():
                continue
            exc = fut.exception()
            if exc is None:
                warmed += 1
            else:
                _bump("errors")
                self.on_error(key, exc)
        return warmed


class StatsReporter:
    def __init__(self, interval: float, emit: Callable[[Dict[str, int]], None]) -> None:
        self.interval = interval
        self.emit = emit
        self._lock = threading.Lock()
        self._timer: Optional[threading.Timer] = None
        self._stopped = False

    def start(self) -> None:
        self._arm()

    def _arm(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._timer = threading.Timer(self.interval, self._tick)
            self._timer.name = "stats-reporter"
            self._timer.start()

    def _tick(self) -> None:
        self.emit(stats_snapshot())
        self._arm()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            timer = self._timer
        if timer is not None:
            timer.cancel()
            timer.join()
        self.emit(stats_snapshot())


class WarmerService:
    def __init__(self, prefetcher: Prefetcher, period: float, reporter: StatsReporter) -> None:
        self.prefetcher = prefetcher
        self.period = period
        self.reporter = reporter
        self._stop = threading.Event()

    def run(self) -> None:
        self.reporter.start()
        try:
            self.prefetcher.warm_hot_keys()
            while not self._stop.is_set():
                keys = self.prefetcher.key_source()
                started = time.monotonic()
                n = self.prefetcher.warm_batch(keys)
                log.info("warmed %d/%d keys in %.1fs", n, len(keys), time.monotonic() - started)
                self._stop.wait(self.period)
        finally:
            self.reporter.stop()

    def stop(self) -> None:
        self._stop.set()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    keys_file = sys.argv[1] if len(sys.argv) > 1 else "hot-keys.txt"

    def read_keys() -> List[str]:
        with open(keys_file) as fh:
            return [line.strip() for line in fh if line.strip() and not line.startswith("#")]

    prefetcher = Prefetcher(read_keys, make_memory_store(50_000),
                            hot_keys=["/index.html", "/static/app.js", "/api/v1/config"])
    reporter = StatsReporter(30.0, lambda s: log.info("stats %s", s))
    service = WarmerService(prefetcher, period=300.0, reporter=reporter)
    signal.signal(signal.SIGTERM, lambda signum, frame: service.stop())
    service.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
