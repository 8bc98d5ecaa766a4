#!/usr/bin/env python3
"""Bounded work-stealing thread pool.

Each worker owns a deque.  Submissions are spread round-robin over the
deques; a worker pops its own deque LIFO (cache-friendly for follow-up work)
and, when it runs dry, steals FIFO from the other workers.  The number of
queued-or-running tasks is bounded: ``submit`` blocks once ``capacity`` tasks
are outstanding.  A balancer thread occasionally moves work from the longest
deque to the shortest one.

Run:  python3 clean_work_stealing_pool.py
"""

import functools
import itertools
import queue
import random
import threading
import time
from collections import deque
from concurrent.futures import Future, wait
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

_Item = Tuple[Future, Callable[..., Any], tuple, dict]


class _WorkDeque:
    __slots__ = ("lock", "items")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: Deque[_Item] = deque()


class _Worker(threading.Thread):
    def __init__(self, pool: "WorkStealingPool", index: int):
        super().__init__(name=f"ws-worker-{index}")
        self.pool = pool
        self.index = index
        self.executed = 0
        self.stolen = 0

    def run(self) -> None:
        while True:
            item, stolen = self.pool._next_item(self.index)
            if item is None:
                return
            self.stolen += stolen
            self.pool._execute(item)
            self.executed += 1


class WorkStealingPool:
    def __init__(self, workers: int = 4, capacity: int = 16):
        self._capacity = threading.BoundedSemaphore(capacity)
        self._deques = [_WorkDeque() for _ in range(workers)]
        self._state = threading.Condition(threading.RLock())
        self._pending = 0            # queued items not yet claimed by a worker
        self._shutdown = False
        self._rr = itertools.count()
        self._workers = [_Worker(self, i) for i in range(workers)]
        for w in self._workers:
            w.start()

    # -- submission ------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        self._capacity.acquire()
        fut: Future = Future()
        try:
            with self._state:
                if self._shutdown:
                    raise RuntimeError("cannot submit after shutdown")
                dq = self._deques[next(self._rr) % len(self._deques)]
                with dq.lock:
                    dq.items.append((fut, fn, args, kwargs))
                self._pending += 1
                self._state.notify()
        except BaseException:
            self._capacity.release()
            raise
        return fut

    # -- worker side -----------------------------------------------------
    def _pop_local(self, index: int) -> Optional[_Item]:
        dq = self._deques[index]
        with dq.lock:
            if dq.items:
                return dq.items.pop()
        return None

    def _steal(self, index: int) -> Optional[_Item]:
        n = len(self._deques)
        for offset in range(1, n):
            victim = self._deques[(index + offset) % n]
            with victim.lock:
                if victim.items:
                    return victim.items.popleft()
        return None

    def _next_item(self, index: int) -> Tuple[Optional[_Item], int]:
        with self._state:
            while self._pending == 0 and not self._shutdown:
                self._state.wait()
            if self._pending == 0:
                return None, 0
            self._pending -= 1
        # We now own exactly one of the queued items; it sits in some deque
        # (possibly being moved by the balancer), so keep looking until found.
        while True:
            item = self._pop_local(index)
            if item is not None:
                return item, 0
            item = self._steal(index)
            if item is not None:
                return item, 1

    def _execute(self, item: _Item) -> None:
        fut, fn, args, kwargs = item
        try:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(result)
        finally:
            self._capacity.release()

    # -- maintenance -----------------------------------------------------
    def queue_lengths(self) -> List[int]:
        lengths = []
        for dq in self._deques:
            with dq.lock:
                lengths.append(len(dq.items))
        return lengths

    def rebalance(self) -> int:
        lengths = self.queue_lengths()
        src = max(range(len(lengths)), key=lengths.__getitem__)
        dst = min(range(len(lengths)), key=lengths.__getitem__)
        if src == dst:
            return 0
        first, second = sorted((src, dst))
        moved = 0
        with self._deques[first].lock, self._deques[second].lock:
            s, d = self._deques[src].items, self._deques[dst].items
            while len(s) - len(d) > 1:
                d.append(s.popleft())
                moved += 1
        return moved

    def pending(self) -> int:
        with self._state:
            return self._pending

    def describe(self) -> str:
        with self._state:
            return f"pending={self.pending()} shutdown={self._shutdown}"

    def shutdown(self, wait: bool = True) -> None:
        with self._state:
            self._shutdown = True
            self._state.notify_all()
        if wait:
            for w in self._workers:
                w.join()

    def worker_stats(self) -> Dict[str, Tuple[int, int]]:
        """Per-worker (executed, stolen); only meaningful after shutdown(wait=True)."""
        return {w.name: (w.executed, w.stolen) for w in self._workers if not w.is_alive()}


# --------------------------------------------------------------------------
# demo workload

def fetch_page(site: str, page: int, latency: float) -> int:
    time.sleep(latency)
    if page == 13:
        raise ValueError(f"{site}: page {page} is cursed")
    return len(site) * 100 + page


def balancer(pool: WorkStealingPool, stop: threading.Event, moves: List[int]) -> None:
    while not stop.wait(0.01):
        moves.append(pool.rebalance())


def collector(results: "queue.Queue[Optional[Tuple[str, int]]]",
              totals: Dict[str, int]) -> None:
    while True:
        item = results.get()
        try:
            if item is None:
                return
            site, size = item
            totals[site] = totals.get(site, 0) + size
        finally:
            results.task_done()


def main() -> None:
    rng = random.Random(3)
    pool = WorkStealingPool(workers=4, capacity=12)
    results: "queue.Queue[Optional[Tuple[str, int]]]" = queue.Queue()
    totals: Dict[str, int] = {}
    coll = threading.Thread(target=collector, args=(results, totals), name="collector")
    coll.start()

    stop = threading.Event()
    moves: List[int] = []
    bal = threading.Thread(target=balancer, args=(pool, stop, moves), name="balancer")
    bal.start()

    def on_done(site: str, fut: Future) -> None:
        if fut.exception() is None:
            results.put((site, fut.result()))

    futures: Dict[Future, Tuple[str, int]] = {}
    for site in ("alpha.test", "beta.test", "gamma.test"):
        for page in range(20):
            # Skewed latencies so that some workers run dry and have to steal.
            latency = 0.02 if page % 7 == 0 else rng.uniform(0.0005, 0.003)
            fut = pool.submit(fetch_page, site, page, latency)
            fut.add_done_callback(functools.partial(on_done, site))
            futures[fut] = (site, page)

    done, not_done = wait(futures, timeout=10)
    errors = []
    for fut in done:
        exc = fut.exception()
        if exc is not None:
            errors.append(f"{futures[fut]}: {exc}")

    stop.set()
    bal.join()
    pool.shutdown(wait=True)
    results.join()
    results.put(None)
    coll.join()

    print("per-site totals:", dict(sorted(totals.items())))
    print(f"completed={len(done)} unfinished={len(not_done)} errors={len(errors)}")
    for line in sorted(errors):
        print("  error:", line)
    print("worker (executed, stolen):", pool.worker_stats())
    print(f"balancer moved {sum(moves)} items; {pool.describe()}")


if __name__ == "__main__":
    main()
