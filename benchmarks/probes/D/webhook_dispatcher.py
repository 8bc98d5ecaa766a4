"""Deliver application events to subscriber web-hooks.

Application code calls ``dispatcher.dispatch(event_type, payload)`` from any
thread.  Deliveries run on an asyncio event loop owned by a background thread
and are sent as signed HTTP/1.1 POSTs over asyncio streams, with exponential
backoff on failure.

    hooks = WebhookDispatcher()
    hooks.start()
    hooks.register("http://billing.internal:8080/hooks", "s3cret", {"invoice.paid"})
    hooks.dispatch("invoice.paid", {"invoice": 1042, "amount": "19.99"})
    hooks.stop()
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterable, Optional, Set
from urllib.parse import urlsplit

log = logging.getLogger("webhooks")

_stats_lock = threading.Lock()
_queued = 0
_delivered = 0
_failed = 0


def stats() -> Dict[str, int]:
    with _stats_lock:
        return {"queued": _queued, "delivered": _delivered, "failed": _failed}


def _count(delivered: int = 0, failed: int = 0) -> None:
    global _delivered, _failed
    with _stats_lock:
        _delivered += delivered
        _failed += failed


def _note_queued(n: int) -> None:
    global _queued
    _queued += n


@dataclass(frozen=True)
class Subscription:
    url: str
    secret: bytes
    events: FrozenSet[str]

    @property
    def parts(self):
        return urlsplit(self.url)

    @property
    def tls(self) -> bool:
        return self.parts.scheme == "https"

    @property
    def host(self) -> str:
        return self.parts.hostname or "localhost"

    @property
    def port(self) -> int:
        return self.parts.port or (443 if self.tls else 80)

    @property
    def path(self) -> str:
        p = self.parts
        return (p.path or "/") + (f"?{p.query}" if p.query else "")

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


@dataclass
class Delivery:
    sub: Subscription
    event_type: str
    body: bytes
    delivery_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0


class WebhookDispatcher:
    def __init__(
        self,
        max_attempts: int = 6,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        max_concurrency: int = 50,
    ) -> None:
        self.max_attempts = max_attempts
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_concurrency = max_concurrency
        self._subs: Dict[str, Subscription] = {}
        self._subs_lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._ready = False
        self._sem: Optional[asyncio.Semaphore] = None
        self._inflight: Set[asyncio.Task] = set()

    # -- loop thread -----------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_loop, name="webhook-loop")
        self._thread.start()
        while not self._ready:
            time.sleep(0.005)

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._sem = asyncio.Semaphore(self.max_concurrency)
        self._ready = True
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is None or self._thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._drain(timeout), self._loop)
        abandoned = fut.result()
        if abandoned:
            log.warning("%d deliveries abandoned at shutdown", abandoned)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    async def _drain(self, timeout: float) -> int:
        if not self._inflight:
            return 0
        _done, pending = await asyncio.wait(set(self._inflight), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)

    # -- subscriptions ---------------------------------------------------

    def _check_reachable(self, sub: Subscription) -> None:
        conn = socket.create_connection((sub.host, sub.port), timeout=self.connect_timeout)
        conn.close()

    def register(self, url: str, secret: str, events: Iterable[str]) -> Subscription:
        sub = Subscription(url, secret.encode("utf-8"), frozenset(events))
        with self._subs_lock:
            existing = self._subs.get(url)
            if existing == sub:
                return existing
            self._check_reachable(sub)
            self._subs[url] = sub
        log.info("registered %s for %s", url, sorted(sub.events))
        return sub

    def unregister(self, url: str) -> bool:
        with self._subs_lock:
            return self._subs.pop(url, None) is not None

    # -- dispatch --------------------------------------------------------

    def dispatch(self, event_type: str, payload: dict) -> int:
        body = json.dumps({"type": event_type, "data": payload, "ts": time.time()}).encode()
        with self._subs_lock:
            targets = [s for s in self._subs.values() if s.wants(event_type)]
        for sub in targets:
            self._schedule(Delivery(sub, event_type, body))
        _note_queued(len(targets))
        return len(targets)

    def _schedule(self, d: Delivery) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._deliver(d))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _deliver(self, d: Delivery) -> None:
        assert self._sem is not None
        while True:
            d.attempts += 1
            status: Optional[int] = None
            try:
                async with self._sem:
                    status = await self._post(d)
            except (OSError, asyncio.TimeoutError) as exc:
                log.info("delivery %s to %s failed: %s", d.delivery_id, d.sub.url, exc)
            if status is not None and 200 <= status < 300:
                _count(delivered=1)
                return
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                break
            if d.attempts >= self.max_attempts:
                break
            await asyncio.sleep(min(300.0, 2.0 ** d.attempts))
        _count(failed=1)
        log.warning("giving up on %s to %s after %d attempts (last status %s)",
                    d.delivery_id, d.sub.url, d.attempts, status)

    async def _post(self, d: Delivery) -> int:
        sub = d.sub
        sig = hmac.new(sub.secret, d.body, hashlib.sha256).hexdigest()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(sub.host, sub.port, ssl=True if sub.tls else None),
            self.connect_timeout,
        )
        try:
            head = (
                f"POST {sub.path} HTTP/1.1\r\n"
                f"Host: {sub.host}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(d.body)}\r\n"
                f"X-Webhook-Event: {d.event_type}\r\n"
                f"X-Webhook-Delivery: {d.delivery_id}\r\n"
                f"X-Webhook-Signature: sha256={sig}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + d.body)
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), self.read_timeout)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        parts = status_line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise OSError(f"malformed status line {status_line[:60]!r}")
        return int(parts[1])


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    hooks = WebhookDispatcher()
    hooks.start()
    hooks.register("http://127.0.0.1:8099/hooks", "dev-secret", {"*"})

    def producer(n: int) -> None:
        for i in range(20):
            hooks.dispatch("order.created", {"producer": n, "seq": i})

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hooks.stop()
    log.info("stats: %s", stats())


if __name__ == "__main__":
    main()
