from _build import ex, write

E = [
ex("thr008-01", '''
import threading


class Cache:
    def __init__(self, capacity):
        self.capacity = capacity
        self._data = {}
        self._lock = threading.Lock()

    def put(self, key, value):
        with self._lock:
            self._data[key] = value
            self._evict()

    def _evict(self):
        with self._lock:
            while len(self._data) > self.capacity:
                self._data.pop(next(iter(self._data)))
''', """`put` holds `self._lock` and calls `_evict`, which tries to take the same non-reentrant `Lock`
again; a `Lock` does not know its owner, so the thread waits for itself forever. Make `_evict`
assume the caller holds the lock (or switch to `RLock` if re-entry is intended).""",
fix=[("""    def _evict(self):
        with self._lock:
            while len(self._data) > self.capacity:
                self._data.pop(next(iter(self._data)))""", """    def _evict(self):
        while len(self._data) > self.capacity:
            self._data.pop(next(iter(self._data)))""")]),

ex("thr008-02", '''
import threading

registry_lock = threading.Lock()
registry = {}


def register(name, handler):
    with registry_lock:
        if is_registered(name):
            raise KeyError(name)
        registry[name] = handler


def is_registered(name):
    with registry_lock:
        return name in registry
''', """`register` holds `registry_lock` and calls `is_registered`, which acquires the same `Lock`; the
first registration deadlocks the calling thread. Check membership directly inside `register`, and
keep the locking version for outside callers.""",
fix=[("""        if is_registered(name):""", """        if name in registry:""")]),

ex("thr008-03", '''
import threading


class Account:
    def __init__(self, balance):
        self.balance = balance
        self.lock = threading.Lock()

    def get_balance(self):
        with self.lock:
            return self.balance

    def withdraw(self, amount):
        with self.lock:
            if self.get_balance() < amount:
                raise ValueError("insufficient funds")
            self.balance -= amount
''', """`withdraw` takes `self.lock` and then calls `get_balance`, which takes it again: a plain `Lock`
is not reentrant, so every withdrawal hangs. Read `self.balance` directly while already holding the
lock.""",
fix=[("if self.get_balance() < amount:", "if self.balance < amount:")]),

ex("thr008-04", '''
import threading

lock = threading.Lock()
events = []


def log_event(evt):
    with lock:
        events.append(evt)


def process(batch):
    with lock:
        for item in batch:
            if item.failed:
                log_event(("failed", item.id))
''', """`process` holds `lock` while calling `log_event`, which acquires `lock` again, so the first failed
item deadlocks the thread. Append directly under the lock already held, or collect the failures and
log them after releasing it.""",
fix=[("""    with lock:
        for item in batch:
            if item.failed:
                log_event(("failed", item.id))""", """    failed = [("failed", item.id) for item in batch if item.failed]
    for evt in failed:
        log_event(evt)""")]),

ex("thr008-05", '''
import threading


class Counter:
    def __init__(self):
        self.value = 0
        self.mutex = threading.Lock()

    def increment(self):
        with self.mutex:
            self.value += 1

    def add(self, n):
        with self.mutex:
            for _ in range(n):
                self.increment()
''', """`add` takes `self.mutex` and then calls `increment`, which takes the same non-reentrant lock: the
thread blocks on itself on the first iteration. Update `self.value` directly inside `add`.""",
fix=[("""        with self.mutex:
            for _ in range(n):
                self.increment()""", """        with self.mutex:
            self.value += n""")]),

ex("thr008-06", '''
import threading

state_lock = threading.Lock()
state = {"running": False}


def start_service(run):
    with state_lock:
        if state["running"]:
            return
        with state_lock:
            state["running"] = True
    run()
''', """The nested `with state_lock:` acquires a `Lock` the thread already holds; `Lock` is not
reentrant, so `start_service` deadlocks every time it gets past the check. Remove the inner
`with`, the outer one already protects the update.""",
fix=[("""        with state_lock:
            state["running"] = True""", """        state["running"] = True""")]),

ex("thr008-07", '''
import threading


class Playlist:
    def __init__(self):
        self.tracks = []
        self._lock = threading.Lock()

    def add(self, track):
        with self._lock:
            self.tracks.append(track)

    def add_album(self, album):
        with self._lock:
            for track in album.tracks:
                self.add(track)
''', """`add_album` holds `_lock` while calling `add`, which acquires `_lock` again, so adding an album
hangs the thread. Extend the list directly in `add_album` instead of going through the locking
method.""",
fix=[("""        with self._lock:
            for track in album.tracks:
                self.add(track)""", """        with self._lock:
            self.tracks.extend(album.tracks)""")]),

ex("thr008-08", '''
import threading

conn_lock = threading.Lock()
connections = []


def close_all():
    with conn_lock:
        for conn in list(connections):
            close_one(conn)


def close_one(conn):
    with conn_lock:
        connections.remove(conn)
    conn.close()
''', """`close_all` holds `conn_lock` and calls `close_one`, which acquires it again and blocks forever on
the first connection. Take the list out under the lock and close the connections after releasing
it.""",
fix=[("""    with conn_lock:
        for conn in list(connections):
            close_one(conn)""", """    with conn_lock:
        conns = list(connections)
        connections.clear()
    for conn in conns:
        conn.close()""")]),

ex("thr008-09", '''
import threading


class Scheduler:
    def __init__(self):
        self.jobs = []
        self.lock = threading.Lock()

    def schedule(self, job):
        with self.lock:
            self.jobs.append(job)
            self.jobs.sort(key=lambda j: j.when)

    def reschedule(self, job, when):
        with self.lock:
            self.jobs.remove(job)
            job.when = when
            self.schedule(job)
''', """`reschedule` holds `self.lock` and calls `schedule`, which acquires the same `Lock`; the thread
deadlocks on itself and every other scheduler call hangs behind it. Do the insert inline, or factor
out an unlocked `_insert` helper used by both.""",
fix=[("""    def schedule(self, job):
        with self.lock:
            self.jobs.append(job)
            self.jobs.sort(key=lambda j: j.when)""", """    def schedule(self, job):
        with self.lock:
            self._insert(job)

    def _insert(self, job):
        self.jobs.append(job)
        self.jobs.sort(key=lambda j: j.when)"""), ("""            job.when = when
            self.schedule(job)""", """            job.when = when
            self._insert(job)""")]),

ex("thr008-10", '''
import threading

cache_lock = threading.Lock()
cache = {}


def get(key):
    with cache_lock:
        return cache.get(key)


def get_or_set(key, make):
    with cache_lock:
        value = get(key)
        if value is None:
            value = cache[key] = make()
        return value
''', """`get_or_set` holds `cache_lock` and calls `get`, which acquires it again; the first lookup
deadlocks the thread. Use `cache.get(key)` directly inside the locked block.""",
fix=[("""        value = get(key)""", """        value = cache.get(key)""")]),

ex("thr008-11", '''
import threading


class Document:
    def __init__(self):
        self.lines = []
        self.lock = threading.Lock()

    def word_count(self):
        with self.lock:
            return sum(len(line.split()) for line in self.lines)

    def save(self, path):
        with self.lock:
            with open(path, "w") as fh:
                fh.write("\\n".join(self.lines))
                fh.write(f"\\n# words: {self.word_count()}\\n")
''', """`save` calls `self.word_count()` while holding `self.lock`, and `word_count` takes the same
non-reentrant lock, so saving hangs. Compute the count from `self.lines` inline while the lock is
held.""",
fix=[("""{self.word_count()}""", """{sum(len(line.split()) for line in self.lines)}""")]),

ex("thr008-12", '''
import threading

mutex = threading.Lock()
balance = 0


def deposit(amount):
    global balance
    mutex.acquire()
    try:
        balance += amount
        if amount > 10000:
            flag_large(amount)
    finally:
        mutex.release()


def flag_large(amount):
    with mutex:
        print("large deposit", amount, "new balance", balance)
''', """`deposit` holds `mutex` and calls `flag_large`, which enters `with mutex:` on the same lock:
large deposits deadlock the thread. Pass the balance to `flag_large` and call it after releasing
the lock.""",
fixed='''
import threading

mutex = threading.Lock()
balance = 0


def deposit(amount):
    global balance
    with mutex:
        balance += amount
        new_balance = balance
    if amount > 10000:
        flag_large(amount, new_balance)


def flag_large(amount, new_balance):
    print("large deposit", amount, "new balance", new_balance)
'''),

ex("thr008-13", '''
import threading


class Pool:
    def __init__(self, make):
        self.make = make
        self.free = []
        self.lock = threading.Lock()

    def size(self):
        with self.lock:
            return len(self.free)

    def release(self, conn):
        with self.lock:
            if self.size() < 10:
                self.free.append(conn)
                return
        conn.close()
''', """`release` holds `self.lock` and calls `self.size()`, which acquires it again: every connection
returned to the pool deadlocks the returning thread. Use `len(self.free)` directly.""",
fix=[("if self.size() < 10:", "if len(self.free) < 10:")]),

ex("thr008-14", '''
import threading

_init_lock = threading.Lock()
_client = None


def client():
    global _client
    with _init_lock:
        if _client is None:
            _client = _connect()
        return _client


def _connect():
    with _init_lock:
        import socket
        return socket.create_connection(("db.internal", 5432))
''', """`client()` holds `_init_lock` when it calls `_connect`, which acquires the same lock, so the very
first call deadlocks. Only the outer function should take the lock.""",
fix=[("""def _connect():
    with _init_lock:
        import socket
        return socket.create_connection(("db.internal", 5432))""", """def _connect():
    import socket
    return socket.create_connection(("db.internal", 5432))""")]),

ex("thr008-15", '''
import threading


class Tree:
    def __init__(self):
        self.children = {}
        self.lock = threading.Lock()

    def insert(self, path, value):
        with self.lock:
            head, *rest = path
            if not rest:
                self.children[head] = value
                return
            self.insert(rest, value)
''', """`insert` recurses while holding `self.lock`, and the recursive call takes the same `Lock` again,
so any path longer than one element deadlocks. Take the lock once in a public method and recurse in
an unlocked helper (or use `RLock`).""",
fixed='''
import threading


class Tree:
    def __init__(self):
        self.children = {}
        self.lock = threading.Lock()

    def insert(self, path, value):
        with self.lock:
            self._insert(path, value)

    def _insert(self, path, value):
        head, *rest = path
        if not rest:
            self.children[head] = value
            return
        self._insert(rest, value)
'''),
]

write("THR008", "lock-reacquired-while-held", E)
