"""Ride-hailing dispatch simulator.

Drivers report positions, riders submit trip requests, and a pool of
dispatcher workers matches each request to the nearest free driver.
Completed trips are settled into a fare ledger.
"""
from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class Driver:
    driver_id: str
    x: float
    y: float
    available: bool = True
    trips: int = 0


@dataclass
class TripRequest:
    rider_id: str
    x: float
    y: float
    dest_x: float
    dest_y: float
    promo: Optional[str] = None
    assigned_to: Optional[str] = None


@dataclass
class FareLedger:
    totals: Dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def credit(self, driver_id: str, amount: float) -> None:
        with self.lock:
            self.totals[driver_id] = self.totals.get(driver_id, 0.0) + amount

    def snapshot(self) -> Dict[str, float]:
        with self.lock:
            return dict(self.totals)


PROMO_LIMITS = {"WELCOME5": 10, "RAINYDAY": 5}
_promo_uses: Dict[str, int] = {}


def redeem_promo(code: str) -> bool:
    """Consume one use of a promo code; False once it is exhausted."""
    guard = threading.Lock()
    with guard:
        used = _promo_uses.get(code, 0)
        if used >= PROMO_LIMITS.get(code, 0):
            return False
        _promo_uses[code] = used + 1
        return True


class DriverRegistry:
    """Tracks driver location and availability."""

    def __init__(self) -> None:
        self._drivers: Dict[str, Driver] = {}
        self._lock = threading.Lock()

    def register(self, driver: Driver) -> None:
        with self._lock:
            self._drivers[driver.driver_id] = driver

    def update_position(self, driver_id: str, x: float, y: float) -> None:
        with self._lock:
            d = self._drivers.get(driver_id)
            if d is not None:
                d.x, d.y = x, y

    def nearest_available(self, x: float, y: float) -> Optional[Driver]:
        with self._lock:
            best, best_dist = None, math.inf
            for d in self._drivers.values():
                if not d.available:
                    continue
                dist = math.hypot(d.x - x, d.y - y)
                if dist < best_dist:
                    best, best_dist = d, dist
            return best

    def mark_busy(self, driver_id: str) -> None:
        with self._lock:
            self._drivers[driver_id].available = False

    def release(self, driver_id: str) -> None:
        with self._lock:
            d = self._drivers[driver_id]
            d.available = True
            d.trips += 1

    def all_drivers(self) -> List[Driver]:
        with self._lock:
            return list(self._drivers.values())


class RequestBoard:
    """Pending trip requests; dispatchers block until one shows up."""

    def __init__(self) -> None:
        self._pending: List[TripRequest] = []
        self._cond = threading.Condition()
        self._closed = False

    def post(self, req: TripRequest) -> None:
        with self._cond:
            self._pending.append(req)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self) -> Optional[TripRequest]:
        with self._cond:
            if not self._pending and not self._closed:
                self._cond.wait()
            if self._pending:
                return self._pending.pop(0)
            return None


class SurgeMonitor:
    """Keeps per-zone demand counters used to compute surge multipliers."""

    def __init__(self) -> None:
        self.zone_lock = threading.Lock()
        self.config_lock = threading.Lock()
        self.demand: Dict[int, int] = {}
        self.base_multiplier = 1.0

    @staticmethod
    def zone_of(x: float, y: float) -> int:
        return int(x // 25) * 10 + int(y // 25)

    def record_request(self, x: float, y: float) -> float:
        zone = self.zone_of(x, y)
        with self.zone_lock:
            self.demand[zone] = self.demand.get(zone, 0) + 1
            with self.config_lock:
                return self.base_multiplier * (1.0 + 0.05 * self.demand[zone])

    def retune(self, factor: float) -> None:
        with self.config_lock:
            self.base_multiplier = max(1.0, self.base_multiplier * factor)
            with self.zone_lock:
                for zone in self.demand:
                    self.demand[zone] = max(0, self.demand[zone] - 1)


class Dispatcher(threading.Thread):
    def __init__(self, name: str, board: RequestBoard, registry: DriverRegistry,
                 ledger: FareLedger, surge: SurgeMonitor) -> None:
        super().__init__(name=name)
        self.board = board
        self.registry = registry
        self.ledger = ledger
        self.surge = surge
        self.matched = 0
        self.unmatched: List[str] = []

    def run(self) -> None:
        while True:
            req = self.board.take()
            if req is None:
                return
            self.handle(req)

    def handle(self, req: TripRequest) -> None:
        multiplier = self.surge.record_request(req.x, req.y)
        driver = self.registry.nearest_available(req.x, req.y)
        if driver is None:
            self.unmatched.append(req.rider_id)
            return
        self.registry.mark_busy(driver.driver_id)
        req.assigned_to = driver.driver_id
        self.matched += 1
        distance = math.hypot(req.dest_x - req.x, req.dest_y - req.y)
        fare = round((2.5 + 0.9 * distance) * multiplier, 2)
        if req.promo and redeem_promo(req.promo):
            fare = max(0.0, fare - 5.0)
        time.sleep(0.002)  # simulated drive
        self.ledger.credit(driver.driver_id, fare)
        self.registry.release(driver.driver_id)


def simulate_gps(registry: DriverRegistry, drivers: List[Driver], stop: threading.Event) -> None:
    rng = random.Random(7)
    while not stop.is_set():
        for d in drivers:
            registry.update_position(d.driver_id, d.x + rng.uniform(-1, 1), d.y + rng.uniform(-1, 1))
        time.sleep(0.005)


def run_surge_retuner(surge: SurgeMonitor, stop: threading.Event) -> None:
    while not stop.wait(0.01):
        surge.retune(0.98)


def notify_riders(requests: List[TripRequest]) -> List[threading.Thread]:
    """Push a notification for each matched rider from its own thread."""
    sent: List[str] = []
    sent_lock = threading.Lock()
    threads = []
    for req in requests:
        def push():
            msg = f"rider {req.rider_id}: driver {req.assigned_to} is on the way"
            with sent_lock:
                sent.append(msg)
        t = threading.Thread(target=push, name=f"notify-{req.rider_id}")
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    return threads


def compute_daily_report(ledger: FareLedger, out: Dict[str, float]) -> None:
    snap = ledger.snapshot()
    out["total"] = round(sum(snap.values()), 2)
    out["drivers_paid"] = len(snap)


def main() -> None:
    rng = random.Random(42)
    registry = DriverRegistry()
    ledger = FareLedger()
    surge = SurgeMonitor()
    board = RequestBoard()

    drivers = [Driver(f"D{i:02d}", rng.uniform(0, 100), rng.uniform(0, 100)) for i in range(8)]
    for d in drivers:
        registry.register(d)

    stop = threading.Event()
    gps = threading.Thread(target=simulate_gps, args=(registry, drivers, stop), daemon=True)
    retuner = threading.Thread(target=run_surge_retuner, args=(surge, stop), daemon=True)
    gps.start()
    retuner.start()

    dispatchers = [Dispatcher(f"dispatch-{i}", board, registry, ledger, surge) for i in range(4)]
    for disp in dispatchers:
        disp.start()

    requests = []
    for i in range(60):
        req = TripRequest(f"R{i:03d}", rng.uniform(0, 100), rng.uniform(0, 100),
                          rng.uniform(0, 100), rng.uniform(0, 100),
                          promo=rng.choice([None, None, "WELCOME5", "RAINYDAY"]))
        requests.append(req)
        board.post(req)
        time.sleep(0.001)

    board.close()
    for disp in dispatchers:
        disp.join()

    stop.set()
    gps.join()
    retuner.join()

    notify_riders([r for r in requests if r.assigned_to])

    report: Dict[str, float] = {}
    reporter = threading.Thread(target=compute_daily_report, args=(ledger, report))
    reporter.start()
    print(f"paid out {report.get('total', 0.0)} to {report.get('drivers_paid', 0)} drivers")

    matched = sum(d.matched for d in dispatchers)
    unmatched = sum(len(d.unmatched) for d in dispatchers)
    print(f"matched={matched} unmatched={unmatched} promos={_promo_uses}")
    for d in registry.all_drivers():
        print(f"  {d.driver_id}: trips={d.trips}")
    reporter.join()


if __name__ == "__main__":
    main()
