"""Stock-ticker feed handler.

An asyncio event loop on a background thread owns the TCP connection to the
quote feed (newline-delimited JSON) and keeps the latest quote and a short
history per symbol.  Synchronous code in other threads subscribes, reads
snapshots, consumes updates from a thread-safe queue and exports history
files through a small I/O thread pool.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Deque, Dict, Mapping, Optional, Set, Tuple

log = logging.getLogger("ticker")

_worker_state = threading.local()


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid: float
    ask: float
    last: float
    ts: float


def _init_export_worker(indent: Optional[int]) -> None:
    _worker_state.encoder = json.JSONEncoder(indent=indent, sort_keys=True)
    _worker_state.files = 0


def _export_symbol(directory: str, symbol: str, quotes: Tuple[Quote, ...]) -> str:
    encoder = _worker_state.encoder
    path = os.path.join(directory, f"{symbol}.json")
    with open(path, "w") as fh:
        fh.write(encoder.encode([q.__dict__ for q in quotes]))
    _worker_state.files += 1
    return path


class TickerFeed:
    def __init__(self, host: str, port: int, history: int = 500, reconnect_delay: float = 2.0) -> None:
        self.host = host
        self.port = port
        self.reconnect_delay = reconnect_delay
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="ticker-loop")
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._latest: Dict[str, Quote] = {}
        self._history: Dict[str, Deque[Quote]] = collections.defaultdict(
            lambda: collections.deque(maxlen=history))
        self._updates: "queue.Queue[Quote]" = queue.Queue(maxsize=10_000)
        self._symbols: Set[str] = set()
        self._writer: Optional[asyncio.StreamWriter] = None
        self._conn_task: Optional[asyncio.Task] = None
        self._dropped = 0

    # -- loop thread -----------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("ticker loop did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._conn_task = self._loop.create_task(self._connection_loop())
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _connection_loop(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                log.warning("feed connect failed: %s", exc)
                await asyncio.sleep(self.reconnect_delay)
                continue
            self._writer = writer
            try:
                for symbol in sorted(self._symbols):
                    await self._send({"op": "subscribe", "symbol": symbol})
                await self._read_quotes(reader)
            except (OSError, ValueError) as exc:
                log.warning("feed connection lost: %s", exc)
            finally:
                self._writer = None
                writer.close()
            await asyncio.sleep(self.reconnect_delay)

    async def _read_quotes(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionResetError("feed closed the connection")
            try:
                msg = json.loads(line)
                if msg.get("type") != "quote":
                    continue
                q = Quote(msg["symbol"], float(msg["bid"]), float(msg["ask"]),
                          float(msg["last"]), float(msg.get("ts", time.time())))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                log.debug("skipping malformed message %r: %s", line[:80], exc)
                continue
            with self._lock:
                self._latest[q.symbol] = q
                self._history[q.symbol].append(q)
            try:
                self._updates.put_nowait(q)
            except queue.Full:
                self._dropped += 1
                if self._dropped % 1000 == 1:
                    log.warning("update queue full; %d updates dropped so far", self._dropped)

    async def _send(self, msg: dict) -> None:
        writer = self._writer
        if writer is None:
            return
        writer.write(json.dumps(msg).encode("utf-8") + b"\n")
        await writer.drain()

    async def _subscribe(self, symbol: str) -> None:
        if symbol in self._symbols:
            return
        self._symbols.add(symbol)
        try:
            await self._send({"op": "subscribe", "symbol": symbol})
        except OSError as exc:
            log.info("subscribe %s deferred until reconnect: %s", symbol, exc)

    async def _shutdown(self) -> None:
        task = self._conn_task
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    # -- thread-safe API -------------------------------------------------

    def subscribe(self, symbol: str, timeout: float = 5.0) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._subscribe(symbol.upper()), self._loop)
        fut.result(timeout)

    def latest(self, symbol: str) -> Optional[Quote]:
        with self._lock:
            return self._latest.get(symbol.upper())

    def snapshot(self) -> Mapping[str, Quote]:
        with self._lock:
            return MappingProxyType(dict(self._latest))

    def next_update(self, timeout: float) -> Optional[Quote]:
        try:
            return self._updates.get(timeout=timeout)
        except queue.Empty:
            return None

    def export_history(self, directory: str, workers: int = 4) -> Dict[str, str]:
        with self._lock:
            frozen = {sym: tuple(hist) for sym, hist in self._history.items()}
        os.makedirs(directory, exist_ok=True)
        paths: Dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=workers, initializer=_init_export_worker,
                                initargs=(None,)) as pool:
            futures = {sym: pool.submit(_export_symbol, directory, sym, quotes)
                       for sym, quotes in frozen.items()}
            for sym, fut in futures.items():
                paths[sym] = fut.result()
        return paths

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


def _print_updates(feed: TickerFeed, stop: threading.Event) -> None:
    seen = 0
    while not stop.is_set():
        q = feed.next_update(timeout=0.5)
        if q is None:
            continue
        seen += 1
        print(f"{q.symbol:6} bid={q.bid:.2f} ask={q.ask:.2f} last={q.last:.2f}")
    log.info("printer thread saw %d updates", seen)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    feed = TickerFeed(os.environ.get("FEED_HOST", "127.0.0.1"), int(os.environ.get("FEED_PORT", "9010")))
    feed.start()
    for symbol in ("AAPL", "MSFT", "NVDA"):
        feed.subscribe(symbol)
    stop = threading.Event()
    printer = threading.Thread(target=_print_updates, args=(feed, stop), name="printer")
    printer.start()
    try:
        time.sleep(float(os.environ.get("RUN_SECONDS", "30")))
    finally:
        stop.set()
        printer.join()
        for sym, q in sorted(feed.snapshot().items()):
            log.info("%s mid %.2f", sym, (q.bid + q.ask) / 2)
        log.info("exported %d files", len(feed.export_history("ticker-history")))
        feed.stop()


if __name__ == "__main__":
    main()
