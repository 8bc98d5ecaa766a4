from _build import ex, write

E = [
ex("thr001-01", '''
import threading
import urllib.request


def download(url, results):
    with urllib.request.urlopen(url, timeout=10) as resp:
        results[url] = resp.read()


def download_all(urls):
    results = {}
    threads = [threading.Thread(target=download, args=(u, results)) for u in urls]
    for t in threads:
        t.run()
    for t in threads:
        t.join()
    return results
''', """Each `t.run()` executes `download` synchronously on the calling thread, so the URLs are
fetched one after another and the threads are never started. The later `join()` calls return
immediately because nothing is running. Call `start()` so the downloads overlap.""",
fix=[("t.run()", "t.start()")]),

ex("thr001-02", '''
import socket
import threading


class EchoServer:
    def __init__(self, port):
        self.sock = socket.create_server(("127.0.0.1", port))
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            with conn:
                conn.sendall(conn.recv(1024))

    def open(self):
        self.thread.run()
        return self
''', """`open()` calls `self.thread.run()`, which runs the endless accept loop in `serve` on the caller's
thread: `open()` never returns and the server blocks whoever started it. `start()` runs `serve` on
the background thread that was created for it.""",
fix=[("self.thread.run()", "self.thread.start()")]),

ex("thr001-03", '''
import threading
import time


class Crawler(threading.Thread):
    def __init__(self, seeds):
        super().__init__()
        self.seeds = list(seeds)
        self.visited = []

    def run(self):
        for url in self.seeds:
            time.sleep(0.1)
            self.visited.append(url)


def crawl(seed_groups):
    crawlers = [Crawler(group) for group in seed_groups]
    for c in crawlers:
        c.run()
    for c in crawlers:
        c.join()
    return [u for c in crawlers for u in c.visited]
''', """`Crawler` overrides `run()`, but calling `c.run()` from `crawl` just invokes that method on the
main thread; no crawler thread is ever started and the groups are crawled serially. `start()`
creates the OS thread, which then calls `run()` itself.""",
fix=[("c.run()", "c.start()")]),

ex("thr001-04", '''
import threading


class BufferedLog:
    def __init__(self, path, interval=5.0):
        self.path = path
        self.interval = interval
        self.lines = []
        self.lock = threading.Lock()

    def write(self, line):
        with self.lock:
            self.lines.append(line)

    def flush(self):
        with self.lock:
            lines, self.lines = self.lines, []
        with open(self.path, "a") as fh:
            fh.writelines(lines)

    def schedule_flush(self):
        timer = threading.Timer(self.interval, self.flush)
        timer.run()
        return timer
''', """`Timer.run()` does not schedule anything: it waits `interval` seconds on the calling thread and
then flushes, so every `schedule_flush()` call blocks the logger's caller for five seconds. `start()`
runs the wait and the flush on the timer's own thread and returns at once.""",
fix=[("timer.run()", "timer.start()")]),

ex("thr001-05", '''
from threading import Thread
import shutil


def copy_tree(src, dst):
    shutil.copytree(src, dst, dirs_exist_ok=True)


def mirror(pairs):
    workers = []
    for src, dst in pairs:
        worker = Thread(target=copy_tree, args=(src, dst))
        worker.run()
        workers.append(worker)
    for worker in workers:
        worker.join()
''', """`worker.run()` copies each tree on the main thread before the next `Thread` is even created, so
the mirror is fully sequential despite the thread objects. Replacing it with `worker.start()` lets
the copies proceed concurrently and the final loop waits for all of them.""",
fix=[("worker.run()", "worker.start()")]),

ex("thr001-06", '''
import threading
import time


class Heartbeat:
    def __init__(self, send, period=2.0):
        self.send = send
        self.period = period
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop)

    def loop(self):
        while not self.stopped.wait(self.period):
            self.send({"type": "ping", "ts": time.time()})

    def __enter__(self):
        self.thread.run()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()
''', """Entering the context manager calls `self.thread.run()`, which executes `loop` right there; since
`stopped` is never set, the `with` block is never reached and the program hangs. `start()` puts the
heartbeat loop on its own thread so `__exit__` can stop and join it.""",
fix=[("self.thread.run()", "self.thread.start()")]),

ex("thr001-07", '''
import threading


def handle_client(conn, addr):
    with conn:
        data = conn.recv(4096)
        conn.sendall(data.upper())


def serve_forever(listener):
    handlers = []
    while True:
        conn, addr = listener.accept()
        handler = threading.Thread(target=handle_client, args=(conn, addr))
        handler.run()
        handlers.append(handler)
''', """Each client is handled by `handler.run()` on the accept loop's thread, so a slow client blocks
every other connection: this is a single-threaded server wearing thread objects. `handler.start()`
serves each connection on its own thread while the loop goes back to `accept()`.""",
fix=[("handler.run()", "handler.start()")],
notes="the handlers list still grows forever; a real server would prune finished threads"),

ex("thr001-08", '''
import threading


def warm(cache, keys, loader):
    for key in keys:
        cache[key] = loader(key)


def warm_in_background(cache, keys, loader):
    threading.Thread(target=warm, args=(cache, keys, loader)).run()
''', """The function name promises background warming, but `.run()` on the freshly created thread
executes `warm` inline and returns only after every key is loaded. Use `.start()` (and keep the
thread object if the caller needs to wait for it).""",
fixed='''
import threading


def warm(cache, keys, loader):
    for key in keys:
        cache[key] = loader(key)


def warm_in_background(cache, keys, loader):
    t = threading.Thread(target=warm, args=(cache, keys, loader))
    t.start()
    return t
'''),

ex("thr001-09", '''
import threading

counter = 0
lock = threading.Lock()


def bump(n):
    global counter
    for _ in range(n):
        with lock:
            counter += 1


def test_counter_is_consistent():
    a = threading.Thread(target=bump, args=(10000,))
    b = threading.Thread(target=bump, args=(10000,))
    a.run()
    b.run()
    a.join()
    b.join()
    assert counter == 20000
''', """The test means to hammer the counter from two threads, but `a.run()` and `b.run()` run the loops
one after the other on the test's thread, so the lock is never contended and the test passes even
if the locking were removed. Start both threads so the test exercises real concurrency.""",
fix=[("a.run()\n    b.run()", "a.start()\n    b.start()")]),

ex("thr001-10", '''
import threading
import boto3


class Uploader(threading.Thread):
    def __init__(self, path, bucket):
        super().__init__(name=f"upload-{path}")
        self.path = path
        self.bucket = bucket

    def run(self):
        boto3.client("s3").upload_file(self.path, self.bucket, self.path)


def upload_report(path):
    Uploader(path, "reports").run()
''', """`Uploader(...).run()` performs the S3 upload on the caller's thread, so `upload_report` blocks for
the whole transfer. Calling `start()` runs it on the `Uploader` thread; return the thread if the
caller needs to `join()` it.""",
fixed='''
import threading
import boto3


class Uploader(threading.Thread):
    def __init__(self, path, bucket):
        super().__init__(name=f"upload-{path}")
        self.path = path
        self.bucket = bucket

    def run(self):
        boto3.client("s3").upload_file(self.path, self.bucket, self.path)


def upload_report(path):
    uploader = Uploader(path, "reports")
    uploader.start()
    return uploader
'''),

ex("thr001-11", '''
import threading
import time


class MetricsReporter:
    def __init__(self, registry, sink):
        self.registry = registry
        self.sink = sink
        self.stop = threading.Event()
        self.reporter = threading.Thread(target=self.report_loop, name="metrics")

    def report_loop(self):
        while not self.stop.is_set():
            self.sink.send(self.registry.snapshot())
            time.sleep(10)

    def start(self):
        self.reporter.run()

    def close(self):
        self.stop.set()
        self.reporter.join()
''', """`MetricsReporter.start()` calls `self.reporter.run()`, so the reporting loop runs on the caller
and `start()` never returns; `close()` can never be called. Starting the thread with
`self.reporter.start()` keeps the loop in the background as intended.""",
fix=[("self.reporter.run()", "self.reporter.start()")]),

ex("thr001-12", '''
import threading
import requests


def scrape(url, out):
    out.append(requests.get(url, timeout=5).text)


def scrape_pages(base, pages):
    out = []
    jobs = [
        threading.Thread(target=scrape, kwargs={"url": f"{base}?page={n}", "out": out})
        for n in range(1, pages + 1)
    ]
    for job in jobs:
        job.run()
    for job in jobs:
        job.join()
    return out
''', """Calling `job.run()` fetches every page sequentially on the scraping thread, so the run takes the
sum of all request latencies. With `job.start()` the requests overlap; the `join()` loop then
waits for the slowest one.""",
fix=[("job.run()", "job.start()")]),

ex("thr001-13", '''
import threading


class Session:
    def __init__(self, timeout):
        self.timeout = timeout
        self.expired = False
        self.watchdog = None

    def expire(self):
        self.expired = True

    def touch(self):
        if self.watchdog is not None:
            self.watchdog.cancel()
        self.watchdog = threading.Timer(self.timeout, self.expire)
        self.watchdog.run()
''', """`self.watchdog.run()` sleeps for the whole timeout inside `touch()` and then expires the session
immediately, so every request blocks and every session expires. `start()` arms the timer in the
background, which is what lets a later `cancel()` reset it.""",
fix=[("self.watchdog.run()", "self.watchdog.start()")]),

ex("thr001-14", '''
import threading
from PIL import Image


def make_thumbnail(src, dst):
    with Image.open(src) as img:
        img.thumbnail((256, 256))
        img.save(dst)


def thumbnails(paths):
    pending = []
    for path in paths:
        t = threading.Thread(target=make_thumbnail, args=(path, path + ".thumb.png"))
        pending.append(t)
    for t in pending:
        t.run()
    for t in pending:
        t.join()
''', """The loop builds one thread per image and then calls `t.run()`, which processes the images one at
a time on the current thread; `join()` is a no-op on threads that never started. `t.start()` lets
the I/O and the C-level image work overlap.""",
fix=[("        t.run()", "        t.start()")]),

ex("thr001-15", '''
import queue
import threading


def consume(q, handle):
    while True:
        item = q.get()
        if item is None:
            break
        handle(item)


def run_pipeline(items, handle):
    q = queue.Queue()
    consumer = threading.Thread(target=consume, args=(q, handle))
    consumer.run()
    for item in items:
        q.put(item)
    q.put(None)
    consumer.join()
''', """`consumer.run()` enters the consumer loop on the main thread before any item is queued, so it
blocks forever on the empty `q.get()` and the producer code below never runs: a deadlock. Starting
the consumer thread lets the main thread produce while the consumer drains the queue.""",
fix=[("consumer.run()", "consumer.start()")]),
]

write("THR001", "thread-run-instead-of-start", E)
