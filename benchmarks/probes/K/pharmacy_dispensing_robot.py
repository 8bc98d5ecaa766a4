"""Hospital pharmacy dispensing robot controller.

Ward terminals submit medication orders into a priority queue.  Each robot
arm runs in its own thread: it takes the next order, moves to the drug
drawer, picks the requested quantity from the secure cabinet and hands the
tray to the conveyor.  Movements of controlled substances are booked in a
ledger that a reconciler periodically checks against the physical cabinet
counts.  Every event is written to an audit trail by a background writer.
"""
import itertools
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from threading import Lock as _Lock

CONTROLLED = frozenset({"morphine", "fentanyl", "oxycodone", "midazolam"})

OPENING_STOCK = {
    "morphine": 400,
    "fentanyl": 250,
    "oxycodone": 300,
    "midazolam": 200,
    "paracetamol": 2000,
    "amoxicillin": 900,
    "heparin": 500,
}

_stats_lock = _Lock()
_stats = {"dispensed": 0, "failed": 0, "units": 0}


def _bump(key, amount=1):
    with _stats_lock:
        _stats[key] += amount


def stats_snapshot():
    with _stats_lock:
        return dict(_stats)


class OutOfStock(Exception):
    def __init__(self, drug, have, wanted):
        super().__init__(f"{drug}: have {have}, wanted {wanted}")
        self.drug = drug


@dataclass
class Order:
    order_id: int
    ward: str
    drug: str
    qty: int
    priority: int = 5
    created: float = field(default_factory=time.monotonic)


class AuditLogger(threading.Thread):
    """Background writer that batches audit records to the audit sink."""

    def __init__(self, sink):
        super().__init__(name="audit-writer", daemon=True)
        self._sink = sink
        self._pending = deque()
        self._lock = _Lock()
        self._wake = threading.Event()

    def log(self, kind, **details):
        record = (time.time(), kind, details)
        with self._lock:
            self._pending.append(record)
        self._wake.set()

    def run(self):
        while True:
            self._wake.wait(0.2)
            self._wake.clear()
            with self._lock:
                batch = list(self._pending)
                self._pending.clear()
            for record in batch:
                self._sink.append(self._format(record))
                time.sleep(0.002)  # simulated write to the audit store

    @staticmethod
    def _format(record):
        ts, kind, details = record
        body = " ".join(f"{k}={v}" for k, v in sorted(details.items()))
        return f"{ts:.3f} {kind} {body}"


class OrderQueue:
    """Priority queue of pending orders shared by all robot arms."""

    def __init__(self):
        self._cond = threading.Condition()
        self._orders = []
        self._closed = False

    def submit(self, order):
        with self._cond:
            self._orders.append(order)
            self._orders.sort(key=lambda o: (o.priority, o.created))
            self._cond.notify()

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self):
        with self._cond:
            if not self._orders and not self._closed:
                self._cond.wait()
            if not self._orders:
                return None
            return self._orders.pop(0)

    def pending(self):
        with self._cond:
            return len(self._orders)


class Cabinet:
    """Secure cabinet; one drawer per drug, one lock for the stock table."""

    def __init__(self, stock):
        self.lock = threading.Lock()
        self._stock = dict(stock)
        self._drawers = {drug: threading.Lock() for drug in stock}

    def drawer(self, drug):
        return self._drawers[drug]

    def count(self, drug):
        with self.lock:
            return self._stock.get(drug, 0)

    def remove(self, drug, qty, on_removed=None):
        with self.lock:
            have = self._stock.get(drug, 0)
            if have < qty:
                raise OutOfStock(drug, have, qty)
            self._stock[drug] = have - qty
            if on_removed is not None:
                on_removed(drug, qty)
            return self._stock[drug]


class Ledger:
    """Book of controlled-substance movements."""

    def __init__(self, cabinet, audit):
        self._lock = threading.Lock()
        self._cabinet = cabinet
        self._audit = audit
        self._balance = {d: cabinet.count(d) for d in sorted(CONTROLLED)}
        self._entries = []

    def record_dispense(self, order, arm_name):
        with self._lock:
            self._balance[order.drug] -= order.qty
            self._entries.append(("DISPENSE", order.order_id, order.drug,
                                  order.qty, arm_name))
        self._audit.log("ledger", op="dispense", order=order.order_id,
                        drug=order.drug, qty=order.qty, arm=arm_name)

    def record_adjustment(self, drug, delta, reason):
        with self._lock:
            self._balance[drug] += delta
            self._entries.append(("ADJUST", None, drug, delta, reason))
        self._audit.log("ledger", op="adjust", drug=drug, delta=delta,
                        reason=reason)

    def reconcile(self):
        """Compare book balances with the physical cabinet counts."""
        discrepancies = {}
        with self._lock:
            for drug, expected in self._balance.items():
                actual = self._cabinet.count(drug)
                if actual != expected:
                    discrepancies[drug] = actual - expected
                    self.record_adjustment(drug, actual - expected,
                                           "reconcile")
        return discrepancies

    def entries(self):
        with self._lock:
            return list(self._entries)


class RobotArm(threading.Thread):
    def __init__(self, name, orders, cabinet, ledger, audit, speed=0.004):
        super().__init__(name=name)
        self.orders = orders
        self.cabinet = cabinet
        self.ledger = ledger
        self.audit = audit
        self.speed = speed
        self.handled = 0

    def _move_to(self, drug):
        time.sleep(self.speed * (1 + len(drug) % 3))

    def _dispense(self, order):
        drawer = self.cabinet.drawer(order.drug)
        drawer.acquire()
        self._move_to(order.drug)
        if order.drug in CONTROLLED:
            hook = lambda d, q: self.ledger.record_dispense(order, self.name)
        else:
            hook = None
        left = self.cabinet.remove(order.drug, order.qty, on_removed=hook)
        drawer.release()
        return left

    def _finish(self, order, left):
        self.handled += 1
        _bump("dispensed")
        _stats["units"] = _stats["units"] + order.qty
        self.audit.log("dispense", order=order.order_id, ward=order.ward,
                       drug=order.drug, qty=order.qty, left=left,
                       arm=self.name)

    def run(self):
        while True:
            order = self.orders.take()
            if order is None:
                break
            try:
                left = self._dispense(order)
            except OutOfStock as exc:
                _bump("failed")
                self.audit.log("failed", order=order.order_id, reason=exc)
                continue
            self._finish(order, left)


def periodic_reconcile(ledger, audit, stop, interval=0.05):
    while not stop.wait(interval):
        diff = ledger.reconcile()
        audit.log("reconcile", discrepancies=len(diff))


def generate_orders(n, seed=11):
    rng = random.Random(seed)
    wards = ["ICU", "ER", "Oncology", "Surgery", "Paediatrics"]
    drugs = sorted(OPENING_STOCK)
    ids = itertools.count(1000)
    for _ in range(n):
        drug = rng.choice(drugs)
        qty = rng.randint(1, 6)
        prio = 1 if drug in CONTROLLED else rng.randint(2, 9)
        yield Order(next(ids), rng.choice(wards), drug, qty, prio)


def main():
    sink = []
    audit = AuditLogger(sink)
    audit.start()

    cabinet = Cabinet(OPENING_STOCK)
    ledger = Ledger(cabinet, audit)
    orders = OrderQueue()
    arms = [RobotArm(f"arm-{i}", orders, cabinet, ledger, audit)
            for i in range(3)]
    for arm in arms:
        arm.start()

    stop = threading.Event()
    reconciler = threading.Thread(target=periodic_reconcile,
                                  args=(ledger, audit, stop),
                                  name="reconciler")
    reconciler.start()

    for order in generate_orders(60):
        orders.submit(order)
        time.sleep(0.003)
    orders.close()

    for arm in arms:
        arm.join()
    stop.set()
    reconciler.join()

    final = ledger.reconcile()
    snap = stats_snapshot()
    print(f"dispensed={snap['dispensed']} failed={snap['failed']} "
          f"units={snap['units']} left_in_queue={orders.pending()}")
    print("per arm:", {a.name: a.handled for a in arms})
    print(f"ledger entries={len(ledger.entries())} discrepancies={final}")
    audit.log("shutdown", arms=len(arms))
    print(f"audit records written: {len(sink)}")


if __name__ == "__main__":
    main()
