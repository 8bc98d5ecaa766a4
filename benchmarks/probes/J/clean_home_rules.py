#!/usr/bin/env python3
"""Smart-home automation rules engine with delayed actions.

Sensors publish readings onto an event bus.  The engine matches readings
against rules; a matching rule may fire its action immediately or after a
delay (e.g. "turn the hall light off 0.1 s after motion stops").  Actions are
executed by a small executor so slow devices do not stall rule evaluation.
"""
from __future__ import annotations

import functools
import itertools
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from threading import RLock as _RLock


@dataclass
class Reading:
    sensor: str
    value: float
    at: float = field(default_factory=time.monotonic)


@dataclass
class Rule:
    name: str
    sensor: str
    predicate: Callable[[float], bool]
    device: str
    command: str
    delay: float = 0.0


class Device:
    def __init__(self, name: str) -> None:
        self.name = name
        self.state = "off"
        self.history: List[str] = []
        self._lock = threading.Lock()

    def apply(self, command: str) -> str:
        time.sleep(0.002)  # radio round-trip, done before taking the lock
        with self._lock:
            self.state = command
            self.history.append(command)
            return self.state


_ctx = threading.local()


def _init_action_thread(home: str) -> None:
    _ctx.home = home
    _ctx.applied = 0


def run_action(device: Device, command: str) -> str:
    _ctx.applied += 1
    return f"{_ctx.home}:{device.name}={device.apply(command)}"


class Engine:
    _instance: Optional["Engine"] = None
    _instance_lock = threading.Lock()

    @classmethod
    def instance(cls) -> "Engine":
        if cls._instance is None:
            with cls._instance_lock:
                if cls._instance is None:
                    cls._instance = cls("home-1")
        return cls._instance

    def __init__(self, home: str) -> None:
        self.home = home
        self._lock = _RLock()
        self._rules: Dict[str, Rule] = {}
        self._by_sensor: Dict[str, List[str]] = {}
        self._devices: Dict[str, Device] = {}
        self._timers: Dict[str, threading.Timer] = {}
        self._all_timers: List[threading.Timer] = []
        self._fired = 0
        self._results: List[str] = []
        self._results_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=3, initializer=_init_action_thread,
                                        initargs=(home,))
        self._futures = []

    # -- configuration --------------------------------------------------
    def device(self, name: str) -> Device:
        with self._lock:
            dev = self._devices.get(name)
            if dev is None:
                dev = Device(name)
                self._devices[name] = dev
            return dev

    def add_rule(self, rule: Rule) -> None:
        with self._lock:
            if rule.name in self._rules:
                raise ValueError(f"duplicate rule {rule.name}")
            self._rules[rule.name] = rule
            self._index_rule(rule)
            self.device(rule.device)

    def _index_rule(self, rule: Rule) -> None:
        with self._lock:
            self._by_sensor.setdefault(rule.sensor, []).append(rule.name)

    # -- evaluation -----------------------------------------------------
    def handle(self, reading: Reading) -> None:
        with self._lock:
            rules = [self._rules[n] for n in self._by_sensor.get(reading.sensor, ())]
        matched = [r for r in rules if r.predicate(reading.value)]
        for rule in matched:
            if rule.delay > 0:
                self._schedule(rule)
            else:
                self._dispatch(rule)

    def _schedule(self, rule: Rule) -> None:
        timer = threading.Timer(rule.delay, functools.partial(self._timer_fired, rule))
        timer.daemon = True
        with self._lock:
            previous = self._timers.pop(rule.name, None)
            self._timers[rule.name] = timer
            self._all_timers.append(timer)
        if previous is not None:
            previous.cancel()
        timer.start()

    def _timer_fired(self, rule: Rule) -> None:
        with self._lock:
            if self._timers.get(rule.name) is not threading.current_thread():
                return
            del self._timers[rule.name]
        self._dispatch(rule)

    def _dispatch(self, rule: Rule) -> None:
        dev = self.device(rule.device)
        with self._lock:
            self._fired += 1
            fut = self._pool.submit(run_action, dev, rule.command)
            self._futures.append(fut)
        fut.add_done_callback(self._collect)

    def _collect(self, fut) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        with self._results_lock:
            self._results.append(fut.result())

    # -- shutdown -------------------------------------------------------
    def shutdown(self) -> List[str]:
        """Wait for delayed actions and in-flight commands.

        Must be called after the event bus is closed, so no new timers can be
        scheduled while we wait for the existing ones.
        """
        with self._lock:
            timers = list(self._all_timers)
        for t in timers:
            t.join()
        with self._lock:
            futures = list(self._futures)
        errors = [f.exception() for f in as_completed(futures) if f.exception()]
        self._pool.shutdown(wait=True)
        if errors:
            raise RuntimeError(f"{len(errors)} actions failed: {errors[0]!r}")
        with self._results_lock:
            return list(self._results)

    def fired(self) -> int:
        with self._lock:
            return self._fired


class EventBus:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.q: "queue.Queue[Optional[Reading]]" = queue.Queue()
        self.stop = threading.Event()
        self.processed = 0
        self._cv = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="bus")

    def start(self) -> None:
        self._thread.start()

    def publish(self, r: Reading) -> None:
        self.q.put(r)

    def _loop(self) -> None:
        while True:
            item = self.q.get()
            try:
                if item is None:
                    return
                self.engine.handle(item)
            finally:
                with self._cv:
                    self.processed += 1
                    self._cv.notify_all()
                self.q.task_done()

    def wait_processed(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            while self.processed < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
            return True

    def close(self) -> None:
        self.q.put(None)
        self.q.join()
        self._thread.join()


def sensor_feed(bus: EventBus, sensor: str, values: List[float], stop: threading.Event) -> None:
    for v in values:
        if stop.wait(0.003):
            return
        bus.publish(Reading(sensor, v))


def main() -> int:
    engine = Engine.instance()
    assert engine is Engine.instance()
    engine.add_rule(Rule("motion-on", "hall.motion", lambda v: v > 0.5, "hall.light", "on"))
    engine.add_rule(Rule("motion-off", "hall.motion", lambda v: v <= 0.5, "hall.light",
                         "off", delay=0.05))
    engine.add_rule(Rule("too-hot", "living.temp", lambda v: v > 24.0, "living.fan", "on"))
    engine.add_rule(Rule("cool", "living.temp", lambda v: v < 21.0, "living.fan", "off",
                         delay=0.03))

    bus = EventBus(engine)
    bus.start()
    stop = threading.Event()

    feeds = {
        "hall.motion": [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0],
        "living.temp": [20.0, 22.5, 24.5, 25.0, 23.0, 20.5, 19.0, 20.0],
    }
    threads = []
    for sensor, values in feeds.items():
        t = threading.Thread(target=sensor_feed, args=(bus, sensor, values, stop), name=sensor)
        t.start()
        threads.append(t)

    watchdogs = []
    for i, sensor in zip(itertools.count(), feeds):
        watchdogs.append(threading.Timer(2.0, lambda s=sensor, n=i: print("stalled", n, s)))
    for w in watchdogs:
        w.start()

    for t in threads:
        t.join()
    total = sum(len(v) for v in feeds.values())
    ok = bus.wait_processed(total, timeout=2.0)
    for w in watchdogs:
        w.cancel()
        w.join()
    bus.close()

    results = engine.shutdown()
    print(f"processed all readings: {ok}, rules fired: {engine.fired()}")
    for line in sorted(results):
        print("  ", line)
    for name in ("hall.light", "living.fan"):
        dev = engine.device(name)
        print(f"{name}: final={dev.state} history={dev.history}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
