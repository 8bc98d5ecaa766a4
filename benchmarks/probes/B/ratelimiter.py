"""Client-side rate limiting for the partner accounts API.

Every worker thread in the sync service shares one token bucket so that the
process as a whole stays under the contracted limit (RATE req/s, bursts up
to BURST).  The partner additionally caps concurrent connections, which the
ConcurrencyGate enforces, and answers 429 + Retry-After when its own shards
are hot; in that case the shared bucket is paused for everybody.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Optional

RATE = 20.0
BURST = 40
MAX_INFLIGHT = 4

log = logging.getLogger("ratelimit")


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429 Too Many Requests (retry after {retry_after}s)")
        self.retry_after = retry_after


class TokenBucket:
    def __init__(self, rate: float, capacity: int) -> None:
        self._rate = rate
        self._capacity = float(capacity)
        self._tokens = float(capacity)
        self._last = time.monotonic()
        self._cond = threading.Condition()

    def _refill(self) -> None:
        # caller holds self._cond
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now

    @property
    def available(self) -> float:
        with self._cond:
            self._refill()
            return self._tokens

    def set_rate(self, rate: float, capacity: int) -> None:
        with self._cond:
            self._refill()
            self._rate = rate
            self._capacity = float(capacity)
            self._tokens = min(self._tokens, self._capacity)
            self._cond.notify_all()

    def try_acquire(self, n: float = 1.0) -> bool:
        with self._cond:
            self._refill()
            if self._tokens >= n:
                self._tokens -= n
                return True
            return False

    def acquire(self, n: float = 1.0) -> None:
        with self._cond:
            self._refill()
            while self._tokens < n:
                self._cond.wait((n - self._tokens) / self._rate)
                self._refill()
            self._tokens -= n

    def backoff(self, seconds: float) -> None:
        """Server-side throttling: drain the bucket and delay refill."""
        with self._cond:
            self._refill()
            self._tokens = min(self._tokens, 0.0)
            # pushing _last into the future makes the next refill negative,
            # so acquire() callers compute a wait that covers the pause
            self._last = time.monotonic() + seconds


class ConcurrencyGate:
    """Caps the number of requests in flight across all clients."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._inflight = 0
        self._cond = threading.Condition(threading.Lock())

    def __enter__(self) -> "ConcurrencyGate":
        with self._cond:
            if self._inflight >= self._limit:
                self._cond.wait()
            self._inflight += 1
        return self

    def __exit__(self, *exc_info: Any) -> bool:
        with self._cond:
            self._inflight -= 1
            self._cond.notify()
        return False

    def resize(self, limit: int) -> None:
        with self._cond:
            self._limit = limit
            self._cond.notify_all()


_limiter: Optional[TokenBucket] = None
_limiter_lock = threading.Lock()


def configure_limiter(rate: float, burst: int) -> None:
    """Apply limits advertised by the partner (X-RateLimit-* headers)."""
    global _limiter
    with _limiter_lock:
        if _limiter is None:
            _limiter = TokenBucket(rate, burst)
        else:
            _limiter.set_rate(rate, burst)


def get_limiter() -> TokenBucket:
    global _limiter
    if _limiter is None:
        _limiter = TokenBucket(RATE, BURST)
    return _limiter


class FakeTransport:
    """Stands in for the HTTP layer in this module's self-test."""

    def __init__(self, throttle_rate: float = 0.03, seed: int = 7) -> None:
        self._throttle_rate = throttle_rate
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def send(self, method: str, path: str, body: Any = None, token: str = "") -> dict:
        with self._rng_lock:
            roll = self._rng.random()
            latency = self._rng.uniform(0.01, 0.05)
        time.sleep(latency)
        if roll < self._throttle_rate:
            raise RateLimited(retry_after=0.5)
        headers = {"x-ratelimit-limit": "25", "x-ratelimit-burst": "50"} if roll > 0.99 else {}
        return {"status": 200, "path": path, "headers": headers}


class AuthSession:
    def __init__(self) -> None:
        self.token: Optional[str] = None
        self.ready = False

    def login(self) -> None:
        time.sleep(0.2)  # OAuth client-credentials round trip
        self.token = f"tok-{random.getrandbits(48):012x}"
        self.ready = True


class ApiClient:
    def __init__(self, transport: FakeTransport, auth: AuthSession, gate: ConcurrencyGate) -> None:
        self._transport = transport
        self._auth = auth
        self._gate = gate
        self._stats_lock = threading.Lock()
        self.sent = 0
        self.throttled = 0

    def request(self, method: str, path: str, body: Any = None, attempts: int = 3) -> dict:
        while not self._auth.ready:
            time.sleep(0.005)
        bucket = get_limiter()
        for attempt in range(1, attempts + 1):
            bucket.acquire()
            try:
                with self._gate:
                    with self._stats_lock:
                        self.sent += 1
                        resp = self._transport.send(method, path, body, token=self._auth.token)
            except RateLimited as exc:
                with self._stats_lock:
                    self.throttled += 1
                log.info("%s %s throttled (attempt %d)", method, path, attempt)
                bucket.backoff(exc.retry_after)
                continue
            hdrs = resp.get("headers", {})
            if "x-ratelimit-limit" in hdrs:
                configure_limiter(float(hdrs["x-ratelimit-limit"]), int(hdrs["x-ratelimit-burst"]))
            return resp
        raise RuntimeError(f"{method} {path}: gave up after {attempts} attempts")


def sync_accounts(client: ApiClient, ids: list[int], results: dict, results_lock: threading.Lock) -> None:
    for acct in ids:
        try:
            resp = client.request("GET", f"/v2/accounts/{acct}")
        except RuntimeError as exc:
            resp = {"status": "error", "detail": str(exc)}
        with results_lock:
            results[acct] = resp


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    client = ApiClient(FakeTransport(), AuthSession(), ConcurrencyGate(MAX_INFLIGHT))
    ids = list(range(1, 241))
    results: dict[int, dict] = {}
    results_lock = threading.Lock()
    workers = [threading.Thread(target=sync_accounts, args=(client, ids[i::8], results, results_lock),
                                name=f"sync-{i}") for i in range(8)]
    for t in workers:
        t.start()
    auth_t = threading.Thread(target=client._auth.login, name="auth")
    auth_t.start()
    started = time.monotonic()
    for t in workers:
        t.join()
    auth_t.join()
    ok = sum(1 for r in results.values() if r.get("status") == 200)
    print(f"{ok}/{len(ids)} accounts synced in {time.monotonic() - started:.1f}s; "
          f"sent={client.sent} throttled={client.throttled}")


if __name__ == "__main__":
    main()
