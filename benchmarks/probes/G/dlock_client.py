"""
Client for a lease-based distributed lock service.

The server speaks line-delimited JSON over TCP::

    -> {"op": "acquire", "client": "c-1f2e", "name": "jobs/nightly", "ttl": 15}
    <- {"ok": true, "token": "f3a9...", "ttl": 15}

Leases expire unless renewed, so the client runs a heartbeat thread that
renews every held lease once ``RENEW_FRACTION`` of its TTL has elapsed.  A
lease the server refuses to renew is reported to the owner's ``on_lost``
callback so that the protected work can be abandoned.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional

log = logging.getLogger("dlock")

LOCK_SERVER_HOST = os.environ.get("DLOCK_HOST", "127.0.0.1")
LOCK_SERVER_PORT = int(os.environ.get("DLOCK_PORT", "7400"))
DEFAULT_TTL_S = 15.0
RENEW_FRACTION = 0.5
HEARTBEAT_INTERVAL_S = 1.0
RPC_TIMEOUT_S = 3.0
MAX_INFLIGHT_RPCS = 4
ACQUIRE_RETRY_DELAY_S = 0.25


class LockServerError(Exception):
    """The lock server rejected a request."""


class AlreadyHeldError(LockServerError):
    """The lock is held by somebody else."""


class Transport:
    """A single line-oriented JSON connection.  Not safe for concurrent use."""

    def __init__(self, host: str, port: int, timeout: float = RPC_TIMEOUT_S) -> None:
        self._host = host
        self._port = port
        self._timeout = timeout
        self._sock: Optional[socket.socket] = None
        self._reader = None

    def _connect(self) -> None:
        self._sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        self._reader = self._sock.makefile("r", encoding="utf-8", newline="\n")

    def close(self) -> None:
        if self._sock is None:
            return
        try:
            self._reader.close()
            self._sock.close()
        finally:
            self._sock = None
            self._reader = None

    def call(self, op: str, **params) -> dict:
        if self._sock is None:
            self._connect()
        payload = json.dumps({"op": op, **params}) + "\n"
        try:
            self._sock.sendall(payload.encode("utf-8"))
            line = self._reader.readline()
        except OSError:
            self.close()
            raise
        if not line:
            self.close()
            raise ConnectionError("lock server closed the connection")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise LockServerError(reply.get("error", "unknown error"))
        return reply


@dataclass
class Lease:
    name: str
    token: str
    ttl: float
    acquired_at: float
    renewed_at: float
    on_lost: Optional[Callable[["Lease"], None]] = None
    renewals: int = 0
    lost: bool = False

    def renewal_due(self, now: float) -> bool:
        return not self.lost and now - self.renewed_at >= self.ttl * RENEW_FRACTION


class DistributedLockClient:
    """Acquires, renews and releases named leases on the lock server."""

    def __init__(self, transport: Transport, client_id: Optional[str] = None,
                 max_inflight: int = MAX_INFLIGHT_RPCS) -> None:
        self._transport = transport
        self._client_id = client_id or f"c-{uuid.uuid4().hex[:12]}"
        self._conn_lock = threading.Lock()
        self._leases_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._inflight = threading.Semaphore(max_inflight)
        self._leases: Dict[str, Lease] = {}
        self._stats = {"acquired": 0, "released": 0, "renewed": 0, "lost": 0, "rpc_errors": 0}
        self._stop = threading.Event()
        self._heartbeat: Optional[threading.Thread] = None

    @property
    def client_id(self) -> str:
        return self._client_id

    def _bump(self, key: str, amount: int = 1) -> None:
        with self._stats_lock:
            self._stats[key] += amount

    def _rpc(self, op: str, **params) -> dict:
        if not self._inflight.acquire(timeout=RPC_TIMEOUT_S):
            raise TimeoutError(f"too many concurrent lock RPCs ({op})")
        try:
            with self._conn_lock:
                return self._transport.call(op, client=self._client_id, **params)
        except (OSError, ValueError, LockServerError):
            self._bump("rpc_errors")
            self._inflight.release()
            raise
        finally:
            self._inflight.release()

    # -- public API -------------------------------------------------------

    def acquire(self, name: str, ttl: float = DEFAULT_TTL_S, wait: float = 0.0,
                on_lost: Optional[Callable[[Lease], None]] = None) -> Lease:
        deadline = time.monotonic() + wait
        while True:
            try:
                reply = self._rpc("acquire", name=name, ttl=ttl)
                break
            except LockServerError as exc:
                if time.monotonic() >= deadline:
                    raise AlreadyHeldError(f"{name}: {exc}") from exc
            self._stop.wait(ACQUIRE_RETRY_DELAY_S)
        now = time.monotonic()
        lease = Lease(name=name, token=reply["token"], ttl=float(reply.get("ttl", ttl)),
                      acquired_at=now, renewed_at=now, on_lost=on_lost)
        with self._leases_lock:
            self._leases[name] = lease
        self._bump("acquired")
        log.info("acquired %s (token %s, ttl %.1fs)", name, lease.token[:8], lease.ttl)
        return lease

    def release(self, name: str) -> bool:
        if name not in self._leases:
            log.debug("release(%s): not held", name)
            return False
        lease = self._leases[name]
        try:
            self._rpc("release", name=name, token=lease.token)
        except LockServerError as exc:
            log.warning("server refused release of %s: %s", name, exc)
        with self._leases_lock:
            self._leases.pop(name, None)
        self._bump("released")
        return True

    @contextmanager
    def lock(self, name: str, ttl: float = DEFAULT_TTL_S, wait: float = 10.0,
             on_lost: Optional[Callable[[Lease], None]] = None) -> Iterator[Lease]:
        lease = self.acquire(name, ttl=ttl, wait=wait, on_lost=on_lost)
        try:
            yield lease
        finally:
            self.release(name)

    def stats(self) -> Dict[str, int]:
        with self._stats_lock:
            snapshot = dict(self._stats)
            with self._leases_lock:
                snapshot["held"] = len(self._leases)
        return snapshot

    # -- heartbeat --------------------------------------------------------

    def _apply_renewal(self, name: str, reply: dict) -> None:
        self._leases_lock.acquire()
        lease = self._leases.get(name)
        if lease is not None:
            lease.token = reply.get("token", lease.token)
            lease.ttl = float(reply["ttl"])
            lease.renewed_at = time.monotonic()
            lease.renewals += 1
        self._leases_lock.release()
        self._bump("renewed")

    def _fire_lost(self, lease: Lease) -> None:
        try:
            lease.on_lost(lease)
        except Exception:
            log.exception("on_lost callback for %s failed", lease.name)

    def _handle_lost(self, name: str, reason: str) -> None:
        with self._leases_lock:
            lease = self._leases.pop(name, None)
            if lease is None:
                return
            lease.lost = True
            with self._stats_lock:
                self._stats["lost"] += 1
        log.error("lost lease %s: %s", name, reason)
        if lease.on_lost is not None:
            threading.Thread(target=self._fire_lost, args=(lease), name=f"lost-{name}", daemon=True).start()

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL_S):
            now = time.monotonic()
            with self._leases_lock:
                due = [(lease.name, lease.token) for lease in self._leases.values() if lease.renewal_due(now)]
            for name, token in due:
                try:
                    reply = self._rpc("renew", name=name, token=token)
                except LockServerError as exc:
                    self._handle_lost(name, str(exc))
                    continue
                except OSError as exc:
                    log.warning("renewal of %s failed, will retry: %s", name, exc)
                    continue
                try:
                    self._apply_renewal(name, reply)
                except (KeyError, ValueError, TypeError):
                    log.exception("malformed renewal reply for %s: %r", name, reply)

    def start(self) -> None:
        if self._heartbeat is not None:
            raise RuntimeError("client already started")
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="dlock-heartbeat", daemon=True)
        self._heartbeat.start()

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5.0)
        with self._leases_lock:
            names = list(self._leases)
        for name in names:
            try:
                self.release(name)
            except OSError as exc:
                log.warning("could not release %s on close: %s", name, exc)
        with self._conn_lock:
            self._transport.close()


def run_exclusive(client: DistributedLockClient, name: str,
                  steps: int, step: Callable[[int], None]) -> bool:
    """Run ``step(i)`` for each i while holding ``name``; abort if the lease is lost."""
    lost = threading.Event()
    try:
        with client.lock(name, wait=5.0, on_lost=lambda _lease: lost.set()):
            for i in range(steps):
                if lost.is_set():
                    log.error("lease %s lost; aborting after %d steps", name, i)
                    return False
                step(i)
    except AlreadyHeldError:
        log.info("%s is busy elsewhere; skipping", name)
        return False
    return True


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    client = DistributedLockClient(Transport(LOCK_SERVER_HOST, LOCK_SERVER_PORT))
    client.start()

    def compact_partition(i: int) -> None:
        log.info("compacting partition %d", i)
        time.sleep(0.2)

    workers = [
        threading.Thread(target=run_exclusive, args=(client, "jobs/compaction", 10, compact_partition),
                         name=f"worker-{n}")
        for n in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    log.info("lock stats: %s", client.stats())
    client.close()


if __name__ == "__main__":
    main()
