"""Parking garage gate controller.

Entry and exit gates run as threads. Cars wait at an entry gate until a space
is free; a ticket machine pool is shared by the gates; a journal thread
persists gate events; a display thread shows free spaces per level.
"""
import logging
import queue
import random
import threading
import time
from threading import RLock as _RLock

log = logging.getLogger("garage")

LEVELS = {"P1": 6, "P2": 5}
TICKET_MACHINES = 2
_SENTINEL = object()


class Garage:
    def __init__(self, levels):
        self._lock = _RLock()
        self._space_freed = threading.Condition(self._lock)
        self.capacity = dict(levels)
        self.occupied = {name: set() for name in levels}
        self.revenue_cents = 0
        self.entries = 0

    def free_on(self, level):
        with self._lock:
            return self.capacity[level] - len(self.occupied[level])

    def _pick_level(self):
        with self._lock:
            for level in self.capacity:
                if self.free_on(level) > 0:
                    return level
            return None

    def park(self, plate, timeout=1.0):
        """Block until a space is free, then claim it. Returns level or None."""
        deadline = time.monotonic() + timeout
        with self._space_freed:
            while (level := self._pick_level()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._space_freed.wait(remaining)
            self.occupied[level].add(plate)
            self.entries += 1
            return level

    def leave(self, plate, fee_cents):
        with self._space_freed:
            for level, plates in self.occupied.items():
                if plate in plates:
                    plates.discard(plate)
                    self.revenue_cents += fee_cents
                    self._space_freed.notify()
                    return level
        return None

    def snapshot(self):
        with self._lock:
            return {lvl: sorted(p) for lvl, p in self.occupied.items()}


class Journal(threading.Thread):
    """Writes gate events to an in-memory 'disk' in batches; flushed on close."""

    def __init__(self):
        super().__init__(name="journal", daemon=True)
        self.q = queue.Queue()
        self.disk = []
        self._batch = []

    def record(self, event):
        self.q.put(event)

    def run(self):
        while True:
            item = self.q.get()
            try:
                if item is _SENTINEL:
                    self._flush()
                    return
                self._batch.append(item)
                if len(self._batch) >= 5:
                    self._flush()
            finally:
                self.q.task_done()

    def _flush(self):
        if self._batch:
            time.sleep(0.001)
            self.disk.extend(self._batch)
            self._batch = []

    def close(self):
        self.q.put(_SENTINEL)
        self.join()


class TicketPool:
    def __init__(self, n):
        self._machines = threading.BoundedSemaphore(n)
        self._serial_lock = threading.Lock()
        self._serial = 1000

    def issue(self, plate):
        if not self._machines.acquire(timeout=0.5):
            raise TimeoutError("no ticket machine free")
        try:
            time.sleep(0.002)
            with self._serial_lock:
                self._serial += 1
                return f"T{self._serial}-{plate}"
        finally:
            self._machines.release()


class EntryGate(threading.Thread):
    def __init__(self, name, garage, tickets, journal, arrivals):
        super().__init__(name=name)
        self.garage = garage
        self.tickets = tickets
        self.journal = journal
        self.arrivals = arrivals
        self.turned_away = []

    def run(self):
        while True:
            try:
                plate = self.arrivals.get_nowait()
            except queue.Empty:
                return
            try:
                ticket = self.tickets.issue(plate)
                level = self.garage.park(plate)
                if level is None:
                    self.turned_away.append(plate)
                    self.journal.record(("full", self.name, plate))
                else:
                    self.journal.record(("in", self.name, plate, level, ticket))
            finally:
                self.arrivals.task_done()


def exit_gate(garage, journal, leaving, stop):
    while not stop.is_set() or not leaving.empty():
        try:
            plate, minutes = leaving.get(timeout=0.02)
        except queue.Empty:
            continue
        try:
            fee = 200 + 5 * minutes
            level = garage.leave(plate, fee)
            journal.record(("out", plate, level, fee))
        finally:
            leaving.task_done()


def run_display(garage, stop, frames):
    while not stop.wait(0.02):
        frames.append({lvl: garage.free_on(lvl) for lvl in LEVELS})


def schedule_departures(garage, leaving, rng, stop):
    """Send random parked cars towards the exit; each car only once."""
    sent = set()
    while not stop.wait(0.005):
        parked = [p for plates in garage.snapshot().values() for p in plates]
        candidates = [p for p in parked if p not in sent]
        if candidates:
            plate = rng.choice(candidates)
            sent.add(plate)
            leaving.put((plate, rng.randint(10, 300)))


def main():
    logging.basicConfig(level=logging.INFO, format="%(threadName)-8s %(message)s")
    rng = random.Random(3)
    garage = Garage(LEVELS)
    tickets = TicketPool(TICKET_MACHINES)
    journal = Journal()
    journal.start()

    arrivals = queue.Queue()
    for n in range(20):
        arrivals.put(f"CAR-{n:02d}")

    leaving = queue.Queue()
    stop_exit = threading.Event()
    stop_misc = threading.Event()
    frames = []

    gates = [EntryGate(f"entry-{i}", garage, tickets, journal, arrivals) for i in range(3)]
    exits = threading.Thread(target=exit_gate, args=(garage, journal, leaving, stop_exit), name="exit")
    display = threading.Thread(target=run_display, args=(garage, stop_misc, frames), name="display")
    departures = threading.Thread(
        target=schedule_departures, args=(garage, leaving, random.Random(rng.random()), stop_misc),
        name="departures")

    for t in (exits, display, departures, *gates):
        t.start()

    arrivals.join()
    for g in gates:
        g.join()
    stop_misc.set()
    departures.join()
    display.join()
    leaving.join()
    stop_exit.set()
    exits.join()
    journal.close()

    turned_away = [p for g in gates for p in g.turned_away]
    with garage._lock:
        entries, revenue = garage.entries, garage.revenue_cents
    log.info("entries=%d turned_away=%d revenue=$%.2f", entries, len(turned_away), revenue / 100)
    log.info("journal events=%d display frames=%d", len(journal.disk), len(frames))
    log.info("still parked: %s", garage.snapshot())


if __name__ == "__main__":
    main()
