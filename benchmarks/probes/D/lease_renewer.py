"""Client-side lease manager for a coordination service.

Leases are named, time-limited locks handed out by a coordinator that speaks a
line-oriented JSON protocol.  Each held lease gets a keep-alive thread that
renews it at a third of its TTL.  Interested components register listeners
that are told when a lease is acquired or lost.

    mgr = LeaseManager(CoordinatorClient("coord.internal", 7700))
    lease = mgr.acquire("scheduler-leader", ttl=15)
    ...
    mgr.release("scheduler-leader")
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from threading import Condition, Event, Thread, current_thread
from threading import Lock as L
from typing import Callable, Dict, List, Optional

log = logging.getLogger("leases")


class CoordinatorError(Exception):
    pass


class CoordinatorClient:
    """One short-lived TCP connection per call; safe to use from any thread."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    def call(self, op: str, **params: object) -> dict:
        msg = json.dumps({"op": op, **params}).encode("utf-8") + b"\n"
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
            sock.sendall(msg)
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise CoordinatorError(f"{op}: connection closed by coordinator")
                buf += chunk
        reply = json.loads(buf)
        if not reply.get("ok"):
            raise CoordinatorError(f"{op}: {reply.get('error', 'unknown error')}")
        return reply


@dataclass
class Lease:
    name: str
    lease_id: str
    ttl: float
    expires_at: float
    fencing_token: int

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()


@dataclass
class RenewalStats:
    renewals: int = 0
    failures: int = 0
    total_latency: float = 0.0


Listener = Callable[[str, Optional[Lease]], None]


class KeepAlive(Thread):
    def __init__(self, manager: "LeaseManager", lease: Lease) -> None:
        super().__init__(name=f"keepalive:{lease.name}", daemon=True)
        self.manager = manager
        self.lease = lease
        self.stopped = Event()

    def run(self) -> None:
        interval = max(0.5, self.lease.ttl / 3.0)
        while not self.stopped.wait(interval):
            if not self.manager.renew(self.lease.name):
                log.info("keep-alive for %s exiting", self.lease.name)
                return


class LeaseManager:
    def __init__(self, client: CoordinatorClient, owner: Optional[str] = None) -> None:
        self.client = client
        self.owner = owner or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.stats = RenewalStats()
        self._mu = L()
        self._changed = Condition(self._mu)
        self._leases: Dict[str, Lease] = {}
        self._keepers: Dict[str, KeepAlive] = {}
        self._listeners: List[Listener] = []
        self._listeners_mu = L()

    # -- listeners -------------------------------------------------------

    def add_listener(self, fn: Listener) -> None:
        """Register *fn* and immediately replay the leases currently held."""
        with self._listeners_mu:
            self._listeners.append(fn)
            for name, lease in self.held().items():
                fn(name, lease)

    def _notify(self, name: str, lease: Optional[Lease]) -> None:
        with self._listeners_mu:
            for fn in self._listeners:
                try:
                    fn(name, lease)
                except Exception:
                    log.exception("lease listener failed for %s", name)

    # -- queries ---------------------------------------------------------

    def held(self) -> Dict[str, Lease]:
        with self._mu:
            return dict(self._leases)

    def wait_for(self, name: str, timeout: Optional[float] = None) -> Lease:
        """Block until another thread of this process has acquired *name*."""
        with self._changed:
            if name not in self._leases:
                if not self._changed.wait(timeout):
                    raise TimeoutError(f"lease {name!r} not acquired within {timeout}s")
            return self._leases[name]

    # -- lifecycle -------------------------------------------------------

    def acquire(self, name: str, ttl: float = 15.0) -> Lease:
        reply = self.client.call("acquire", name=name, owner=self.owner, ttl=ttl)
        lease = Lease(name, reply["lease_id"], ttl, time.monotonic() + ttl, int(reply["token"]))
        with self._mu:
            self._leases[name] = lease
            self._changed.notify_all()
            self._notify(name, lease)
        self._spawn_keeper(lease)
        return lease

    def _spawn_keeper(self, lease: Lease) -> None:
        keeper = KeepAlive(self, lease)
        with self._mu:
            previous = self._keepers.get(lease.name)
            self._keepers[lease.name] = keeper
        if previous is not None:
            previous.stopped.set()
        keeper.run()

    def _record(self, ok: bool, latency: float) -> None:
        guard = L()
        with guard:
            if ok:
                self.stats.renewals += 1
            else:
                self.stats.failures += 1
            self.stats.total_latency += latency

    def renew(self, name: str) -> bool:
        with self._mu:
            lease = self._leases.get(name)
        if lease is None:
            return False
        t0 = time.monotonic()
        try:
            reply = self.client.call("renew", name=name, lease_id=lease.lease_id, owner=self.owner)
        except (OSError, CoordinatorError) as exc:
            self._record(False, time.monotonic() - t0)
            with self._mu:
                if isinstance(exc, CoordinatorError) or lease.remaining() <= 0:
                    log.error("lost lease %s: %s", name, exc)
                    self._drop(name)
                    return False
            log.warning("renewal of %s failed, will retry: %s", name, exc)
            return True
        with self._mu:
            lease.expires_at = time.monotonic() + lease.ttl
            lease.fencing_token = int(reply.get("token", lease.fencing_token))
        self._record(True, time.monotonic() - t0)
        return True

    def _drop(self, name: str) -> None:
        with self._mu:
            lease = self._leases.pop(name, None)
            self._keepers.pop(name, None)
            self._changed.notify_all()
        if lease is not None:
            self._notify(name, None)

    def release(self, name: str) -> None:
        with self._mu:
            keeper = self._keepers.get(name)
            lease = self._leases.get(name)
        if keeper is not None:
            keeper.stopped.set()
            if keeper is not current_thread():
                keeper.join()
        if lease is None:
            return
        try:
            self.client.call("release", name=name, lease_id=lease.lease_id, owner=self.owner)
        except (OSError, CoordinatorError) as exc:
            log.warning("release of %s failed (lease will expire): %s", name, exc)
        self._drop(name)

    def close(self) -> None:
        for name in list(self.held()):
            self.release(name)


def _log_listener(name: str, lease: Optional[Lease]) -> None:
    if lease is None:
        log.warning("lease %s lost", name)
    else:
        log.info("lease %s held (token %d)", name, lease.fencing_token)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    mgr = LeaseManager(CoordinatorClient("127.0.0.1", 7700))
    lost = Event()

    def on_change(name: str, lease: Optional[Lease]) -> None:
        _log_listener(name, lease)
        if name == "report-generator" and lease is None:
            lost.set()

    mgr.add_listener(on_change)
    try:
        lease = mgr.acquire("report-generator", ttl=10.0)
        log.info("leader with token %d; working", lease.fencing_token)
        if lost.wait(30.0):
            log.error("leadership lost before the run finished")
    finally:
        mgr.close()
        log.info("stats: %s", mgr.stats)

if __name__ == "__main__":
    main()
