from _build import ex, write

E = [
ex("thr023-01", '''
import threading


class Recorder:
    def __init__(self):
        self.items = []
        self.count = 0

    def record(self, item):
        with threading.Lock():
            self.items.append(item)
            self.count += 1
''', """`threading.Lock()` creates a brand-new lock on every call, so each thread acquires its own lock
and nothing is excluded: the `count += 1` read-modify-write still races. Create one lock in
`__init__` and acquire that shared object.""",
fixed='''
import threading


class Recorder:
    def __init__(self):
        self.items = []
        self.count = 0
        self._lock = threading.Lock()

    def record(self, item):
        with self._lock:
            self.items.append(item)
            self.count += 1
'''),

ex("thr023-02", '''
import threading

hits = {}


def count_hit(path):
    with threading.Lock():
        hits[path] = hits.get(path, 0) + 1
''', """The lock is created inside the `with` statement, so every request thread gets a fresh, uncontended
lock and the `hits.get(...) + 1` update can still lose increments. Use a module-level lock shared
by all callers.""",
fixed='''
import threading

hits = {}
hits_lock = threading.Lock()


def count_hit(path):
    with hits_lock:
        hits[path] = hits.get(path, 0) + 1
'''),

ex("thr023-03", '''
import threading


def append_line(path, line):
    lock = threading.Lock()
    with lock:
        with open(path, "a") as fh:
            fh.write(line + "\\n")
''', """`lock` is a local created anew on each call and never shared, so concurrent `append_line` calls
never wait for each other and their writes can interleave. The lock must live outside the function
so every caller acquires the same object.""",
fixed='''
import threading

_append_lock = threading.Lock()


def append_line(path, line):
    with _append_lock:
        with open(path, "a") as fh:
            fh.write(line + "\\n")
'''),

ex("thr023-04", '''
import threading


class Account:
    def __init__(self, balance):
        self.balance = balance

    def withdraw(self, amount):
        with threading.RLock():
            if self.balance < amount:
                raise ValueError("insufficient funds")
            self.balance -= amount
''', """A fresh `RLock()` per call protects nothing: two threads can both pass the balance check and both
withdraw, overdrawing the account. Store one lock on the instance and use it for every access to
`balance`.""",
fixed='''
import threading


class Account:
    def __init__(self, balance):
        self.balance = balance
        self._lock = threading.RLock()

    def withdraw(self, amount):
        with self._lock:
            if self.balance < amount:
                raise ValueError("insufficient funds")
            self.balance -= amount
'''),

ex("thr023-05", '''
import threading

_cache = {}


def get_user(user_id, load):
    with threading.Lock():
        if user_id not in _cache:
            _cache[user_id] = load(user_id)
        return _cache[user_id]
''', """The lock around the check-then-insert is created on the spot, so two threads missing the same
`user_id` both load it: the `with` adds overhead but no exclusion. Share one module-level lock.""",
fixed='''
import threading

_cache = {}
_cache_lock = threading.Lock()


def get_user(user_id, load):
    with _cache_lock:
        if user_id not in _cache:
            _cache[user_id] = load(user_id)
        return _cache[user_id]
''', notes="loading under the lock serialises misses; fine for a small cache"),

ex("thr023-06", '''
import threading


class Inventory:
    def __init__(self):
        self.stock = {}

    def add(self, sku, qty):
        guard = threading.Lock()
        with guard:
            self.stock[sku] = self.stock.get(sku, 0) + qty
''', """`guard` is created inside `add` and dropped when it returns, so concurrent `add` calls each hold
a different lock and stock updates are lost. Keep the lock on the instance.""",
fixed='''
import threading


class Inventory:
    def __init__(self):
        self.stock = {}
        self.guard = threading.Lock()

    def add(self, sku, qty):
        with self.guard:
            self.stock[sku] = self.stock.get(sku, 0) + qty
'''),

ex("thr023-07", '''
import threading

next_id = 0


def allocate_id():
    global next_id
    with threading.Lock():
        next_id += 1
        return next_id
''', """Every call builds a new lock, so two threads can read the same `next_id` and return duplicate
ids. A single module-level lock makes the increment and the read atomic together.""",
fixed='''
import threading

next_id = 0
_id_lock = threading.Lock()


def allocate_id():
    global next_id
    with _id_lock:
        next_id += 1
        return next_id
'''),

ex("thr023-08", '''
import threading


class EventLog:
    def __init__(self, sink):
        self.sink = sink
        self.buffer = []

    def emit(self, event):
        with threading.Condition():
            self.buffer.append(event)
            if len(self.buffer) >= 100:
                self.sink.write(self.buffer)
                self.buffer = []
''', """A `Condition()` created in the `with` statement wraps a new lock each time, so two threads can
both flush the same buffer or lose events appended between the write and the reset. Create the
lock once on the instance.""",
fixed='''
import threading


class EventLog:
    def __init__(self, sink):
        self.sink = sink
        self.buffer = []
        self._lock = threading.Lock()

    def emit(self, event):
        with self._lock:
            self.buffer.append(event)
            if len(self.buffer) < 100:
                return
            batch, self.buffer = self.buffer, []
        self.sink.write(batch)
'''),

ex("thr023-09", '''
import threading
import sqlite3


def record_visit(db_path, page):
    write_lock = threading.Lock()
    with write_lock:
        conn = sqlite3.connect(db_path)
        conn.execute("UPDATE pages SET visits = visits + 1 WHERE name = ?", (page,))
        conn.commit()
        conn.close()
''', """`write_lock` is local to each call, so it never makes another thread wait; concurrent visits
still collide on the database and can fail with "database is locked". Share one lock across calls.""",
fixed='''
import threading
import sqlite3

write_lock = threading.Lock()


def record_visit(db_path, page):
    with write_lock:
        conn = sqlite3.connect(db_path)
        conn.execute("UPDATE pages SET visits = visits + 1 WHERE name = ?", (page,))
        conn.commit()
        conn.close()
'''),

ex("thr023-10", '''
import threading


class RoundRobin:
    def __init__(self, backends):
        self.backends = backends
        self.index = 0

    def pick(self):
        with threading.Lock():
            backend = self.backends[self.index % len(self.backends)]
            self.index += 1
        return backend
''', """Because each call acquires a new lock, two threads can read the same `self.index` and send
their requests to the same backend while skipping another. Create the lock in `__init__`.""",
fixed='''
import threading


class RoundRobin:
    def __init__(self, backends):
        self.backends = backends
        self.index = 0
        self._lock = threading.Lock()

    def pick(self):
        with self._lock:
            backend = self.backends[self.index % len(self.backends)]
            self.index += 1
        return backend
'''),

ex("thr023-11", '''
import threading

seen_urls = set()


def should_crawl(url):
    with threading.Lock():
        if url in seen_urls:
            return False
        seen_urls.add(url)
        return True
''', """The membership test and the `add` are meant to be atomic, but the lock is new on every call, so
two crawler threads can both see the URL as new and crawl it twice. Use one shared lock.""",
fixed='''
import threading

seen_urls = set()
seen_lock = threading.Lock()


def should_crawl(url):
    with seen_lock:
        if url in seen_urls:
            return False
        seen_urls.add(url)
        return True
'''),

ex("thr023-12", '''
import threading


class Metrics:
    def __init__(self):
        self.latencies = []

    def observe(self, seconds):
        mutex = threading.Lock()
        with mutex:
            self.latencies.append(seconds)
            if len(self.latencies) > 1000:
                del self.latencies[:500]
''', """`mutex` is a fresh lock per call, so the trim can run in two threads at once and delete twice as
many samples (or race with appends). Make the mutex an attribute created once.""",
fixed='''
import threading


class Metrics:
    def __init__(self):
        self.latencies = []
        self.mutex = threading.Lock()

    def observe(self, seconds):
        with self.mutex:
            self.latencies.append(seconds)
            if len(self.latencies) > 1000:
                del self.latencies[:500]
'''),

ex("thr023-13", '''
import threading
import json


class JsonStore:
    def __init__(self, path):
        self.path = path

    def update(self, key, value):
        with threading.Lock():
            with open(self.path) as fh:
                data = json.load(fh)
            data[key] = value
            with open(self.path, "w") as fh:
                json.dump(data, fh)
''', """The read-modify-write of the JSON file is "protected" by a lock nobody else can see, so two
concurrent updates both read the old file and one update is lost. Hold a lock shared by all
`update` calls.""",
fixed='''
import threading
import json


class JsonStore:
    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()

    def update(self, key, value):
        with self._lock:
            with open(self.path) as fh:
                data = json.load(fh)
            data[key] = value
            with open(self.path, "w") as fh:
                json.dump(data, fh)
'''),

ex("thr023-14", '''
import threading

active_sessions = []


def register_session(session):
    with threading.Semaphore():
        active_sessions.append(session)
        if len(active_sessions) > 100:
            active_sessions.pop(0).close()
''', """A `Semaphore()` created in the `with` statement is a new one-permit semaphore per call, so it
never blocks anyone; two threads can both pop and close sessions at the same time. Share a single
lock at module level.""",
fixed='''
import threading

active_sessions = []
sessions_lock = threading.Lock()


def register_session(session):
    with sessions_lock:
        active_sessions.append(session)
        evicted = active_sessions.pop(0) if len(active_sessions) > 100 else None
    if evicted is not None:
        evicted.close()
'''),

ex("thr023-15", '''
import threading


class Ledger:
    entries = []

    @classmethod
    def post(cls, entry):
        with threading.Lock():
            entry["seq"] = len(cls.entries)
            cls.entries.append(entry)
''', """Two threads posting at once can compute the same `seq` because the lock is created per call and
never contended. A class-level lock is shared by every caller of `post`.""",
fixed='''
import threading


class Ledger:
    entries = []
    _lock = threading.Lock()

    @classmethod
    def post(cls, entry):
        with cls._lock:
            entry["seq"] = len(cls.entries)
            cls.entries.append(entry)
'''),
]

write("THR023", "fresh-lock-in-with", E)
