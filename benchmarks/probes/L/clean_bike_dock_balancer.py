#!/usr/bin/env python3
"""Bike-share dock balancer.

Docks are rented from and returned to by simulated riders (one thread per
rider group).  A rebalancing crew moves bikes from over-full docks to empty
ones; a telemetry thread snapshots the network and writes it to a journal.
"""
import functools
import json
import logging
import os
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from threading import RLock as _RLock

log = logging.getLogger("bikes")

TRUCK_CAPACITY = 6
CREW_SIZE = 2


class PricingTable:
    """Surge pricing table shared by all docks, created on first use."""

    _instance = None
    _guard = threading.Lock()

    def __init__(self):
        time.sleep(0.005)
        self.base = 1.50
        self.surge = {0: 2.0, 1: 1.5, 2: 1.2}

    @classmethod
    def get(cls):
        inst = cls._instance
        if inst is None:
            with cls._guard:
                inst = cls._instance
                if inst is None:
                    inst = cls._instance = cls()
        return inst

    def fare(self, bikes_left):
        return round(self.base * self.surge.get(bikes_left, 1.0), 2)


@dataclass
class Dock:
    dock_id: int
    capacity: int
    bikes: int
    lock: _RLock = field(default_factory=_RLock, repr=False)
    changed: threading.Condition = field(init=False, repr=False)
    revenue: float = 0.0

    def __post_init__(self):
        self.changed = threading.Condition(self.lock)

    def free_slots(self):
        with self.lock:
            return self.capacity - self.bikes

    def rent(self, timeout=0.05):
        """Take a bike, waiting briefly if the dock is empty."""
        with self.changed:
            deadline = time.monotonic() + timeout
            while self.bikes == 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
            self.bikes -= 1
            self.revenue += PricingTable.get().fare(self.bikes)
            self.changed.notify_all()
            return True

    def give_back(self, timeout=0.05):
        with self.changed:
            if not self.changed.wait_for(lambda: self.free_slots() > 0, timeout):
                return False
            self.bikes += 1
            self.changed.notify_all()
            return True


class Network:
    def __init__(self, docks):
        self.docks = {d.dock_id: d for d in docks}
        self._stats_lock = threading.Lock()
        self.moves = 0
        self.failed_rides = 0

    def _locked_pair(self, a, b):
        first, second = sorted((a, b), key=lambda d: d.dock_id)
        return first.lock, second.lock

    def transfer(self, src, dst, count):
        l1, l2 = self._locked_pair(src, dst)
        with l1, l2:
            n = min(count, src.bikes, dst.capacity - dst.bikes)
            if n <= 0:
                return 0
            src.bikes -= n
            dst.bikes += n
            src.changed.notify_all()
            dst.changed.notify_all()
        with self._stats_lock:
            self.moves += n
        return n

    def ride(self, origin, dest):
        if not origin.rent():
            with self._stats_lock:
                self.failed_rides += 1
            return False
        time.sleep(random.uniform(0, 0.002))
        if not dest.give_back():
            fallback = max(self.docks.values(), key=lambda d: d.free_slots())
            if not fallback.give_back(timeout=0.2):
                origin.give_back(timeout=1.0)
        return True

    def snapshot(self):
        rows = []
        for dock_id in sorted(self.docks):
            dock = self.docks[dock_id]
            with dock.lock:
                rows.append({"dock": dock_id, "bikes": dock.bikes,
                             "cap": dock.capacity,
                             "revenue": round(dock.revenue, 2)})
        with self._stats_lock:
            totals = {"moves": self.moves, "failed": self.failed_rides}
        return {"docks": rows, **totals}


def plan_moves(network):
    """Pair the fullest docks with the emptiest ones."""
    ratios = []
    for dock in network.docks.values():
        with dock.lock:
            ratios.append((dock.bikes / dock.capacity, dock))
    ratios.sort(key=lambda r: r[0])
    plans = []
    while len(ratios) >= 2 and ratios[-1][0] - ratios[0][0] > 0.4:
        (_, low), (_, high) = ratios.pop(0), ratios.pop()
        plans.append((high, low))
    return plans


def crew_shift(network, stop, trucks):
    results = []
    while not stop.is_set():
        plans = plan_moves(network)
        for src, dst in plans:
            if not trucks.acquire(timeout=0.05):
                continue
            try:
                moved = network.transfer(src, dst, TRUCK_CAPACITY)
                results.append((src.dock_id, dst.dock_id, moved))
            finally:
                trucks.release()
        stop.wait(0.01)
    return results


class Journal(threading.Thread):
    def __init__(self, network, path, interval=0.03):
        super().__init__(name="journal", daemon=True)
        self.network = network
        self.path = path
        self.interval = interval
        self._stop_evt = threading.Event()
        self._buffer = []
        self._buf_lock = threading.Lock()

    def _flush(self):
        with self._buf_lock:
            lines, self._buffer = self._buffer, []
        if lines:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.writelines(line + "\n" for line in lines)

    def run(self):
        while not self._stop_evt.wait(self.interval):
            snap = self.network.snapshot()
            with self._buf_lock:
                self._buffer.append(json.dumps(snap))
            if len(self._buffer) >= 5:
                self._flush()
        self._flush()

    def close(self):
        self._stop_evt.set()
        self.join()


def rider_group(network, seed, rides):
    rng = random.Random(seed)
    ids = sorted(network.docks)
    done = 0
    for _ in range(rides):
        a, b = rng.sample(ids, 2)
        if network.ride(network.docks[a], network.docks[b]):
            done += 1
    return done


def main():
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    rng = random.Random(11)
    docks = [Dock(i, capacity=12, bikes=rng.randint(0, 12)) for i in range(8)]
    network = Network(docks)
    start_total = sum(d.bikes for d in docks)

    journal_path = os.path.join(tempfile.mkdtemp(prefix="bikes-"), "journal.jsonl")
    journal = Journal(network, journal_path)
    journal.start()

    stop = threading.Event()
    trucks = threading.BoundedSemaphore(CREW_SIZE)
    crew_results = [None] * CREW_SIZE
    crew = []
    for i in range(CREW_SIZE):
        def shift(slot=i):
            crew_results[slot] = crew_shift(network, stop, trucks)
        t = threading.Thread(target=shift, name=f"crew-{i}")
        t.start()
        crew.append(t)

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="riders") as pool:
        futures = {pool.submit(rider_group, network, seed, 40): seed
                   for seed in range(6)}
        completed = 0
        for fut in as_completed(futures):
            try:
                completed += fut.result()
            except Exception:
                log.exception("rider group %s crashed", futures[fut])

    reminders = []
    for dock in docks:
        timer = threading.Timer(0.005, functools.partial(log.debug,
                                                         "dock %d checked",
                                                         dock.dock_id))
        timer.start()
        reminders.append(timer)
    for timer in reminders:
        timer.join()

    stop.set()
    for t in crew:
        t.join()
    journal.close()

    end_total = sum(d.bikes for d in docks)
    moves = sum(len(r) for r in crew_results if r)
    snap = network.snapshot()
    print(f"rides completed: {completed}, failed rents: {snap['failed']}")
    print(f"bikes before/after: {start_total}/{end_total}, truck trips: {moves}")
    with open(journal_path, encoding="utf-8") as fh:
        print("journal lines:", sum(1 for _ in fh))


if __name__ == "__main__":
    main()
