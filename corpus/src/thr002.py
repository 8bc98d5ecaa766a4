from _build import ex, write

E = [
ex("thr002-01", '''
import queue
import threading


def consume(jobs):
    while True:
        job = jobs.get()
        if job is None:
            break
        job.run()


def start_consumer(jobs):
    t = threading.Thread(target=consume(jobs))
    t.start()
    return t
''', """`target=consume(jobs)` calls `consume` immediately on the current thread, which then loops
forever on `jobs.get()`; the `Thread` is never even constructed. Pass the function and its argument
separately so the loop runs on the new thread.""",
fix=[("target=consume(jobs)", "target=consume, args=(jobs,)")]),

ex("thr002-02", '''
import threading


def rotate_logs():
    for handler in LOG_HANDLERS:
        handler.doRollover()


LOG_HANDLERS = []


def schedule_rotation(seconds):
    timer = threading.Timer(seconds, rotate_logs())
    timer.daemon = True
    timer.start()
    return timer
''', """`threading.Timer(seconds, rotate_logs())` rotates the logs right now and hands `None` to the timer
as its function; when the timer fires it raises `TypeError: 'NoneType' object is not callable` on
the timer thread. Pass `rotate_logs` itself so the rotation happens after the delay.""",
fix=[("rotate_logs())", "rotate_logs)")]),

ex("thr002-03", '''
from concurrent.futures import ThreadPoolExecutor


def send_welcome_email():
    smtp = connect_smtp()
    smtp.send_message(build_message())
    smtp.quit()


def connect_smtp():
    import smtplib
    return smtplib.SMTP("localhost")


def build_message():
    from email.message import EmailMessage
    return EmailMessage()


mailer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mail")


def on_signup(user):
    user.save()
    return mailer.submit(send_welcome_email())
''', """`mailer.submit(send_welcome_email())` sends the email synchronously in the signup request and then
submits its `None` result, so the request is not sped up and the future fails with a `TypeError`.
Submit the function object so the executor sends the email in the background.""",
fix=[("mailer.submit(send_welcome_email())", "mailer.submit(send_welcome_email)")]),

ex("thr002-04", '''
import threading
import time


class Poller:
    def __init__(self, source, interval):
        self.source = source
        self.interval = interval
        self.stop = threading.Event()

    def start(self):
        self.thread = threading.Thread(target=poll_forever(self), daemon=True)
        self.thread.start()


def poll_forever(poller):
    while not poller.stop.is_set():
        poller.source.refresh()
        time.sleep(poller.interval)
''', """`poll_forever(self)` is evaluated while building the `Thread` arguments, so `Poller.start()` runs
the polling loop on the caller's thread and never returns. The thread needs the function and its
argument: `target=poll_forever, args=(self,)`.""",
fix=[("target=poll_forever(self)", "target=poll_forever, args=(self,)")]),

ex("thr002-05", '''
import threading


def flush_metrics():
    print("flushing metrics")


def main():
    flusher = threading.Thread(target=flush_metrics(), name="flusher")
    flusher.start()
    flusher.join()
''', """The parentheses in `target=flush_metrics()` call the function before the thread exists, so the
flush runs on the main thread and the thread starts with `target=None` and does nothing. Drop the
call: `target=flush_metrics`.""",
fix=[("target=flush_metrics()", "target=flush_metrics")]),

ex("thr002-06", '''
import threading
import urllib.request


def fetch(url, sink):
    with urllib.request.urlopen(url) as resp:
        sink.append(resp.read())


def fetch_all(urls):
    sink = []
    threads = []
    for url in urls:
        t = threading.Thread(target=fetch(url, sink))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return sink
''', """`fetch(url, sink)` is called inside the loop on the main thread, so all downloads happen
sequentially and each thread gets `None` as its target. Pass the function and the arguments
separately so each URL is fetched on its own thread.""",
fix=[("target=fetch(url, sink)", "target=fetch, args=(url, sink)")]),

ex("thr002-07", '''
import threading
import sqlite3


def vacuum_database():
    conn = sqlite3.connect("app.db")
    conn.execute("VACUUM")
    conn.close()


class Maintenance:
    def __init__(self):
        self.worker = None

    def run_async(self):
        self.worker = threading.Thread(target=vacuum_database())
        self.worker.start()

    def wait(self):
        if self.worker:
            self.worker.join()
''', """`Maintenance.run_async` claims to vacuum in the background, but `target=vacuum_database()` runs
the vacuum inline (it can take minutes on a large database) and starts a thread with no target.
Pass `vacuum_database` without calling it.""",
fix=[("target=vacuum_database()", "target=vacuum_database")]),

ex("thr002-08", '''
from concurrent.futures import ThreadPoolExecutor, wait


def resize(path, size):
    from PIL import Image
    with Image.open(path) as img:
        img.resize(size).save(path)


def resize_all(paths):
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(resize(p, (128, 128))) for p in paths]
        wait(futures)
        for f in futures:
            f.result()
''', """`pool.submit(resize(p, (128, 128)))` resizes every image on the submitting thread and submits
`None`, so the pool does no work and each `f.result()` raises `TypeError`. `submit` takes the
callable and its arguments: `pool.submit(resize, p, (128, 128))`.""",
fix=[("pool.submit(resize(p, (128, 128)))", "pool.submit(resize, p, (128, 128))")]),

ex("thr002-09", '''
import threading
import time


def expire_sessions(store):
    now = time.time()
    for key in [k for k, s in store.items() if s.deadline < now]:
        store.pop(key, None)


def arm_expiry(store, delay=60.0):
    t = threading.Timer(delay, expire_sessions(store))
    t.start()
    return t
''', """`threading.Timer(delay, expire_sessions(store))` expires sessions immediately and schedules
`None`, so after `delay` seconds the timer thread crashes instead of expiring anything. Give the
timer the function and its argument: `threading.Timer(delay, expire_sessions, args=(store,))`.""",
fix=[("threading.Timer(delay, expire_sessions(store))", "threading.Timer(delay, expire_sessions, args=(store,))")]),

ex("thr002-10", '''
import logging
import threading

log = logging.getLogger(__name__)


def ship_logs(buffer, endpoint):
    while True:
        batch = buffer.drain()
        if batch:
            endpoint.post(batch)
        else:
            log.debug("nothing to ship")
            break


class LogShipper:
    def __init__(self, buffer, endpoint):
        self.thread = threading.Thread(target=ship_logs(buffer, endpoint), daemon=True)

    def start(self):
        self.thread.start()
''', """The constructor calls `ship_logs(buffer, endpoint)` while building the thread, so logs are
shipped synchronously at construction time and `start()` later launches an empty thread. Pass
`target=ship_logs, args=(buffer, endpoint)` so shipping happens when the thread is started.""",
fix=[("target=ship_logs(buffer, endpoint)", "target=ship_logs, args=(buffer, endpoint)")]),

ex("thr002-11", '''
import threading


def print_progress(done, total):
    print(f"{done.value}/{total}", end="\\r")


class Progress:
    def __init__(self, total):
        self.total = total
        self.value = 0

    def tick(self):
        self.value += 1
        threading.Thread(target=print_progress(self, self.total)).start()
''', """`target=print_progress(self, self.total)` prints on the current thread and passes `None` as the
thread's target, so the thread does nothing. Pass the function and its arguments separately.""",
fixed='''
import threading


def print_progress(done, total):
    print(f"{done.value}/{total}", end="\\r")


class Progress:
    def __init__(self, total):
        self.total = total
        self.value = 0
        self.lock = threading.Lock()

    def tick(self):
        with self.lock:
            self.value += 1
        t = threading.Thread(target=print_progress, args=(self, self.total))
        t.start()
        t.join()
''', notes="the fix also guards the counter; a thread per tick is wasteful but kept to stay close to the original"),

ex("thr002-12", '''
import threading
import subprocess


def run_backup(target_dir):
    subprocess.run(["rsync", "-a", "/srv/data/", target_dir], check=True)


def nightly(target_dirs):
    threads = [threading.Thread(target=run_backup(d)) for d in target_dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """Inside the list comprehension `run_backup(d)` runs each rsync to completion on the main thread,
so the backups are serial and the threads created afterwards have no target. Use
`threading.Thread(target=run_backup, args=(d,))` so the copies run in parallel.""",
fix=[("target=run_backup(d)", "target=run_backup, args=(d,)")]),

ex("thr002-13", '''
from concurrent.futures import ThreadPoolExecutor

executor = ThreadPoolExecutor(max_workers=8)


def index_document(doc_id):
    doc = load(doc_id)
    SEARCH_INDEX[doc_id] = set(doc.split())


SEARCH_INDEX = {}


def load(doc_id):
    with open(f"docs/{doc_id}.txt") as fh:
        return fh.read()


def reindex(doc_ids):
    futures = [executor.submit(index_document(d)) for d in doc_ids]
    for f in futures:
        f.result()
''', """`executor.submit(index_document(d))` indexes each document on the calling thread and submits its
`None` result, so the executor is idle and every `f.result()` raises `TypeError`. Pass the function
and its argument to `submit`.""",
fix=[("executor.submit(index_document(d))", "executor.submit(index_document, d)")]),

ex("thr002-14", '''
import threading


def notify_watchers(event, watchers):
    for w in watchers:
        w(event)


class EventBus:
    def __init__(self):
        self.watchers = []

    def publish(self, event):
        t = threading.Thread(target=notify_watchers(event, list(self.watchers)))
        t.start()
        return t
''', """`publish` is meant to notify watchers asynchronously, yet `notify_watchers(...)` runs every
callback on the publisher's thread before the `Thread` is created; a slow watcher blocks the
publisher. Pass the function and a tuple of arguments instead.""",
fix=[("target=notify_watchers(event, list(self.watchers))", "target=notify_watchers, args=(event, list(self.watchers))")]),

ex("thr002-15", '''
import threading


def retry_failed_payments():
    for payment in PENDING:
        payment.retry()


PENDING = []


def start_retry_loop(interval=300):
    def tick():
        retry_failed_payments()
        threading.Timer(interval, tick).start()

    threading.Timer(interval, retry_failed_payments()).start()
''', """The first timer is created with `retry_failed_payments()`, which runs the retries immediately and
schedules `None`; the timer then crashes and the nested `tick` chain never starts. Pass `tick` so the
retry loop reschedules itself after each run.""",
fix=[("threading.Timer(interval, retry_failed_payments()).start()", "threading.Timer(interval, tick).start()")]),
]

write("THR002", "thread-target-called", E)
