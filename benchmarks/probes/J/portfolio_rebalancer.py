"""Stock portfolio rebalancer.

A price feed thread streams quotes into a shared cache; a rebalancer
periodically compares current weights with target weights and sends
orders to a (simulated) broker through a thread pool, throttled to a
fixed number of in-flight orders.
"""
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

TARGET_WEIGHTS = {"AAPL": 0.25, "MSFT": 0.25, "GOOG": 0.2, "AMZN": 0.15, "TLT": 0.15}
START_PRICES = {"AAPL": 190.0, "MSFT": 410.0, "GOOG": 170.0, "AMZN": 180.0, "TLT": 92.0}
MAX_IN_FLIGHT = 3
REBALANCE_BAND = 0.02
HARD_DRIFT_LIMIT = 0.40


class QuoteCache:
    """Latest price per symbol."""

    def __init__(self, initial):
        self._prices = dict(initial)
        self._lock = threading.Lock()

    def update(self, symbol, price):
        with self._lock:
            self._prices[symbol] = price

    def get(self, symbol):
        with self._lock:
            return self._prices[symbol]

    def snapshot(self):
        with self._lock:
            return dict(self._prices)


_cache = None
_cache_lock = threading.Lock()


def get_quote_cache():
    global _cache
    if _cache is None:
        with _cache_lock:
            _cache = QuoteCache(START_PRICES)
    return _cache


@dataclass
class Order:
    symbol: str
    qty: int
    limit: float
    status: str = "new"


class Broker:
    """Simulated broker with a little latency and occasional rejects."""

    def __init__(self, seed=3):
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self.fills = []
        self._fills_lock = threading.Lock()

    def send(self, order):
        with self._rng_lock:
            latency = self._rng.uniform(0.001, 0.006)
            reject = self._rng.random() < 0.08
        time.sleep(latency)
        if reject:
            raise RuntimeError(f"broker rejected {order.symbol} x{order.qty}")
        order.status = "filled"
        with self._fills_lock:
            self.fills.append(order)
        return order


class Portfolio:
    def __init__(self, cash, holdings):
        self.cash = cash
        self.holdings = dict(holdings)
        self._lock = threading.Lock()
        self.open_orders = []
        self._orders_lock = threading.Lock()

    def available_cash(self):
        with self._lock:
            return self.cash

    def market_value(self, prices):
        with self._lock:
            return self.cash + sum(q * prices[s] for s, q in self.holdings.items())

    def weights(self, prices):
        with self._lock:
            total = self.cash + sum(q * prices[s] for s, q in self.holdings.items())
            return {s: q * prices[s] / total for s, q in self.holdings.items()}

    def apply_fill(self, order):
        self._lock.acquire()
        cost = order.qty * order.limit
        if cost > self.cash:
            raise ValueError(f"insufficient cash for {order.symbol}")
        self.cash -= cost
        self.holdings[order.symbol] = self.holdings.get(order.symbol, 0) + order.qty
        self._lock.release()

    def liquidate(self, symbol, price):
        with self._lock:
            qty = self.holdings.get(symbol, 0)
            self.holdings[symbol] = 0
            self.cash += qty * price

    def check_limits(self, prices):
        with self._lock:
            total = self.cash + sum(q * prices[s] for s, q in self.holdings.items())
            for symbol, qty in self.holdings.items():
                if qty * prices[symbol] / total > HARD_DRIFT_LIMIT:
                    self.liquidate(symbol, prices[symbol])

    def track(self, order):
        with self._orders_lock:
            self.open_orders.append(order)

    def untrack(self, order):
        with self._orders_lock:
            if order in self.open_orders:
                self.open_orders.remove(order)

    def pending_notional(self):
        total = 0.0
        for order in self.open_orders:
            total += abs(order.qty) * order.limit
        return total


_throttle = threading.Semaphore(MAX_IN_FLIGHT)


def submit_order(portfolio, broker, order):
    acquired = _throttle.acquire(timeout=0.05)
    try:
        if not acquired:
            order.status = "throttled"
            return order
        portfolio.track(order)
        filled = broker.send(order)
        portfolio.apply_fill(filled)
        return filled
    finally:
        portfolio.untrack(order)
        _throttle.release()


def price_feed(stop, seed=11):
    rng = random.Random(seed)
    cache = get_quote_cache()
    while not stop.is_set():
        for symbol in START_PRICES:
            last = cache.get(symbol)
            cache.update(symbol, round(last * (1 + rng.gauss(0, 0.004)), 2))
        time.sleep(0.002)


def plan_orders(portfolio, prices):
    total = portfolio.market_value(prices)
    current = portfolio.weights(prices)
    orders = []
    for symbol, target in TARGET_WEIGHTS.items():
        drift = target - current.get(symbol, 0.0)
        if abs(drift) < REBALANCE_BAND:
            continue
        qty = int(drift * total / prices[symbol])
        if qty > 0:
            orders.append(Order(symbol, qty, prices[symbol]))
    budget = 0.9 * portfolio.available_cash()
    wanted = sum(o.qty * o.limit for o in orders)
    if wanted > budget:
        scale = budget / wanted
        orders = [Order(o.symbol, int(o.qty * scale), o.limit) for o in orders if int(o.qty * scale) > 0]
    return orders


def audit_log(pool, portfolio, round_no):
    prices = get_quote_cache().snapshot()
    value = portfolio.market_value(prices)
    print(f"[round {round_no}] value={value:,.0f} pending={portfolio.pending_notional():,.0f}")


def rebalance_loop(portfolio, broker, rounds=6):
    results = []
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="orders") as pool:
        for round_no in range(rounds):
            prices = get_quote_cache().snapshot()
            portfolio.check_limits(prices)
            orders = plan_orders(portfolio, prices)
            futures = [pool.submit(submit_order, portfolio, broker, o) for o in orders]
            pool.submit(audit_log, pool, portfolio, round_no)
            done, _ = wait(futures, timeout=2.0)
            for fut in done:
                exc = fut.exception()
                if exc is not None:
                    results.append(("error", str(exc)))
                else:
                    results.append((fut.result().status, fut.result().symbol))
            time.sleep(0.02)
    return results


def main():
    stop = threading.Event()
    feed = threading.Thread(target=price_feed, args=(stop,), name="price-feed")
    feed.start()

    portfolio = Portfolio(cash=250_000.0, holdings={"AAPL": 200, "MSFT": 60, "GOOG": 10, "AMZN": 0, "TLT": 0})
    broker = Broker()
    results = rebalance_loop(portfolio, broker)

    stop.set()
    feed.join()

    prices = get_quote_cache().snapshot()
    print(f"final value: {portfolio.market_value(prices):,.2f}  cash: {portfolio.cash:,.2f}")
    for symbol, w in sorted(portfolio.weights(prices).items()):
        print(f"  {symbol}: {w:.3f} (target {TARGET_WEIGHTS[symbol]:.2f})")
    statuses = {}
    for status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    print(f"order outcomes: {statuses}, fills={len(broker.fills)}")


if __name__ == "__main__":
    main()
