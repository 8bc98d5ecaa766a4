from _build import ex, write

E = [
ex("thr020-01", '''
import threading
import time


class SessionStore:
    def __init__(self, ttl):
        self.ttl = ttl
        self._data = {}
        self._lock = threading.Lock()
        threading.Thread(target=self.expire_loop, daemon=True).start()

    def put(self, key, value):
        with self._lock:
            self._data[key] = (value, time.time())

    def expire_loop(self):
        while True:
            now = time.time()
            for key, (_, stamp) in self._data.items():
                if now - stamp > self.ttl:
                    print("expired", key)
            time.sleep(1)
''', """The expiry thread iterates `self._data.items()` without the lock while request threads insert
under it; a `put` during the loop raises `RuntimeError: dictionary changed size during iteration`
and kills the expiry thread. Take a snapshot under the lock and iterate the copy.""",
fix=[("""            for key, (_, stamp) in self._data.items():""", """            with self._lock:
                snapshot = list(self._data.items())
            for key, (_, stamp) in snapshot:""")]),

ex("thr020-02", '''
import threading
import time

subscribers = []


def subscribe(callback):
    subscribers.append(callback)


def unsubscribe(callback):
    subscribers.remove(callback)


def broadcaster(get_event):
    while True:
        event = get_event()
        for cb in subscribers:
            cb(event)


def start(get_event):
    threading.Thread(target=broadcaster, args=(get_event,), daemon=True).start()
''', """The broadcaster thread loops over `subscribers` while other threads may remove from it; list
iteration does not fail, but a removal mid-loop shifts the later callbacks down one place, so the
one after the removed callback misses this event. Guard both sides with a lock and iterate over a copy.""",
fixed='''
import threading
import time

subscribers = []
subscribers_lock = threading.Lock()


def subscribe(callback):
    with subscribers_lock:
        subscribers.append(callback)


def unsubscribe(callback):
    with subscribers_lock:
        subscribers.remove(callback)


def broadcaster(get_event):
    while True:
        event = get_event()
        with subscribers_lock:
            targets = list(subscribers)
        for cb in targets:
            cb(event)


def start(get_event):
    threading.Thread(target=broadcaster, args=(get_event,), daemon=True).start()
'''),

ex("thr020-03", '''
import threading

active = {}


def handle(conn_id, conn):
    active[conn_id] = conn
    try:
        conn.serve()
    finally:
        del active[conn_id]


def accept_loop(listener):
    n = 0
    while True:
        conn = listener.accept()
        n += 1
        threading.Thread(target=handle, args=(n, conn)).start()


def shutdown():
    for conn in active.values():
        conn.close()
''', """`shutdown` iterates `active.values()` while handler threads add and delete connections; a
connection opening or closing during shutdown raises `RuntimeError: dictionary changed size during
iteration`. Protect the dict with a lock and close a snapshot.""",
fixed='''
import threading

active = {}
active_lock = threading.Lock()


def handle(conn_id, conn):
    with active_lock:
        active[conn_id] = conn
    try:
        conn.serve()
    finally:
        with active_lock:
            del active[conn_id]


def accept_loop(listener):
    n = 0
    while True:
        conn = listener.accept()
        n += 1
        threading.Thread(target=handle, args=(n, conn)).start()


def shutdown():
    with active_lock:
        conns = list(active.values())
    for conn in conns:
        conn.close()
''',
notes="analyzer miss (as of this commit): the main thread iterates a dict that handler threads mutate", missed=True),

ex("thr020-04", '''
import threading
import time


class Metrics:
    def __init__(self, sink):
        self.sink = sink
        self.counters = {}
        threading.Thread(target=self.flush_loop, daemon=True).start()

    def incr(self, name):
        self.counters[name] = self.counters.get(name, 0) + 1

    def flush_loop(self):
        while True:
            time.sleep(10)
            for name, value in self.counters.items():
                self.sink.send(name, value)
''', """The flush thread iterates `self.counters.items()` while request threads add new counter names;
the first new metric that appears during a flush raises `RuntimeError` and kills the flusher. Swap
the dict out under a lock and flush the old one.""",
fixed='''
import threading
import time


class Metrics:
    def __init__(self, sink):
        self.sink = sink
        self.counters = {}
        self._lock = threading.Lock()
        threading.Thread(target=self.flush_loop, daemon=True).start()

    def incr(self, name):
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    def flush_loop(self):
        while True:
            time.sleep(10)
            with self._lock:
                counters, self.counters = self.counters, {}
            for name, value in counters.items():
                self.sink.send(name, value)
'''),

ex("thr020-05", '''
import threading

seen = set()


def crawl(url, fetch_links):
    for link in fetch_links(url):
        seen.add(link)


def crawl_all(urls, fetch_links):
    threads = [threading.Thread(target=crawl, args=(u, fetch_links)) for u in urls]
    for t in threads:
        t.start()
    report = [u for u in seen if u.endswith(".pdf")]
    for t in threads:
        t.join()
    return report
''', """The comprehension iterates `seen` while the crawler threads are still adding to it, which raises
`RuntimeError: Set changed size during iteration`, and the report would be incomplete anyway. Join
the crawlers before reading the set.""",
fix=[("""    report = [u for u in seen if u.endswith(".pdf")]
    for t in threads:
        t.join()
    return report""", """    for t in threads:
        t.join()
    return [u for u in seen if u.endswith(".pdf")]""")],
notes="the main thread iterates a set that started, not yet joined threads mutate (found since the start-window check)"),

ex("thr020-06", '''
import threading
import time

jobs = {}


def submit(job_id, job):
    jobs[job_id] = job


def reaper():
    while True:
        for job_id in jobs:
            if jobs[job_id].done():
                print("finished", job_id)
        time.sleep(2)


threading.Thread(target=reaper, daemon=True).start()
''', """The reaper thread iterates `jobs` while `submit`, called from other threads, inserts into it; an
insert during the loop raises `RuntimeError` and the reaper thread dies silently. Share a lock and
iterate a snapshot.""",
fixed='''
import threading
import time

jobs = {}
jobs_lock = threading.Lock()


def submit(job_id, job):
    with jobs_lock:
        jobs[job_id] = job


def reaper():
    while True:
        with jobs_lock:
            snapshot = list(jobs.items())
        for job_id, job in snapshot:
            if job.done():
                print("finished", job_id)
        time.sleep(2)


threading.Thread(target=reaper, daemon=True).start()
'''),

ex("thr020-07", '''
import threading


class Room:
    def __init__(self):
        self.members = set()
        self.lock = threading.Lock()

    def join(self, user):
        with self.lock:
            self.members.add(user)

    def leave(self, user):
        with self.lock:
            self.members.discard(user)

    def broadcast(self, text):
        for user in self.members:
            user.send(text)

    def serve(self, conn_user):
        self.join(conn_user)
        threading.Thread(target=self.broadcast, args=(f"{conn_user} joined",)).start()
''', """`join` and `leave` hold the lock but `broadcast`, running on its own thread, iterates
`self.members` without it; a user joining or leaving mid-broadcast raises `RuntimeError: Set
changed size during iteration`. Copy the set under the lock and send outside it.""",
fix=[("""    def broadcast(self, text):
        for user in self.members:
            user.send(text)""", """    def broadcast(self, text):
        with self.lock:
            members = list(self.members)
        for user in members:
            user.send(text)""")],
notes="analyzer miss: broadcast thread iterates a set mutated under the lock by methods called on the main thread", missed=True),

ex("thr020-08", '''
import threading
import time

prices = {}


def price_feed(source):
    while True:
        symbol, price = source.next_tick()
        prices[symbol] = price


def portfolio_value(holdings):
    return sum(prices[s] * qty for s, qty in holdings.items() if s in prices)


def dump_prices(path):
    with open(path, "w") as fh:
        for symbol, price in prices.items():
            fh.write(f"{symbol},{price}\\n")


def start(source):
    threading.Thread(target=price_feed, args=(source,), daemon=True).start()
''', """`dump_prices` iterates `prices.items()` while the feed thread inserts new symbols; the first
symbol that appears during the dump raises `RuntimeError`. Take a copy under a lock shared with
the feed thread.""",
fixed='''
import threading
import time

prices = {}
prices_lock = threading.Lock()


def price_feed(source):
    while True:
        symbol, price = source.next_tick()
        with prices_lock:
            prices[symbol] = price


def portfolio_value(holdings):
    with prices_lock:
        return sum(prices[s] * qty for s, qty in holdings.items() if s in prices)


def dump_prices(path):
    with prices_lock:
        snapshot = dict(prices)
    with open(path, "w") as fh:
        for symbol, price in snapshot.items():
            fh.write(f"{symbol},{price}\\n")


def start(source):
    threading.Thread(target=price_feed, args=(source,), daemon=True).start()
'''),

ex("thr020-09", '''
import threading
import queue

results = []


def worker(tasks):
    while (task := tasks.get()) is not None:
        results.append(task())


def run(task_list, n=4):
    tasks = queue.Queue()
    threads = [threading.Thread(target=worker, args=(tasks,)) for _ in range(n)]
    for t in threads:
        t.start()
    for task in task_list:
        tasks.put(task)
    failures = [r for r in results if r is None]
    for _ in threads:
        tasks.put(None)
    for t in threads:
        t.join()
    return failures
''', """`failures` is computed by iterating `results` while the workers are still appending to it, so it
sees an arbitrary prefix of the results. Stop and join the workers before scanning the list.""",
fix=[("""    failures = [r for r in results if r is None]
    for _ in threads:
        tasks.put(None)
    for t in threads:
        t.join()
    return failures""", """    for _ in threads:
        tasks.put(None)
    for t in threads:
        t.join()
    return [r for r in results if r is None]""")],
notes="iteration between the workers' start and their join (found since the start-window check)"),

ex("thr020-10", '''
import threading
import time


class Registry:
    def __init__(self):
        self.services = {}
        self.lock = threading.RLock()
        self.checker = threading.Thread(target=self.health_check, daemon=True)
        self.checker.start()

    def register(self, name, url):
        with self.lock:
            self.services[name] = url

    def deregister(self, name):
        with self.lock:
            self.services.pop(name, None)

    def health_check(self):
        while True:
            for name in self.services:
                print("checking", name)
            time.sleep(5)
''', """`register` and `deregister` hold the lock but the health-check thread iterates `self.services`
without it, so a service registering during a check raises `RuntimeError: dictionary changed size
during iteration`. Snapshot the names under the lock.""",
fix=[("""            for name in self.services:
                print("checking", name)""", """            with self.lock:
                names = list(self.services)
            for name in names:
                print("checking", name)""")]),

ex("thr020-11", '''
import threading

cache = {}


def loader(keys, load):
    for key in keys:
        cache[key] = load(key)


def warm_and_report(keys, load):
    t = threading.Thread(target=loader, args=(keys, load))
    t.start()
    size = sum(len(v) for v in cache.values())
    t.join()
    return size
''', """`sum(... for v in cache.values())` runs while the loader thread is still inserting keys, so it
can raise `RuntimeError` and, when it does not, reports a partial size. Join the loader before
reading the cache.""",
fix=[("""    size = sum(len(v) for v in cache.values())
    t.join()
    return size""", """    t.join()
    return sum(len(v) for v in cache.values())""")],
notes="the main thread iterates dict values before joining the loader thread (found since the start-window check)"),

ex("thr020-12", '''
import threading
import time


class LeaseManager:
    def __init__(self):
        self.leases = {}

    def grant(self, owner, seconds):
        self.leases[owner] = time.monotonic() + seconds

    def sweeper(self):
        while True:
            now = time.monotonic()
            expired = [o for o, until in self.leases.items() if until < now]
            for owner in expired:
                self.leases.pop(owner, None)
            time.sleep(1)

    def start(self):
        threading.Thread(target=self.sweeper, daemon=True).start()
''', """The sweeper builds `expired` by iterating `self.leases.items()` while other threads call `grant`;
a new lease during the comprehension raises `RuntimeError` and ends the sweeper for good. Use one
lock for `grant` and for the sweep.""",
fixed='''
import threading
import time


class LeaseManager:
    def __init__(self):
        self.leases = {}
        self.lock = threading.Lock()

    def grant(self, owner, seconds):
        with self.lock:
            self.leases[owner] = time.monotonic() + seconds

    def sweeper(self):
        while True:
            now = time.monotonic()
            with self.lock:
                expired = [o for o, until in self.leases.items() if until < now]
                for owner in expired:
                    del self.leases[owner]
            time.sleep(1)

    def start(self):
        threading.Thread(target=self.sweeper, daemon=True).start()
'''),

ex("thr020-13", '''
import threading

handlers = {}


def register(event, fn):
    handlers.setdefault(event, []).append(fn)


def dispatch_forever(events):
    while True:
        name, payload = events.get()
        for event, fns in handlers.items():
            if event == name:
                for fn in fns:
                    fn(payload)


def start(events):
    threading.Thread(target=dispatch_forever, args=(events,), daemon=True).start()
''', """The dispatcher thread walks `handlers.items()` while plugins may `register` new events from
other threads; adding an event name during dispatch raises `RuntimeError`. Look the event up under
a lock and call a copied handler list.""",
fixed='''
import threading

handlers = {}
handlers_lock = threading.Lock()


def register(event, fn):
    with handlers_lock:
        handlers.setdefault(event, []).append(fn)


def dispatch_forever(events):
    while True:
        name, payload = events.get()
        with handlers_lock:
            fns = list(handlers.get(name, ()))
        for fn in fns:
            fn(payload)


def start(events):
    threading.Thread(target=dispatch_forever, args=(events,), daemon=True).start()
'''),

ex("thr020-14", '''
import threading
import time


class Presence:
    def __init__(self):
        self.online = set()
        self.lock = threading.Lock()

    def login(self, user):
        with self.lock:
            self.online.add(user)

    def logout(self, user):
        with self.lock:
            self.online.discard(user)

    def announce_loop(self, publish):
        while True:
            publish(sorted(u for u in self.online))
            time.sleep(30)

    def start(self, publish):
        threading.Thread(target=self.announce_loop, args=(publish,), daemon=True).start()
''', """`sorted(u for u in self.online)` iterates the set on the announcer thread without the lock that
`login` and `logout` use, so a login at the wrong moment raises `RuntimeError: Set changed size
during iteration`. Copy the set while holding the lock.""",
fix=[("""            publish(sorted(u for u in self.online))""", """            with self.lock:
                users = sorted(self.online)
            publish(users)""")]),

ex("thr020-15", '''
import threading

pending_writes = {}


def write_behind(store, stop):
    while not stop.wait(5):
        for key in list(pending_writes.keys()):
            store.put(key, pending_writes.pop(key))


def update(key, value):
    pending_writes[key] = value


def start(store):
    stop = threading.Event()
    threading.Thread(target=write_behind, args=(store, stop), daemon=True).start()
    return stop
''', """Even with `list(...)`, copying `pending_writes.keys()` iterates the dict while `update` may be
inserting from another thread, and the pop/put pairs interleave with new writes. Make the whole
swap atomic with a lock: take the dict, replace it with an empty one, then write the old one out.""",
fixed='''
import threading

pending_writes = {}
pending_lock = threading.Lock()


def write_behind(store, stop):
    global pending_writes
    while not stop.wait(5):
        with pending_lock:
            batch, pending_writes = pending_writes, {}
        for key, value in batch.items():
            store.put(key, value)


def update(key, value):
    with pending_lock:
        pending_writes[key] = value


def start(store):
    stop = threading.Event()
    threading.Thread(target=write_behind, args=(store, stop), daemon=True).start()
    return stop
''', notes="not reported: list(d.keys()) is not a Python-level iteration; list(d.keys()) is itself a single C call and rarely fails, so this example is borderline; the fix is still the clearer design", missed=True),

ex("thr020-16", """
import threading
import time

peers = {}


def on_hello(addr, info):
    peers[addr] = info


def gossip(send):
    while True:
        for addr, info in peers.items():
            send(addr, info)
        time.sleep(3)


def run(listen, send):
    threading.Thread(target=gossip, args=(send,), daemon=True).start()
    for addr, info in listen():
        on_hello(addr, info)
""", """The gossip thread iterates `peers.items()` while the main thread adds new peers in `on_hello`; a
peer arriving during a gossip round raises `RuntimeError: dictionary changed size during
iteration` and stops gossiping for good. Share a lock and iterate a copy.""",
fixed="""
import threading
import time

peers = {}
peers_lock = threading.Lock()


def on_hello(addr, info):
    with peers_lock:
        peers[addr] = info


def gossip(send):
    while True:
        with peers_lock:
            snapshot = list(peers.items())
        for addr, info in snapshot:
            send(addr, info)
        time.sleep(3)


def run(listen, send):
    threading.Thread(target=gossip, args=(send,), daemon=True).start()
    for addr, info in listen():
        on_hello(addr, info)
"""),

ex("thr020-17", """
import threading
import time


class Autosave:
    def __init__(self, store):
        self.store = store
        self.dirty = set()
        threading.Thread(target=self.loop, daemon=True).start()

    def touch(self, doc_id):
        self.dirty.add(doc_id)

    def loop(self):
        while True:
            time.sleep(15)
            for doc_id in self.dirty:
                self.store.save(doc_id)
            self.dirty.clear()
""", """The autosave thread iterates `self.dirty` while editor threads call `touch`; an edit during the
save loop raises `RuntimeError: Set changed size during iteration`, and edits made between the loop
and `clear()` are dropped without being saved. Swap the set out under a lock.""",
fixed="""
import threading
import time


class Autosave:
    def __init__(self, store):
        self.store = store
        self.dirty = set()
        self._lock = threading.Lock()
        threading.Thread(target=self.loop, daemon=True).start()

    def touch(self, doc_id):
        with self._lock:
            self.dirty.add(doc_id)

    def loop(self):
        while True:
            time.sleep(15)
            with self._lock:
                batch, self.dirty = self.dirty, set()
            for doc_id in batch:
                self.store.save(doc_id)
"""),

ex("thr020-18", """
import threading
import time

routes = {}


def add_route(prefix, backend):
    routes[prefix] = backend


def probe_backends(check):
    while True:
        for prefix in routes:
            if not check(routes[prefix]):
                print("backend down for", prefix)
        time.sleep(10)


threading.Thread(target=probe_backends, args=(lambda b: True,), daemon=True).start()
""", """The probe thread iterates `routes` while configuration reloads call `add_route` from other
threads; adding a route mid-probe raises `RuntimeError` and the probe thread dies without notice.
Protect `routes` with a lock and probe a snapshot.""",
fixed="""
import threading
import time

routes = {}
routes_lock = threading.Lock()


def add_route(prefix, backend):
    with routes_lock:
        routes[prefix] = backend


def probe_backends(check):
    while True:
        with routes_lock:
            snapshot = list(routes.items())
        for prefix, backend in snapshot:
            if not check(backend):
                print("backend down for", prefix)
        time.sleep(10)


threading.Thread(target=probe_backends, args=(lambda b: True,), daemon=True).start()
"""),

ex("thr020-19", """
import threading
import time


class UploadTracker:
    def __init__(self):
        self.progress = {}
        self.lock = threading.Lock()

    def update(self, name, percent):
        with self.lock:
            self.progress[name] = percent

    def render_loop(self):
        while True:
            line = " ".join(f"{n}:{p}%" for n, p in self.progress.items())
            print(line, end="\\r")
            time.sleep(0.5)

    def start(self):
        threading.Thread(target=self.render_loop, daemon=True).start()
""", """`update` writes under the lock, but the render thread iterates `self.progress.items()` without
it; a new upload appearing during rendering raises `RuntimeError` and the progress display freezes.
Copy the dict under the same lock.""",
fix=[("""            line = " ".join(f"{n}:{p}%" for n, p in self.progress.items())""", """            with self.lock:
                items = list(self.progress.items())
            line = " ".join(f"{n}:{p}%" for n, p in items)""")]),

ex("thr020-20", """
import threading

blocked_ips = set()


def ban(ip):
    blocked_ips.add(ip)


def export_firewall_rules(path):
    with open(path, "w") as fh:
        for ip in blocked_ips:
            fh.write(f"deny {ip}\\n")


def watch_log(lines):
    for line in lines:
        if "FAILED LOGIN" in line:
            ban(line.split()[-1])


def start(lines, path):
    threading.Thread(target=watch_log, args=(lines,), daemon=True).start()
    export_firewall_rules(path)
""", """`export_firewall_rules` iterates `blocked_ips` on the main thread while the log watcher thread
keeps adding addresses; a ban during the export raises `RuntimeError: Set changed size during
iteration`. Guard the set with a lock and export a copy.""",
fixed="""
import threading

blocked_ips = set()
blocked_lock = threading.Lock()


def ban(ip):
    with blocked_lock:
        blocked_ips.add(ip)


def export_firewall_rules(path):
    with blocked_lock:
        ips = sorted(blocked_ips)
    with open(path, "w") as fh:
        for ip in ips:
            fh.write(f"deny {ip}\\n")


def watch_log(lines):
    for line in lines:
        if "FAILED LOGIN" in line:
            ban(line.split()[-1])


def start(lines, path):
    threading.Thread(target=watch_log, args=(lines,), daemon=True).start()
    export_firewall_rules(path)
""",
notes="a function called right after the thread is started iterates the set it mutates (found since the start-window check)"),

ex("thr020-21", """
import threading
import time


class Scoreboard:
    def __init__(self, publish):
        self.scores = {}
        threading.Thread(target=self.publisher, args=(publish,), daemon=True).start()

    def record(self, player, points):
        self.scores[player] = self.scores.get(player, 0) + points

    def publisher(self, publish):
        while True:
            top = [(player, score) for player, score in self.scores.items() if score > 0]
            publish(sorted(top, key=lambda kv: -kv[1])[:10])
            time.sleep(1)
""", """The publisher thread iterates `self.scores.items()` while game threads call `record`, which may add
a new player; a dict growing during iteration raises `RuntimeError` and the leaderboard stops
updating. Use one lock for `record` and for taking the snapshot.""",
fixed="""
import threading
import time


class Scoreboard:
    def __init__(self, publish):
        self.scores = {}
        self._lock = threading.Lock()
        threading.Thread(target=self.publisher, args=(publish,), daemon=True).start()

    def record(self, player, points):
        with self._lock:
            self.scores[player] = self.scores.get(player, 0) + points

    def publisher(self, publish):
        while True:
            with self._lock:
                items = list(self.scores.items())
            publish(sorted(items, key=lambda kv: -kv[1])[:10])
            time.sleep(1)
"""),

ex("thr020-22", """
import threading
import time


class ConnectionPool:
    def __init__(self, connect, max_idle_seconds=60):
        self.connect = connect
        self.max_idle = max_idle_seconds
        self.idle = []
        threading.Thread(target=self.reap_loop, daemon=True).start()

    def give_back(self, conn):
        conn.last_used = time.monotonic()
        self.idle.append(conn)

    def take(self):
        if self.idle:
            return self.idle.pop()
        return self.connect()

    def reap_loop(self):
        while True:
            now = time.monotonic()
            for conn in self.idle:
                if now - conn.last_used > self.max_idle:
                    conn.close()
            time.sleep(5)
""", """The reaper thread walks `self.idle` while request threads pop connections off it: a connection the
reaper has judged stale can be taken by a request and then closed under it, and the closed ones are
never removed from the list, so they are handed out again. Lock the list, and remove what you close.""",
fixed="""
import threading
import time


class ConnectionPool:
    def __init__(self, connect, max_idle_seconds=60):
        self.connect = connect
        self.max_idle = max_idle_seconds
        self.idle = []
        self._lock = threading.Lock()
        threading.Thread(target=self.reap_loop, daemon=True).start()

    def give_back(self, conn):
        conn.last_used = time.monotonic()
        with self._lock:
            self.idle.append(conn)

    def take(self):
        with self._lock:
            if self.idle:
                return self.idle.pop()
        return self.connect()

    def reap_loop(self):
        while True:
            now = time.monotonic()
            with self._lock:
                stale = [c for c in self.idle if now - c.last_used > self.max_idle]
                self.idle = [c for c in self.idle if c not in stale]
            for conn in stale:
                conn.close()
            time.sleep(5)
"""),
]

write("THR020", "iterating-shared-container", E)
