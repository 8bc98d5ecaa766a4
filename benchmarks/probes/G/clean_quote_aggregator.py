"""
Stock-quote aggregator.

One feed-handler thread per trading venue pushes quotes into a shared book
that keeps the latest quote per (symbol, venue).  Readers can block until a
symbol has quotes from a quorum of venues.  A publisher periodically computes
a size-weighted mid price per symbol and fans the results out to downstream
sinks on a small thread pool.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

log = logging.getLogger("quotes")

VENUES = ("XNYS", "XNAS", "BATS")
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN")
BASE_PRICES = {"AAPL": 190.0, "MSFT": 410.0, "NVDA": 880.0, "AMZN": 175.0}
QUORUM = 2
FEED_INTERVAL_S = 0.05
PUBLISH_INTERVAL_S = 0.25
STALE_AFTER_S = 2.0
BOOK_LOCK_TIMEOUT_S = 0.5
DEFAULT_MAX_SPREAD = 0.5


@dataclass(frozen=True)
class Quote:
    symbol: str
    venue: str
    bid: float
    ask: float
    size: int
    seq: int
    ts: float

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


class QuoteBook:
    """Latest quote per symbol and venue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._quotes: Dict[str, Dict[str, Quote]] = {}
        self._rejected = 0
        self._closed = False
        self.max_spread = DEFAULT_MAX_SPREAD

    def update(self, quote: Quote) -> bool:
        """Store ``quote`` unless the venue already sent an equal or newer one."""
        with self._changed:
            venues = self._quotes.setdefault(quote.symbol, {})
            current = venues.get(quote.venue)
            if current is not None and current.seq >= quote.seq:
                self._rejected += 1
                return False
            venues[quote.venue] = quote
            self._changed.notify_all()
            return True

    def _venue_count(self, symbol: str) -> int:
        """Caller holds the lock."""
        return len(self._quotes.get(symbol, ()))

    def _wait_until(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Caller holds the lock.  Wait until ``predicate()`` holds or the deadline passes."""
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.wait(remaining)
        return True

    def wait_for_quorum(self, symbol: str, quorum: int = QUORUM, timeout: float = 5.0) -> Optional[List[Quote]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            self._wait_until(lambda: self._closed or self._venue_count(symbol) >= quorum, deadline)
            if self._venue_count(symbol) < quorum:
                return None
            return list(self._quotes[symbol].values())

    def try_snapshot(self, timeout: float = BOOK_LOCK_TIMEOUT_S) -> Optional[Dict[str, List[Quote]]]:
        """Copy the book, giving up if the lock stays contended for ``timeout``."""
        if not self._lock.acquire(timeout=timeout):
            return None
        try:
            return {symbol: list(venues.values()) for symbol, venues in self._quotes.items()}
        finally:
            self._lock.release()

    @property
    def rejected(self) -> int:
        with self._lock:
            return self._rejected

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class FeedHandler(threading.Thread):
    """Simulated market-data handler for one venue."""

    def __init__(self, venue: str, book: QuoteBook, stop: threading.Event,
                 symbols: Sequence[str] = SYMBOLS, seed: int = 0) -> None:
        super().__init__(name=f"feed-{venue}")
        self.venue = venue
        self._book = book
        self._halt = stop
        self._symbols = tuple(symbols)
        self._rng = random.Random(seed)
        self._seq = 0
        self.published = 0
        self.first_quote_at: Optional[float] = None
        self.first_quote_seen = threading.Event()

    def _next_quote(self, symbol: str) -> Quote:
        self._seq += 1
        mid = BASE_PRICES[symbol] * (1.0 + self._rng.gauss(0.0, 0.0005))
        half_spread = self._rng.uniform(0.005, self._book.max_spread / 2.0)
        return Quote(symbol, self.venue, round(mid - half_spread, 2), round(mid + half_spread, 2),
                     self._rng.randint(1, 50) * 100, self._seq, time.time())

    def run(self) -> None:
        while not self._halt.is_set():
            for symbol in self._symbols:
                if self._book.update(self._next_quote(symbol)):
                    self.published += 1
            if self.first_quote_at is None:
                self.first_quote_at = time.monotonic()
                self.first_quote_seen.set()
            self._halt.wait(FEED_INTERVAL_S)


def weighted_mid(quotes: List[Quote], now: float) -> Optional[float]:
    fresh = [q for q in quotes if now - q.ts <= STALE_AFTER_S]
    total = sum(q.size for q in fresh)
    if total == 0:
        return None
    return sum(q.mid * q.size for q in fresh) / total


class Sink:
    """A downstream consumer reached over the network (simulated latency)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.received: Dict[str, float] = {}

    def send(self, symbol: str, mid: float) -> None:
        time.sleep(0.002)
        with self._lock:
            self.received[symbol] = mid


class MidPricePublisher:
    def __init__(self, book: QuoteBook, pool: ThreadPoolExecutor, sinks: List[Sink]) -> None:
        self._book = book
        self._pool = pool
        self._sinks = sinks
        self.cycles = 0

    def publish_once(self) -> Dict[str, float]:
        snapshot = self._book.try_snapshot()
        if snapshot is None:
            log.warning("quote book busy; skipping publish cycle")
            return {}
        now = time.time()
        mids = {}
        for symbol, quotes in snapshot.items():
            mid = weighted_mid(quotes, now)
            if mid is not None:
                mids[symbol] = round(mid, 4)
        futures = {
            self._pool.submit(sink.send, symbol, mid): (sink.name, symbol)
            for sink in self._sinks
            for symbol, mid in mids.items()
        }
        for future in as_completed(futures):
            try:
                future.result()
            except Exception:
                sink_name, symbol = futures[future]
                log.exception("sending %s to %s failed", symbol, sink_name)
        self.cycles += 1
        return mids


def run(duration: float = 2.0) -> Dict[str, int]:
    book = QuoteBook()
    book.max_spread = 0.3
    stop = threading.Event()
    feeds = [FeedHandler(venue, book, stop, seed=i) for i, venue in enumerate(VENUES)]
    started = time.monotonic()
    for feed in feeds:
        feed.start()
    try:
        for feed in feeds:
            if feed.first_quote_seen.wait(timeout=5.0):
                log.info("%s: first quote after %.3fs", feed.venue, feed.first_quote_at - started)
        quorum = book.wait_for_quorum("AAPL")
        log.info("AAPL quorum: %s", [q.venue for q in quorum] if quorum else "timed out")
        sinks = [Sink("risk"), Sink("pricing-ui")]
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="publish") as pool:
            publisher = MidPricePublisher(book, pool, sinks)
            deadline = time.monotonic() + duration
            while time.monotonic() < deadline:
                mids = publisher.publish_once()
                log.info("cycle %d mids: %s", publisher.cycles, mids)
                time.sleep(PUBLISH_INTERVAL_S)
    finally:
        stop.set()
        book.close()
        for feed in feeds:
            feed.join()
    published = {feed.venue: feed.published for feed in feeds}
    log.info("published per venue: %s; out-of-order rejected: %d", published, book.rejected)
    return published


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    run()
