"""Caching stub resolver with background refresh.

Application threads call resolve("example.com") and get back a list of IPv4
addresses.  Answers are cached for their TTL; names that are looked up often
are re-queried shortly before they expire so callers on the hot path rarely
wait for the network.  All UDP traffic to the upstream server goes through a
single asyncio event loop running in its own thread.

    python dns_cache.py example.com python.org example.com
"""
import asyncio
import logging
import os
import random
import socket
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Set, Tuple

log = logging.getLogger("dns_cache")

UPSTREAM = (os.environ.get("DNS_UPSTREAM", "1.1.1.1"), 53)
QTYPE_A = 1
QCLASS_IN = 1
HOT_THRESHOLD = 3
MIN_TTL = 5
MAX_TTL = 3600


class ResolveError(LookupError):
    pass


def build_query(txid: int, name: str) -> bytes:
    header = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(label)]) + label
                     for label in (p.encode("idna") for p in name.split(".") if p))
    return header + qname + b"\x00" + struct.pack("!HH", QTYPE_A, QCLASS_IN)


def _skip_name(buf: bytes, off: int) -> int:
    while True:
        n = buf[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_response(buf: bytes) -> Tuple[int, int, List[str], int]:
    txid, flags, qdcount, ancount, _, _ = struct.unpack_from("!HHHHHH", buf, 0)
    rcode = flags & 0x000F
    off = 12
    for _ in range(qdcount):
        off = _skip_name(buf, off) + 4
    addrs: List[str] = []
    ttl = MAX_TTL
    for _ in range(ancount):
        off = _skip_name(buf, off)
        rtype, _rclass, rttl, rdlen = struct.unpack_from("!HHIH", buf, off)
        off += 10
        if rtype == QTYPE_A and rdlen == 4:
            addrs.append(socket.inet_ntoa(buf[off:off + 4]))
            ttl = min(ttl, rttl)
        off += rdlen
    return txid, rcode, addrs, max(MIN_TTL, ttl)


class _UpstreamProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: "CachingResolver") -> None:
        self.owner = owner

    def connection_made(self, transport) -> None:
        self.owner._transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            self.owner._on_reply(data)
        except (struct.error, IndexError) as exc:
            log.warning("malformed reply from %s: %s", addr, exc)

    def error_received(self, exc: Exception) -> None:
        log.warning("upstream error: %s", exc)


class CachingResolver:
    def __init__(self, upstream=UPSTREAM, timeout: float = 2.0, refresh_ahead: float = 0.2):
        self._upstream = upstream
        self._timeout = timeout
        self._refresh_ahead = refresh_ahead
        self._lock = threading.Lock()
        self._cache: Dict[str, Tuple[float, float, List[str]]] = {}
        self._hits: Dict[str, int] = {}
        self._hot: Set[str] = set()
        self._inflight: Dict[str, list] = {}
        self._pending: Dict[int, Tuple[str, list]] = {}
        self._loop = asyncio.new_event_loop()
        self._transport = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._loop_thread = threading.Thread(target=self._run_loop, name="dns-loop", daemon=True)
        self._refresher = threading.Thread(target=self._refresh_loop, name="dns-refresh",
                                           daemon=True)

    def start(self) -> None:
        self._loop_thread.start()
        if not self._ready.wait(5.0):
            raise RuntimeError("resolver event loop did not start")
        self._refresher.start()

    def close(self) -> None:
        self._stop.set()
        self._refresher.join()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join()
        if self._transport is not None:
            self._transport.close()
        self._loop.close()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._loop.create_datagram_endpoint(
            lambda: _UpstreamProtocol(self), remote_addr=self._upstream))
        self._ready.set()
        self._loop.run_forever()

    def _send(self, name: str, box: list) -> None:
        txid = random.randrange(1 << 16)
        while txid in self._pending:
            txid = random.randrange(1 << 16)
        self._pending[txid] = (name, box)
        self._transport.sendto(build_query(txid, name))
        self._loop.call_later(self._timeout, self._pending.pop, txid, None)

    def _on_reply(self, data: bytes) -> None:
        txid, rcode, addrs, ttl = parse_response(data)
        entry = self._pending.pop(txid, None)
        if entry is None:
            return
        name, box = entry
        if rcode == 0 and addrs:
            self._store(name, addrs, ttl)
            box.append((True, addrs))
        else:
            box.append((False, f"rcode {rcode}" if rcode else "no A records"))

    def _store(self, name: str, addrs: List[str], ttl: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._cache[name] = (now, now + ttl, list(addrs))

    def resolve(self, name: str) -> List[str]:
        name = name.rstrip(".").lower()
        with self._lock:
            entry = self._cache.get(name)
            self._hits[name] = self._hits.get(name, 0) + 1
            if self._hits[name] >= HOT_THRESHOLD:
                self._hot.add(name)
        if entry is not None and entry[1] > time.monotonic():
            return list(entry[2])
        return self._query(name)

    def _query(self, name: str) -> List[str]:
        box = self._inflight.get(name)
        if box is None:
            box = []
            self._inflight[name] = box
            self._loop.call_soon(self._send, name, box)
        deadline = time.monotonic() + self._timeout
        while not box:
            if time.monotonic() > deadline:
                self._inflight.pop(name, None)
                raise ResolveError(f"{name}: timed out")
            time.sleep(0.005)
        self._inflight.pop(name, None)
        ok, payload = box[0]
        if not ok:
            raise ResolveError(f"{name}: {payload}")
        return list(payload)

    def _refresh_loop(self) -> None:
        while not self._stop.wait(1.0):
            now = time.monotonic()
            for name in self._hot:
                with self._lock:
                    entry = self._cache.get(name)
                if entry is None:
                    continue
                stored, expires, _ = entry
                if expires - now < (expires - stored) * self._refresh_ahead:
                    try:
                        self._query(name)
                    except ResolveError as exc:
                        log.debug("background refresh of %s failed: %s", name, exc)


_default: Optional[CachingResolver] = None


def default_resolver() -> CachingResolver:
    global _default
    if _default is None:
        _default = CachingResolver()
        _default.start()
    return _default


def getaddrs(name: str) -> List[str]:
    return default_resolver().resolve(name)


def main(names: List[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    if not names:
        print(__doc__.strip().splitlines()[-1].strip())
        return 2
    failures = 0
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="lookup") as pool:
        futures = {pool.submit(getaddrs, n): n for n in names * 3}
        for fut, name in futures.items():
            try:
                print(f"{name:40} {' '.join(fut.result())}")
            except ResolveError as exc:
                failures += 1
                print(f"{name:40} ERROR {exc}")
    if _default is not None:
        _default.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
