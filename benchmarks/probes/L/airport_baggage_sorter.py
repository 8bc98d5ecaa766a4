"""Baggage sorter simulation for a small terminal.

Bags enter on the check-in belt, travel across a chain of conveyor
segments (one thread each) and are dropped into per-gate bins.  A loader
thread per gate drains its bin onto the cart.  Flights close on a timer;
bags that miss their flight are handed over to the lost-bag tracker,
which a sweeper thread reconciles periodically.
"""

import queue
import random
import threading
import time
from collections import deque, defaultdict
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bag:
    tag: str
    flight: str
    gate: str
    weight_kg: float = 18.0


@dataclass
class LostRecord:
    tag: str
    flight: str
    reason: str
    first_seen: float = field(default_factory=time.monotonic)


class MisrouteError(Exception):
    pass


class LostBagTracker:
    """Keeps track of bags that did not make it onto their flight."""

    def __init__(self):
        self._lock = threading.Lock()
        self._records = {}
        self.resolved = []

    def flag(self, bag, reason):
        with self._lock:
            self._records.setdefault(bag.tag, LostRecord(bag.tag, bag.flight, reason))

    def mark_found(self, tag):
        if tag in self._records:
            rec = self._records.pop(tag)
            with self._lock:
                self.resolved.append(rec)
            return True
        return False

    def open_count(self):
        with self._lock:
            return len(self._records)

    def sweep(self, bins):
        """Bags that turned up in a bin after all are no longer lost."""
        with self._lock:
            for tag, rec in list(self._records.items()):
                gate_bin = bins.get(rec.flight)
                if gate_bin is not None and gate_bin.contains(tag):
                    self._records.pop(tag, None)
                    self.resolved.append(rec)


class GateBin:
    """Bin at the end of the sorter for one gate/flight."""

    def __init__(self, gate, flight, tracker):
        self.gate = gate
        self.flight = flight
        self._tracker = tracker
        self._bags = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.loaded = []

    def put(self, bag):
        with self._cond:
            accepted = not self._closed
            if accepted:
                self._bags.append(bag)
                self._cond.notify()
        if not accepted:
            self._tracker.flag(bag, "flight closed")
        return accepted

    def contains(self, tag):
        with self._cond:
            return any(b.tag == tag for b in self._bags)

    def take(self):
        with self._cond:
            if not self._bags and not self._closed:
                self._cond.wait()
            if not self._bags:
                return None
            return self._bags.popleft()

    def close(self):
        with self._cond:
            if self._closed:
                return
            self._closed = True
            for bag in self._bags:
                self._tracker.flag(bag, "left in bin at close")
            self._cond.notify_all()


class ConveyorSegment(threading.Thread):
    """One motorised belt section; forwards bags downstream or to a bin."""

    def __init__(self, name, inbound, router, downstream=None, fanout=1):
        super().__init__(name=name, daemon=True)
        self.inbound = inbound
        self.downstream = downstream
        self.fanout = fanout
        self.router = router

    def run(self):
        while True:
            bag = self.inbound.get()
            if bag is None:
                self.inbound.task_done()
                for _ in range(self.fanout if self.downstream is not None else 0):
                    self.downstream.put(None)
                return
            try:
                time.sleep(0.001)  # belt travel time
                if self.downstream is not None:
                    self.downstream.put(bag)
                else:
                    self.router.deliver(bag)
            except MisrouteError:
                self.router.tracker.flag(bag, "misrouted")
                continue
            self.inbound.task_done()


class Sorter:
    def __init__(self, flights, segments=3, diverters=2):
        self.tracker = LostBagTracker()
        self.bins = {f: GateBin(g, f, self.tracker) for f, g in flights.items()}
        self.per_gate = defaultdict(int)
        self._stats_lock = threading.Lock()
        self.queues = [queue.Queue() for _ in range(segments)]
        self.segments = []
        for i in range(segments - 1):
            fan = diverters if i + 2 == segments else 1
            self.segments.append(ConveyorSegment(f"belt-{i}", self.queues[i], self,
                                                 self.queues[i + 1], fanout=fan))
        # the last section splits onto parallel diverter belts
        for d in range(diverters):
            self.segments.append(ConveyorSegment(f"diverter-{d}", self.queues[-1], self))
        self._timers = []

    def deliver(self, bag):
        gate_bin = self.bins.get(bag.flight)
        if gate_bin is None or gate_bin.gate != bag.gate:
            raise MisrouteError(bag.tag)
        if gate_bin.put(bag):
            self._count(bag.gate)

    def _count(self, gate):
        self.per_gate[gate] += 1

    def gate_report(self):
        with self._stats_lock:
            return dict(self.per_gate)

    def close_flight(self, flight):
        self.bins[flight].close()

    def schedule_closures(self, schedule):
        for flight, delay in schedule.items():
            t = threading.Timer(delay, lambda: self.close_flight(flight))
            t.daemon = True
            self._timers.append(t)
            t.start()

    def start(self):
        for seg in self.segments:
            seg.start()

    def feed(self, bags):
        for bag in bags:
            self.queues[0].put(bag)

    def drain(self):
        for q in self.queues:
            q.join()


def loader(gate_bin, per_bag_s=0.002):
    while True:
        bag = gate_bin.take()
        if bag is None:
            return
        time.sleep(per_bag_s)
        gate_bin.loaded.append(bag.tag)


def sweeper(tracker, bins, stop, interval=0.05):
    while not stop.wait(interval):
        tracker.sweep(bins)


def ground_staff(tracker, tags, stop, interval=0.06):
    """Staff on the apron radio in bags they have physically located."""
    for tag in tags:
        if stop.wait(interval):
            return
        tracker.mark_found(tag)


def make_bags(flights, n):
    rnd = random.Random(7)
    names = list(flights)
    out = []
    for i in range(n):
        f = rnd.choice(names)
        out.append(Bag(f"BG{i:05d}", f, flights[f], round(rnd.uniform(8, 30), 1)))
    return out


def main():
    flights = {"LH402": "A3", "BA117": "B7", "AF023": "C1", "KL641": "A5"}
    sorter = Sorter(flights)
    stop = threading.Event()
    loaders = [threading.Thread(target=loader, args=(b,), name=f"loader-{b.gate}")
               for b in sorter.bins.values()]
    sw = threading.Thread(target=sweeper, args=(sorter.tracker, sorter.bins, stop), daemon=True)
    found = [f"BG{i:05d}" for i in range(250, 400, 7)]
    staff = threading.Thread(target=ground_staff, args=(sorter.tracker, found, stop))

    sorter.start()
    for t in loaders:
        t.start()
    sw.start()
    staff.start()

    sorter.schedule_closures({"LH402": 0.6, "BA117": 0.8, "AF023": 1.0, "KL641": 1.2})
    bags = make_bags(flights, 400)
    sorter.feed(bags[:300])
    time.sleep(0.7)
    sorter.feed(bags[300:])
    sorter.queues[0].put(None)
    sorter.drain()

    time.sleep(0.6)
    for flight in flights:
        sorter.close_flight(flight)   # end of shift
    for t in loaders:
        t.join()
    staff.join()
    stop.set()
    sw.join(timeout=1)

    total_loaded = sum(len(b.loaded) for b in sorter.bins.values())
    print("per gate:", sorter.gate_report())
    print("loaded:", total_loaded, "open lost:", sorter.tracker.open_count(),
          "resolved:", len(sorter.tracker.resolved))


if __name__ == "__main__":
    main()
