"""Cron-like scheduler built on a hashed timer wheel.

Jobs are registered with a delay (one-shot) or an interval (recurring).  A
single tick thread advances the wheel; due jobs are handed to one of three
execution back-ends:

* ``pool``      - a shared ThreadPoolExecutor for short synchronous callables
* ``dedicated`` - a fresh thread for long-running callables
* ``async``     - coroutine factories scheduled on an asyncio loop that runs
                  in its own background thread
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set

TICK_SECONDS = 0.05
WHEEL_SLOTS = 512
POOL_WORKERS = 6
ASYNC_START_TIMEOUT_S = 5.0

log = logging.getLogger("timerwheel")

_entry_ids = itertools.count(1)


@dataclass(eq=False)
class TimerEntry:
    name: str
    callback: Callable[[], Any]
    mode: str = "pool"
    interval: Optional[float] = None
    rounds: int = 0
    cancelled: bool = False
    entry_id: int = field(default_factory=lambda: next(_entry_ids))


class AsyncRunner:
    """Owns an asyncio event loop running on a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._tasks: Set[asyncio.Task] = set()
        self._thread = threading.Thread(target=self._main, name="timer-async", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in self._tasks if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + ASYNC_START_TIMEOUT_S
        while not self._ready.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError("asyncio loop failed to start")
            time.sleep(0.01)

    def spawn(self, factory: Callable[[], Awaitable[Any]], name: str) -> None:
        """Create a task for ``factory()``.  Must run on the loop thread."""
        task = self.loop.create_task(self._guard(factory, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, factory: Callable[[], Awaitable[Any]], name: str) -> None:
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("async job %s failed", name)

    def run_sync(self, coro: Awaitable[Any], timeout: float) -> Any:
        """Run a coroutine on the loop from another thread and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5.0)


class TimerWheel:
    """Hashed timer wheel with pluggable execution back-ends."""

    def __init__(self, tick: float = TICK_SECONDS, slots: int = WHEEL_SLOTS) -> None:
        self._tick = tick
        self._slots: List[List[TimerEntry]] = [[] for _ in range(slots)]
        self._cursor = 0
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._fire_counts: Dict[str, int] = {}
        self._stopped = threading.Event()
        self._pool = ThreadPoolExecutor(POOL_WORKERS, thread_name_prefix="timer-job")
        self._async = AsyncRunner()
        self._ticker = threading.Thread(target=self._tick_loop, name="timer-tick")

    # ---------------------------------------------------------------- API

    def start(self) -> None:
        self._async.start()
        self._ticker.start()

    def schedule(self, delay: float, callback: Callable[[], Any], name: str,
                 mode: str = "pool", interval: Optional[float] = None) -> TimerEntry:
        if mode not in ("pool", "dedicated", "async"):
            raise ValueError(f"unknown mode {mode}")
        entry = TimerEntry(name, callback, mode, interval)
        self._insert(entry, delay)
        return entry

    def every(self, interval: float, callback: Callable[[], Any], name: str,
              mode: str = "pool") -> TimerEntry:
        return self.schedule(interval, callback, name, mode, interval=interval)

    def cancel(self, entry: TimerEntry) -> None:
        with self._lock:
            entry.cancelled = True

    def stats(self) -> Dict[str, int]:
        with self._stats_lock:
            return dict(self._fire_counts)

    def stop(self) -> None:
        self._stopped.set()
        self._ticker.join()
        self._pool.shutdown(wait=True)
        self._async.stop()

    # ------------------------------------------------------------ internals

    def _insert(self, entry: TimerEntry, delay: float) -> None:
        ticks = max(1, math.ceil(delay / self._tick))
        n = len(self._slots)
        with self._lock:
            if entry.cancelled:
                return
            slot = (self._cursor + ticks - 1) % n
            entry.rounds = (ticks - 1) // n
            self._slots[slot].append(entry)

    def _tick_loop(self) -> None:
        next_tick = time.monotonic() + self._tick
        while not self._stopped.wait(max(0.0, next_tick - time.monotonic())):
            next_tick += self._tick
            for entry in self._advance():
                try:
                    self._dispatch(entry)
                except Exception:
                    log.exception("could not dispatch %s", entry.name)

    def _advance(self) -> List[TimerEntry]:
        with self._lock:
            slot = self._slots[self._cursor]
            due: List[TimerEntry] = []
            keep: List[TimerEntry] = []
            for entry in slot:
                if entry.cancelled:
                    continue
                if entry.rounds <= 0:
                    due.append(entry)
                else:
                    entry.rounds -= 1
                    keep.append(entry)
            self._slots[self._cursor] = keep
            self._cursor = (self._cursor + 1) % len(self._slots)
        return due

    def _dispatch(self, entry: TimerEntry) -> None:
        if entry.mode == "async":
            self._async.loop.call_soon(self._async.spawn, entry.callback, entry.name)
            self._reschedule(entry)
        elif entry.mode == "dedicated":
            worker = threading.Thread(target=self._run_entry, args=(entry), name=f"timer-{entry.name}")
            worker.start()
        else:
            self._pool.submit(self._run_entry, entry)

    def _run_entry(self, entry: TimerEntry) -> None:
        started = time.monotonic()
        try:
            entry.callback()
        finally:
            self._fire_counts[entry.name] = self._fire_counts.get(entry.name, 0) + 1
            self._reschedule(entry)
            elapsed = time.monotonic() - started
            if entry.interval is not None and elapsed > entry.interval:
                log.warning("job %s took %.2fs, longer than its interval", entry.name, elapsed)

    def _reschedule(self, entry: TimerEntry) -> None:
        if entry.interval is not None and not self._stopped.is_set():
            self._insert(entry, entry.interval)


def _heartbeat() -> None:
    log.info("heartbeat")


async def _poll_upstream() -> None:
    await asyncio.sleep(0.2)
    log.info("polled upstream")


def _nightly_report() -> None:
    time.sleep(0.5)
    log.info("report generated")


def main(duration: float = 3.0) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    wheel = TimerWheel()
    wheel.start()
    wheel.every(1.0, _heartbeat, "heartbeat")
    wheel.every(0.5, _poll_upstream, "poll-upstream", mode="async")
    wheel.schedule(1.5, _nightly_report, "report", mode="dedicated")
    try:
        time.sleep(duration)
    finally:
        wheel.stop()
    log.info("fired: %s", wheel.stats())


if __name__ == "__main__":
    main()
