"""Limit-order matching engine: per-symbol books, risk limits, cash reservation."""
import heapq
import queue
import random
import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Dict, List, Optional, Tuple

class Side(Enum):
    BUY = "B"
    SELL = "S"


class RiskRejected(Exception):
    """Order refused by a pre-trade check."""


@dataclass(order=True)
class Order:
    sort_key: Tuple[float, int] = field(init=False, repr=False)
    order_id: int = field(compare=False)
    account: str = field(compare=False)
    symbol: str = field(compare=False)
    side: Side = field(compare=False)
    price: float = field(compare=False)
    qty: int = field(compare=False)

    def __post_init__(self) -> None:
        key_price = -self.price if self.side is Side.BUY else self.price
        self.sort_key = (key_price, self.order_id)


@dataclass(frozen=True)
class Fill:
    symbol: str
    buyer: str
    seller: str
    price: float
    qty: int
    buy_limit: float


class Account:
    def __init__(self, name: str, cash: float) -> None:
        self.name = name
        self.cash = cash
        self.reserved = 0.0
        self.positions: Dict[str, int] = {}
        self.lock = threading.Lock()

    def available(self) -> float:
        with self.lock:
            return self.cash - self.reserved

    def reserve(self, amount: float) -> None:
        with self.lock:
            if self.cash - self.reserved >= amount:
                self.reserved += amount
                return
            raise RiskRejected(f"{self.name}: need {amount:.2f}, available {self.available():.2f}")

    def settle(self, fill: Fill, buying: bool) -> None:
        sign = 1 if buying else -1
        with self.lock:
            if buying:
                self.reserved -= fill.buy_limit * fill.qty
            self.cash -= sign * fill.price * fill.qty
            self.positions[fill.symbol] = self.positions.get(fill.symbol, 0) + sign * fill.qty


class OrderBook:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: List[Order] = []
        self.asks: List[Order] = []
        self.orders: Dict[int, Order] = {}
        self.lock = threading.Lock()

    def match(self, incoming: Order) -> List[Fill]:
        """Match against the opposite side; caller must hold self.lock."""
        fills: List[Fill] = []
        buying = incoming.side is Side.BUY
        opposite = self.asks if buying else self.bids
        while incoming.qty > 0 and opposite:
            best = opposite[0]
            if (buying and best.price > incoming.price) or (not buying and best.price < incoming.price):
                break
            qty = min(incoming.qty, best.qty)
            buy, sell = (incoming, best) if buying else (best, incoming)
            fills.append(Fill(self.symbol, buy.account, sell.account, best.price, qty, buy.price))
            incoming.qty -= qty
            best.qty -= qty
            if best.qty == 0:
                heapq.heappop(opposite)
                del self.orders[best.order_id]
        if incoming.qty > 0:
            heapq.heappush(self.bids if buying else self.asks, incoming)
            self.orders[incoming.order_id] = incoming
        return fills


class RiskChecker:
    def __init__(self, max_notional: float, max_order_qty: int) -> None:
        self.max_notional = max_notional
        self.max_order_qty = max_order_qty
        self._exposure: Dict[Tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def check(self, order: Order) -> None:
        if not 0 < order.qty <= self.max_order_qty:
            raise RiskRejected(f"order {order.order_id}: bad quantity {order.qty}")
        key = (order.account, order.symbol)
        notional = order.price * order.qty
        self._lock.acquire()
        current = self._exposure.get(key, 0.0)
        if current + notional > self.max_notional:
            raise RiskRejected(f"{key}: exposure {current + notional:.0f} > {self.max_notional:.0f}")
        self._exposure[key] = current + notional
        self._lock.release()

    def unwind(self, order: Order, qty: int) -> None:
        with self._lock:
            key = (order.account, order.symbol)
            self._exposure[key] = max(0.0, self._exposure.get(key, 0.0) - order.price * qty)


class MatchingEngine:
    def __init__(self, accounts: Dict[str, Account], risk: RiskChecker,
                 on_fill: Callable[[Fill], None]) -> None:
        self.accounts = accounts
        self.risk = risk
        self.on_fill = on_fill
        self.books: Dict[str, OrderBook] = {}
        self._books_lock = threading.Lock()
        self._id_lock = threading.Lock()
        self._next_id = 1

    def _new_id(self) -> int:
        with self._id_lock:
            oid = self._next_id
            self._next_id += 1
        return oid

    def book(self, symbol: str) -> OrderBook:
        if symbol not in self.books:
            self.books[symbol] = OrderBook(symbol)
        return self.books[symbol]

    def quotes(self) -> Dict[str, Tuple[Optional[float], Optional[float]]]:
        with self._books_lock:
            books = list(self.books.values())
        out = {}
        for b in books:
            with b.lock:
                out[b.symbol] = (b.bids[0].price if b.bids else None, b.asks[0].price if b.asks else None)
        return out

    def submit(self, account: str, symbol: str, side: Side, price: float, qty: int) -> int:
        order = Order(self._new_id(), account, symbol, side, price, qty)
        self.risk.check(order)
        acct = self.accounts[account]
        book = self.book(symbol)
        try:
            with book.lock:
                if side is Side.BUY:
                    acct.reserve(price * qty)
                fills = book.match(order)
        except RiskRejected:
            self.risk.unwind(order, qty)
            raise
        for fill in fills:
            self.accounts[fill.buyer].settle(fill, buying=True)
            self.accounts[fill.seller].settle(fill, buying=False)
            self.on_fill(fill)
        return order.order_id

    def cancel(self, account: str, symbol: str, order_id: int) -> bool:
        acct = self.accounts[account]
        book = self.book(symbol)
        with acct.lock:
            with book.lock:
                order = book.orders.get(order_id)
                if order is None or order.account != account:
                    return False
                resting = book.bids if order.side is Side.BUY else book.asks
                resting.remove(order)
                heapq.heapify(resting)
                del book.orders[order_id]
            if order.side is Side.BUY:
                acct.reserved -= order.price * order.qty
        self.risk.unwind(order, order.qty)
        return True


class Gateway:
    def __init__(self, engine: MatchingEngine, inbox: "queue.Queue", name: str) -> None:
        self.engine = engine
        self.inbox = inbox
        self.rejects = 0
        self.live: List[Tuple[str, str, int]] = []
        self.thread = threading.Thread(target=self._run, name=name)

    def _run(self) -> None:
        while True:
            cmd = self.inbox.get()
            if cmd is None:
                return
            kind, account, symbol, *rest = cmd
            try:
                if kind == "new":
                    self.live.append((account, symbol, self.engine.submit(account, symbol, *rest)))
                elif kind == "cancel" and self.live:
                    self.engine.cancel(*self.live.pop(0))
            except RiskRejected:
                self.rejects += 1


def main() -> None:
    accounts = {f"acct{i}": Account(f"acct{i}", 1_000_000.0) for i in range(8)}
    trades: List[Fill] = []
    trades_lock = threading.Lock()

    def record(fill: Fill) -> None:
        with trades_lock:
            trades.append(fill)

    engine = MatchingEngine(accounts, RiskChecker(250_000.0, 500), on_fill=record)
    inbox: "queue.Queue" = queue.Queue(maxsize=1000)
    gateways = [Gateway(engine, inbox, f"gw-{i}") for i in range(4)]
    for gw in gateways:
        gw.thread.start()
    rng = random.Random(7)
    for _ in range(20_000):
        acct, sym = rng.choice(list(accounts)), rng.choice(["ACME", "GLOBX", "INITECH"])
        if rng.random() < 0.15:
            inbox.put(("cancel", acct, sym))
        else:
            side = rng.choice([Side.BUY, Side.SELL])
            inbox.put(("new", acct, sym, side, round(100 + rng.gauss(0, 2), 2), rng.randint(1, 200)))
    for gw in gateways:
        inbox.put(None)
    for gw in gateways:
        gw.thread.join()
    print(f"{len(trades)} trades, {sum(gw.rejects for gw in gateways)} rejects")
    print(engine.quotes())


if __name__ == "__main__":
    main()
