"""In-process metrics aggregator with a periodic flush to a statsd-style sink.

Counters, gauges and timers can be updated from any thread.  A single flusher
thread swaps the accumulated data out under the lock every ``interval``
seconds and sends it over UDP without holding the lock.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional

log = logging.getLogger("metrics")


@dataclass
class Summary:
    count: int = 0
    total: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


@dataclass(frozen=True)
class FlushBatch:
    counters: Dict[str, int]
    gauges: Dict[str, float]
    timers: Dict[str, Summary]
    taken_at: float


class UdpSink:
    def __init__(self, host: str, port: int, max_packet: int = 1400) -> None:
        self.addr = (host, port)
        self.max_packet = max_packet
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, lines: List[str]) -> None:
        packet: List[bytes] = []
        size = 0
        for line in lines:
            data = line.encode("utf-8")
            if packet and size + len(data) + 1 > self.max_packet:
                self._sock.sendto(b"\n".join(packet), self.addr)
                packet, size = [], 0
            packet.append(data)
            size += len(data) + 1
        if packet:
            self._sock.sendto(b"\n".join(packet), self.addr)

    def close(self) -> None:
        self._sock.close()


class MetricsAggregator:
    def __init__(self, sink: UdpSink, interval: float = 10.0, prefix: str = "") -> None:
        self.sink = sink
        self.interval = interval
        self.prefix = prefix
        self._lock = threading.Lock()
        self._counters: Dict[str, int] = {}
        self._gauges: Dict[str, float] = {}
        self._timers: Dict[str, Summary] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._flushes = 0
        self._errors = 0

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name="metrics-flush")
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("aggregator already started")
            self._thread = thread
        thread.start()

    # -- recording (any thread) ------------------------------------------

    def incr(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + n

    def gauge(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    def timing(self, name: str, millis: float) -> None:
        self._lock.acquire()
        try:
            summary = self._timers.get(name)
            if summary is None:
                summary = self._timers[name] = Summary()
            summary.add(millis)
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timing(name, (time.perf_counter() - t0) * 1000.0)

    # -- flushing (flusher thread) ---------------------------------------

    def _swap(self) -> FlushBatch:
        with self._lock:
            batch = FlushBatch(self._counters, dict(self._gauges), self._timers, time.time())
            self._counters = {}
            self._timers = {}
        return batch

    def _format(self, batch: FlushBatch) -> List[str]:
        p = self.prefix
        lines = [f"{p}{k}:{v}|c" for k, v in sorted(batch.counters.items())]
        lines += [f"{p}{k}:{v:g}|g" for k, v in sorted(batch.gauges.items())]
        for name, s in sorted(batch.timers.items()):
            lines.append(f"{p}{name}.count:{s.count}|c")
            lines.append(f"{p}{name}.mean:{s.total / s.count:.3f}|ms")
            lines.append(f"{p}{name}.min:{s.minimum:.3f}|ms")
            lines.append(f"{p}{name}.max:{s.maximum:.3f}|ms")
        return lines

    def _flush_once(self) -> bool:
        lines = self._format(self._swap())
        if not lines:
            return True
        try:
            self.sink.send(lines)
            return True
        except OSError as exc:
            log.warning("metrics flush failed: %s", exc)
            return False

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self._flush_once():
                self._flushes += 1
            else:
                self._errors += 1
        if self._flush_once():
            self._flushes += 1
        else:
            self._errors += 1
        log.debug("flusher exiting: %d flushes, %d errors", self._flushes, self._errors)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
        else:
            self._flush_once()
        self.sink.close()


_default: Optional[MetricsAggregator] = None
_default_lock = threading.Lock()


def get_default() -> MetricsAggregator:
    global _default
    agg = _default
    if agg is None:
        with _default_lock:
            if _default is None:
                inst = MetricsAggregator(UdpSink("127.0.0.1", 8125), prefix="app.")
                inst.start()
                _default = inst
            agg = _default
    return agg


def shutdown_default() -> None:
    global _default
    with _default_lock:
        agg, _default = _default, None
    if agg is not None:
        agg.close()


def _handle_request(n: int) -> int:
    metrics = get_default()
    with metrics.timed("request"):
        time.sleep(0.001 * (n % 5))
        metrics.incr("requests")
        if n % 7 == 0:
            metrics.incr("errors")
    return n


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(_handle_request, n) for n in range(200)]
        handled = sum(1 for f in futures if f.result() is not None)
    get_default().gauge("handled", handled)
    shutdown_default()
    log.info("handled %d requests", handled)


if __name__ == "__main__":
    main()
