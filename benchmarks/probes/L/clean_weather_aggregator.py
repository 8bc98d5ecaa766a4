"""Weather-station aggregator.

Each station is polled by its own reader thread; readings flow through a
bounded queue to a pool of aggregator workers that keep rolling windows
per station.  A publisher thread periodically snapshots the aggregates
and writes them to a JSON file; an alert timer fires per station when no
reading has arrived for a while.
"""

import functools
import json
import os
import queue
import random
import statistics
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from threading import Condition, Event, Lock, RLock as _RLock, Thread, Timer, local

WINDOW = 32
_tls = local()


def _worker_tag():
    return getattr(_tls, "tag", "main")


@dataclass(frozen=True)
class Reading:
    station: str
    temp_c: float
    humidity: float
    ts: float


class UnitTable:
    """Lazily loaded conversion table shared by all workers."""

    _instance = None
    _instance_lock = Lock()

    def __init__(self):
        self.factors = {"C": (1.0, 0.0), "F": (1.8, 32.0), "K": (1.0, 273.15)}

    @classmethod
    def get(cls):
        if cls._instance is None:
            with cls._instance_lock:
                if cls._instance is None:
                    cls._instance = cls()
        return cls._instance

    def convert(self, celsius, unit):
        mul, add = self.factors[unit]
        return celsius * mul + add


class Aggregates:
    def __init__(self):
        self._lock = _RLock()
        self._windows = {}
        self._counts = {}
        self._last_seen = {}

    def add(self, r):
        with self._lock:
            win = self._windows.setdefault(r.station, deque())
            win.append(r.temp_c)
            if len(win) > WINDOW:
                win.popleft()
            self._touch(r.station, r.ts)

    def _touch(self, station, ts):
        with self._lock:
            self._counts[station] = self._counts.get(station, 0) + 1
            self._last_seen[station] = ts

    def snapshot(self):
        with self._lock:
            windows = {k: list(v) for k, v in self._windows.items()}
            counts = dict(self._counts)
        out = {}
        for station, temps in windows.items():
            out[station] = {
                "n": counts.get(station, 0),
                "mean_c": round(statistics.fmean(temps), 2),
                "max_f": round(UnitTable.get().convert(max(temps), "F"), 1),
            }
        return out

    def last_seen(self, station):
        with self._lock:
            return self._last_seen.get(station)


class StationReader(Thread):
    def __init__(self, station, out_q, stop, n_readings, seed):
        super().__init__(name=f"reader-{station}")
        self.station = station
        self.out_q = out_q
        self.stop = stop
        self.n = n_readings
        self.rnd = random.Random(seed)
        self.sent = 0

    def run(self):
        base = self.rnd.uniform(5, 25)
        for _ in range(self.n):
            if self.stop.is_set():
                break
            r = Reading(self.station, base + self.rnd.gauss(0, 1.5),
                        self.rnd.uniform(30, 90), time.monotonic())
            self.out_q.put(r)
            self.sent += 1
            self.stop.wait(0.002)


def aggregate_worker(idx, in_q, agg, errors, err_lock):
    _tls.tag = f"agg-{idx}"
    while True:
        item = in_q.get()
        try:
            if item is None:
                return
            if not -60 < item.temp_c < 60:
                raise ValueError(f"implausible {item}")
            agg.add(item)
        except ValueError as exc:
            with err_lock:
                errors.append((_worker_tag(), str(exc)))
        finally:
            in_q.task_done()


class Publisher:
    """Writes snapshots to disk whenever asked, or at least every interval."""

    def __init__(self, agg, path, interval=0.1):
        self.agg = agg
        self.path = path
        self.interval = interval
        self._cond = Condition()
        self._requested = False
        self._closed = False
        self.writes = 0
        self._thread = Thread(target=self._loop, name="publisher")

    def start(self):
        self._thread.start()

    def request(self):
        with self._cond:
            self._requested = True
            self._cond.notify()

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _loop(self):
        while True:
            with self._cond:
                deadline = time.monotonic() + self.interval
                while not self._requested and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self._requested = False
                closing = self._closed
            self._write(self.agg.snapshot())
            if closing:
                return

    def _write(self, snap):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(snap, fh)
        os.replace(tmp, self.path)
        self.writes += 1


class Watchdog:
    """Per-station silence alerts, re-armed on every check."""

    def __init__(self, agg, stations, timeout=0.05):
        self.agg = agg
        self.timeout = timeout
        self._lock = Lock()
        self._timers = {}
        self.alerts = []
        self._stopped = False
        for s in stations:
            self._arm(s)

    def _arm(self, station):
        t = Timer(self.timeout, functools.partial(self._check, station))
        t.daemon = True
        with self._lock:
            if self._stopped:
                return
            self._timers[station] = t
            t.start()

    def _check(self, station):
        seen = self.agg.last_seen(station)
        if seen is None or time.monotonic() - seen > self.timeout:
            with self._lock:
                self.alerts.append(station)
        self._arm(station)

    def stop(self):
        with self._lock:
            self._stopped = True
            timers = list(self._timers.values())
        for t in timers:
            t.cancel()
        for t in timers:
            if t.is_alive():
                t.join()


def main():
    stations = ["EDDB", "EDDH", "EDDM", "EDDF", "EDDK"]
    q = queue.Queue(maxsize=64)
    stop = Event()
    agg = Aggregates()
    errors, err_lock = [], Lock()
    outdir = tempfile.mkdtemp(prefix="wx-")
    pub = Publisher(agg, os.path.join(outdir, "snapshot.json"))
    dog = Watchdog(agg, stations)

    readers = [StationReader(s, q, stop, 120, seed=i) for i, s in enumerate(stations)]
    workers = [Thread(target=aggregate_worker, args=(i, q, agg, errors, err_lock))
               for i in range(3)]
    for t in workers + readers:
        t.start()
    pub.start()

    callbacks = []
    for s in stations:
        callbacks.append(lambda s=s: agg.last_seen(s))

    time.sleep(0.2)
    pub.request()
    for r in readers:
        r.join()
    q.join()
    for _ in workers:
        q.put(None)
    for t in workers:
        t.join()
    pub.close()
    dog.stop()

    with open(pub.path) as fh:
        final = json.load(fh)
    total = sum(r.sent for r in readers)
    print("stations:", sorted(final), "readings:", total,
          "aggregated:", sum(v["n"] for v in final.values()))
    print("writes:", pub.writes, "errors:", len(errors),
          "all seen:", all(cb() is not None for cb in callbacks))
    os.remove(pub.path)
    os.rmdir(outdir)


if __name__ == "__main__":
    main()
