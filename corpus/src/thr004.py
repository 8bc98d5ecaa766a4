from _build import ex, write

E = [
ex("thr004-01", '''
import threading

balances = {}
balances_lock = threading.Lock()


def transfer(src, dst, amount):
    balances_lock.acquire()
    if balances[src] < amount:
        balances_lock.release()
        raise ValueError("insufficient funds")
    balances[src] -= amount
    balances[dst] += amount
    balances_lock.release()
''', """If `dst` is not in `balances`, `balances[dst] += amount` raises `KeyError` after the lock was
taken, and the final `release()` never runs; every later `transfer` then blocks forever. `with
balances_lock:` releases the lock on every exit path, including exceptions and the early raise.""",
fixed='''
import threading

balances = {}
balances_lock = threading.Lock()


def transfer(src, dst, amount):
    with balances_lock:
        if balances[src] < amount:
            raise ValueError("insufficient funds")
        balances[src] -= amount
        balances[dst] += amount
'''),

ex("thr004-02", '''
import json
import threading


class Settings:
    def __init__(self, path):
        self.path = path
        self.values = {}
        self.lock = threading.Lock()

    def reload(self):
        self.lock.acquire()
        with open(self.path) as fh:
            self.values = json.load(fh)
        self.lock.release()
''', """A missing file or malformed JSON makes `open` or `json.load` raise while `self.lock` is held; the
`release()` is skipped and every reader of the settings deadlocks. Holding the lock with `with
self.lock:` guarantees it is released.""",
fixed='''
import json
import threading


class Settings:
    def __init__(self, path):
        self.path = path
        self.values = {}
        self.lock = threading.Lock()

    def reload(self):
        with open(self.path) as fh:
            values = json.load(fh)
        with self.lock:
            self.values = values
''', notes="the fix also moves file I/O out of the critical section"),

ex("thr004-03", '''
import threading

log_lock = threading.Lock()


def append_event(path, event):
    log_lock.acquire()
    fh = open(path, "a")
    fh.write(event.to_line() + "\\n")
    fh.close()
    log_lock.release()
''', """`event.to_line()` or the write can raise (a bad event, a full disk), which leaves `log_lock`
held and blocks every other thread that logs. Use `with log_lock:` and a `with open(...)` so both the
lock and the file are released on errors.""",
fixed='''
import threading

log_lock = threading.Lock()


def append_event(path, event):
    with log_lock, open(path, "a") as fh:
        fh.write(event.to_line() + "\\n")
'''),

ex("thr004-04", '''
import threading


class ConnectionPool:
    def __init__(self, factory, size):
        self.factory = factory
        self.idle = [factory() for _ in range(size)]
        self.mutex = threading.Lock()

    def get(self):
        self.mutex.acquire()
        if not self.idle:
            self.idle.append(self.factory())
        conn = self.idle.pop()
        self.mutex.release()
        return conn
''', """`self.factory()` opens a new connection while the pool's mutex is held; if it raises (server
down, timeout) the mutex is never released and the whole pool freezes. A `with self.mutex:` block
releases it whatever happens.""",
fixed='''
import threading


class ConnectionPool:
    def __init__(self, factory, size):
        self.factory = factory
        self.idle = [factory() for _ in range(size)]
        self.mutex = threading.Lock()

    def get(self):
        with self.mutex:
            if self.idle:
                return self.idle.pop()
        return self.factory()
''', notes="the fix also creates the new connection outside the lock"),

ex("thr004-05", '''
import threading

_seen = set()
_seen_lock = threading.RLock()


def mark_seen(url):
    _seen_lock.acquire()
    normalized = url.lower().rstrip("/")
    first = normalized not in _seen
    _seen.add(normalized)
    _seen_lock.release()
    return first
''', """An `RLock` held by a thread that hit an exception stays held too: if `url` is not a string,
`url.lower()` raises and `_seen_lock` is never released, so other crawler threads block on it.
Use `with _seen_lock:`.""",
fixed='''
import threading

_seen = set()
_seen_lock = threading.RLock()


def mark_seen(url):
    normalized = url.lower().rstrip("/")
    with _seen_lock:
        first = normalized not in _seen
        _seen.add(normalized)
    return first
'''),

ex("thr004-06", '''
import threading


class RateLimiter:
    def __init__(self, max_calls):
        self.slots = threading.Semaphore(max_calls)

    def call(self, fn, *args):
        self.slots.acquire()
        result = fn(*args)
        self.slots.release()
        return result
''', """If `fn` raises, the semaphore slot taken by `acquire()` is never returned; after `max_calls`
failures every caller blocks forever. Hold the slot with `with self.slots:` so it is released on
errors too.""",
fixed='''
import threading


class RateLimiter:
    def __init__(self, max_calls):
        self.slots = threading.Semaphore(max_calls)

    def call(self, fn, *args):
        with self.slots:
            return fn(*args)
'''),

ex("thr004-07", '''
import threading

inventory = {"apples": 10, "pears": 4}
stock_lock = threading.Lock()


def reserve(item, qty):
    stock_lock.acquire()
    available = inventory[item]
    if available >= qty:
        inventory[item] = available - qty
        ok = True
    else:
        ok = False
    stock_lock.release()
    return ok
''', """An unknown `item` makes `inventory[item]` raise `KeyError` with `stock_lock` held; the release at
the end is skipped and every other `reserve` call hangs. The `with` statement releases the lock on
that exception path.""",
fixed='''
import threading

inventory = {"apples": 10, "pears": 4}
stock_lock = threading.Lock()


def reserve(item, qty):
    with stock_lock:
        available = inventory[item]
        if available < qty:
            return False
        inventory[item] = available - qty
        return True
'''),

ex("thr004-08", '''
import sqlite3
import threading


class Store:
    def __init__(self, path):
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.db_lock = threading.Lock()

    def save(self, key, value):
        self.db_lock.acquire()
        self.conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))
        self.conn.commit()
        self.db_lock.release()
''', """`execute` raises on a locked database or a constraint violation, and then `db_lock` is never
released; the next `save` from any thread blocks forever. Use `with self.db_lock:` so the lock is
released even when the statement fails.""",
fix=[("""
        self.db_lock.acquire()
        self.conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))
        self.conn.commit()
        self.db_lock.release()""", """
        with self.db_lock:
            self.conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))
            self.conn.commit()""")]),

ex("thr004-09", '''
import threading
import time

stats = {"requests": 0, "latency": 0.0}
stats_lock = threading.Lock()


def timed(handler, request):
    start = time.perf_counter()
    response = handler(request)
    stats_lock.acquire()
    stats["requests"] += 1
    stats["latency"] += time.perf_counter() - start
    stats_lock.release()
    return response
''', """The region between `acquire()` and `release()` indexes a dict and calls `time.perf_counter()`;
any exception there (for instance a `KeyError` after someone resets `stats`) leaks `stats_lock`.
`with stats_lock:` is both shorter and exception-safe.""",
fix=[("""
    stats_lock.acquire()
    stats["requests"] += 1
    stats["latency"] += time.perf_counter() - start
    stats_lock.release()""", """
    elapsed = time.perf_counter() - start
    with stats_lock:
        stats["requests"] += 1
        stats["latency"] += elapsed""")]),

ex("thr004-10", '''
import threading


class Printer:
    def __init__(self, device):
        self.device = device
        self.busy = threading.Lock()

    def print_job(self, pages):
        self.busy.acquire()
        for page in pages:
            self.device.send(page.render())
        self.busy.release()
''', """A page that fails to render, or a device error in `send`, propagates out of the loop with
`self.busy` still held; the printer then looks busy forever to every other thread. Wrap the loop
in `with self.busy:`.""",
fix=[("""
        self.busy.acquire()
        for page in pages:
            self.device.send(page.render())
        self.busy.release()""", """
        with self.busy:
            for page in pages:
                self.device.send(page.render())""")]),

ex("thr004-11", """
import threading
import time


class BoundedCache:
    def __init__(self, capacity):
        self.capacity = capacity
        self.entries = {}
        self.stamps = {}
        self.lock = threading.Lock()

    def put(self, key, value):
        self.lock.acquire()
        self.entries[key] = value
        self.stamps[key] = time.monotonic()
        if len(self.entries) > self.capacity:
            oldest = min(self.entries, key=self.stamps.__getitem__)
            del self.entries[oldest]
            del self.stamps[oldest]
        self.lock.release()
""", """Eviction calls `min()` with a key function that raises `KeyError` if `stamps` and `entries`
ever disagree (or `key` is unhashable); the lock is then left held and every later `put` or `get`
on the cache hangs. `with self.lock:` releases it on the exception path.""",
fix=[("""
        self.lock.acquire()
        self.entries[key] = value
        self.stamps[key] = time.monotonic()
        if len(self.entries) > self.capacity:
            oldest = min(self.entries, key=self.stamps.__getitem__)
            del self.entries[oldest]
            del self.stamps[oldest]
        self.lock.release()""", """
        with self.lock:
            self.entries[key] = value
            self.stamps[key] = time.monotonic()
            if len(self.entries) > self.capacity:
                oldest = min(self.entries, key=self.stamps.__getitem__)
                del self.entries[oldest]
                del self.stamps[oldest]""")]),

ex("thr004-12", '''
import threading


class Channel:
    def __init__(self):
        self.messages = []
        self.cond = threading.Condition()

    def publish(self, message):
        self.cond.acquire()
        self.messages.append(message.encode("utf-8"))
        self.cond.notify_all()
        self.cond.release()
''', """If `message` is not a string, `message.encode` raises while the condition's lock is held and the
`release()` is skipped; subscribers waiting on `self.cond` and every other publisher then hang.
A condition is a context manager, so use `with self.cond:`.""",
fix=[("""
        self.cond.acquire()
        self.messages.append(message.encode("utf-8"))
        self.cond.notify_all()
        self.cond.release()""", """
        data = message.encode("utf-8")
        with self.cond:
            self.messages.append(data)
            self.cond.notify_all()""")]),

ex("thr004-13", '''
import threading
import requests

token_lock = threading.Lock()
token = None


def get_token(session: requests.Session):
    global token
    token_lock.acquire()
    if token is None:
        resp = session.post("https://auth.example.com/token", timeout=5)
        resp.raise_for_status()
        token = resp.json()["access_token"]
    token_lock.release()
    return token
''', """`raise_for_status()` raises on a 401 or 500 while `token_lock` is held, and the lock is never
released, so every request thread blocks in `get_token` from then on. `with token_lock:` releases
it when the auth call fails.""",
fix=[("""
    token_lock.acquire()
    if token is None:
        resp = session.post("https://auth.example.com/token", timeout=5)
        resp.raise_for_status()
        token = resp.json()["access_token"]
    token_lock.release()
    return token""", """
    with token_lock:
        if token is None:
            resp = session.post("https://auth.example.com/token", timeout=5)
            resp.raise_for_status()
            token = resp.json()["access_token"]
        return token""")],
notes="holding a lock across a network call is a separate smell; here it serialises token refreshes on purpose"),

ex("thr004-14", '''
import threading


class Histogram:
    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self._lock = threading.Lock()

    def observe(self, value):
        self._lock.acquire()
        index = next(i for i, b in enumerate(self.bounds) if value <= b)
        self.counts[index] += 1
        self._lock.release()
''', """For a value above the last bound, `next()` raises `StopIteration` with `_lock` held and the
histogram is locked for good. Compute the bucket outside the lock and update the count inside a
`with self._lock:` block.""",
fixed='''
import bisect
import threading


class Histogram:
    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self._lock = threading.Lock()

    def observe(self, value):
        index = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self.counts[index] += 1
'''),

ex("thr004-15", '''
import threading
import pickle


class Checkpointer:
    def __init__(self, path):
        self.path = path
        self.write_lock = threading.Lock()

    def save(self, state):
        self.write_lock.acquire()
        with open(self.path, "wb") as fh:
            pickle.dump(state, fh)
        self.write_lock.release()
''', """`pickle.dump` raises on unpicklable state (a lock, an open socket), and then `write_lock` stays
held so the next checkpoint blocks forever. `with self.write_lock:` releases it when pickling
fails.""",
fix=[("""
        self.write_lock.acquire()
        with open(self.path, "wb") as fh:
            pickle.dump(state, fh)
        self.write_lock.release()""", """
        with self.write_lock, open(self.path, "wb") as fh:
            pickle.dump(state, fh)""")]),
]

write("THR004", "acquire-without-release-guarantee", E)
