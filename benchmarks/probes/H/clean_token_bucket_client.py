#!/usr/bin/env python3
"""Rate-limited client for a partner REST API.

The partner allows a fixed number of requests per second per API key.  Calls
are issued from a thread pool; a token bucket shared by every worker keeps
the client under the limit, and 429 answers are retried after Retry-After.
An asyncio facade lets async callers use the same client.  For the demo the
"partner API" is a local http.server instance enforcing its own limit.
"""

import asyncio
import http.server
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Dict, List, Optional

log = logging.getLogger("apiclient")


class TokenBucket:
    def __init__(self, rate: float, capacity: float):
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def _refill_locked(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_take(self, n: float = 1.0) -> float:
        """Take n tokens if available; otherwise return seconds to wait."""
        with self._lock:
            self._refill_locked(time.monotonic())
            if self._tokens >= n:
                self._tokens -= n
                return 0.0
            return (n - self._tokens) / self.rate

    def take(self, n: float = 1.0, timeout: Optional[float] = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            delay = self.try_take(n)
            if delay == 0.0:
                return True
            if deadline is not None and time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)


# --------------------------------------------------------------------------
# demo server
# --------------------------------------------------------------------------
class ServerState:
    def __init__(self, rate: float, burst: float):
        self.rate = rate
        self.burst = burst
        self._lock = threading.Lock()
        self._buckets: Dict[str, TokenBucket] = {}
        self.served = 0
        self.rejected = 0

    def admit(self, api_key: str) -> bool:
        self._lock.acquire()
        try:
            bucket = self._buckets.get(api_key)
            if bucket is None:
                bucket = self._buckets[api_key] = TokenBucket(self.rate, self.burst)
        finally:
            self._lock.release()
        ok = bucket.try_take() == 0.0
        with self._lock:
            if ok:
                self.served += 1
            else:
                self.rejected += 1
        return ok


class PartnerAPI(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        state: ServerState = self.server.state
        if not state.admit(self.headers.get("X-Api-Key", "")):
            self._reply(429, {"error": "slow down"}, {"Retry-After": "0.02"})
            return
        kind, _, ident = self.path.strip("/").partition("/")
        self._reply(200, {"kind": kind, "id": ident, "name": f"{kind}-{ident}".upper()})

    def _reply(self, code, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


class PartnerServer(http.server.ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True


# --------------------------------------------------------------------------
# client
# --------------------------------------------------------------------------
@dataclass
class ClientStats:
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    ok: int = 0
    retries: int = 0
    failed: int = 0
    latency_total: float = 0.0

    def record(self, outcome: str, latency: float = 0.0) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)
            self.latency_total += latency

    def snapshot(self) -> Dict[str, float]:
        with self._lock:
            return {"ok": self.ok, "retries": self.retries, "failed": self.failed,
                    "avg_ms": 1000 * self.latency_total / self.ok if self.ok else 0.0}


_local = threading.local()
_conn_slots = threading.BoundedSemaphore(4)


def _opener() -> urllib.request.OpenerDirector:
    opener = getattr(_local, "opener", None)
    if opener is None:
        opener = _local.opener = urllib.request.build_opener()
    return opener


class ApiClient:
    def __init__(self, base_url: str, api_key: str, rate: float, burst: float,
                 max_workers: int = 8, max_retries: int = 6):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_retries = max_retries
        self.bucket = TokenBucket(rate, burst)
        self.stats = ClientStats()
        self._cache: Dict[str, dict] = {}
        self._cache_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="api")

    def _fetch(self, path: str) -> dict:
        req = urllib.request.Request(self.base_url + path, headers={"X-Api-Key": self.api_key})
        if not _conn_slots.acquire(timeout=2.0):
            raise TimeoutError("no free connection slot")
        try:
            with _opener().open(req, timeout=2.0) as resp:
                return json.loads(resp.read())
        finally:
            _conn_slots.release()

    def get_json(self, path: str) -> dict:
        with self._cache_lock:
            cached = self._cache.get(path)
        if cached is not None:
            return cached
        for attempt in range(self.max_retries + 1):
            if not self.bucket.take(timeout=5.0):
                raise TimeoutError("rate limiter starved")
            t0 = time.monotonic()
            try:
                body = self._fetch(path)
            except urllib.error.HTTPError as exc:
                retry_after = float(exc.headers.get("Retry-After", "0.05"))
                exc.close()
                if exc.code == 429 and attempt < self.max_retries:
                    self.stats.record("retries")
                    time.sleep(retry_after)
                    continue
                self.stats.record("failed")
                raise
            self.stats.record("ok", time.monotonic() - t0)
            with self._cache_lock:
                return self._cache.setdefault(path, body)
        raise RuntimeError("unreachable")

    def submit(self, path: str):
        return self._pool.submit(self.get_json, path)

    def fetch_many(self, paths: List[str]):
        results, errors = {}, {}
        futures = {self.submit(p): p for p in paths}
        for fut in as_completed(futures):
            path = futures[fut]
            try:
                results[path] = fut.result()
            except Exception as exc:
                errors[path] = exc
        return results, errors

    def fetch_async(self, path: str, callback):
        fut = self.submit(path)
        fut.add_done_callback(partial(self._deliver, path, callback))
        return fut

    @staticmethod
    def _deliver(path, callback, fut):
        exc = fut.exception()
        if exc is not None:
            log.warning("fetch %s failed: %s", path, exc)
            return
        callback(fut.result())

    def close(self):
        self._pool.shutdown(wait=True)


async def gather_async(client: ApiClient, paths: List[str]) -> Dict[str, dict]:
    """Async facade: run requests on the client pool, collect on the loop."""
    loop = asyncio.get_running_loop()
    results: Dict[str, dict] = {}
    if not paths:
        return results
    all_done = asyncio.Event()
    remaining = len(paths)

    def on_loop(path, fut):
        nonlocal remaining
        results[path] = fut.result() if fut.exception() is None else {"error": str(fut.exception())}
        remaining -= 1
        if remaining == 0:
            all_done.set()

    for p in paths:
        cfut = client.submit(p)
        cfut.add_done_callback(lambda f, p=p: loop.call_soon_threadsafe(on_loop, p, f))
    extra = await asyncio.wrap_future(client.submit("/status/ping"))
    await all_done.wait()
    results["/status/ping"] = extra
    return results


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    state = ServerState(rate=300.0, burst=10)
    server = PartnerServer(("127.0.0.1", 0), PartnerAPI)
    server.state = state
    srv_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="partner-api")
    srv_thread.start()

    base = f"http://127.0.0.1:{server.server_address[1]}"
    client = ApiClient(base, "key-demo", rate=250.0, burst=10)
    try:
        results, errors = client.fetch_many([f"/orders/{i}" for i in range(80)])
        print(f"orders fetched: {len(results)}, errors: {len(errors)}")

        seen: Dict[int, str] = {}
        seen_lock = threading.Lock()

        def on_user(uid, body):
            with seen_lock:
                seen[uid] = body["name"]

        futs = [client.fetch_async(f"/users/{uid}", partial(on_user, uid)) for uid in range(10)]
        wait(futs)
        for f in futs:
            f.result()

        async_results = asyncio.run(gather_async(client, [f"/items/{i}" for i in range(15)]))
        print(f"async results: {len(async_results)}")
    finally:
        client.close()
        server.shutdown()
        srv_thread.join()
        server.server_close()

    with seen_lock:
        print(f"users delivered: {len(seen)}")
    print("client stats:", client.stats.snapshot())
    print(f"server served={state.served} rejected={state.rejected}")


if __name__ == "__main__":
    main()
