from _build import ex, write

E = [
ex("thr009-01", '''
import threading
import requests


class PageCache:
    def __init__(self):
        self._cache = {}

    def get(self, url):
        if url not in self._cache:
            self._cache[url] = requests.get(url, timeout=10).text
        return self._cache[url]

    def prefetch(self, urls):
        threads = [threading.Thread(target=self.get, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
''', """Several prefetch threads can all see `url not in self._cache` before any of them stores the
page, so the same URL is downloaded more than once and later writes overwrite earlier ones. Make
the check and the insert one atomic step under a lock (and download outside it).""",
fixed='''
import threading
import requests


class PageCache:
    def __init__(self):
        self._cache = {}
        self._lock = threading.Lock()

    def get(self, url):
        with self._lock:
            if url in self._cache:
                return self._cache[url]
        page = requests.get(url, timeout=10).text
        with self._lock:
            return self._cache.setdefault(url, page)

    def prefetch(self, urls):
        threads = [threading.Thread(target=self.get, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
'''),

ex("thr009-02", '''
import queue
import threading

tasks = queue.Queue()


def worker(results):
    while True:
        if not tasks.empty():
            results.append(tasks.get()())
        else:
            break


def run(jobs, n=4):
    for job in jobs:
        tasks.put(job)
    results = []
    threads = [threading.Thread(target=worker, args=(results,)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
''', """Between `tasks.empty()` returning False and `tasks.get()`, another worker can take the last job;
the first worker then blocks in `get()` forever and `run` never returns. Use `get_nowait()` and
treat `queue.Empty` as the end of the work.""",
fixed='''
import queue
import threading

tasks = queue.Queue()


def worker(results):
    while True:
        try:
            job = tasks.get_nowait()
        except queue.Empty:
            break
        results.append(job())


def run(jobs, n=4):
    for job in jobs:
        tasks.put(job)
    results = []
    threads = [threading.Thread(target=worker, args=(results,)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
'''),

ex("thr009-03", '''
import threading

sessions = {}


def logout(session_id):
    if session_id in sessions:
        del sessions[session_id]


def handle_logouts(ids):
    threads = [threading.Thread(target=logout, args=(sid,)) for sid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """If the same session is logged out from two threads, both can pass the `in` test and the second
`del` raises `KeyError`. `sessions.pop(session_id, None)` does the test and the removal in one
atomic dict operation.""",
fix=[("""    if session_id in sessions:
        del sessions[session_id]""", """    sessions.pop(session_id, None)""")]),

ex("thr009-04", '''
import threading
from concurrent.futures import ThreadPoolExecutor

user_counts = {}


def track(user):
    if user not in user_counts:
        user_counts[user] = []
    user_counts[user].append(1)


def track_all(users):
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(track, users))
''', """Two threads tracking the same new user can both create an empty list; the second assignment
replaces the first list and the events appended to it are lost. `setdefault` creates the list
atomically and returns whichever one is stored.""",
fix=[("""    if user not in user_counts:
        user_counts[user] = []
    user_counts[user].append(1)""", """    user_counts.setdefault(user, []).append(1)""")]),

ex("thr009-05", '''
import threading


class Stack:
    def __init__(self):
        self.items = []

    def push(self, x):
        self.items.append(x)

    def pop_or_none(self):
        if self.items:
            return self.items.pop()
        return None

    def drain(self, workers=3):
        out = []
        threads = [threading.Thread(target=lambda: out.append(self.pop_or_none())) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out
''', """With one item left, two threads can both see `self.items` as non-empty; one pops it and the
other's `pop()` raises `IndexError`. Do the check and the pop under one lock (or catch
`IndexError`).""",
fix=[("""    def __init__(self):
        self.items = []""", """    def __init__(self):
        self.items = []
        self.lock = threading.Lock()"""), ("""        if self.items:
            return self.items.pop()
        return None""", """        with self.lock:
            if self.items:
                return self.items.pop()
            return None""")]),

ex("thr009-06", '''
import threading

registry = {}


def register(name, factory):
    if name in registry:
        raise ValueError(f"{name} already registered")
    registry[name] = factory()


def load_plugins(plugins):
    threads = [threading.Thread(target=register, args=(p.name, p.create)) for p in plugins]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """Two plugins with the same name loaded on different threads can both pass the duplicate check,
and the second silently replaces the first instead of raising. Hold a lock across the check and
the insert.""",
fix=[("""registry = {}
""", """registry = {}
registry_lock = threading.Lock()
"""), ("""    if name in registry:
        raise ValueError(f"{name} already registered")
    registry[name] = factory()""", """    instance = factory()
    with registry_lock:
        if name in registry:
            raise ValueError(f"{name} already registered")
        registry[name] = instance""")]),

ex("thr009-07", '''
import threading

seen = set()
to_visit = []


def crawl(url, links_of):
    for link in links_of(url):
        if link not in seen:
            seen.add(link)
            to_visit.append(link)


def crawl_level(urls, links_of):
    threads = [threading.Thread(target=crawl, args=(u, links_of)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return to_visit
''', """Two crawler threads finding the same link can both see it as unseen and both queue it, so pages
are crawled twice. Make "test and mark" one critical section.""",
fix=[("""seen = set()
""", """seen = set()
seen_lock = threading.Lock()
"""), ("""        if link not in seen:
            seen.add(link)
            to_visit.append(link)""", """        with seen_lock:
            if link in seen:
                continue
            seen.add(link)
            to_visit.append(link)""")]),

ex("thr009-08", '''
import threading


class ConnectionPool:
    def __init__(self, make):
        self.make = make
        self.idle = []

    def acquire_conn(self):
        if len(self.idle) > 0:
            return self.idle.pop()
        return self.make()

    def release_conn(self, conn):
        self.idle.append(conn)

    def serve(self, requests_):
        def handle(req):
            conn = self.acquire_conn()
            req.run(conn)
            self.release_conn(conn)

        threads = [threading.Thread(target=handle, args=(r,)) for r in requests_]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
''', """Two request threads can both see one idle connection; one pops it and the other's `pop()` raises
`IndexError` (or, with a different interleaving, both get a connection the pool thinks is idle).
Check and pop under a lock.""",
fix=[("""        self.idle = []

    def acquire_conn(self):
        if len(self.idle) > 0:
            return self.idle.pop()
        return self.make()""", """        self.idle = []
        self.lock = threading.Lock()

    def acquire_conn(self):
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return self.make()""")],
notes="analyzer miss: `len(x) > 0` as the test", missed=True),

ex("thr009-09", '''
import threading
import os

open_files = {}


def get_handle(path):
    if path not in open_files:
        open_files[path] = open(path, "a")
    return open_files[path]


def log_to(path, line):
    get_handle(path).write(line + "\\n")


def fan_out(paths, line):
    threads = [threading.Thread(target=log_to, args=(p, line)) for p in paths * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """Two threads writing to the same new path can both open it; the second handle replaces the first,
which is never closed (a file descriptor leak) and whose buffered lines may never be flushed. Open
under a lock.""",
fix=[("""open_files = {}
""", """open_files = {}
files_lock = threading.Lock()
"""), ("""    if path not in open_files:
        open_files[path] = open(path, "a")
    return open_files[path]""", """    with files_lock:
        if path not in open_files:
            open_files[path] = open(path, "a")
        return open_files[path]""")]),

ex("thr009-10", '''
import threading


class RateLimiter:
    def __init__(self, limit):
        self.limit = limit
        self.used = {}

    def allow(self, client):
        if self.used.get(client, 0) < self.limit:
            self.used[client] = self.used.get(client, 0) + 1
            return True
        return False

    def burst(self, client, n):
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.allow(client))) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results
''', """Concurrent requests from one client can all read the same `used` value below the limit and all
be allowed, so a burst gets through a limit of 10 with 50 requests. Check and increment under one
lock.""",
fix=[("""        self.used = {}

    def allow(self, client):
        if self.used.get(client, 0) < self.limit:
            self.used[client] = self.used.get(client, 0) + 1
            return True
        return False""", """        self.used = {}
        self.lock = threading.Lock()

    def allow(self, client):
        with self.lock:
            if self.used.get(client, 0) < self.limit:
                self.used[client] = self.used.get(client, 0) + 1
                return True
            return False""")],
notes="analyzer miss: value comparison on d.get(k) (reported as THR006)", missed=True),

ex("thr009-11", '''
import threading
import queue

inbox = queue.Queue()


def drain_once(handle):
    if inbox.qsize() > 0:
        handle(inbox.get())


def start_drainers(handle, n=3):
    threads = [threading.Thread(target=drain_once, args=(handle,)) for _ in range(n)]
    for t in threads:
        t.start()
    return threads
''', """`qsize()` is only a hint: with one message queued, all three drainers can see a size of 1 and
two of them then block forever in `get()`. Use `get_nowait()` and handle `queue.Empty`.""",
fix=[("""    if inbox.qsize() > 0:
        handle(inbox.get())""", """    try:
        item = inbox.get_nowait()
    except queue.Empty:
        return
    handle(item)""")],
notes="analyzer miss: `q.qsize() > 0` as the test", missed=True),

ex("thr009-12", '''
import threading

locks = {}


def lock_for(resource):
    if resource not in locks:
        locks[resource] = threading.Lock()
    return locks[resource]


def update(resource, fn):
    with lock_for(resource):
        fn(resource)


def update_many(resource, fns):
    threads = [threading.Thread(target=update, args=(resource, f)) for f in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """Two threads asking for the lock of a new resource can each create their own `Lock`, so they
do not exclude each other at all: the per-resource lock is broken exactly when it matters.
`locks.setdefault(resource, threading.Lock())` returns the one stored lock.""",
fix=[("""    if resource not in locks:
        locks[resource] = threading.Lock()
    return locks[resource]""", """    return locks.setdefault(resource, threading.Lock())""")]),

ex("thr009-13", '''
import threading

orders = {"A1": "open", "B2": "open"}


def cancel(order_id):
    if orders.get(order_id) == "open":
        refund(order_id)
        orders[order_id] = "cancelled"


def refund(order_id):
    print("refunding", order_id)


def cancel_twice(order_id):
    threads = [threading.Thread(target=cancel, args=(order_id,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """A double-clicked cancel can run on two threads that both see the order as open and both refund
it. Mark the order as cancelled under a lock before refunding, so only one thread wins.""",
fix=[("""orders = {"A1": "open", "B2": "open"}
""", """orders = {"A1": "open", "B2": "open"}
orders_lock = threading.Lock()
"""), ("""    if orders.get(order_id) == "open":
        refund(order_id)
        orders[order_id] = "cancelled\"""", """    with orders_lock:
        if orders.get(order_id) != "open":
            return
        orders[order_id] = "cancelled"
    refund(order_id)""")],
notes="analyzer miss: state comparison `d.get(k) == v` before acting", missed=True),

ex("thr009-14", '''
import threading


class Scheduler:
    def __init__(self):
        self.slots = {}

    def book(self, slot, who):
        if slot not in self.slots:
            self.slots[slot] = who
            return True
        return False

    def book_concurrently(self, slot, people):
        winners = []
        threads = [threading.Thread(target=lambda p=p: self.book(slot, p) and winners.append(p)) for p in people]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return winners
''', """Several people booking the same free slot can all pass the `not in` test, and all are told
they won while only the last write is kept. Test and insert under one lock so exactly one booking
succeeds.""",
fix=[("""        self.slots = {}

    def book(self, slot, who):
        if slot not in self.slots:
            self.slots[slot] = who
            return True
        return False""", """        self.slots = {}
        self.lock = threading.Lock()

    def book(self, slot, who):
        with self.lock:
            if slot not in self.slots:
                self.slots[slot] = who
                return True
            return False""")]),

ex("thr009-15", '''
import threading
from concurrent.futures import ThreadPoolExecutor

thumbnails = {}


def thumbnail(path, render):
    if path in thumbnails:
        return thumbnails[path]
    thumbnails[path] = render(path)
    return thumbnails[path]


def gallery(paths, render):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda p: thumbnail(p, render), paths))
''', """When a path appears twice, two pool threads can both miss the cache and both render it, and a
reader can even see the entry replaced under it. Guard the lookup and the store with one lock.""",
fix=[("""thumbnails = {}
""", """thumbnails = {}
thumbs_lock = threading.Lock()
"""), ("""    if path in thumbnails:
        return thumbnails[path]
    thumbnails[path] = render(path)
    return thumbnails[path]""", """    with thumbs_lock:
        if path in thumbnails:
            return thumbnails[path]
    image = render(path)
    with thumbs_lock:
        return thumbnails.setdefault(path, image)""")]),

ex("thr009-16", """
import threading

registry = {}


def register(name, factory):
    if name not in registry:
        registry[name] = factory()
        print("registered", name)


def load_plugins(plugins):
    threads = [threading.Thread(target=register, args=(p.name, p.create)) for p in plugins]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
""", """Two plugins with the same name loaded on different threads can both see the name as free; both
factories run, both print "registered", and the second instance silently replaces the first. Hold
a lock across the check and the insert.""",
fix=[("""registry = {}
""", """registry = {}
registry_lock = threading.Lock()
"""), ("""    if name not in registry:
        registry[name] = factory()
        print("registered", name)""", """    with registry_lock:
        if name in registry:
            return
        registry[name] = factory()
    print("registered", name)""")]),

ex("thr009-17", """
import threading


class ConnectionPool:
    def __init__(self, make):
        self.make = make
        self.idle = []

    def checkout(self):
        if self.idle:
            return self.idle.pop()
        return self.make()

    def checkin(self, conn):
        self.idle.append(conn)

    def serve(self, reqs):
        def handle(req):
            conn = self.checkout()
            req.run(conn)
            self.checkin(conn)

        threads = [threading.Thread(target=handle, args=(r,)) for r in reqs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
""", """With one idle connection left, two request threads can both see `self.idle` as non-empty; one
pops it and the other's `pop()` raises `IndexError`. Take the connection under a lock.""",
fix=[("""        self.idle = []

    def checkout(self):
        if self.idle:
            return self.idle.pop()
        return self.make()""", """        self.idle = []
        self.lock = threading.Lock()

    def checkout(self):
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return self.make()""")]),

ex("thr009-18", """
import queue
import threading

outbox = queue.Queue()


def sender(transport, stop):
    while not stop.is_set():
        if not outbox.empty():
            transport.send(outbox.get())
        stop.wait(0.1)


def start(transports):
    stop = threading.Event()
    threads = [threading.Thread(target=sender, args=(t, stop)) for t in transports]
    for t in threads:
        t.start()
    return stop, threads
""", """With several senders, two can see the queue as non-empty when only one message is left; the
loser blocks in `outbox.get()` and stops reacting to `stop`, so shutdown hangs. Use a `get` with a
timeout and handle `queue.Empty`.""",
fix=[("""        if not outbox.empty():
            transport.send(outbox.get())
        stop.wait(0.1)""", """        try:
            message = outbox.get(timeout=0.1)
        except queue.Empty:
            continue
        transport.send(message)""")]),

ex("thr009-19", """
import threading

subscriptions = {}


def unsubscribe(user, topic):
    if topic in subscriptions:
        subscriptions[topic].discard(user)
        if not subscriptions[topic]:
            del subscriptions[topic]


def unsubscribe_all(pairs):
    threads = [threading.Thread(target=unsubscribe, args=p) for p in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
""", """Two threads removing the last two subscribers of a topic can both see the topic, both empty its
set, and the second `del` raises `KeyError` (or a `subscriptions[topic]` lookup fails after the
other thread deleted it). Do the whole update under one lock.""",
fix=[("""subscriptions = {}
""", """subscriptions = {}
subs_lock = threading.Lock()
"""), ("""    if topic in subscriptions:
        subscriptions[topic].discard(user)
        if not subscriptions[topic]:
            del subscriptions[topic]""", """    with subs_lock:
        users = subscriptions.get(topic)
        if users is None:
            return
        users.discard(user)
        if not users:
            del subscriptions[topic]""")]),

ex("thr009-20", """
import threading
from concurrent.futures import ThreadPoolExecutor

thumbnails = {}


def thumbnail(path, render):
    if path not in thumbnails:
        thumbnails[path] = render(path)
    return thumbnails[path]


def gallery(paths, render):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda p: thumbnail(p, render), paths))
""", """When a path appears twice in the gallery, two pool threads can both miss and both render the
same image; the slower store overwrites the faster one. Render outside a lock, but store with
`setdefault` so only one thumbnail wins and every caller gets that one.""",
fix=[("""    if path not in thumbnails:
        thumbnails[path] = render(path)
    return thumbnails[path]""", """    image = thumbnails.get(path)
    if image is None:
        image = thumbnails.setdefault(path, render(path))
    return image""")],
notes="two threads may still render the same image once; only one result is kept"),

ex("thr009-21", """
import threading
import time

pending_acks = {}


def on_ack(msg_id):
    if msg_id in pending_acks:
        pending_acks.pop(msg_id)


def resend_loop(send):
    while True:
        for msg_id, payload in list(pending_acks.items()):
            send(msg_id, payload)
        time.sleep(5)


def start(send, acks):
    threading.Thread(target=resend_loop, args=(send,), daemon=True).start()
    for msg_id in acks:
        threading.Thread(target=on_ack, args=(msg_id,)).start()
""", """Duplicate acknowledgements for one message can arrive on two threads; both see the id and the
second `pop` raises `KeyError`. `pending_acks.pop(msg_id, None)` is one atomic call that tolerates
the duplicate.""",
fix=[("""    if msg_id in pending_acks:
        pending_acks.pop(msg_id)""", """    pending_acks.pop(msg_id, None)""")]),
]

write("THR009", "check-then-act", E)
