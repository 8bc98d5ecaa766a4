"""Museum timed-entry ticket kiosks.

Several kiosks sell tickets for timed entry slots concurrently.  A slot has
a fixed capacity; a sale reserves seats, charges the visitor's card on one
of a limited number of card terminals and hands the ticket to the receipt
printer queue.  A background writer persists receipts; a price service is
created lazily the first time any kiosk needs it.
"""
import functools
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from threading import RLock as _RLock

_price_service = None
_price_service_lock = threading.Lock()


class PriceService:
    BASE = {"adult": 18.0, "child": 9.0, "senior": 12.5}

    def __init__(self):
        self._lock = threading.Lock()
        self.lookups = 0

    def price(self, kind, slot_hour):
        with self._lock:
            self.lookups += 1
        surcharge = 2.0 if 11 <= slot_hour <= 14 else 0.0
        return self.BASE[kind] + surcharge


def get_price_service():
    global _price_service
    svc = _price_service
    if svc is None:
        with _price_service_lock:
            svc = _price_service
            if svc is None:
                svc = PriceService()
                _price_service = svc
    return svc


class SoldOut(Exception):
    pass


@dataclass
class Ticket:
    ticket_id: int
    kiosk: str
    slot_hour: int
    kinds: tuple
    total: float = 0.0
    issued: float = field(default_factory=time.monotonic)


class SlotInventory:
    """Seats per entry slot.  Uses an RLock because sell() calls remaining()."""

    def __init__(self, capacity_by_hour):
        self._lock = _RLock()
        self._remaining = dict(capacity_by_hour)
        self._sold = {h: 0 for h in capacity_by_hour}

    def remaining(self, hour):
        with self._lock:
            return self._remaining.get(hour, 0)

    def reserve(self, hour, seats):
        with self._lock:
            if self.remaining(hour) < seats:
                raise SoldOut(hour)
            self._remaining[hour] -= seats
            self._sold[hour] += seats

    def release(self, hour, seats):
        with self._lock:
            self._remaining[hour] += seats
            self._sold[hour] -= seats

    def snapshot(self):
        with self._lock:
            return dict(self._sold)


class Ledger:
    """Takings per kiosk."""

    def __init__(self):
        self._lock = threading.Lock()
        self.takings = {}
        self.count = 0

    def book(self, kiosk, amount):
        self._lock.acquire()
        try:
            self.takings[kiosk] = self.takings.get(kiosk, 0.0) + amount
            self.count += 1
        finally:
            self._lock.release()

    def totals(self):
        with self._lock:
            return dict(self.takings), self.count


class ReceiptWriter(threading.Thread):
    """Daemon writer; callers flush with close(), which joins the thread."""

    _STOP = object()

    def __init__(self, store):
        super().__init__(name="receipt-writer", daemon=True)
        self._q = queue.Queue()
        self._store = store

    def submit(self, ticket):
        self._q.put(ticket)

    def run(self):
        while True:
            item = self._q.get()
            try:
                if item is self._STOP:
                    return
                time.sleep(0.001)  # simulated disk write
                self._store.append(f"{item.ticket_id}:{item.kiosk}:{item.total:.2f}")
            finally:
                self._q.task_done()

    def close(self):
        self._q.join()
        self._q.put(self._STOP)
        self.join()


class PrinterSpool:
    """Bounded spool shared by all kiosks; a single printer thread drains it."""

    def __init__(self, size=4):
        self._cond = threading.Condition()
        self._jobs = []
        self._size = size
        self._closed = False
        self.printed = 0

    def put(self, ticket):
        with self._cond:
            while len(self._jobs) >= self._size and not self._closed:
                self._cond.wait()
            self._jobs.append(ticket)
            self._cond.notify_all()

    def get(self):
        with self._cond:
            while not self._jobs:
                if self._closed:
                    return None
                self._cond.wait(timeout=0.5)
            job = self._jobs.pop(0)
            self._cond.notify_all()
            return job

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def printer_loop(spool):
    while True:
        job = spool.get()
        if job is None:
            break
        time.sleep(0.001)
        with spool._cond:
            spool.printed += 1


class Kiosk:
    _ids_lock = threading.Lock()
    _next_id = 1

    def __init__(self, name, inventory, ledger, terminals, spool, writer):
        self.name = name
        self.inventory = inventory
        self.ledger = ledger
        self.terminals = terminals
        self.spool = spool
        self.writer = writer
        self.sold = 0
        self.refused = 0

    @classmethod
    def _new_ticket_id(cls):
        with cls._ids_lock:
            tid = cls._next_id
            cls._next_id += 1
        return tid

    def _charge(self, amount, rng):
        with self.terminals:
            time.sleep(0.002)  # card terminal round trip, no lock held
            return rng.random() > 0.05

    def sell(self, hour, kinds, rng):
        prices = get_price_service()
        total = sum(prices.price(k, hour) for k in kinds)
        try:
            self.inventory.reserve(hour, len(kinds))
        except SoldOut:
            self.refused += 1
            return None
        if not self._charge(total, rng):
            self.inventory.release(hour, len(kinds))
            self.refused += 1
            return None
        ticket = Ticket(self._new_ticket_id(), self.name, hour, tuple(kinds), total)
        self.ledger.book(self.name, total)
        self.spool.put(ticket)
        self.writer.submit(ticket)
        self.sold += 1
        return ticket


def kiosk_session(kiosk, visitors, seed):
    rng = random.Random(seed)
    for _ in range(visitors):
        hour = rng.choice([10, 11, 12, 13, 14, 15])
        party = [rng.choice(["adult", "child", "senior"])
                 for _ in range(rng.randint(1, 4))]
        kiosk.sell(hour, party, rng)
        time.sleep(rng.random() * 0.002)


def main():
    inventory = SlotInventory({h: 30 for h in range(10, 16)})
    ledger = Ledger()
    terminals = threading.BoundedSemaphore(2)
    spool = PrinterSpool()
    store = []
    writer = ReceiptWriter(store)
    writer.start()
    printer = threading.Thread(target=printer_loop, args=(spool,), name="printer")
    printer.start()

    kiosks = [Kiosk(f"kiosk-{i}", inventory, ledger, terminals, spool, writer)
              for i in range(4)]
    threads = []
    for i, kiosk in enumerate(kiosks):
        t = threading.Thread(target=functools.partial(kiosk_session, kiosk, 40),
                             kwargs={"seed": i}, name=kiosk.name)
        threads.append(t)
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    spool.close()
    printer.join()
    writer.close()

    takings, count = ledger.totals()
    sold_seats = inventory.snapshot()
    print(f"tickets={count} printed={spool.printed} receipts={len(store)}")
    print("seats sold per slot:", sold_seats)
    print("per kiosk:", {k.name: (k.sold, k.refused) for k in kiosks})
    print(f"takings={sum(takings.values()):.2f} "
          f"price lookups={get_price_service().lookups}")


if __name__ == "__main__":
    main()
