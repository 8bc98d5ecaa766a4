#!/usr/bin/env python3
"""Price-time priority order matching engine with a market-data feed.

* Trader sessions hand orders to the engine through an inbox queue and get
  their fills back through a Future.
* A single engine thread owns matching; the books are still guarded by a
  per-book lock because risk and market-data code read them concurrently.
* Top-of-book updates are fanned out by an asyncio-based publisher running
  its own event loop in a background thread.

Run the module to replay a small journal and simulate a few traders.
"""

import asyncio
import queue
import random
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from threading import Lock as _Lock
from typing import Optional

TICK = 0.05


# --------------------------------------------------------------------------
# Order ids
# --------------------------------------------------------------------------
class OrderIdSource:
    def __init__(self, prefix):
        self._prefix = prefix
        self._next = 1
        self._lock = threading.Lock()

    def next_id(self):
        with self._lock:
            n = self._next
            self._next += 1
        return f"{self._prefix}-{n:06d}"


_ID_SOURCE = None
_ID_INIT_LOCK = threading.Lock()


def order_ids():
    global _ID_SOURCE
    if _ID_SOURCE is None:
        with _ID_INIT_LOCK:
            _ID_SOURCE = OrderIdSource(prefix="ORD")
    return _ID_SOURCE


# --------------------------------------------------------------------------
# Domain objects
# --------------------------------------------------------------------------
@dataclass
class Order:
    order_id: str
    trader: str
    symbol: str
    side: str  # "B" or "S"
    price: float
    qty: int
    ts: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Trade:
    symbol: str
    price: float
    qty: int
    buy_id: str
    sell_id: str


@dataclass(frozen=True)
class BookUpdate:
    symbol: str
    best_bid: Optional[float]
    best_ask: Optional[float]
    last_trade: Optional[float]


class OrderBook:
    def __init__(self, symbol):
        self.symbol = symbol
        self._lock = _Lock()
        self._bids = {}  # price -> deque[Order]
        self._asks = {}
        self._index = {}
        self.last_trade = None

    def _validate(self, order):
        if order.qty <= 0:
            raise ValueError(f"bad quantity {order.qty}")
        if abs(round(order.price / TICK) * TICK - order.price) > 1e-9:
            raise ValueError(f"price {order.price} off tick")

    def submit(self, order):
        self._lock.acquire()
        self._validate(order)
        trades = self._match(order)
        if order.qty > 0:
            side = self._bids if order.side == "B" else self._asks
            side.setdefault(order.price, deque()).append(order)
            self._index[order.order_id] = order
        self._lock.release()
        return trades

    def _match(self, order):
        trades = []
        opposite = self._asks if order.side == "B" else self._bids
        while order.qty > 0 and opposite:
            best = min(opposite) if order.side == "B" else max(opposite)
            crosses = order.price >= best if order.side == "B" else order.price <= best
            if not crosses:
                break
            level = opposite[best]
            resting = level[0]
            qty = min(order.qty, resting.qty)
            order.qty -= qty
            resting.qty -= qty
            buy, sell = (order, resting) if order.side == "B" else (resting, order)
            trades.append(Trade(self.symbol, best, qty, buy.order_id, sell.order_id))
            self.last_trade = best
            if resting.qty == 0:
                level.popleft()
                self._index.pop(resting.order_id, None)
                if not level:
                    del opposite[best]
        return trades

    def cancel(self, order_id):
        with self._lock:
            order = self._index.pop(order_id, None)
            if order is None:
                return False
            side = self._bids if order.side == "B" else self._asks
            level = side[order.price]
            level.remove(order)
            if not level:
                del side[order.price]
            return True

    def replace(self, order_id, price, qty):
        with self._lock:
            old = self._index.get(order_id)
            if old is None:
                return None
            self.cancel(order_id)
            new = Order(order_ids().next_id(), old.trader, self.symbol, old.side, price, qty)
        return self.submit(new)

    def top(self):
        with self._lock:
            bid = max(self._bids) if self._bids else None
            ask = min(self._asks) if self._asks else None
            return BookUpdate(self.symbol, bid, ask, self.last_trade)


# --------------------------------------------------------------------------
# Market data
# --------------------------------------------------------------------------
class MarketDataPublisher:
    def __init__(self, heartbeat=0.05):
        self._heartbeat = heartbeat
        self._subscribers = {}  # symbol -> set of callbacks
        self._sub_lock = threading.Lock()
        self._loop = None
        self._queue = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="md-publisher")
        self.published = 0
        self.heartbeats = 0

    def subscribe(self, symbol, callback):
        with self._sub_lock:
            self._subscribers.setdefault(symbol, set()).add(callback)

    def start(self):
        self._thread.start()
        self._ready.wait()

    def publish(self, update):
        self._loop.call_soon(self._queue.put_nowait, update)

    def stop(self):
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)
        self._thread.join()

    def _run(self):
        asyncio.run(self._main())

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._ready.set()
        beat = asyncio.create_task(self._beat())
        await self._pump()
        beat.cancel()
        try:
            await beat
        except asyncio.CancelledError:
            pass

    async def _beat(self):
        while True:
            await asyncio.sleep(self._heartbeat)
            self.heartbeats += 1

    async def _pump(self):
        while True:
            update = await self._queue.get()
            if update is None:
                return
            for callback in self._subscribers.get(update.symbol, ()):
                callback(update)
            self.published += 1


# --------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------
class JournalReplayer(threading.Thread):
    """Rebuilds resting liquidity from the previous session's journal."""

    def __init__(self, engine, entries):
        super().__init__(name="journal-replay")
        self.engine = engine
        self.entries = entries
        self.replayed = 0

    def run(self):
        for trader, symbol, side, price, qty in self.entries:
            order = Order(order_ids().next_id(), trader, symbol, side, price, qty)
            self.engine.books[symbol].submit(order)
            self.replayed += 1


class MatchingEngine:
    def __init__(self, symbols, publisher, journal=()):
        self.books = {s: OrderBook(s) for s in symbols}
        self.publisher = publisher
        self._inbox = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="matching-engine")
        self._replayer = JournalReplayer(self, list(journal))
        self._trade_lock = threading.Lock()
        self.trades = []

    def start(self):
        self._replayer.run()
        self._thread.start()

    def stop(self):
        self._inbox.put(None)
        self._thread.join()

    def send(self, order):
        reply = Future()
        self._inbox.put((order, reply))
        return reply

    def _loop(self):
        while True:
            item = self._inbox.get()
            if item is None:
                return
            order, reply = item
            try:
                book = self.books[order.symbol]
                fills = book.submit(order)
                with self._trade_lock:
                    self.trades.extend(fills)
                self.publisher.publish(book.top())
                reply.set_result(fills)
            except Exception as exc:
                reply.set_exception(exc)


def trader_session(engine, name, symbols, n_orders, seed):
    rng = random.Random(seed)
    filled = 0
    for _ in range(n_orders):
        symbol = rng.choice(symbols)
        side = rng.choice("BS")
        ticks = rng.randint(-4, 4) + (2 if side == "B" else -2)
        price = round(round(100.0 / TICK + ticks) * TICK, 2)
        order = Order(order_ids().next_id(), name, symbol, side, price, rng.randint(1, 10))
        fills = engine.send(order).result(timeout=2.0)
        filled += sum(t.qty for t in fills)
        time.sleep(rng.uniform(0.0, 0.003))
    return name, filled


def main():
    symbols = ["ACME", "GLOBX"]
    journal = [("mm1", s, side, round(100.0 + off * TICK, 2), 50)
               for s in symbols for side, off in (("B", -6), ("S", 6))]

    feed = {s: [] for s in symbols}
    publisher = MarketDataPublisher()
    for s in symbols:
        publisher.subscribe(s, feed[s].append)
    publisher.start()

    engine = MatchingEngine(symbols, publisher, journal)
    engine.start()

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="trader") as pool:
        futures = [pool.submit(trader_session, engine, f"T{i}", symbols, 60, i) for i in range(4)]
        for fut in as_completed(futures):
            name, filled = fut.result()
            print(f"{name}: filled {filled} lots")

    engine.stop()
    publisher.stop()
    volume = sum(t.qty for t in engine.trades)
    print(f"{len(engine.trades)} trades, volume {volume}, "
          f"{time.monotonic() - t0:.2f}s, replayed {engine._replayer.replayed} journal orders")
    for s in symbols:
        last = feed[s][-1] if feed[s] else None
        print(f"{s}: {len(feed[s])} md updates, last {last}")
    print(f"publisher: {publisher.published} updates, {publisher.heartbeats} heartbeats")


if __name__ == "__main__":
    main()
