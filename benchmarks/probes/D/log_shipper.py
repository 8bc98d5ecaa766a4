"""Tail application log files and ship them in batches to a log collector.

Every watched file gets its own tailer thread.  Lines are accumulated in a
shared buffer and shipped as newline-delimited JSON over TCP by a background
flush thread, either when the batch is full or when the oldest buffered line
is older than ``max_age`` seconds.

Usage::

    python log_shipper.py --collector logs.internal:5170 /var/log/app/*.log
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, TextIO, Tuple

log = logging.getLogger("logship")

DEFAULT_BATCH_SIZE = 500
DEFAULT_MAX_LINE = 16 * 1024
READ_POLL_INTERVAL = 0.25
RETRY_BACKOFF = 2.0


@dataclass
class Record:
    source: str
    line: str
    ts: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps({"src": self.source, "msg": self.line, "ts": self.ts})


@dataclass
class ShipperStats:
    accepted: int = 0
    truncated: int = 0
    shipped: int = 0
    batches: int = 0
    send_errors: int = 0


class CollectorConnection:
    """Thin wrapper around the TCP connection to the collector."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._sock: Optional[socket.socket] = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        return self._sock

    def send_batch(self, records: Iterable[Record]) -> None:
        payload = "".join(r.to_json() + "\n" for r in records).encode("utf-8")
        sock = self._connect()
        try:
            sock.sendall(payload)
            ack = sock.recv(16)
        except OSError:
            self.close()
            raise
        if not ack.startswith(b"OK"):
            self.close()
            raise IOError(f"collector rejected batch: {ack!r}")

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


class BatchShipper:
    """Buffers records from many tailers and ships them from one thread."""

    def __init__(
        self,
        conn: CollectorConnection,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_line: int = DEFAULT_MAX_LINE,
        max_age: float = 2.0,
    ) -> None:
        self.conn = conn
        self.batch_size = batch_size
        self.max_line = max_line
        self.max_age = max_age
        self.stats = ShipperStats()
        self._lock = threading.Lock()
        self._buffer: List[Record] = []
        self._oldest: Optional[float] = None
        self._flush_requested = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="log-flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, source: str, line: str) -> None:
        if len(line) > self.max_line:
            line = line[: self.max_line]
            self.stats.truncated += 1
        rec = Record(source, line)
        with self._lock:
            self._buffer.append(rec)
            self.stats.accepted += 1
            if self._oldest is None:
                self._oldest = rec.ts
            if len(self._buffer) >= self.batch_size:
                self._flush_requested = True

    def snapshot(self) -> ShipperStats:
        with self._lock:
            return dataclasses.replace(self.stats)

    def _due(self) -> bool:
        if self._flush_requested or self._closing:
            return True
        oldest = self._oldest
        return oldest is not None and time.time() - oldest >= self.max_age

    def _run(self) -> None:
        try:
            while True:
                while not self._due():
                    time.sleep(0.01)
                ok = self._flush()
                if self._closing:
                    break
                if not ok:
                    time.sleep(RETRY_BACKOFF)
        finally:
            self.conn.close()

    def _flush(self) -> bool:
        with self._lock:
            self._flush_requested = False
            if not self._buffer:
                return True
            try:
                self.conn.send_batch(self._buffer)
            except (OSError, IOError) as exc:
                self.stats.send_errors += 1
                log.warning("ship failed (%s); keeping %d records", exc, len(self._buffer))
                return False
            self.stats.shipped += len(self._buffer)
            self.stats.batches += 1
            self._buffer.clear()
            self._oldest = None
        return True

    def close(self) -> None:
        self._closing = True


class FileTailer(threading.Thread):
    """Follows one file like ``tail -F``, surviving log rotation."""

    def __init__(self, path: str, shipper: BatchShipper, from_start: bool = False) -> None:
        super().__init__(name=f"tail:{os.path.basename(path)}")
        self.path = path
        self.shipper = shipper
        self.from_start = from_start
        self.lines_read = 0
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def _open(self) -> Tuple[TextIO, int]:
        fh = open(self.path, "r", encoding="utf-8", errors="replace")
        if not self.from_start:
            fh.seek(0, os.SEEK_END)
        return fh, os.fstat(fh.fileno()).st_ino

    def _rotated(self, inode: int) -> bool:
        try:
            return os.stat(self.path).st_ino != inode
        except FileNotFoundError:
            return False

    def run(self) -> None:
        fh, inode = self._open()
        partial = ""
        try:
            while not self._stop_event.is_set():
                chunk = fh.readline()
                if not chunk:
                    if self._rotated(inode):
                        fh.close()
                        self.from_start = True
                        fh, inode = self._open()
                        continue
                    self._stop_event.wait(READ_POLL_INTERVAL)
                    continue
                partial += chunk
                if not partial.endswith("\n"):
                    continue
                self.lines_read += 1
                self.shipper.add(self.path, partial.rstrip("\n"))
                partial = ""
        finally:
            fh.close()


class LogShipperApp:
    def __init__(self, paths: List[str], host: str, port: int, stats_interval: float = 30.0) -> None:
        self.shipper = BatchShipper(CollectorConnection(host, port))
        self.tailers = [FileTailer(p, self.shipper) for p in paths]
        self.stats_interval = stats_interval
        self._stopped = threading.Event()

    def _report_stats(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            s = self.shipper.snapshot()
            log.info(
                "accepted=%d shipped=%d batches=%d truncated=%d errors=%d",
                s.accepted, s.shipped, s.batches, s.truncated, s.send_errors,
            )

    def start(self) -> None:
        self.shipper.start()
        for t in self.tailers:
            t.start()
        reporter = threading.Thread(target=self._report_stats, args=(self.stats_interval), daemon=True)
        reporter.start()

    def stop(self) -> None:
        self._stopped.set()
        for t in self.tailers:
            t.stop()
        for t in self.tailers:
            t.join()
            log.info("%s: %d lines", t.path, t.lines_read)
        self.shipper.close()


def parse_collector(spec: str) -> Tuple[str, int]:
    host, _, port = spec.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {spec!r}")
    return host, int(port)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--collector", type=parse_collector, required=True)
    ap.add_argument("--stats-interval", type=float, default=30.0)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")

    host, port = args.collector
    app = LogShipperApp(args.paths, host, port, args.stats_interval)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    app.start()
    done.wait()
    app.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
