from _build import ex, write

E = [
ex("thr018-01", '''
import threading

slots = threading.Semaphore(4)


def fetch(session, url):
    slots.acquire()
    try:
        data = session.get(url).content
        slots.release()
        return data
    finally:
        slots.release()
''', """On success the slot is released twice: once before `return` and again in `finally`. A plain
`Semaphore` has no upper bound, so each call raises the counter and the limit of 4 concurrent
fetches quietly grows. Release only in `finally` (or use `with slots:`), and prefer
`BoundedSemaphore`, which raises on an extra release.""",
fixed='''
import threading

slots = threading.BoundedSemaphore(4)


def fetch(session, url):
    with slots:
        return session.get(url).content
'''),

ex("thr018-02", '''
import threading


class Throttle:
    def __init__(self, limit):
        self.sem = threading.Semaphore(limit)

    def run(self, task):
        with self.sem:
            result = task()
            self.sem.release()
        return result
''', """`with self.sem:` already releases the semaphore on exit, so the explicit `release()` inside the
block gives back a second slot. After a few calls the throttle admits far more than `limit` tasks.
Drop the manual release.""",
fixed='''
import threading


class Throttle:
    def __init__(self, limit):
        self.sem = threading.BoundedSemaphore(limit)

    def run(self, task):
        with self.sem:
            return task()
'''),

ex("thr018-03", '''
import threading

db_connections = threading.Semaphore(10)


def query(conn_factory, sql):
    db_connections.acquire()
    try:
        conn = conn_factory()
        return conn.execute(sql).fetchall()
    except Exception:
        db_connections.release()
        raise
    finally:
        db_connections.release()
''', """When the query fails, the `except` block releases the semaphore and the `finally` releases it
again, so every error permanently adds a connection slot; under a burst of errors the database
gets more than 10 connections. Release only in `finally`, and use `BoundedSemaphore` to catch
such mistakes.""",
fixed='''
import threading

db_connections = threading.BoundedSemaphore(10)


def query(conn_factory, sql):
    with db_connections:
        conn = conn_factory()
        return conn.execute(sql).fetchall()
'''),

ex("thr018-04", '''
import threading


class Downloader:
    def __init__(self, client, parallel=3):
        self.client = client
        self.gate = threading.Semaphore(parallel)

    def download_batch(self, urls):
        self.gate.acquire()
        results = []
        for url in urls:
            results.append(self.client.get(url))
            self.gate.release()
        return results
''', """The gate is acquired once per batch but released once per URL, so a batch of 20 URLs adds 19
extra permits and the parallelism limit disappears. Acquire and release around the same unit of
work.""",
fixed='''
import threading


class Downloader:
    def __init__(self, client, parallel=3):
        self.client = client
        self.gate = threading.BoundedSemaphore(parallel)

    def download_batch(self, urls):
        with self.gate:
            return [self.client.get(url) for url in urls]
'''),

ex("thr018-05", '''
import threading

render_slots = threading.Semaphore(2)


def render(page):
    acquired = render_slots.acquire(timeout=5)
    try:
        return page.render()
    finally:
        render_slots.release()
''', """If the 5 s timeout expires, `acquire` returns `False` but the `finally` still releases, adding a
permit that was never taken; every timeout then raises the limit by one. Release only when the
acquire succeeded.""",
fixed='''
import threading

render_slots = threading.BoundedSemaphore(2)


def render(page):
    if not render_slots.acquire(timeout=5):
        raise TimeoutError("no render slot free")
    try:
        return page.render()
    finally:
        render_slots.release()
''', notes="the timed acquire's result is stored in a variable that is never checked (found since the finally check)"),

ex("thr018-16", '''
import threading

render_slots = threading.Semaphore(2)


def render(page):
    render_slots.acquire(timeout=5)
    try:
        return page.render()
    finally:
        render_slots.release()
''', """The result of the timed `acquire` is thrown away: after a 5 s timeout the page renders without a
slot and the `finally` releases one that was never taken, so each timeout raises the limit by one.
Check the result before rendering.""",
fixed='''
import threading

render_slots = threading.BoundedSemaphore(2)


def render(page):
    if not render_slots.acquire(timeout=5):
        raise TimeoutError("no render slot free")
    try:
        return page.render()
    finally:
        render_slots.release()
'''),

ex("thr018-06", '''
import threading

upload_limit = threading.Semaphore(5)


def upload(bucket, path):
    upload_limit.acquire(blocking=False)
    try:
        bucket.upload_file(path)
    finally:
        upload_limit.release()
''', """A non-blocking `acquire` returns `False` when all five permits are taken, yet the upload runs
anyway and the `finally` releases a permit it never held, so the limit grows under exactly the load
it was meant to cap. Check the result, or simply block.""",
fixed='''
import threading

upload_limit = threading.BoundedSemaphore(5)


def upload(bucket, path):
    with upload_limit:
        bucket.upload_file(path)
'''),

ex("thr018-07", '''
import threading


class WorkerPool:
    def __init__(self, size):
        self.free = threading.Semaphore(size)

    def submit(self, fn, *args):
        self.free.acquire()
        try:
            fn(*args)
            self.free.release()
        except Exception as exc:
            print("task failed:", exc)
        finally:
            self.free.release()
''', """A successful task releases the permit in the `try` body and again in `finally`, so every success
increases the pool's capacity by one. Keep a single release in `finally`.""",
fixed='''
import threading


class WorkerPool:
    def __init__(self, size):
        self.free = threading.BoundedSemaphore(size)

    def submit(self, fn, *args):
        with self.free:
            try:
                fn(*args)
            except Exception as exc:
                print("task failed:", exc)
'''),

ex("thr018-08", '''
import threading

api_quota = threading.Semaphore(8)


def call_api(client, endpoint):
    with api_quota:
        response = client.get(endpoint)
        if response.status_code == 429:
            api_quota.release()
            return None
        return response.json()
''', """On a 429 the code releases the quota by hand and then the `with` block releases it again on
return, leaving one extra permit per rate-limit response; the client then sends even more requests
to an API that is already throttling it. Let the `with` block do the only release.""",
fixed='''
import threading

api_quota = threading.BoundedSemaphore(8)


def call_api(client, endpoint):
    with api_quota:
        response = client.get(endpoint)
        if response.status_code == 429:
            return None
        return response.json()
'''),

ex("thr018-09", '''
import threading


class PrinterPool:
    def __init__(self, printers):
        self.printers = list(printers)
        self.available = threading.Semaphore(len(self.printers))
        self.lock = threading.Lock()

    def print_all(self, docs):
        self.available.acquire()
        for doc in docs:
            with self.lock:
                printer = self.printers[0]
            printer.print(doc)
            self.available.release()
''', """One permit is taken for the whole batch but one is returned per document, so after a batch of N
documents the semaphore counts N-1 printers that do not exist. Acquire per document or release once
after the loop.""",
fixed='''
import threading


class PrinterPool:
    def __init__(self, printers):
        self.printers = list(printers)
        self.available = threading.BoundedSemaphore(len(self.printers))
        self.lock = threading.Lock()

    def print_all(self, docs):
        with self.available:
            for doc in docs:
                with self.lock:
                    printer = self.printers[0]
                printer.print(doc)
'''),

ex("thr018-10", '''
import threading
import subprocess

encoders = threading.Semaphore(2)


def transcode(src, dst):
    encoders.acquire()
    try:
        subprocess.run(["ffmpeg", "-i", src, dst], check=True)
    except subprocess.CalledProcessError:
        encoders.release()
        return False
    finally:
        encoders.release()
    return True
''', """When ffmpeg fails, the `except` handler releases the permit and `finally` releases it again, so
each failed transcode lets one more ffmpeg process run at once, and the machine is eventually
oversubscribed. Release only in `finally`.""",
fixed='''
import threading
import subprocess

encoders = threading.BoundedSemaphore(2)


def transcode(src, dst):
    with encoders:
        try:
            subprocess.run(["ffmpeg", "-i", src, dst], check=True)
        except subprocess.CalledProcessError:
            return False
    return True
'''),

ex("thr018-11", '''
import threading


class ScraperLimiter:
    def __init__(self):
        self.per_host = threading.Semaphore(2)

    def scrape(self, session, url):
        self.per_host.acquire()
        try:
            page = session.get(url, timeout=10)
            if page.status_code != 200:
                self.per_host.release()
                return None
            return page.text
        finally:
            self.per_host.release()
''', """A non-200 page releases the permit inside the `try` and then again in `finally`, so every error
page lets one more concurrent request hit the host. Drop the early release; the `finally` covers
every exit.""",
fixed='''
import threading


class ScraperLimiter:
    def __init__(self):
        self.per_host = threading.BoundedSemaphore(2)

    def scrape(self, session, url):
        with self.per_host:
            page = session.get(url, timeout=10)
            if page.status_code != 200:
                return None
            return page.text
'''),

ex("thr018-12", '''
import threading

gpu_slots = threading.Semaphore(1)


def infer(model, batch):
    with gpu_slots:
        try:
            return model(batch)
        except MemoryError:
            gpu_slots.release()
            raise
''', """`with gpu_slots:` releases on the way out, including when the exception propagates, so the
manual `release()` in the handler is a second one: after one out-of-memory error two batches can
use the single GPU at once. Remove the explicit release.""",
fixed='''
import threading

gpu_slots = threading.BoundedSemaphore(1)


def infer(model, batch):
    with gpu_slots:
        return model(batch)
'''),

ex("thr018-13", '''
import threading


class TokenBucket:
    def __init__(self, tokens):
        self.tokens = threading.Semaphore(tokens)

    def consume(self, n, work):
        self.tokens.acquire()
        for _ in range(n):
            work()
            self.tokens.release()
''', """`consume` takes one token but returns `n`, so the bucket refills itself beyond its capacity and
stops limiting anything. Acquire and release the same number of tokens.""",
fixed='''
import threading


class TokenBucket:
    def __init__(self, tokens):
        self.tokens = threading.BoundedSemaphore(tokens)

    def consume(self, n, work):
        for _ in range(n):
            with self.tokens:
                work()
'''),

ex("thr018-14", '''
import threading
import smtplib

smtp_slots = threading.Semaphore(3)


def send_mail(msg):
    smtp_slots.acquire()
    try:
        with smtplib.SMTP("mail.internal") as smtp:
            smtp.send_message(msg)
        smtp_slots.release()
    except smtplib.SMTPException:
        smtp_slots.release()
        raise
    smtp_slots.release()
''', """The success path releases twice (inside the `try` and after it), so every sent mail adds an SMTP
slot and the server sees more than three connections. One `with smtp_slots:` block releases exactly
once on every path.""",
fixed='''
import threading
import smtplib

smtp_slots = threading.BoundedSemaphore(3)


def send_mail(msg):
    with smtp_slots, smtplib.SMTP("mail.internal") as smtp:
        smtp.send_message(msg)
''', notes="analyzer miss: release in the try body plus release after the try (reported as THR004 only)", missed=True),

ex("thr018-17", '''
import threading
import smtplib

smtp_slots = threading.Semaphore(3)


def send_mail(msg):
    smtp_slots.acquire()
    try:
        with smtplib.SMTP("mail.internal") as smtp:
            smtp.send_message(msg)
        smtp_slots.release()
    finally:
        smtp_slots.release()
''', """When the mail is sent, the permit is released inside the `try` and once more by `finally`, so
every sent mail adds an SMTP slot and the relay soon sees more than three connections. A single
`with smtp_slots:` block releases exactly once on every path.""",
fixed='''
import threading
import smtplib

smtp_slots = threading.BoundedSemaphore(3)


def send_mail(msg):
    with smtp_slots, smtplib.SMTP("mail.internal") as smtp:
        smtp.send_message(msg)
'''),

ex("thr018-15", '''
import threading

disk_writers = threading.Semaphore(4)


def flush_segments(segments, write):
    disk_writers.acquire()
    try:
        for seg in segments:
            write(seg)
            disk_writers.release()
    finally:
        disk_writers.release()
''', """The loop releases once per segment and `finally` once more, all for a single `acquire()`; after a
few flushes the writer limit is meaningless and the disk is flooded with concurrent writes. Hold
the permit for the whole flush and release it once.""",
fixed='''
import threading

disk_writers = threading.BoundedSemaphore(4)


def flush_segments(segments, write):
    with disk_writers:
        for seg in segments:
            write(seg)
'''),
]

write("THR018", "semaphore-over-release", E)
