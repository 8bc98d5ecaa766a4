from _build import ex, write

E = [
ex("thr003-01", '''
import threading
import urllib.request


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status


def check_site(url):
    t = threading.Thread(target=fetch, args=(url))
    t.start()
    t.join()
''', """`(url)` is just the string `url` in parentheses, so `Thread` unpacks it character by character and
calls `fetch('h', 't', 't', 'p', ...)`, which fails with `TypeError` inside the new thread. A
one-element tuple needs a trailing comma: `args=(url,)`.""",
fix=[("args=(url)", "args=(url,)")]),

ex("thr003-02", '''
import queue
import threading


def drain(q):
    while True:
        item = q.get()
        if item is None:
            return
        print(item)


def start_printer(q: queue.Queue):
    printer = threading.Thread(target=drain, args=(q), daemon=True)
    printer.start()
    return printer
''', """`args=(q)` passes the queue object itself as the argument sequence; `Thread` tries to unpack a
`Queue`, which is not iterable, so the thread dies with `TypeError` at start-up and nothing is ever
printed. Write `args=(q,)`.""",
fix=[("args=(q), daemon=True)", "args=(q,))")]),

ex("thr003-03", '''
import threading


class Cache:
    def __init__(self):
        self.data = {}
        self.lock = threading.Lock()

    def load(self, path):
        with open(path) as fh, self.lock:
            self.data[path] = fh.read()

    def preload(self, paths):
        workers = []
        for path in paths:
            w = threading.Thread(target=self.load, args=(path))
            w.start()
            workers.append(w)
        for w in workers:
            w.join()
''', """Because `(path)` is not a tuple, each `Thread` spreads the path string into single characters and
calls `self.load('/', 'e', 't', 'c', ...)`, raising `TypeError` in every worker; the cache stays
empty while `preload` appears to succeed. Use `args=(path,)`.""",
fix=[("args=(path)", "args=(path,)")]),

ex("thr003-04", '''
import threading
import time


def announce(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}")


def remind_later(delay):
    timer = threading.Timer(delay, announce, args=("stand-up in 5 minutes"))
    timer.start()
    return timer
''', """`args=("stand-up in 5 minutes")` is a plain string, so when the timer fires it calls `announce`
with 21 one-character arguments and the timer thread crashes with `TypeError`. Add the trailing
comma to make it a tuple.""",
fix=[('args=("stand-up in 5 minutes")', 'args=("stand-up in 5 minutes",)')]),

ex("thr003-05", '''
import threading


def process_batch(batch):
    for record in batch:
        record.save()


def process_in_background(records, size=100):
    threads = []
    for start in range(0, len(records), size):
        batch = records[start:start + size]
        t = threading.Thread(target=process_batch, args=(batch))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
''', """`args=(batch)` is the list itself, so the thread calls `process_batch(*batch)` with up to 100
positional arguments instead of one list, failing with `TypeError` (or worse, silently doing the
wrong thing for a batch of one). Wrap it in a real tuple: `args=(batch,)`.""",
fix=[("args=(batch)", "args=(batch,)")]),

ex("thr003-06", '''
import threading
import socket


class Server:
    def __init__(self, port):
        self.listener = socket.create_server(("", port))

    def handle(self, conn):
        with conn:
            conn.sendall(b"hello\\n")

    def serve(self):
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self.handle, args=(conn)).start()
''', """`(conn)` is the socket object, not a tuple containing it; sockets are not iterable, so every
handler thread dies with `TypeError` and clients get no greeting (the connection leaks until
garbage collection). Write `args=(conn,)`.""",
fix=[("args=(conn)", "args=(conn,)")]),

ex("thr003-07", '''
from threading import Thread


def compress(path):
    import gzip, shutil
    with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
        shutil.copyfileobj(src, dst)


def compress_logs(paths):
    jobs = [Thread(target=compress, args=(p)) for p in paths]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
''', """Each `args=(p)` is a path string, which `Thread` unpacks into characters, so `compress` receives
dozens of arguments and raises `TypeError` in every job; no log gets compressed and the failures
only show up as thread tracebacks. Use `args=(p,)`.""",
fix=[("args=(p)", "args=(p,)")]),

ex("thr003-08", '''
import threading


class Job:
    def __init__(self, spec):
        self.spec = spec
        self.result = None

    def execute(self, spec):
        self.result = spec["command"].upper()

    def launch(self):
        self.thread = threading.Thread(target=self.execute, args=(self.spec))
        self.thread.start()
''', """`args=(self.spec)` hands the spec dict itself to `Thread`, which unpacks its keys as positional
arguments: `execute('command', 'timeout')` fails with `TypeError` on the job thread. A one-element
tuple needs a comma: `args=(self.spec,)`.""",
fix=[("args=(self.spec)", "args=(self.spec,)")]),

ex("thr003-09", '''
import threading
import time


def countdown(n):
    for i in range(n, 0, -1):
        print(i)
        time.sleep(1)


def launch_countdown():
    t = threading.Thread(target=countdown, args=(10))
    t.start()
    t.join()
''', """`(10)` is the integer 10, not a tuple, and an `int` cannot be unpacked, so the thread fails
immediately with `TypeError: countdown() argument after * must be an iterable`. Use `args=(10,)`.""",
fix=[("args=(10)", "args=(10,)")]),

ex("thr003-10", '''
import threading
import requests


def post_webhook(payload):
    requests.post("https://hooks.example.com/notify", json=payload, timeout=5)


def notify_async(event):
    payload = {"event": event.name, "at": event.timestamp}
    sender = threading.Thread(target=post_webhook, args=(payload), daemon=True)
    sender.start()
    return sender
''', """`args=(payload)` is the dict, so `Thread` calls `post_webhook('event', 'at')` with the dict's keys
and the webhook thread raises `TypeError`; nothing is posted and the caller never hears about it.
Pass `args=(payload,)`.""",
fix=[("args=(payload)", "args=(payload,)")]),

ex("thr003-11", '''
import _thread
import time


def write_heartbeats(log_path):
    while True:
        with open(log_path, "a") as fh:
            fh.write(f"alive {time.time()}\\n")
        time.sleep(30)


def install_heartbeat(log_path="/var/log/app/heartbeat.log"):
    _thread.start_new_thread(write_heartbeats, (log_path))
''', """`_thread.start_new_thread` takes the argument tuple positionally, and `(log_path)` is only the
path string, so the new thread calls `write_heartbeats` with one argument per character and dies
with `TypeError`; no heartbeat is ever written. Use `(log_path,)`.""",
fix=[("(log_path))", "(log_path,))")]),

ex("thr003-12", '''
import threading


def tail(path, callback):
    with open(path) as fh:
        for line in fh:
            callback(line)


def watch(path):
    lines = []
    reader = threading.Thread(target=tail, args=(path), kwargs={"callback": lines.append})
    reader.start()
    reader.join()
    return lines
''', """`args=(path)` unpacks the path string into characters, and together with the `callback` keyword
`tail` gets far too many positional arguments and fails on the reader thread. Use `args=(path,)`.""",
fix=[("args=(path)", "args=(path,)")]),

ex("thr003-13", '''
import threading


class Uploader:
    def __init__(self, client):
        self.client = client
        self.threads = []

    def upload(self, key):
        self.client.put_object(Key=key, Body=b"")

    def upload_keys(self, keys):
        for i in range(len(keys)):
            t = threading.Thread(target=self.upload, args=(keys[i]))
            t.start()
            self.threads.append(t)
''', """`args=(keys[i])` is a single key string, which `Thread` unpacks character by character, so each
upload thread fails with `TypeError` and no key is uploaded. Write `args=(keys[i],)` (or iterate the
keys directly).""",
fix=[("args=(keys[i])", "args=(keys[i],)")]),

ex("thr003-14", '''
import threading

PENDING_TIMERS = {}


def cancel_unpaid(order_id):
    print(f"cancelling order {order_id}")


def place_order(order):
    timer = threading.Timer(900, cancel_unpaid, args=(order.id))
    PENDING_TIMERS[order.id] = timer
    timer.start()
''', """`args=(order.id)` is the bare order id (an int), which cannot be unpacked, so fifteen minutes later
the timer thread raises `TypeError` and unpaid orders are never cancelled. The one-element tuple
needs a trailing comma: `args=(order.id,)`.""",
fix=[("args=(order.id)", "args=(order.id,)")]),

ex("thr003-15", '''
import threading
import logging


def ping(host):
    logging.info("pinging %s", host)


def ping_all(hosts):
    threads = [threading.Thread(target=ping, args=(h)) for h in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """With `args=(h)` each thread receives the host name as its argument sequence, so
`ping('d', 'b', '1')` raises `TypeError` in every thread and nothing is pinged. Add the comma:
`args=(h,)`.""",
fix=[("args=(h)", "args=(h,)")]),
]

write("THR003", "thread-args-not-tuple", E)
