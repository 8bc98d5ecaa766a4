from _build import ex, write

E = [
ex("thr024-01", '''
import sqlite3
import threading

ctx = threading.local()
ctx.db = sqlite3.connect("app.db")


def handle(job):
    ctx.db.execute("INSERT INTO jobs VALUES (?)", (job,))


def run(jobs):
    threads = [threading.Thread(target=handle, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """`ctx.db` is assigned on the main thread at import, but each thread has its own empty view of a
`threading.local`, so `ctx.db` raises `AttributeError` inside every worker. Create the connection
lazily on the thread that uses it.""",
fixed='''
import sqlite3
import threading

ctx = threading.local()


def db():
    if not hasattr(ctx, "db"):
        ctx.db = sqlite3.connect("app.db")
    return ctx.db


def handle(job):
    db().execute("INSERT INTO jobs VALUES (?)", (job,))


def run(jobs):
    threads = [threading.Thread(target=handle, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
'''),

ex("thr024-02", '''
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

local = threading.local()


def init_session(token):
    local.session = requests.Session()
    local.session.headers["Authorization"] = f"Bearer {token}"


def fetch(url):
    return local.session.get(url, timeout=10).json()


def fetch_all(urls, token):
    init_session(token)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(fetch, urls))
''', """`init_session` runs on the calling thread, so only that thread has `local.session`; the pool
workers running `fetch` have none and fail with `AttributeError`. Use the executor's `initializer`
to create a session on each worker thread.""",
fixed='''
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

local = threading.local()


def init_session(token):
    local.session = requests.Session()
    local.session.headers["Authorization"] = f"Bearer {token}"


def fetch(url):
    return local.session.get(url, timeout=10).json()


def fetch_all(urls, token):
    with ThreadPoolExecutor(max_workers=8, initializer=init_session, initargs=(token,)) as pool:
        return list(pool.map(fetch, urls))
'''),

ex("thr024-03", '''
import threading

request_ctx = threading.local()


def log(msg):
    print(f"[{request_ctx.request_id}] {msg}")


def handle(conn):
    log("handling connection")
    conn.close()


def serve(listener):
    request_ctx.request_id = "main"
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,)).start()
''', """`request_id` is set on the accept thread only; each handler thread has its own empty
`request_ctx`, so `log` raises `AttributeError` on the first line of every request. Set the id at
the start of `handle`, on the handler thread.""",
fix=[("""def handle(conn):
    log("handling connection")""", """def handle(conn):
    request_ctx.request_id = id(conn)
    log("handling connection")"""), ("""    request_ctx.request_id = "main"
""", "")]),

ex("thr024-04", '''
import threading


class Renderer:
    def __init__(self, template_dir):
        self.state = threading.local()
        self.state.cache = {}
        self.template_dir = template_dir

    def render(self, name):
        if name not in self.state.cache:
            with open(f"{self.template_dir}/{name}") as fh:
                self.state.cache[name] = fh.read()
        return self.state.cache[name]

    def render_many(self, names):
        threads = [threading.Thread(target=self.render, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
''', """The per-thread `cache` is created in `__init__`, i.e. only on the thread that built the renderer;
the render threads see an empty `self.state` and fail on `self.state.cache`. Create the cache
lazily on each thread.""",
fix=[("""        self.state = threading.local()
        self.state.cache = {}""", """        self.state = threading.local()"""), ("""    def render(self, name):
        if name not in self.state.cache:""", """    def render(self, name):
        if not hasattr(self.state, "cache"):
            self.state.cache = {}
        if name not in self.state.cache:""")]),

ex("thr024-05", '''
import threading
import random

rng = threading.local()
rng.gen = random.Random(42)


def simulate(n):
    return sum(rng.gen.random() for _ in range(n))


def run_simulations(counts):
    threads = [threading.Thread(target=simulate, args=(n,)) for n in counts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """The seeded generator is stored on the module's thread-local from the importing thread only; the
simulation threads have no `rng.gen` and raise `AttributeError`. Create a generator per thread
the first time it is needed.""",
fixed='''
import threading
import random

rng = threading.local()


def generator():
    if not hasattr(rng, "gen"):
        rng.gen = random.Random()
    return rng.gen


def simulate(n):
    gen = generator()
    return sum(gen.random() for _ in range(n))


def run_simulations(counts):
    threads = [threading.Thread(target=simulate, args=(n,)) for n in counts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
'''),

ex("thr024-06", '''
import threading
from concurrent.futures import ThreadPoolExecutor

_tls = threading.local()


def set_user(user):
    _tls.user = user


def audit(action):
    return f"{_tls.user} did {action}"


def process(user, actions):
    set_user(user)
    with ThreadPoolExecutor() as pool:
        return list(pool.map(audit, actions))
''', """The user is stored in thread-local storage on the request thread, but `audit` runs on pool
threads that never saw `set_user`, so it raises `AttributeError`. Pass the user explicitly to the
work function.""",
fixed='''
from concurrent.futures import ThreadPoolExecutor


def audit(user, action):
    return f"{user} did {action}"


def process(user, actions):
    with ThreadPoolExecutor() as pool:
        return list(pool.map(audit, [user] * len(actions), actions))
'''),

ex("thr024-07", '''
import threading
import decimal

ctx = threading.local()
ctx.precision = 4


def price(amount):
    return round(decimal.Decimal(amount), ctx.precision)


def price_all(amounts):
    out = []
    workers = [threading.Thread(target=lambda a=a: out.append(price(a))) for a in amounts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return out
''', """`ctx.precision` exists only on the thread that imported the module; `price` running in the worker
threads raises `AttributeError`, so `out` stays empty. A plain module constant is what is meant
here.""",
fixed='''
import threading
import decimal

PRECISION = 4


def price(amount):
    return round(decimal.Decimal(amount), PRECISION)


def price_all(amounts):
    out = []
    workers = [threading.Thread(target=lambda a=a: out.append(price(a))) for a in amounts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return out
'''),

ex("thr024-08", '''
import threading


class Tracer:
    def __init__(self):
        self.local = threading.local()

    def begin(self, trace_id):
        self.local.trace_id = trace_id

    def span(self, name):
        return f"{self.local.trace_id}:{name}"

    def trace_parallel(self, trace_id, names):
        self.begin(trace_id)
        threads = [threading.Thread(target=self.span, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
''', """`begin` sets `trace_id` on the caller's thread, and the span threads read `self.local.trace_id`
on their own, empty thread-local, raising `AttributeError`. Set the trace id on each thread (or
pass it as an argument).""",
fixed='''
import threading


class Tracer:
    def __init__(self):
        self.local = threading.local()

    def begin(self, trace_id):
        self.local.trace_id = trace_id

    def span(self, trace_id, name):
        self.begin(trace_id)
        return f"{self.local.trace_id}:{name}"

    def trace_parallel(self, trace_id, names):
        threads = [threading.Thread(target=self.span, args=(trace_id, n)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
'''),

ex("thr024-09", '''
import threading
import queue

buffers = threading.local()
buffers.lines = []


def consumer(q, sink):
    while (line := q.get()) is not None:
        buffers.lines.append(line)
        if len(buffers.lines) >= 50:
            sink(buffers.lines)
            buffers.lines = []


def start(q, sink):
    t = threading.Thread(target=consumer, args=(q, sink))
    t.start()
    return t
''', """`buffers.lines` is initialised at import on the main thread, but the consumer thread has its own
empty `buffers` and fails on the first `append`. Initialise the buffer at the start of `consumer`
(a plain local variable would do).""",
fixed='''
import threading
import queue


def consumer(q, sink):
    lines = []
    while (line := q.get()) is not None:
        lines.append(line)
        if len(lines) >= 50:
            sink(lines)
            lines = []
    if lines:
        sink(lines)


def start(q, sink):
    t = threading.Thread(target=consumer, args=(q, sink))
    t.start()
    return t
''',
notes="analyzer miss: the worker also assigns the attribute later, after the failing first read", missed=True),

ex("thr024-10", '''
import threading
import locale

settings = threading.local()


def configure(lang):
    settings.lang = lang


def greet(name):
    return {"en": "Hello", "fr": "Bonjour"}[settings.lang] + ", " + name


def greet_all(names, lang):
    configure(lang)
    threads = [threading.Thread(target=greet, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """`configure(lang)` stores the language on the calling thread only; `greet` runs on new threads
that never called `configure`, so `settings.lang` raises `AttributeError`. Configure on the worker
thread, or pass the language along.""",
fixed='''
import threading


def greet(name, lang):
    return {"en": "Hello", "fr": "Bonjour"}[lang] + ", " + name


def greet_all(names, lang):
    threads = [threading.Thread(target=greet, args=(n, lang)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
'''),

ex("thr024-11", '''
import threading
import time

timing = threading.local()


def start_timer():
    timing.started = time.perf_counter()


def elapsed():
    return time.perf_counter() - timing.started


def job(work):
    work()
    print(f"job took {elapsed():.3f}s")


def run(works):
    start_timer()
    for w in works:
        threading.Thread(target=job, args=(w,)).start()
''', """The timer is started on the main thread, and `job` threads read `timing.started` from their own
thread-local, which is empty, so every job fails with `AttributeError` after doing its work. Start
the timer inside `job`.""",
fix=[("""def job(work):
    work()""", """def job(work):
    start_timer()
    work()"""), ("""def run(works):
    start_timer()
""", """def run(works):
""")]),

ex("thr024-12", '''
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg

state = threading.local()
state.conn = psycopg.connect("dbname=app")


def load(user_id):
    with state.conn.cursor() as cur:
        cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))
        return cur.fetchone()


def load_users(ids):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(load, ids))
''', """The connection is attached to the thread-local on the importing thread; the pool threads see no
`state.conn` and raise `AttributeError`. Open one connection per worker thread with the executor's
`initializer`.""",
fixed='''
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg

state = threading.local()


def open_connection():
    state.conn = psycopg.connect("dbname=app")


def load(user_id):
    with state.conn.cursor() as cur:
        cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))
        return cur.fetchone()


def load_users(ids):
    with ThreadPoolExecutor(max_workers=4, initializer=open_connection) as pool:
        return list(pool.map(load, ids))
'''),

ex("thr024-13", '''
import threading


class Worker(threading.Thread):
    shared = threading.local()

    def __init__(self, name, jobs):
        super().__init__(name=name)
        self.jobs = jobs
        Worker.shared.label = name

    def run(self):
        for job in self.jobs:
            print(Worker.shared.label, job)


def start_workers(groups):
    workers = [Worker(f"w{i}", g) for i, g in enumerate(groups)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
''', """`__init__` runs on the thread that creates the worker, not on the worker thread, so
`Worker.shared.label` is never set where `run` reads it and every worker fails. Store the label in
`run` (or simply use `self.name`).""",
fix=[("""        Worker.shared.label = name

    def run(self):""", """
    def run(self):
        Worker.shared.label = self.name""")],
notes="analyzer miss: class-attribute thread-local set in a Thread subclass __init__", missed=True),

ex("thr024-14", '''
import threading
import logging

log_ctx = threading.local()


class ContextFilter(logging.Filter):
    def filter(self, record):
        record.tenant = log_ctx.tenant
        return True


def handle_tenant(tenant, jobs):
    log_ctx.tenant = tenant
    threads = [threading.Thread(target=lambda j=j: logging.getLogger("app").info("job %s", j)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """The tenant is stored on the request thread, but the log calls run on the job threads, where the
filter reads `log_ctx.tenant` from an empty thread-local and raises `AttributeError`. Set the tenant
inside each job thread, and make the filter tolerate a missing value.""",
fixed='''
import threading
import logging

log_ctx = threading.local()


class ContextFilter(logging.Filter):
    def filter(self, record):
        record.tenant = getattr(log_ctx, "tenant", "-")
        return True


def run_job(tenant, job):
    log_ctx.tenant = tenant
    logging.getLogger("app").info("job %s", job)


def handle_tenant(tenant, jobs):
    threads = [threading.Thread(target=run_job, args=(tenant, j)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''',
notes="analyzer miss: the read is in a logging.Filter reached only through the logging module", missed=True),

ex("thr024-15", '''
import threading

counters = threading.local()
counters.retries = 0


def call_with_retry(fn):
    for _ in range(3):
        try:
            return fn()
        except TimeoutError:
            counters.retries += 1
    raise TimeoutError("gave up")


def run(fns):
    threads = [threading.Thread(target=call_with_retry, args=(f,)) for f in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """`counters.retries = 0` runs once at import on the main thread; in the worker threads the first
timeout hits `counters.retries += 1` on an unset attribute and raises `AttributeError` instead of
retrying. Initialise the per-thread counter on first use.""",
fix=[("""counters = threading.local()
counters.retries = 0
""", """counters = threading.local()
"""), ("""        except TimeoutError:
            counters.retries += 1""", """        except TimeoutError:
            counters.retries = getattr(counters, "retries", 0) + 1""")]),
ex("thr024-16", """
import threading
import urllib.request

tls = threading.local()


def scrape(url, out):
    req = urllib.request.Request(url, headers={"User-Agent": tls.agent})
    with urllib.request.urlopen(req, timeout=10) as resp:
        out[url] = resp.read()


def main(urls):
    tls.agent = "my-scraper/1.0"
    out = {}
    threads = [threading.Thread(target=scrape, args=(u, out)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
""", """`main` sets `tls.agent` on the main thread, but `scrape` reads it on fresh threads whose
thread-local is empty, so every request fails with `AttributeError` before it is sent. The agent
string is the same for all threads: make it a constant (or an argument).""",
fix=[("""tls = threading.local()
""", """USER_AGENT = "my-scraper/1.0"
"""), ("""{"User-Agent": tls.agent}""", """{"User-Agent": USER_AGENT}"""), ("""    tls.agent = "my-scraper/1.0"
""", "")]),

ex("thr024-17", """
import threading
import queue


class Indexer:
    def __init__(self, store):
        self.store = store
        self.tls = threading.local()
        self.jobs = queue.Queue()

    def start(self, n):
        self.tls.batch = []
        self.threads = [threading.Thread(target=self.work) for _ in range(n)]
        for t in self.threads:
            t.start()

    def work(self):
        while (doc := self.jobs.get()) is not None:
            self.tls.batch.append(doc)
            if len(self.tls.batch) >= 20:
                self.store.save(self.tls.batch)
                self.tls.batch.clear()
""", """`start` initialises `self.tls.batch` on the thread that calls it, not on the workers, so each
worker's first `self.tls.batch.append` raises `AttributeError`. Each worker should create its own
batch, and a plain local variable in `work` is enough.""",
fix=[("""        self.tls.batch = []
""", ""), ("""        while (doc := self.jobs.get()) is not None:
            self.tls.batch.append(doc)
            if len(self.tls.batch) >= 20:
                self.store.save(self.tls.batch)
                self.tls.batch.clear()""", """        batch = []
        while (doc := self.jobs.get()) is not None:
            batch.append(doc)
            if len(batch) >= 20:
                self.store.save(batch)
                batch = []
        if batch:
            self.store.save(batch)"""), ("""        self.tls = threading.local()
""", "")]),

ex("thr024-18", """
import threading
from concurrent.futures import ThreadPoolExecutor

_local = threading.local()
_local.parser = None


def parse(text):
    if _local.parser is None:
        import html.parser
        _local.parser = html.parser.HTMLParser()
    _local.parser.feed(text)
    return _local.parser


def parse_all(pages):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(parse, pages))
""", """The `None` default is set on the importing thread only; on a pool thread `_local.parser` does not
exist at all, so the `is None` check itself raises `AttributeError`. Use `getattr(_local, "parser",
None)` so each thread starts from the default.""",
fix=[("""_local = threading.local()
_local.parser = None
""", """_local = threading.local()
"""), ("""    if _local.parser is None:""", """    if getattr(_local, "parser", None) is None:""")],
notes="analyzer miss: the worker assigns the attribute after the failing read", missed=True),

ex("thr024-19", """
import threading
from concurrent.futures import ThreadPoolExecutor


class Translator:
    def __init__(self, load_model):
        self.local = threading.local()
        self.local.model = load_model()

    def translate(self, sentence):
        return self.local.model.run(sentence)

    def translate_all(self, sentences):
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(self.translate, sentences))
""", """The model is stored in `self.local` by the constructor, on the thread that built the
`Translator`; the pool threads running `translate` have an empty `self.local` and raise
`AttributeError`. Load the model lazily per thread (keep the loader on the instance).""",
fix=[("""        self.local = threading.local()
        self.local.model = load_model()

    def translate(self, sentence):
        return self.local.model.run(sentence)""", """        self.local = threading.local()
        self.load_model = load_model

    def translate(self, sentence):
        if not hasattr(self.local, "model"):
            self.local.model = self.load_model()
        return self.local.model.run(sentence)""")]),
]

write("THR024", "thread-local-unset", E)
