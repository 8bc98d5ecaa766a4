"""Stock ticker fan-out hub.

Market-data feed threads publish ticks into the hub.  The hub copies every
tick into the mailbox of each subscriber interested in that symbol; one pump
thread per subscriber hands encoded frames to the network loop (an asyncio
event loop running in its own thread), which writes them to the subscriber's
socket.  Clients read newline-delimited JSON frames from the other end of a
local socket pair, much like a websocket client would.
"""
import asyncio
import collections
import json
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Dict, Iterable, Optional

PREV_CLOSE = {"AAPL": 189.5, "MSFT": 411.2, "NVDA": 875.0,
              "AMZN": 178.3, "TSLA": 171.1}


@dataclass(frozen=True)
class Tick:
    symbol: str
    price: float
    seq: int
    ts: float

    def encode(self) -> bytes:
        payload = {"s": self.symbol, "p": round(self.price, 2),
                   "n": self.seq, "t": self.ts}
        return (json.dumps(payload) + "\n").encode()


class Mailbox:
    """Bounded per-subscriber buffer; the oldest tick is dropped when full."""

    def __init__(self, maxlen: int = 256):
        self._items: collections.deque = collections.deque(maxlen=maxlen)
        self._cv = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, tick: Tick) -> None:
        with self._cv:
            if self._closed:
                return
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(tick)
            self._cv.notify()

    def get(self) -> Optional[Tick]:
        """Block until a tick is available; None once the mailbox is closed."""
        with self._cv:
            if not self._items and not self._closed:
                self._cv.wait()
            if not self._items:
                return None
            return self._items.popleft()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def dropped_count(self) -> int:
        with self._cv:
            return self.dropped


class NetworkLoop:
    """Owns the asyncio loop that performs all socket writes."""

    def __init__(self):
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.ready = False
        self.frames_written = 0  # only touched on the loop thread
        self._thread = threading.Thread(target=self._run, name="net-loop",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()
        while not self.ready:
            time.sleep(0.01)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        heartbeat = self.loop.create_task(self._heartbeat())
        self.ready = True
        try:
            self.loop.run_forever()
        finally:
            heartbeat.cancel()
            self.loop.run_until_complete(
                asyncio.gather(heartbeat, return_exceptions=True))
            self.loop.close()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(0.05)

    def write(self, sock: socket.socket, data: bytes) -> None:
        try:
            sock.sendall(data)
        except OSError:
            return
        self.frames_written += 1

    def close_socket(self, sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=2.0)


class Subscriber(threading.Thread):
    """Pump thread: moves ticks from the mailbox onto the network loop."""

    def __init__(self, sub_id: int, symbols: Iterable[str], net: NetworkLoop):
        super().__init__(name=f"pump-{sub_id}", daemon=True)
        self.sub_id = sub_id
        self.symbols = frozenset(symbols)
        self.mailbox = Mailbox()
        self.net = net
        self.server_sock, self.client_sock = socket.socketpair()

    def run(self) -> None:
        while True:
            tick = self.mailbox.get()
            if tick is None:
                break
            self.net.loop.call_soon(self.net.write, self.server_sock,
                                    tick.encode())
        self.net.loop.call_soon_threadsafe(self.net.close_socket,
                                           self.server_sock)


class ClientReader(threading.Thread):
    """The remote end: decodes frames and checks per-symbol ordering."""

    def __init__(self, sub: Subscriber):
        super().__init__(name=f"client-{sub.sub_id}", daemon=True)
        self.sub_id = sub.sub_id
        self.sock = sub.client_sock
        self.frames = 0
        self.out_of_order = 0
        self._last_seq: Dict[str, int] = {}

    def run(self) -> None:
        self.sock.settimeout(3.0)
        buf = b""
        with self.sock:
            while True:
                try:
                    chunk = self.sock.recv(4096)
                except socket.timeout:
                    break
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    frame = json.loads(line)
                    self.frames += 1
                    prev = self._last_seq.get(frame["s"])
                    if prev is not None and frame["n"] <= prev:
                        self.out_of_order += 1
                    self._last_seq[frame["s"]] = frame["n"]


class TickerHub:
    def __init__(self):
        self._subs: Dict[int, Subscriber] = {}
        self._subs_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._published: collections.Counter = collections.Counter()
        self._dropped_by_sub: Dict[int, int] = {}
        self._last_price: Dict[str, Tick] = {}

    def load_previous_close(self, closes: Dict[str, float]) -> None:
        time.sleep(0.05)  # reading yesterday's closing prices
        with self._stats_lock:
            for symbol, price in closes.items():
                self._last_price.setdefault(
                    symbol, Tick(symbol, price, -1, 0.0))

    def subscribe(self, sub: Subscriber) -> None:
        with self._subs_lock:
            with self._stats_lock:
                snapshot = [t for s, t in self._last_price.items()
                            if s in sub.symbols]
            for tick in snapshot:
                sub.mailbox.put(tick)
            self._subs[sub.sub_id] = sub

    def unsubscribe(self, sub_id: int) -> None:
        with self._subs_lock:
            sub = self._subs.pop(sub_id, None)
            if sub is None:
                return
            with self._stats_lock:
                self._dropped_by_sub[sub_id] = sub.mailbox.dropped_count()
        sub.mailbox.close()

    def publish(self, tick: Tick) -> None:
        with self._stats_lock:
            self._published[tick.symbol] += 1
            self._last_price[tick.symbol] = tick
        for sub in self._subs.values():
            if tick.symbol in sub.symbols:
                sub.mailbox.put(tick)

    def stats_snapshot(self) -> dict:
        with self._stats_lock:
            published = dict(self._published)
            dropped = dict(self._dropped_by_sub)
            with self._subs_lock:
                active = len(self._subs)
        return {"published": published, "dropped": dropped, "active": active}


class MarketFeed(threading.Thread):
    """Random-walk price generator for a handful of symbols."""

    def __init__(self, name: str, hub: TickerHub, symbols, ticks: int,
                 seed: int):
        super().__init__(name=name)
        self.hub = hub
        self.symbols = list(symbols)
        self.ticks = ticks
        self._rng = random.Random(seed)
        self._prices = {s: PREV_CLOSE[s] for s in self.symbols}

    def run(self) -> None:
        for seq in range(self.ticks):
            for symbol in self.symbols:
                self._prices[symbol] *= 1 + self._rng.gauss(0, 0.001)
                self.hub.publish(Tick(symbol, self._prices[symbol], seq,
                                      time.time()))
            time.sleep(0.002)


def attach(hub: TickerHub, net: NetworkLoop, sub_id: int, symbols):
    sub = Subscriber(sub_id, symbols, net)
    client = ClientReader(sub)
    hub.subscribe(sub)
    sub.start()
    client.start()
    return sub, client


def main() -> None:
    net = NetworkLoop()
    net.start()
    hub = TickerHub()
    threading.Thread(target=hub.load_previous_close(PREV_CLOSE),
                     name="prime-cache", daemon=True).start()

    universe = list(PREV_CLOSE)
    sessions = {}
    for sub_id in range(4):
        sessions[sub_id] = attach(hub, net, sub_id, universe[sub_id:sub_id + 3])

    feeds = [MarketFeed("feed-a", hub, universe[:3], 150, seed=1),
             MarketFeed("feed-b", hub, universe[3:], 150, seed=2)]
    for feed in feeds:
        feed.start()

    time.sleep(0.1)
    for sub_id in (4, 5):  # late joiners
        sessions[sub_id] = attach(hub, net, sub_id, universe)
    time.sleep(0.1)
    hub.unsubscribe(1)  # a client disconnects mid-session

    for feed in feeds:
        feed.join()
    for sub_id in list(sessions):
        hub.unsubscribe(sub_id)
    for sub, _client in sessions.values():
        sub.join(timeout=2.0)
    net.stop()
    for _sub, client in sessions.values():
        client.join(timeout=3.0)

    stats = hub.stats_snapshot()
    print(f"published per symbol: {stats['published']}")
    print(f"frames written by loop: {net.frames_written}")
    for sub_id, (_sub, client) in sorted(sessions.items()):
        print(f"client {sub_id}: frames={client.frames} "
              f"out_of_order={client.out_of_order} "
              f"dropped={stats['dropped'].get(sub_id, 0)}")


if __name__ == "__main__":
    main()
