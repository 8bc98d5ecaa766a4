#!/usr/bin/env python3
"""Caching stub resolver with background refresh.

A small DNS-like setup: an "upstream" name server answers ``A?`` queries over
UDP on localhost, and a caching resolver sits in front of it.  Concurrent
lookups of the same name are collapsed into one upstream query, entries carry
a TTL, and a background refresher re-resolves entries shortly before they
expire so that hot names never go cold.  Listeners are told when a name's
addresses change.

Run:  python3 clean_resolver_cache.py
"""

import functools
import queue
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Set, Tuple

UPSTREAM_CONCURRENCY = 3
DEFAULT_TTL = 0.25


# --------------------------------------------------------------------------
# upstream server

class UpstreamServer(threading.Thread):
    def __init__(self, records: Dict[str, List[str]]):
        super().__init__(name="upstream", daemon=True)
        self._zone_lock = threading.Lock()
        self._records = {name: list(ips) for name, ips in records.items()}
        self._stop_evt = threading.Event()
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.address = self.sock.getsockname()

    def update_record(self, name: str, ips: List[str]) -> None:
        self._zone_lock.acquire()
        try:
            self._records[name] = list(ips)
        finally:
            self._zone_lock.release()

    def query_count(self) -> int:
        with self._zone_lock:
            return self.queries

    def stop(self) -> None:
        self._stop_evt.set()
        self.join()
        self.sock.close()

    def run(self) -> None:
        while not self._stop_evt.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            name = data.decode().removeprefix("A? ").strip()
            with self._zone_lock:
                self.queries += 1
                ips = list(self._records.get(name, []))
            time.sleep(0.004)  # pretend we had to walk the delegation chain
            reply = f"{name} {DEFAULT_TTL} {','.join(ips)}" if ips else f"{name} NXDOMAIN"
            self.sock.sendto(reply.encode(), peer)


def query_upstream(address: Tuple[str, int], name: str, timeout: float = 1.0
                   ) -> Tuple[List[str], float]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(f"A? {name}".encode(), address)
        reply = s.recv(512).decode().split()
    if len(reply) == 2 and reply[1] == "NXDOMAIN":
        raise LookupError(name)
    return reply[2].split(","), float(reply[1])


# --------------------------------------------------------------------------
# cache

@dataclass(frozen=True)
class CacheEntry:
    ips: Tuple[str, ...]
    expires: float

    def expired(self, now: float) -> bool:
        return now >= self.expires


class _QueryContext(threading.local):
    """Per-thread trace of the names a thread looked up (for debugging)."""

    def __init__(self):
        self.trace: List[str] = []


_ctx = _QueryContext()


class ResolverCache:
    def __init__(self, upstream: Tuple[str, int]):
        self._upstream = upstream
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._entries: Dict[str, CacheEntry] = {}
        self._inflight: Set[str] = set()
        self._listeners: List[Callable[[str, Tuple[str, ...]], None]] = []
        self._listeners_lock = threading.Lock()
        self._upstream_slots = threading.Semaphore(UPSTREAM_CONCURRENCY)
        self.hits = 0
        self.misses = 0
        self.refreshes = 0

    def add_listener(self, cb: Callable[[str, Tuple[str, ...]], None]) -> None:
        with self._listeners_lock:
            self._listeners.append(cb)

    def _notify(self, name: str, ips: Tuple[str, ...]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for cb in listeners:
            cb(name, ips)

    def _fetch(self, name: str) -> Tuple[List[str], float]:
        if not self._upstream_slots.acquire(timeout=2.0):
            raise TimeoutError(f"no upstream slot for {name}")
        try:
            return query_upstream(self._upstream, name)
        finally:
            self._upstream_slots.release()

    def _store(self, name: str, ips: List[str], ttl: float) -> bool:
        """Install a fresh entry; True if the address set changed."""
        entry = CacheEntry(tuple(sorted(ips)), time.monotonic() + ttl)
        with self._cond:
            old = self._entries.get(name)
            self._entries[name] = entry
            return old is None or old.ips != entry.ips

    def lookup(self, name: str) -> Tuple[str, ...]:
        _ctx.trace.append(name)
        with self._cond:
            while True:
                entry = self._entries.get(name)
                if entry is not None and not entry.expired(time.monotonic()):
                    self.hits += 1
                    return entry.ips
                if name not in self._inflight:
                    self._inflight.add(name)
                    self.misses += 1
                    break
                self._cond.wait()
        try:
            ips, ttl = self._fetch(name)
            changed = self._store(name, ips, ttl)
        finally:
            with self._cond:
                self._inflight.discard(name)
                self._cond.notify_all()
        if changed:
            self._notify(name, tuple(sorted(ips)))
        return tuple(sorted(ips))

    def refresh(self, name: str) -> None:
        ips, ttl = self._fetch(name)
        changed = self._store(name, ips, ttl)
        with self._cond:
            self.refreshes += 1
        if changed:
            self._notify(name, tuple(sorted(ips)))

    def expiring(self, within: float) -> List[str]:
        deadline = time.monotonic() + within
        with self._cond:
            return [n for n, e in self._entries.items() if e.expires <= deadline]

    def size(self) -> int:
        with self._cond:
            return len(self._entries)

    def stats(self) -> Dict[str, int]:
        with self._cond:
            return {"entries": self.size(), "hits": self.hits, "misses": self.misses,
                    "refreshes": self.refreshes}


_default_cache: Optional[ResolverCache] = None
_default_cache_lock = threading.Lock()


def get_default_cache(upstream: Tuple[str, int]) -> ResolverCache:
    global _default_cache
    if _default_cache is None:
        with _default_cache_lock:
            if _default_cache is None:
                _default_cache = ResolverCache(upstream)
    return _default_cache


class Refresher(threading.Thread):
    def __init__(self, cache: ResolverCache, interval: float, lead: float):
        super().__init__(name="refresher")
        self.cache = cache
        self.interval = interval
        self.lead = lead
        self._stop_evt = threading.Event()
        self.rounds = 0
        self.errors = 0

    def stop(self) -> None:
        self._stop_evt.set()

    def run(self) -> None:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="refresh") as pool:
            while not self._stop_evt.wait(self.interval):
                futures = {pool.submit(functools.partial(self.cache.refresh, name)): name
                           for name in self.cache.expiring(self.lead)}
                for fut in as_completed(futures):
                    try:
                        fut.result()
                    except (OSError, LookupError):
                        self.errors += 1
                self.rounds += 1


# --------------------------------------------------------------------------
# demo

def client(cache: ResolverCache, names: List[str], rounds: int,
           results: List[Optional[Tuple[int, int]]], slot: int) -> None:
    resolved = 0
    for _ in range(rounds):
        for name in names:
            try:
                cache.lookup(name)
                resolved += 1
            except LookupError:
                pass
        time.sleep(0.01)
    results[slot] = (resolved, len(_ctx.trace))


def main() -> None:
    records = {f"svc{i}.internal": [f"10.0.{i}.{j}" for j in range(1, 3)] for i in range(6)}
    upstream = UpstreamServer(records)
    upstream.start()

    cache = get_default_cache(upstream.address)
    changes: "queue.Queue[Tuple[str, Tuple[str, ...]]]" = queue.Queue()
    cache.add_listener(lambda name, ips: changes.put((name, ips)))

    refresher = Refresher(cache, interval=0.05, lead=0.1)
    refresher.start()

    names = sorted(records) + ["missing.internal"]
    results: List[Optional[Tuple[int, int]]] = [None] * 6
    clients = []
    for i in range(6):
        batch = names[i % 3::2]
        clients.append(threading.Thread(target=client, args=(cache, batch, 25, results, i),
                                        name=f"client-{i}"))

    timers = []
    for i, new_ip in enumerate(("10.9.0.1", "10.9.0.2")):
        host = f"svc{i}.internal"
        timers.append(threading.Timer(0.2 + 0.1 * i,
                                      lambda host=host, ip=new_ip: upstream.update_record(host, [ip])))
    for t in clients + timers:
        t.start()
    for t in clients + timers:
        t.join()

    refresher.stop()
    refresher.join()
    upstream.stop()

    changed = []
    while True:
        try:
            changed.append(changes.get_nowait())
        except queue.Empty:
            break
    print("lookups per client:", results)
    print("cache:", cache.stats(), "upstream queries:", upstream.query_count())
    print(f"refresher rounds={refresher.rounds} errors={refresher.errors}")
    print("address changes seen:", sorted({n for n, _ in changed}))


if __name__ == "__main__":
    main()
