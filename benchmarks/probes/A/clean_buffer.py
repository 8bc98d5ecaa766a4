"""Ledger simulation: producer threads post transfers into a bounded
buffer, consumer threads apply them to accounts (each with its own lock),
and an asyncio notifier running on its own loop thread collects audit
events.
"""

import asyncio
import contextlib
import random
import threading
import time


class BoundedBuffer:
    def __init__(self, capacity):
        self._items = []
        self._capacity = capacity
        self._cond = threading.Condition(threading.Lock())
        self._closed = False

    def put(self, item):
        with self._cond:
            self._cond.wait_for(lambda: self._closed or len(self._items) < self._capacity)
            if self._closed:
                raise RuntimeError("buffer closed")
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    return None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    self._cond.wait(remaining)
                else:
                    self._cond.wait()
            item = self._items.pop(0)
            self._cond.notify_all()
            return item

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Account:
    def __init__(self, acct_id, balance):
        self.id = acct_id
        self.balance = balance
        self.lock = threading.Lock()


class Ledger:
    def __init__(self, accounts, max_concurrent=3, notifier=None):
        self.accounts = {a.id: a for a in accounts}
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._stats_lock = threading.Lock()
        self.applied = 0
        self.rejected = 0
        self._notifier = notifier

    def transfer(self, src_id, dst_id, amount):
        if src_id == dst_id:
            return False
        src, dst = self.accounts[src_id], self.accounts[dst_id]
        # always lock in ascending account-id order, whichever way the money flows
        first, second = (src, dst) if src.id < dst.id else (dst, src)
        self._slots.acquire()
        try:
            with first.lock:
                with second.lock:
                    ok = src.balance >= amount
                    if ok:
                        src.balance -= amount
                        dst.balance += amount
        finally:
            self._slots.release()
        with self._stats_lock:
            if ok:
                self.applied += 1
            else:
                self.rejected += 1
        if self._notifier is not None:
            self._notifier.emit(("transfer", src_id, dst_id, amount, ok))
        return ok

    def total(self):
        ordered = sorted(self.accounts.values(), key=lambda a: a.id)
        with contextlib.ExitStack() as stack:
            for a in ordered:          # same global order as transfer()
                stack.enter_context(a.lock)
            return sum(a.balance for a in ordered)


class AuditNotifier:
    """Runs an event loop in a background thread; other threads hand it
    events with emit(), which is safe to call from any thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.events = []
        self._thread = threading.Thread(target=self._run, name="audit-loop")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self):
        self._thread.start()

    def emit(self, event):
        self.loop.call_soon_threadsafe(self.events.append, event)

    async def _count(self):
        return len(self.events)

    def count(self):
        return asyncio.run_coroutine_threadsafe(self._count(), self.loop).result(5)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def main():
    notifier = AuditNotifier()
    notifier.start()
    ledger = Ledger([Account(i, 1000) for i in range(6)], notifier=notifier)
    buf = BoundedBuffer(16)

    def producer(seed, n):
        rng = random.Random(seed)
        for _ in range(n):
            src = rng.randrange(6)
            dst = (src + rng.randrange(1, 6)) % 6
            buf.put((src, dst, rng.randrange(1, 300)))

    def consumer():
        while True:
            item = buf.get()
            if item is None:
                return
            ledger.transfer(*item)
            time.sleep(0.0005)   # simulated downstream latency, no lock held

    producers = [threading.Thread(target=producer, args=(s, 200)) for s in range(4)]
    consumers = [threading.Thread(target=consumer) for _ in range(3)]
    for t in producers + consumers:
        t.start()
    for t in producers:
        t.join()
    buf.close()
    for t in consumers:
        t.join()
    assert ledger.total() == 6000
    events = notifier.count()
    notifier.stop()
    assert events == ledger.applied + ledger.rejected == 800, events
    print("ok", ledger.applied, ledger.rejected)


if __name__ == "__main__":
    main()
