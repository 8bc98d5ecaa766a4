from _build import ex, write

E = [
ex("thr016-01", '''
import threading
import requests


class PageCache:
    def __init__(self):
        self._pages = {}
        self._lock = threading.Lock()

    def get(self, url):
        with self._lock:
            if url not in self._pages:
                self._pages[url] = requests.get(url, timeout=10).text
            return self._pages[url]
''', """The HTTP request runs while `_lock` is held, so every other thread that wants any page, even a
cached one, waits for the slowest download. Fetch outside the lock and take it only to read and
store the dict.""",
fixed='''
import threading
import requests


class PageCache:
    def __init__(self):
        self._pages = {}
        self._lock = threading.Lock()

    def get(self, url):
        with self._lock:
            page = self._pages.get(url)
        if page is None:
            page = requests.get(url, timeout=10).text
            with self._lock:
                page = self._pages.setdefault(url, page)
        return page
''', notes="two threads may download the same page once; the first stored copy wins"),

ex("thr016-02", '''
import threading
import time

state_lock = threading.Lock()
state = {"connected": False}


def reconnect(connect):
    with state_lock:
        while not state["connected"]:
            try:
                connect()
                state["connected"] = True
            except OSError:
                time.sleep(5)
''', """`time.sleep(5)` inside `with state_lock:` keeps the lock for the entire retry loop, so every
thread that only wants to read `state` blocks for as long as the server is down. Sleep with the
lock released and take it only to update the flag.""",
fixed='''
import threading
import time

state_lock = threading.Lock()
state = {"connected": False}


def reconnect(connect):
    while True:
        try:
            connect()
            break
        except OSError:
            time.sleep(5)
    with state_lock:
        state["connected"] = True
'''),

ex("thr016-03", '''
import subprocess
import threading


class GitRepo:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.head = None

    def refresh(self):
        with self.lock:
            out = subprocess.run(["git", "-C", self.path, "fetch"], capture_output=True)
            self.head = subprocess.check_output(["git", "-C", self.path, "rev-parse", "HEAD"]).strip()
        return out.returncode
''', """Both `git` subprocesses run while `self.lock` is held; a slow network fetch blocks every thread
that reads `head` for seconds or minutes. Run the commands first and lock only to publish the
result.""",
fixed='''
import subprocess
import threading


class GitRepo:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.head = None

    def refresh(self):
        out = subprocess.run(["git", "-C", self.path, "fetch"], capture_output=True)
        head = subprocess.check_output(["git", "-C", self.path, "rev-parse", "HEAD"]).strip()
        with self.lock:
            self.head = head
        return out.returncode
'''),

ex("thr016-04", '''
import queue
import threading


class Dispatcher:
    def __init__(self):
        self.inbox = queue.Queue()
        self.lock = threading.Lock()
        self.handled = 0

    def next_job(self):
        with self.lock:
            job = self.inbox.get()
            self.handled += 1
        return job
''', """`self.inbox.get()` blocks until someone puts a job, and it does so holding `self.lock`; any
producer that needs the lock before `put` deadlocks, and other consumers queue behind the lock
instead of the queue. Get the item first, then lock for the counter.""",
fix=[("""        with self.lock:
            job = self.inbox.get()
            self.handled += 1""", """        job = self.inbox.get()
        with self.lock:
            self.handled += 1""")]),

ex("thr016-05", '''
import threading
import urllib.request

rates = {}
rates_lock = threading.RLock()


def refresh_rates(currencies):
    with rates_lock:
        for cur in currencies:
            with urllib.request.urlopen(f"https://fx.example.com/{cur}") as resp:
                rates[cur] = float(resp.read())
''', """All network requests are made while `rates_lock` is held, so every thread converting prices
stalls until the whole refresh finishes; one hung request freezes conversions entirely. Download
into a local dict, then swap it in under the lock.""",
fixed='''
import threading
import urllib.request

rates = {}
rates_lock = threading.RLock()


def refresh_rates(currencies):
    fresh = {}
    for cur in currencies:
        with urllib.request.urlopen(f"https://fx.example.com/{cur}", timeout=10) as resp:
            fresh[cur] = float(resp.read())
    with rates_lock:
        rates.update(fresh)
'''),

ex("thr016-06", '''
import threading


class WorkerGroup:
    def __init__(self):
        self.threads = []
        self.lock = threading.Lock()

    def spawn(self, fn):
        t = threading.Thread(target=fn)
        with self.lock:
            self.threads.append(t)
        t.start()

    def stop_all(self):
        with self.lock:
            for t in self.threads:
                t.join()
            self.threads.clear()
''', """`stop_all` joins the workers while holding `self.lock`; a worker that calls `spawn` (which needs
the same lock) can never finish, and `join` waits forever: a deadlock. Copy the list under the lock
and join outside it.""",
fix=[("""        with self.lock:
            for t in self.threads:
                t.join()
            self.threads.clear()""", """        with self.lock:
            threads, self.threads = self.threads, []
        for t in threads:
            t.join()""")]),

ex("thr016-07", '''
import threading
import time


class RateLimitedClient:
    def __init__(self, send, min_interval=1.0):
        self.send = send
        self.min_interval = min_interval
        self.last = 0.0
        self.lock = threading.Lock()

    def request(self, payload):
        with self.lock:
            wait = self.last + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.last = time.monotonic()
            return self.send(payload)
''', """Sleeping and sending with the lock held means every thread waits in line for the previous
request's full round trip, not just for the rate interval. Reserve the next slot under the lock,
then sleep and send outside it.""",
fix=[("""        with self.lock:
            wait = self.last + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.last = time.monotonic()
            return self.send(payload)""", """        with self.lock:
            slot = max(time.monotonic(), self.last + self.min_interval)
            self.last = slot
        wait = slot - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return self.send(payload)""")]),

ex("thr016-08", '''
import threading

ready = threading.Event()
config_lock = threading.Lock()
config = {}


def read_config(key):
    with config_lock:
        ready.wait()
        return config[key]


def load_config(values):
    with config_lock:
        config.update(values)
    ready.set()
''', """`read_config` waits for `ready` while holding `config_lock`, but `load_config` needs that lock
before it can set the event: if a reader arrives first, both threads wait on each other forever.
Wait for the event before taking the lock.""",
fix=[("""    with config_lock:
        ready.wait()
        return config[key]""", """    ready.wait()
    with config_lock:
        return config[key]""")]),

ex("thr016-09", '''
import threading
import os

build_lock = threading.Lock()
artifacts = []


def build(target):
    with build_lock:
        code = os.system(f"make {target}")
        if code == 0:
            artifacts.append(target)
    return code
''', """Each `make` invocation runs with `build_lock` held, so builds that could proceed in parallel run
one at a time and a stuck build blocks everything. Run the command unlocked and take the lock only
to record the artifact.""",
fix=[("""    with build_lock:
        code = os.system(f"make {target}")
        if code == 0:
            artifacts.append(target)""", """    code = os.system(f"make {target}")
    if code == 0:
        with build_lock:
            artifacts.append(target)""")]),

ex("thr016-10", '''
import threading
import requests


class TokenProvider:
    def __init__(self, url):
        self.url = url
        self.token = None
        self.cond = threading.Condition()

    def refresh(self):
        with self.cond:
            resp = requests.post(self.url, timeout=30)
            self.token = resp.json()["token"]
            self.cond.notify_all()
''', """The POST is made while the condition's lock is held, so every thread waiting on or reading the
token is blocked for up to 30 seconds, even those that could use the old token. Request first, then
lock to store the token and notify.""",
fix=[("""        with self.cond:
            resp = requests.post(self.url, timeout=30)
            self.token = resp.json()["token"]
            self.cond.notify_all()""", """        resp = requests.post(self.url, timeout=30)
        token = resp.json()["token"]
        with self.cond:
            self.token = token
            self.cond.notify_all()""")]),

ex("thr016-11", '''
import threading
import time

jobs = []
jobs_lock = threading.Lock()


def scheduler(run):
    while True:
        with jobs_lock:
            due = [j for j in jobs if j.due <= time.time()]
            for job in due:
                jobs.remove(job)
                run(job)
            time.sleep(1)
''', """The scheduler holds `jobs_lock` while it sleeps, so `jobs.append` from other threads can only get
in during the short gap between iterations: adding a job waits up to a second. Sleep outside the
`with` block.""",
fix=[("""            for job in due:
                jobs.remove(job)
                run(job)
            time.sleep(1)""", """            for job in due:
                jobs.remove(job)
        for job in due:
            run(job)
        time.sleep(1)""")]),

ex("thr016-12", '''
import threading
import socket


class Resolver:
    def __init__(self):
        self.cache = {}
        self.mutex = threading.Lock()

    def resolve(self, host):
        with self.mutex:
            if host not in self.cache:
                self.cache[host] = socket.gethostbyname(host)
            return self.cache[host]
''', """A DNS lookup can take seconds, and here it runs with `self.mutex` held, so every resolution,
even of cached hosts, waits behind it. Look up outside the lock and store the result under it.""",
fix=[("""        with self.mutex:
            if host not in self.cache:
                self.cache[host] = socket.gethostbyname(host)
            return self.cache[host]""", """        with self.mutex:
            addr = self.cache.get(host)
        if addr is None:
            addr = socket.gethostbyname(host)
            with self.mutex:
                self.cache[host] = addr
        return addr""")]),

ex("thr016-13", '''
import threading
import queue

results = queue.Queue()
summary_lock = threading.Lock()
summary = []


def collect(n):
    with summary_lock:
        for _ in range(n):
            summary.append(results.get())
''', """`collect` blocks on `results.get()` while holding `summary_lock`; if a producer also updates
`summary` before putting its result, it can never take the lock and the program deadlocks. Take the
items first, then append them under the lock.""",
fix=[("""    with summary_lock:
        for _ in range(n):
            summary.append(results.get())""", """    items = [results.get() for _ in range(n)]
    with summary_lock:
        summary.extend(items)""")]),

ex("thr016-14", '''
import threading
import time


class Heartbeat:
    def __init__(self, ping):
        self.ping = ping
        self.alive = True
        self._lock = threading.Lock()

    def loop(self):
        while True:
            with self._lock:
                if not self.alive:
                    return
                self.ping()
                time.sleep(10)

    def stop(self):
        with self._lock:
            self.alive = False
''', """The heartbeat sleeps ten seconds with `_lock` held, so `stop()` can wait up to ten seconds just to
set a flag. Check the flag under the lock and sleep outside it (better: wait on an `Event` so stop
is immediate).""",
fixed='''
import threading


class Heartbeat:
    def __init__(self, ping):
        self.ping = ping
        self._stopped = threading.Event()

    def loop(self):
        while not self._stopped.is_set():
            self.ping()
            self._stopped.wait(10)

    def stop(self):
        self._stopped.set()
'''),

ex("thr016-15", '''
import threading
import subprocess

printer_lock = threading.Lock()


def print_label(text):
    with printer_lock:
        proc = subprocess.Popen(["lpr", "-P", "labels"], stdin=subprocess.PIPE)
        proc.communicate(text.encode())
''', """`communicate()` waits for the print job to be accepted while `printer_lock` is held; if it is
only meant to keep labels in order, it also stalls every thread for as long as the spooler takes.
If serialising the whole job is really required, document it; otherwise lock only around shared
state.""",
fixed='''
import subprocess


def print_label(text):
    subprocess.run(["lpr", "-P", "labels"], input=text.encode(), check=True)
''', notes="the spooler already serialises jobs, so the lock was not needed at all; analyzer miss: `proc.communicate()` on a Popen held in a variable", missed=True),

ex("thr016-16", '''
import threading
import requests

visited = set()
visited_lock = threading.Lock()


def crawl_page(url, out):
    with visited_lock:
        if url in visited:
            return
        visited.add(url)
        html = requests.get(url, timeout=15).text
    out.append(html)
''', """The page download happens inside `with visited_lock:`, so crawler threads that only need to
check the `visited` set wait for someone else's HTTP request: the crawl runs one page at a time.
Mark the URL under the lock and download after leaving it.""",
fix=[("""        visited.add(url)
        html = requests.get(url, timeout=15).text""", """        visited.add(url)
    html = requests.get(url, timeout=15).text""")]),
]

write("THR016", "blocking-call-under-lock", E)
