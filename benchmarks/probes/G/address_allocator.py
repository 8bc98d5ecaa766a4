"""
DHCP-style IPv4 address allocator.

Hands out addresses from a subnet to clients identified by MAC address.
Requests arrive on a queue (in production, from the UDP listener) and are
processed by a small pool of worker threads.  Leases expire unless renewed; a
sweeper thread reclaims expired leases, and a snapshot thread periodically
persists the lease table from a forked child so that the request path is
never stalled by disk writes.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Set

log = logging.getLogger("dhcpd")

DEFAULT_LEASE_S = 3600
SWEEP_INTERVAL_S = 10.0
SNAPSHOT_INTERVAL_S = 60.0
SNAPSHOT_PATH = os.environ.get("DHCPD_LEASES", "leases.json")
WORKERS = 4

_STOP = object()


class PoolExhausted(Exception):
    """No free addresses are left in the subnet."""


@dataclass
class Lease:
    mac: str
    ip: str
    expires_at: float
    hostname: str = ""

    def expired(self, now: float) -> bool:
        return self.expires_at <= now

    def copy(self) -> "Lease":
        return Lease(**asdict(self))


@dataclass(frozen=True)
class Request:
    kind: str
    mac: str
    requested_ip: Optional[str] = None
    hostname: str = ""
    reply: Optional["queue.Queue[dict]"] = None


def _ip_key(address: str) -> int:
    return int(ipaddress.IPv4Address(address))


class AddressAllocator:
    """Lease table plus free pool for a single subnet."""

    def __init__(self, network: str, reserved: Iterable[str] = (), lease_s: int = DEFAULT_LEASE_S) -> None:
        self._network = ipaddress.IPv4Network(network)
        self._lease_s = lease_s
        self._lease_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._reserved: Set[str] = {str(ipaddress.IPv4Address(r)) for r in reserved}
        self._free: Set[str] = {str(h) for h in self._network.hosts()} - self._reserved
        self._leases: Dict[str, Lease] = {}
        self._stats = {"offers": 0, "acks": 0, "naks": 0, "releases": 0, "declines": 0, "expired": 0}

    # -- helpers ----------------------------------------------------------

    def _count(self, key: str, amount: int = 1) -> None:
        with self._stats_lock:
            self._stats[key] += amount

    def _return_to_pool(self, ip: str) -> None:
        """Caller must hold ``_pool_lock``."""
        if ip not in self._reserved:
            self._free.add(ip)

    def stats(self) -> Dict[str, int]:
        with self._stats_lock:
            return dict(self._stats)

    # -- protocol operations ----------------------------------------------

    def allocate(self, mac: str, hostname: str = "") -> Lease:
        """DISCOVER: give ``mac`` an address, reusing its live lease if it has one."""
        now = time.time()
        with self._lease_lock:
            lease = self._leases.get(mac)
            if lease is not None and not lease.expired(now):
                lease.expires_at = now + self._lease_s
                return lease.copy()
            with self._pool_lock:
                if lease is not None:
                    self._return_to_pool(lease.ip)
                if not self._free:
                    raise PoolExhausted(str(self._network))
                ip = min(self._free, key=_ip_key)
                self._free.remove(ip)
            lease = Lease(mac=mac, ip=ip, expires_at=now + self._lease_s, hostname=hostname)
            self._leases[mac] = lease
            offered = lease.copy()
        self._count("offers")
        return offered

    def request(self, mac: str, requested_ip: str, hostname: str = "") -> Optional[Lease]:
        """REQUEST: confirm or renew a specific address; None means NAK."""
        now = time.time()
        with self._lease_lock:
            lease = self._leases.get(mac)
            if lease is not None and lease.ip == requested_ip:
                lease.expires_at = now + self._lease_s
                renewed = lease.copy()
            else:
                renewed = None
        if renewed is not None:
            self._count("acks")
            return renewed
        if requested_ip in self._free:
            with self._pool_lock:
                self._free.remove(requested_ip)
            new = Lease(mac=mac, ip=requested_ip, expires_at=now + self._lease_s, hostname=hostname)
            with self._lease_lock:
                old = self._leases.get(mac)
                self._leases[mac] = new
            if old is not None:
                with self._pool_lock:
                    self._return_to_pool(old.ip)
            self._count("acks")
            return new.copy()
        self._count("naks")
        return None

    def release(self, mac: str) -> bool:
        """RELEASE: the client gives its address back."""
        with self._lease_lock:
            lease = self._leases.pop(mac, None)
        if lease is None:
            return False
        with self._pool_lock:
            self._return_to_pool(lease.ip)
        self._count("releases")
        return True

    def decline(self, mac: str, ip: str) -> None:
        """DECLINE: the client saw ``ip`` in use on the wire; quarantine it."""
        with self._lease_lock:
            lease = self._leases.get(mac)
            if lease is not None and lease.ip == ip:
                del self._leases[mac]
        with self._pool_lock:
            self._free.discard(ip)
            self._reserved.add(ip)
        self._stats["declines"] += 1
        log.warning("%s declined %s; address quarantined", mac, ip)

    # -- administration ---------------------------------------------------

    def reserve(self, addresses: Iterable[str]) -> List[str]:
        """Take addresses out of service, revoking any leases that hold them."""
        revoked: List[str] = []
        with self._pool_lock:
            for ip in addresses:
                self._reserved.add(ip)
                if ip in self._free:
                    self._free.remove(ip)
                    continue
                with self._lease_lock:
                    holder = next((mac for mac, lease in self._leases.items() if lease.ip == ip), None)
                    if holder is not None:
                        del self._leases[holder]
                        revoked.append(holder)
        for mac in revoked:
            log.warning("lease of %s revoked by reservation", mac)
        return revoked

    def _expired_macs(self, now: float) -> List[str]:
        return [mac for mac, lease in self._leases.items() if lease.expired(now)]

    def sweep(self) -> int:
        """Reclaim expired leases; returns how many were reclaimed."""
        now = time.time()
        reclaimed = 0
        for mac in self._expired_macs(now):
            with self._lease_lock:
                lease = self._leases.get(mac)
                if lease is None or not lease.expired(now):
                    continue
                del self._leases[mac]
            with self._pool_lock:
                self._return_to_pool(lease.ip)
            reclaimed += 1
        if reclaimed:
            self._count("expired", reclaimed)
        return reclaimed

    def export(self) -> List[dict]:
        with self._lease_lock:
            return [asdict(lease) for lease in self._leases.values()]

    def snapshot_in_child(self, path: str = SNAPSHOT_PATH) -> int:
        """Persist the lease table from a forked child; returns the child's pid."""
        pid = os.fork()
        if pid:
            return pid
        status = 0
        try:
            document = {"network": str(self._network), "written_at": time.time(), "leases": self.export()}
            tmp = f"{path}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(document, fh)
            os.replace(tmp, path)
        except Exception:
            log.exception("lease snapshot failed")
            status = 1
        finally:
            os._exit(status)


class AllocatorServer:
    """Worker pool and housekeeping threads around an AddressAllocator."""

    def __init__(self, allocator: AddressAllocator, workers: int = WORKERS) -> None:
        self.allocator = allocator
        self._requests: "queue.Queue[object]" = queue.Queue()
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._worker, name=f"dhcp-worker-{i}") for i in range(workers)]
        self._housekeeping = [
            threading.Thread(target=self._sweep_loop, name="lease-sweeper", daemon=True),
            threading.Thread(target=self._snapshot_loop, name="lease-snapshot", daemon=True),
        ]

    def submit(self, request: Request) -> None:
        self._requests.put(request)

    def _handle(self, req: Request) -> dict:
        alloc = self.allocator
        if req.kind == "discover":
            lease = alloc.allocate(req.mac, req.hostname)
            return {"type": "offer", "mac": req.mac, "ip": lease.ip, "expires_at": lease.expires_at}
        if req.kind == "request":
            lease = alloc.request(req.mac, req.requested_ip or "", req.hostname)
            return {"type": "ack", "mac": req.mac, "ip": lease.ip} if lease else {"type": "nak", "mac": req.mac}
        if req.kind == "release":
            return {"type": "ok", "released": alloc.release(req.mac)}
        if req.kind == "decline":
            alloc.decline(req.mac, req.requested_ip or "")
            return {"type": "ok"}
        raise ValueError(f"unknown request kind {req.kind!r}")

    def _worker(self) -> None:
        while True:
            item = self._requests.get()
            try:
                if item is _STOP:
                    return
                try:
                    reply = self._handle(item)
                except (PoolExhausted, ValueError, KeyError) as exc:
                    reply = {"type": "error", "error": str(exc)}
                if item.reply is not None:
                    item.reply.put(reply)
            finally:
                self._requests.task_done()

    def _sweep_loop(self) -> None:
        while not self._stop.wait(SWEEP_INTERVAL_S):
            try:
                reclaimed = self.allocator.sweep()
                if reclaimed:
                    log.info("reclaimed %d expired leases", reclaimed)
            except Exception:
                log.exception("lease sweep failed")

    def _snapshot_loop(self) -> None:
        while not self._stop.wait(SNAPSHOT_INTERVAL_S):
            pid = self.allocator.snapshot_in_child()
            _, status = os.waitpid(pid, 0)
            if status != 0:
                log.error("snapshot child %d exited with status %d", pid, status)

    def start(self) -> None:
        for thread in self._workers + self._housekeeping:
            thread.start()

    def stop(self) -> None:
        for _ in self._workers:
            self._requests.put(_STOP)
        for thread in self._workers:
            thread.join()
        self._stop.set()
        for thread in self._housekeeping:
            thread.join(timeout=5.0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    allocator = AddressAllocator("192.168.50.0/26", reserved=["192.168.50.1"], lease_s=30)
    server = AllocatorServer(allocator)
    server.start()
    replies: "queue.Queue[dict]" = queue.Queue()
    macs = [f"02:00:00:00:00:{i:02x}" for i in range(40)]
    for mac in macs:
        server.submit(Request("discover", mac, hostname=f"host-{mac[-2:]}", reply=replies))
    offers = [replies.get(timeout=5.0) for _ in macs]
    for offer in offers:
        if offer.get("type") == "offer":
            server.submit(Request("request", offer["mac"], requested_ip=offer["ip"], reply=replies))
    allocator.reserve(["192.168.50.10", "192.168.50.11"])
    server.submit(Request("decline", macs[5], requested_ip="192.168.50.6"))
    server.submit(Request("release", macs[0]))
    time.sleep(1.0)
    log.info("stats: %s", allocator.stats())
    server.stop()


if __name__ == "__main__":
    main()
