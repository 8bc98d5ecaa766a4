"""Rate-limited client for a JSON HTTP API with a retrying worker pool.

Features:
  * client-credentials OAuth token, fetched lazily and refreshed on expiry
  * token-bucket rate limiting shared by all worker threads
  * cap on concurrently open requests
  * retries with exponential backoff and jitter for idempotent requests
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

log = logging.getLogger("apiclient")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


class ApiTimeout(Exception):
    pass


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Optional[dict] = None
    idempotent: bool = True


@dataclass
class Response:
    status: int
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@dataclass
class AccessToken:
    value: str
    expires_at: float

    def expired(self, skew: float = 30.0) -> bool:
        return time.time() + skew >= self.expires_at


class TokenBucket:
    """Token bucket; ``acquire`` blocks the caller until a token is free."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self) -> None:
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                wait = (1.0 - self._tokens) / self.rate
            time.sleep(wait)


class ResultLog:
    """Decoded response bodies, grouped by caller-supplied request id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: Dict[str, List[Any]] = {}

    def record(self, req_id: str, resp: Response) -> None:
        self._lock.acquire()
        bucket = self._entries.setdefault(req_id, [])
        bucket.append(resp.json())
        self._lock.release()

    def get(self, req_id: str) -> List[Any]:
        with self._lock:
            return list(self._entries.get(req_id, ()))


class ApiClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        rate: float = 10.0,
        burst: int = 20,
        max_inflight: int = 8,
        workers: int = 8,
        max_retries: int = 4,
        timeout: float = 15.0,
    ) -> None:
        parts = urlsplit(base_url)
        self.secure = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.secure else 80)
        self.client_id = client_id
        self.client_secret = client_secret
        self.max_retries = max_retries
        self.timeout = timeout
        self.results = ResultLog()
        self._bucket = TokenBucket(rate, burst)
        self._inflight = threading.Semaphore(max_inflight)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="api")
        self._token: Optional[AccessToken] = None
        self._token_lock = threading.Lock()

    # -- transport -------------------------------------------------------

    def _raw(self, method: str, path: str, body: Optional[str], headers: Dict[str, str]) -> Response:
        cls = http.client.HTTPSConnection if self.secure else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read())
        finally:
            conn.close()

    def _fetch_token(self) -> AccessToken:
        body = json.dumps({
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        })
        resp = self._raw("POST", "/oauth/token", body, {"Content-Type": "application/json"})
        if resp.status != 200:
            raise ApiError(resp.status, resp.body.decode("utf-8", errors="replace"))
        data = resp.json()
        return AccessToken(data["access_token"], time.time() + float(data.get("expires_in", 3600)))

    def _auth_header(self) -> str:
        token = self._token
        if token is None or token.expired():
            token = self._fetch_token()
            self._token = token
        return "Bearer " + token.value

    def invalidate_token(self) -> None:
        with self._token_lock:
            self._token = None

    def _send_once(self, req: Request) -> Response:
        self._bucket.acquire()
        acquired = self._inflight.acquire(timeout=self.timeout)
        try:
            if not acquired:
                raise ApiTimeout(f"no request slot free within {self.timeout}s")
            headers = {"Authorization": self._auth_header(), "Accept": "application/json"}
            body = None
            if req.body is not None:
                body = json.dumps(req.body)
                headers["Content-Type"] = "application/json"
            return self._raw(req.method, req.path, body, headers)
        finally:
            self._inflight.release()

    @staticmethod
    def _backoff(attempt: int, resp: Optional[Response]) -> float:
        if resp is not None and "Retry-After" in resp.headers:
            try:
                return min(60.0, float(resp.headers["Retry-After"]))
            except ValueError:
                pass
        return min(30.0, 0.5 * 2 ** attempt) * random.uniform(0.5, 1.0)

    # -- public API ------------------------------------------------------

    def execute(self, req: Request, req_id: Optional[str] = None) -> Response:
        attempt = 0
        while True:
            resp: Optional[Response] = None
            try:
                resp = self._send_once(req)
            except (OSError, ApiTimeout) as exc:
                if not req.idempotent or attempt >= self.max_retries:
                    raise
                log.info("retrying %s %s after %s", req.method, req.path, exc)
            else:
                if resp.status == 401 and attempt == 0:
                    self.invalidate_token()
                elif resp.status not in RETRYABLE_STATUS or attempt >= self.max_retries:
                    break
            attempt += 1
            time.sleep(self._backoff(attempt, resp))
        if resp.status >= 400:
            raise ApiError(resp.status, resp.body.decode("utf-8", errors="replace"))
        if req_id is not None:
            self.results.record(req_id, resp)
        return resp

    def run_batch(self, reqs: List[Request]) -> List[Response]:
        """Execute *reqs* concurrently; results are returned in input order."""
        futures: Dict[Future, int] = {}
        for i, req in enumerate(reqs):
            def job() -> Response:
                return self.execute(req, req_id=f"batch-{i}")
            futures[self._pool.submit(job)] = i
        out: List[Optional[Response]] = [None] * len(reqs)
        for fut in as_completed(futures):
            out[futures[fut]] = fut.result()
        return out  # type: ignore[return-value]

    def push_all(self, records: Dict[str, dict]) -> None:
        """Upload every record with PUT /records/<key>."""
        for key, rec in records.items():
            self._pool.submit(self.execute, Request("PUT", f"/records/{key}", rec), key)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    client = ApiClient(
        os.environ.get("API_URL", "https://api.example.com"),
        os.environ.get("API_CLIENT_ID", ""),
        os.environ.get("API_CLIENT_SECRET", ""),
        rate=float(os.environ.get("API_RATE", "10")),
    )
    try:
        pages = client.run_batch([Request("GET", f"/items?page={n}") for n in range(1, 11)])
        items: Dict[str, dict] = {}
        for page in pages:
            for item in page.json().get("items", []):
                item["synced_at"] = time.time()
                items[str(item["id"])] = item
        client.push_all(items)
    finally:
        client.close()
    log.info("synced %d items", len(items))


if __name__ == "__main__":
    main()
