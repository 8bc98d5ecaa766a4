from _build import ex, write

E = [
ex("thr015-01", '''
import threading

_client = None
_lock = threading.Lock()


def get_client(connect):
    global _client
    if _client is None:
        with _lock:
            _client = connect()
    return _client


def handle(request, connect):
    return get_client(connect).send(request)


def serve(requests_, connect):
    for r in requests_:
        threading.Thread(target=handle, args=(r, connect)).start()
''', """The lock is taken only after the unlocked `None` test, and the test is not repeated inside it,
so every thread that saw `None` creates its own client in turn; connections leak and callers hold
different clients. Re-check `_client` inside the lock (double-checked locking).""",
fix=[("""        with _lock:
            _client = connect()""", """        with _lock:
            if _client is None:
                _client = connect()""")]),

ex("thr015-02", '''
import threading


class Service:
    def __init__(self, factory):
        self.factory = factory
        self._pool = None

    def pool(self):
        if self._pool is None:
            self._pool = self.factory()
        return self._pool

    def work(self, job):
        self.pool().run(job)

    def run_all(self, jobs):
        threads = [threading.Thread(target=self.work, args=(j,)) for j in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
''', """Several worker threads call `pool()` at start-up, all see `self._pool is None`, and each creates a
pool; all but the last are leaked and jobs run on different pools. Guard the initialisation with a
lock and re-check inside it.""",
fix=[("""        self._pool = None

    def pool(self):
        if self._pool is None:
            self._pool = self.factory()
        return self._pool""", """        self._pool = None
        self._lock = threading.Lock()

    def pool(self):
        with self._lock:
            if self._pool is None:
                self._pool = self.factory()
            return self._pool""")]),

ex("thr015-03", '''
import threading
from concurrent.futures import ThreadPoolExecutor

_model = None


def load_model():
    global _model
    if _model is None:
        import pickle
        with open("model.pkl", "rb") as fh:
            _model = pickle.load(fh)
    return _model


def predict(x):
    return load_model().predict([x])[0]


def predict_all(xs):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(predict, xs))
''', """The first four predictions run concurrently and each can see `_model is None`, so the (large)
model is unpickled up to four times and memory spikes. Load it under a lock with the check repeated
inside, or load it once before starting the pool.""",
fix=[("""_model = None
""", """_model = None
_model_lock = threading.Lock()
"""), ("""    if _model is None:
        import pickle
        with open("model.pkl", "rb") as fh:
            _model = pickle.load(fh)
    return _model""", """    with _model_lock:
        if _model is None:
            import pickle
            with open("model.pkl", "rb") as fh:
                _model = pickle.load(fh)
        return _model""")]),

ex("thr015-04", '''
import threading


class Config:
    _instance = None
    _lock = threading.Lock()

    def __init__(self):
        self.values = {}

    @classmethod
    def instance(cls):
        if cls._instance is None:
            with cls._lock:
                cls._instance = cls()
        return cls._instance


def reader(key, out):
    out.append(Config.instance().values.get(key))


def read_many(keys):
    out = []
    threads = [threading.Thread(target=reader, args=(k, out)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
''', """The singleton takes its lock only after the unlocked test and never re-checks, so threads that
raced past the test each create a fresh `Config`, and values stored in the first one disappear.
Repeat the `None` check inside the lock.""",
fix=[("""            with cls._lock:
                cls._instance = cls()""", """            with cls._lock:
                if cls._instance is None:
                    cls._instance = cls()""")]),

ex("thr015-05", '''
import threading
import sqlite3


class Repository:
    def __init__(self, path):
        self.path = path
        self.schema = None

    def ensure_schema(self):
        if not self.schema:
            conn = sqlite3.connect(self.path)
            conn.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER, name TEXT)")
            conn.commit()
            self.schema = "v1"

    def insert(self, item):
        self.ensure_schema()
        conn = sqlite3.connect(self.path)
        conn.execute("INSERT INTO items VALUES (?, ?)", item)
        conn.commit()

    def bulk(self, items):
        threads = [threading.Thread(target=self.insert, args=(i,)) for i in items]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
''', """Every insert thread starts by checking `self.schema`; many see it unset and run the DDL at the
same time, which can fail with "database is locked". Initialise once under a lock (with the check
inside), or create the schema in `__init__`.""",
fix=[("""        self.schema = None

    def ensure_schema(self):
        if not self.schema:""", """        self.schema = None
        self._schema_lock = threading.Lock()

    def ensure_schema(self):
        with self._schema_lock:
            self._create_schema()

    def _create_schema(self):
        if not self.schema:""")],
notes="analyzer miss: a flag set after the initialisation work (not an object created lazily)", missed=True),

ex("thr015-06", '''
import threading
import logging

_logger = None


def get_logger():
    global _logger
    if _logger is None:
        _logger = logging.getLogger("worker")
        _logger.addHandler(logging.FileHandler("worker.log"))
    return _logger


def work(n):
    get_logger().info("job %d", n)


def main():
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """`logging.getLogger` returns the same logger each time, so two threads racing through the `None`
check both add a `FileHandler` and every line is then written twice, with two open file handles.
Initialise under a lock and re-check inside it.""",
fix=[("""_logger = None
""", """_logger = None
_logger_lock = threading.Lock()
"""), ("""    if _logger is None:
        _logger = logging.getLogger("worker")
        _logger.addHandler(logging.FileHandler("worker.log"))
    return _logger""", """    with _logger_lock:
        if _logger is None:
            logger = logging.getLogger("worker")
            logger.addHandler(logging.FileHandler("worker.log"))
            _logger = logger
        return _logger""")]),

ex("thr015-07", '''
import threading
import requests


class Api:
    def __init__(self, base):
        self.base = base
        self._session = None

    @property
    def session(self):
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["User-Agent"] = "api-client"
        return self._session

    def get(self, path):
        return self.session.get(self.base + path, timeout=10)

    def get_many(self, paths):
        threads = [threading.Thread(target=self.get, args=(p,)) for p in paths]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
''', """Concurrent first calls can each create a `Session`; one may even be used before its header is
set, because the half-initialised object is published before configuration finishes. Create and
configure it under a lock, publishing only the finished object.""",
fix=[("""        self._session = None

    @property
    def session(self):
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["User-Agent"] = "api-client"
        return self._session""", """        self._session = None
        self._session_lock = threading.Lock()

    @property
    def session(self):
        with self._session_lock:
            if self._session is None:
                session = requests.Session()
                session.headers["User-Agent"] = "api-client"
                self._session = session
            return self._session""")],
notes="analyzer miss: lazy initialisation inside a @property, reached by attribute access", missed=True),

ex("thr015-08", '''
import threading

_index = None
_index_lock = threading.Lock()


def build_index(docs):
    return {word: i for i, d in enumerate(docs) for word in d.split()}


def search(word, docs):
    global _index
    if _index is None:
        _index_lock.acquire()
        try:
            _index = build_index(docs)
        finally:
            _index_lock.release()
    return _index.get(word)


def search_all(words, docs):
    threads = [threading.Thread(target=search, args=(w, docs)) for w in words]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """The lock serialises the builds but does not prevent them: each thread that passed the unlocked
test rebuilds the index after acquiring the lock. Repeat `if _index is None` inside the
`try` (or use `with _index_lock:` with the double check).""",
fix=[("""        _index_lock.acquire()
        try:
            _index = build_index(docs)
        finally:
            _index_lock.release()""", """        with _index_lock:
            if _index is None:
                _index = build_index(docs)""")]),

ex("thr015-09", '''
import threading


class Metrics:
    _registry = None

    @staticmethod
    def registry():
        if Metrics._registry is None:
            Metrics._registry = {}
        return Metrics._registry

    @staticmethod
    def count(name):
        reg = Metrics.registry()
        reg[name] = reg.get(name, 0) + 1


def handle(n):
    Metrics.count("requests")


def serve(n):
    for i in range(n):
        threading.Thread(target=handle, args=(i,)).start()
''', """Two request threads can both find `_registry` unset and each install an empty dict; counts made
in the dict that loses the race are gone. Create the registry eagerly at class definition, which
needs no lock.""",
fix=[("""    _registry = None

    @staticmethod
    def registry():
        if Metrics._registry is None:
            Metrics._registry = {}
        return Metrics._registry""", """    _registry = {}
    _lock = threading.Lock()

    @staticmethod
    def registry():
        return Metrics._registry"""), ("""        reg = Metrics.registry()
        reg[name] = reg.get(name, 0) + 1""", """        reg = Metrics.registry()
        with Metrics._lock:
            reg[name] = reg.get(name, 0) + 1""")]),

ex("thr015-10", '''
import threading
import re

_patterns = None


def patterns():
    global _patterns
    if not _patterns:
        _patterns = [re.compile(p) for p in ("error", "warn", "fatal")]
    return _patterns


def scan(lines, hits):
    for line in lines:
        if any(p.search(line) for p in patterns()):
            hits.append(line)


def scan_files(chunks):
    hits = []
    threads = [threading.Thread(target=scan, args=(c, hits)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return hits
''', """The compiled patterns are built lazily with no lock, so the first scanner threads may all build
them; it is harmless here only by luck, and wasteful. Since the list is constant, compile it once
at import.""",
fixed='''
import threading
import re

PATTERNS = [re.compile(p) for p in ("error", "warn", "fatal")]


def scan(lines, hits):
    for line in lines:
        if any(p.search(line) for p in PATTERNS):
            hits.append(line)


def scan_files(chunks):
    hits = []
    threads = [threading.Thread(target=scan, args=(c, hits)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return hits
'''),

ex("thr015-11", '''
import threading
from concurrent.futures import ThreadPoolExecutor


class Translator:
    def __init__(self, load):
        self.load = load
        self.dictionary = None

    def translate(self, word):
        if self.dictionary is None:
            self.dictionary = self.load()
        return self.dictionary.get(word, word)

    def translate_all(self, words):
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(self.translate, words))
''', """The pool's threads race on the first `translate` calls; several load the dictionary and each
overwrites `self.dictionary`. Load it once under a lock with a second check inside.""",
fix=[("""        self.dictionary = None

    def translate(self, word):
        if self.dictionary is None:
            self.dictionary = self.load()
        return self.dictionary.get(word, word)""", """        self.dictionary = None
        self._lock = threading.Lock()

    def translate(self, word):
        if self.dictionary is None:
            with self._lock:
                if self.dictionary is None:
                    self.dictionary = self.load()
        return self.dictionary.get(word, word)""")]),

ex("thr015-12", '''
import threading

_conn = None
_conn_lock = threading.RLock()


def connection(connect):
    global _conn
    if _conn is None:
        with _conn_lock:
            _conn = connect()
            _conn.execute("PRAGMA journal_mode=WAL")
    return _conn


def write(row, connect):
    connection(connect).execute("INSERT INTO t VALUES (?)", (row,))


def write_all(rows, connect):
    threads = [threading.Thread(target=write, args=(r, connect)) for r in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """Without a second `None` check inside the lock, each thread that passed the first test opens a new
connection and replaces `_conn`; earlier rows go to connections that are dropped. Re-check inside
the lock and publish the connection only after it is configured.""",
fix=[("""        with _conn_lock:
            _conn = connect()
            _conn.execute("PRAGMA journal_mode=WAL")""", """        with _conn_lock:
            if _conn is None:
                conn = connect()
                conn.execute("PRAGMA journal_mode=WAL")
                _conn = conn""")]),

ex("thr015-13", '''
import threading


class LazyTemplate:
    def __init__(self, path):
        self.path = path
        self.compiled = None

    def render(self, **ctx):
        if self.compiled is None:
            with open(self.path) as fh:
                self.compiled = fh.read()
        return self.compiled.format(**ctx)


page = LazyTemplate("page.html")


def respond(user):
    return page.render(name=user)


def serve(users):
    for user in users:
        threading.Thread(target=respond, args=(user,)).start()
''', """The shared `page` template is compiled lazily by whichever request threads arrive first, each
reading the file again. Guard the first load with a lock and a second check, or compile eagerly in
`__init__`.""",
fix=[("""        self.compiled = None

    def render(self, **ctx):
        if self.compiled is None:
            with open(self.path) as fh:
                self.compiled = fh.read()
        return self.compiled.format(**ctx)""", """        self.compiled = None
        self._lock = threading.Lock()

    def render(self, **ctx):
        with self._lock:
            if self.compiled is None:
                with open(self.path) as fh:
                    self.compiled = fh.read()
        return self.compiled.format(**ctx)""")]),

ex("thr015-14", '''
import threading
import time

_start_time = None


def uptime():
    global _start_time
    if _start_time is None:
        _start_time = time.monotonic()
    return time.monotonic() - _start_time


def reporter():
    for _ in range(3):
        print(f"uptime {uptime():.1f}s")
        time.sleep(1)


def main():
    threads = [threading.Thread(target=reporter) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """Three reporter threads initialise `_start_time` lazily; they can each set it, so the reported
uptimes jump when a later assignment wins. Record the start time once at import instead.""",
fixed='''
import threading
import time

_start_time = time.monotonic()


def uptime():
    return time.monotonic() - _start_time


def reporter():
    for _ in range(3):
        print(f"uptime {uptime():.1f}s")
        time.sleep(1)


def main():
    threads = [threading.Thread(target=reporter) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
'''),

ex("thr015-15", '''
import threading
import ssl


class TlsClient:
    def __init__(self, host):
        self.host = host
        self.context = None

    def _ctx(self):
        if not self.context:
            self.context = ssl.create_default_context()
            self.context.load_verify_locations("ca.pem")
        return self.context

    def fetch(self, path, out):
        import socket
        with socket.create_connection((self.host, 443)) as raw:
            with self._ctx().wrap_socket(raw, server_hostname=self.host) as s:
                s.sendall(f"GET {path} HTTP/1.0\\r\\n\\r\\n".encode())
                out.append(s.recv(4096))

    def fetch_many(self, paths):
        out = []
        threads = [threading.Thread(target=self.fetch, args=(p, out)) for p in paths]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out
''', """A thread can see `self.context` set by another thread before `load_verify_locations` has run,
and use a context without the custom CA (the handshake fails), while others build duplicate
contexts. Build the context fully, then publish it under a lock.""",
fix=[("""        self.context = None

    def _ctx(self):
        if not self.context:
            self.context = ssl.create_default_context()
            self.context.load_verify_locations("ca.pem")
        return self.context""", """        self.context = None
        self._lock = threading.Lock()

    def _ctx(self):
        with self._lock:
            if not self.context:
                context = ssl.create_default_context()
                context.load_verify_locations("ca.pem")
                self.context = context
            return self.context""")]),
ex("thr015-16", """
import threading
import requests


class Api:
    def __init__(self, base):
        self.base = base
        self._session = None

    def session(self):
        if self._session is None:
            self._session = requests.Session()
        return self._session

    def get(self, path):
        return self.session().get(self.base + path, timeout=10)

    def get_many(self, paths):
        threads = [threading.Thread(target=self.get, args=(p,)) for p in paths]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
""", """The request threads race on the first `session()` calls: several create a `Session`, each
replacing the previous one, so connection pools are opened and leaked. Create the session under a
lock with the check repeated inside (or create it in `__init__`).""",
fix=[("""        self._session = None

    def session(self):
        if self._session is None:
            self._session = requests.Session()
        return self._session""", """        self._session = None
        self._lock = threading.Lock()

    def session(self):
        with self._lock:
            if self._session is None:
                self._session = requests.Session()
            return self._session""")]),

ex("thr015-17", """
import threading
from concurrent.futures import ThreadPoolExecutor

_geoip = None


def geoip_db(open_db):
    global _geoip
    if _geoip is None:
        _geoip = open_db("GeoLite2-City.mmdb")
    return _geoip


def locate(ip, open_db):
    return geoip_db(open_db).city(ip)


def locate_all(ips, open_db):
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda ip: locate(ip, open_db), ips))
""", """Eight pool threads look up IPs at once and each can find `_geoip` unset, opening the database
file several times; the extra readers are never closed. Open it once under a lock with a second
check inside.""",
fix=[("""_geoip = None
""", """_geoip = None
_geoip_lock = threading.Lock()
"""), ("""    if _geoip is None:
        _geoip = open_db("GeoLite2-City.mmdb")
    return _geoip""", """    if _geoip is None:
        with _geoip_lock:
            if _geoip is None:
                _geoip = open_db("GeoLite2-City.mmdb")
    return _geoip""")]),
]

write("THR015", "unsafe-lazy-init", E)
