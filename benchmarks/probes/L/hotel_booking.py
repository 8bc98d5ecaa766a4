"""Booking engine for a 60-room city hotel.

Room inventory is tracked per night and room type.  A limited amount of
overbooking is allowed per room type (historic no-show rate).  Payments
are authorised by an external gateway which answers asynchronously; a
dedicated thread applies the payment callbacks.  Every "night" an audit
thread reconciles inventory against confirmed bookings.
"""

import datetime as dt
import os
import queue
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import List

ROOM_TYPES = {"single": 20, "double": 30, "suite": 10}
OVERBOOK_LIMIT = {"single": 2, "double": 3, "suite": 0}

_inventory = {}             # (night, room_type) -> rooms still sellable
_inventory_lock = threading.Lock()
_overbook_used = {rt: 0 for rt in ROOM_TYPES}

_bookings = {}
_bookings_lock = threading.RLock()

_audit_log_q = queue.Queue()


@dataclass
class Booking:
    booking_id: str
    guest: str
    room_type: str
    nights: List[dt.date]
    amount: float
    status: str = "pending"
    overbooked: bool = False
    history: List[str] = field(default_factory=list)


def _night_key(night, room_type):
    if room_type not in ROOM_TYPES:
        raise ValueError(f"unknown room type {room_type}")
    if not isinstance(night, dt.date):
        raise TypeError("night must be a date")
    return (night, room_type)


def open_inventory(start, days):
    with _inventory_lock:
        for d in range(days):
            night = start + dt.timedelta(days=d)
            for rt, count in ROOM_TYPES.items():
                _inventory[(night, rt)] = count


def audit(msg):
    _audit_log_q.put(f"{time.time():.3f} {msg}\n")


def _log_writer(path):
    with open(path, "a", buffering=64 * 1024) as fh:
        while True:
            fh.write(_audit_log_q.get())


# --------------------------------------------------------------------------
# inventory
# --------------------------------------------------------------------------

def _reserve_overbook_slot(room_type):
    with threading.Lock():
        used = _overbook_used[room_type]
        if used >= OVERBOOK_LIMIT[room_type]:
            return False
        _overbook_used[room_type] = used + 1
        return True


def reserve(booking):
    """Take one room per night out of inventory; returns False if sold out."""
    _inventory_lock.acquire()
    keys = [_night_key(n, booking.room_type) for n in booking.nights]
    short = [k for k in keys if _inventory[k] <= 0]
    if not short:
        for k in keys:
            _inventory[k] -= 1
    _inventory_lock.release()
    if not short:
        return True

    # sold out on at least one night: fall back to the overbooking allowance
    if not _reserve_overbook_slot(booking.room_type):
        return False
    with _inventory_lock:
        for k in keys:
            _inventory[k] -= 1
    booking.overbooked = True
    return True


def release(booking):
    with _inventory_lock:
        for n in booking.nights:
            _inventory[(n, booking.room_type)] += 1


# --------------------------------------------------------------------------
# payments
# --------------------------------------------------------------------------

class PaymentGateway:
    def __init__(self, callbacks, max_in_flight=4, decline_rate=0.1, seed=3):
        self._slots = threading.Semaphore(max_in_flight)
        self._callbacks = callbacks
        self._rnd = random.Random(seed)
        self._lock = threading.Lock()
        self.declined_busy = 0

    def _deliver(self, booking_id, approved):
        time.sleep(0.005)
        self._callbacks.put((booking_id, approved))

    def charge(self, booking):
        acquired = self._slots.acquire(timeout=0.05)
        try:
            if not acquired:
                with self._lock:
                    self.declined_busy += 1
                self._callbacks.put((booking.booking_id, False))
                return
            with self._lock:
                approved = self._rnd.random() > 0.1
            threading.Thread(target=self._deliver(booking.booking_id, approved),
                             daemon=True).start()
        finally:
            self._slots.release()


def payment_callback_loop(callbacks, stop):
    while not stop.is_set() or not callbacks.empty():
        try:
            booking_id, approved = callbacks.get(timeout=0.05)
        except queue.Empty:
            continue
        with _bookings_lock:
            booking = _bookings[booking_id]
            booking.status = "confirmed" if approved else "payment_failed"
            booking.history.append(booking.status)
        if not approved:
            release(booking)
        audit(f"payment {booking_id} approved={approved}")
        callbacks.task_done()


# --------------------------------------------------------------------------
# night audit
# --------------------------------------------------------------------------

class NightAuditor(threading.Thread):
    def __init__(self, nights):
        super().__init__(name="night-audit")
        self.nights = nights
        self.report = {}

    def run(self):
        for night in self.nights:
            with _inventory_lock:
                left = {rt: _inventory[(night, rt)] for rt in ROOM_TYPES}
            with _bookings_lock:
                sold = sum(1 for b in _bookings.values()
                           if night in b.nights and b.status == "confirmed")
            self.report[night.isoformat()] = {"left": left, "confirmed": sold}
            time.sleep(0.01)
        audit(f"night audit done for {len(self.nights)} nights")


# --------------------------------------------------------------------------
# request handling
# --------------------------------------------------------------------------

def handle_request(gateway, req_no, rnd):
    start = dt.date(2024, 6, 1) + dt.timedelta(days=rnd.randrange(0, 10))
    nights = [start + dt.timedelta(days=i) for i in range(rnd.randint(1, 4))]
    room_type = rnd.choice(list(ROOM_TYPES))
    booking = Booking(f"R{req_no:04d}", f"guest{req_no}", room_type, nights,
                      amount=round(len(nights) * 129.0, 2))
    with _bookings_lock:
        _bookings[booking.booking_id] = booking
    if not reserve(booking):
        with _bookings_lock:
            booking.status = "sold_out"
        audit(f"sold out {booking.booking_id} {room_type}")
        return booking.status
    gateway.charge(booking)
    return "pending"


def main():
    tmp = tempfile.mkdtemp(prefix="hotel-")
    log_path = os.path.join(tmp, "audit.log")
    threading.Thread(target=_log_writer, args=(log_path,), daemon=True).start()

    first = dt.date(2024, 6, 1)
    open_inventory(first, 14)

    callbacks = queue.Queue()
    stop = threading.Event()
    gateway = PaymentGateway(callbacks)
    cb_thread = threading.Thread(target=payment_callback_loop, args=(callbacks, stop),
                                 name="payment-callbacks")
    cb_thread.start()

    rnd = random.Random(11)
    seeds = [rnd.randrange(1 << 30) for _ in range(220)]
    outcomes = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futs = {pool.submit(handle_request, gateway, i, random.Random(s)): i
                for i, s in enumerate(seeds)}
        for fut in as_completed(futs):
            outcome = fut.result()
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    stop.set()
    cb_thread.join()

    auditor = NightAuditor([first + dt.timedelta(days=d) for d in range(14)])
    auditor.start()

    with _bookings_lock:
        statuses = {}
        for b in _bookings.values():
            statuses[b.status] = statuses.get(b.status, 0) + 1
        overbooked = sum(b.overbooked for b in _bookings.values())

    nights_audited = len(auditor.report)
    print("request outcomes:", outcomes)
    print("final statuses:", statuses, "overbooked:", overbooked)
    print("nights audited:", nights_audited, "busy declines:", gateway.declined_busy)
    audit("shutdown")


if __name__ == "__main__":
    main()
