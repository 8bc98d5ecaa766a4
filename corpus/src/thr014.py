from _build import ex, write

E = [
ex("thr014-01", '''
import queue
import threading

tasks = queue.Queue()


def worker(download):
    while True:
        url = tasks.get()
        download(url)
        tasks.task_done()


def download_all(urls, download, n=4):
    for _ in range(n):
        threading.Thread(target=worker, args=(download,), daemon=True).start()
    for url in urls:
        tasks.put(url)
    tasks.join()
''', """If `download` raises for one URL, that worker skips `task_done()` (and dies), so the queue's
unfinished count never reaches zero and `tasks.join()` blocks forever. Call `task_done()` in a
`finally` block.""",
fix=[("""        url = tasks.get()
        download(url)
        tasks.task_done()""", """        url = tasks.get()
        try:
            download(url)
        finally:
            tasks.task_done()""")]),

ex("thr014-02", '''
import queue
import threading


def consumer(q, sink):
    while True:
        item = q.get()
        sink.append(item.upper())


def process(items):
    q = queue.Queue()
    sink = []
    threading.Thread(target=consumer, args=(q, sink), daemon=True).start()
    for item in items:
        q.put(item)
    q.join()
    return sink
''', """The consumer never calls `q.task_done()`, so `q.join()` waits for a count that never drops and
`process` hangs forever, even after every item was handled. Mark each item done after processing
it.""",
fix=[("""        item = q.get()
        sink.append(item.upper())""", """        item = q.get()
        try:
            sink.append(item.upper())
        finally:
            q.task_done()""")]),

ex("thr014-03", '''
import queue
import threading


class Indexer:
    def __init__(self, index, workers=3):
        self.index = index
        self.jobs = queue.Queue()
        for _ in range(workers):
            threading.Thread(target=self._work, daemon=True).start()

    def _work(self):
        while True:
            doc = self.jobs.get()
            self.index.add(doc.id, doc.text)
            self.jobs.task_done()

    def add_all(self, docs):
        for doc in docs:
            self.jobs.put(doc)
        self.jobs.join()
''', """A document whose `text` is missing makes `index.add` raise, the worker thread ends without
`task_done()`, and `add_all` blocks in `join()` forever. Put `task_done()` in `finally` (and
consider logging the error so the worker keeps going).""",
fix=[("""            doc = self.jobs.get()
            self.index.add(doc.id, doc.text)
            self.jobs.task_done()""", """            doc = self.jobs.get()
            try:
                self.index.add(doc.id, doc.text)
            finally:
                self.jobs.task_done()""")],
notes="analyzer miss: workers started in a loop in __init__, queue on self; compare thr014-15 which is found", missed=True),

ex("thr014-04", '''
import queue
import threading

uploads = queue.Queue()


def uploader(bucket):
    while True:
        path = uploads.get()
        if path.endswith(".tmp"):
            continue
        bucket.upload(path)
        uploads.task_done()


def upload_dir(paths, bucket):
    threading.Thread(target=uploader, args=(bucket,), daemon=True).start()
    for p in paths:
        uploads.put(p)
    uploads.join()
''', """Temporary files are skipped with `continue`, which also skips `task_done()`; a single `.tmp`
file makes `uploads.join()` hang forever. Call `task_done()` on every path out of the loop body,
which `try/finally` guarantees.""",
fix=[("""        path = uploads.get()
        if path.endswith(".tmp"):
            continue
        bucket.upload(path)
        uploads.task_done()""", """        path = uploads.get()
        try:
            if not path.endswith(".tmp"):
                bucket.upload(path)
        finally:
            uploads.task_done()""")]),

ex("thr014-05", '''
import queue
import threading

emails = queue.Queue()


def sender(smtp):
    while True:
        msg = emails.get()
        smtp.send_message(msg)


def send_newsletter(messages, smtp):
    for _ in range(2):
        threading.Thread(target=sender, args=(smtp,), daemon=True).start()
    for m in messages:
        emails.put(m)
    emails.join()
    print("newsletter sent")
''', """The senders never call `emails.task_done()`, so `emails.join()` never returns and "newsletter
sent" is never printed, although all messages went out. Call `task_done()` after each message, in
a `finally`.""",
fix=[("""        msg = emails.get()
        smtp.send_message(msg)""", """        msg = emails.get()
        try:
            smtp.send_message(msg)
        finally:
            emails.task_done()""")]),

ex("thr014-06", '''
import queue
import threading


def resize_worker(q, resize):
    while True:
        path = q.get()
        try:
            resize(path)
        except OSError:
            print("cannot resize", path)
            continue
        q.task_done()


def resize_all(paths, resize):
    q = queue.Queue()
    for _ in range(4):
        threading.Thread(target=resize_worker, args=(q, resize), daemon=True).start()
    for p in paths:
        q.put(p)
    q.join()
''', """The `except OSError` branch logs and `continue`s past `q.task_done()`, so one unreadable image
leaves the count above zero and `q.join()` never returns. Move `task_done()` into a `finally`.""",
fix=[("""        try:
            resize(path)
        except OSError:
            print("cannot resize", path)
            continue
        q.task_done()""", """        try:
            resize(path)
        except OSError:
            print("cannot resize", path)
        finally:
            q.task_done()""")]),

ex("thr014-07", '''
import queue
import threading


class Crawler:
    def __init__(self, fetch, workers=5):
        self.fetch = fetch
        self.frontier = queue.Queue()
        self.seen = set()
        self.lock = threading.Lock()
        for _ in range(workers):
            threading.Thread(target=self.work, daemon=True).start()

    def work(self):
        while True:
            url = self.frontier.get()
            for link in self.fetch(url):
                with self.lock:
                    if link in self.seen:
                        continue
                    self.seen.add(link)
                self.frontier.put(link)
            self.frontier.task_done()

    def crawl(self, start):
        self.frontier.put(start)
        self.frontier.join()
        return self.seen
''', """A page that fails to fetch raises out of `work` before `task_done()`, and `crawl` then waits in
`join()` forever. Wrap the processing of each URL in `try/finally` so it is always marked done.""",
fix=[("""            url = self.frontier.get()
            for link in self.fetch(url):
                with self.lock:
                    if link in self.seen:
                        continue
                    self.seen.add(link)
                self.frontier.put(link)
            self.frontier.task_done()""", """            url = self.frontier.get()
            try:
                for link in self.fetch(url):
                    with self.lock:
                        if link in self.seen:
                            continue
                        self.seen.add(link)
                    self.frontier.put(link)
            finally:
                self.frontier.task_done()""")]),

ex("thr014-08", '''
import queue
import threading

events = queue.Queue()


def handler(store):
    while True:
        event = events.get()
        if event is None:
            break
        store.save(event)


def ingest(batch, store):
    t = threading.Thread(target=handler, args=(store,), daemon=True)
    t.start()
    for e in batch:
        events.put(e)
    events.join()
    events.put(None)
''', """`handler` never calls `events.task_done()`, so `events.join()` blocks forever and the sentinel
is never even sent. Mark each event done (in a `finally`), or drop `join()` and simply join the
thread after the sentinel.""",
fix=[("""        event = events.get()
        if event is None:
            break
        store.save(event)""", """        event = events.get()
        try:
            if event is None:
                break
            store.save(event)
        finally:
            events.task_done()""")]),

ex("thr014-09", '''
import queue
import threading


def translate_worker(jobs, out, translate):
    while True:
        idx, text = jobs.get()
        out[idx] = translate(text)
        jobs.task_done()


def translate_all(texts, translate, workers=3):
    jobs = queue.Queue()
    out = [None] * len(texts)
    for _ in range(workers):
        threading.Thread(target=translate_worker, args=(jobs, out, translate), daemon=True).start()
    for i, t in enumerate(texts):
        jobs.put((i, t))
    jobs.join()
    return out
''', """If `translate` raises (a rate limit, an unsupported language), the worker exits without
`task_done()` and `translate_all` hangs in `jobs.join()` with no error. Use `try/finally` around
the translation.""",
fix=[("""        idx, text = jobs.get()
        out[idx] = translate(text)
        jobs.task_done()""", """        idx, text = jobs.get()
        try:
            out[idx] = translate(text)
        finally:
            jobs.task_done()""")]),

ex("thr014-10", '''
import queue
import threading

work = queue.Queue()


def worker():
    while True:
        job = work.get()
        if job.cancelled:
            print("skipping", job.id)
        else:
            job.run()
            work.task_done()


def run_jobs(jobs):
    threading.Thread(target=worker, daemon=True).start()
    for job in jobs:
        work.put(job)
    work.join()
''', """Cancelled jobs take the first branch, which never calls `task_done()`, so one cancelled job is
enough for `work.join()` to hang. Call `task_done()` once per `get()`, in a `finally`.""",
fix=[("""        job = work.get()
        if job.cancelled:
            print("skipping", job.id)
        else:
            job.run()
            work.task_done()""", """        job = work.get()
        try:
            if job.cancelled:
                print("skipping", job.id)
            else:
                job.run()
        finally:
            work.task_done()""")],
notes="analyzer miss: task_done() only in the else branch of an if", missed=True),

ex("thr014-11", '''
import queue
import threading


class Pipeline:
    def __init__(self, stage):
        self.stage = stage
        self.inbox = queue.Queue(maxsize=100)
        self.results = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            item = self.inbox.get()
            self.results.append(self.stage(item))

    def feed(self, items):
        for item in items:
            self.inbox.put(item)

    def flush(self):
        self.inbox.join()
        return list(self.results)
''', """`flush()` waits on `self.inbox.join()`, but `_loop` never calls `task_done()`, so every flush
hangs. Mark items done after the stage runs (in `finally`).""",
fix=[("""            item = self.inbox.get()
            self.results.append(self.stage(item))""", """            item = self.inbox.get()
            try:
                self.results.append(self.stage(item))
            finally:
                self.inbox.task_done()""")]),

ex("thr014-12", '''
import queue
import threading
import json

records = queue.Queue()


def writer(path):
    with open(path, "a") as fh:
        while True:
            rec = records.get()
            fh.write(json.dumps(rec) + "\\n")
            records.task_done()


def dump(items, path):
    threading.Thread(target=writer, args=(path,), daemon=True).start()
    for item in items:
        records.put(item)
    records.join()
''', """A record that `json.dumps` cannot serialise raises before `records.task_done()`, the writer thread
dies, and `dump` hangs in `records.join()`. Put `task_done()` in a `finally`.""",
fix=[("""            rec = records.get()
            fh.write(json.dumps(rec) + "\\n")
            records.task_done()""", """            rec = records.get()
            try:
                fh.write(json.dumps(rec) + "\\n")
            finally:
                records.task_done()""")]),

ex("thr014-13", '''
import queue
import threading


def checker(q, check, bad):
    while True:
        host = q.get()
        if not check(host):
            bad.append(host)
            return
        q.task_done()


def find_bad_hosts(hosts, check):
    q = queue.Queue()
    bad = []
    for _ in range(4):
        threading.Thread(target=checker, args=(q, check, bad), daemon=True).start()
    for h in hosts:
        q.put(h)
    q.join()
    return bad
''', """When a host fails the check, the worker records it and returns without `task_done()`; the queue
count can then never reach zero (and a worker is gone), so `q.join()` hangs on the first bad host.
Mark the item done on every path and keep the worker alive.""",
fix=[("""        host = q.get()
        if not check(host):
            bad.append(host)
            return
        q.task_done()""", """        host = q.get()
        try:
            if not check(host):
                bad.append(host)
        finally:
            q.task_done()""")]),

ex("thr014-14", '''
import queue
import threading

pending = queue.Queue()


def notifier(push):
    while True:
        user, text = pending.get()
        push(user, text)


def notify_all(users, text, push):
    for _ in range(3):
        threading.Thread(target=notifier, args=(push,), daemon=True).start()
    for u in users:
        pending.put((u, text))
    pending.join()
    return len(users)
''', """`pending.join()` waits for `task_done()` calls that the notifiers never make, so `notify_all`
never returns. Call `pending.task_done()` after each push, inside `finally`.""",
fix=[("""        user, text = pending.get()
        push(user, text)""", """        user, text = pending.get()
        try:
            push(user, text)
        finally:
            pending.task_done()""")]),

ex("thr014-15", '''
import queue
import threading


class Compressor:
    def __init__(self):
        self.files = queue.Queue()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        import gzip
        import shutil
        while True:
            path = self.files.get()
            with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            self.files.task_done()

    def compress(self, paths):
        for p in paths:
            self.files.put(p)
        self.files.join()
''', """A path that no longer exists makes `open` raise; the compressor thread dies before
`task_done()` and `compress` waits in `join()` forever. Wrap the work for each file in `try/finally`.""",
fix=[("""            path = self.files.get()
            with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            self.files.task_done()""", """            path = self.files.get()
            try:
                with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
                    shutil.copyfileobj(src, dst)
            finally:
                self.files.task_done()""")]),
ex("thr014-16", """
import queue
import threading

orders = queue.Queue()


def fulfil(ship):
    while True:
        order = orders.get()
        ship(order)
        orders.task_done()


def ship_all(batch, ship):
    worker = threading.Thread(target=fulfil, args=(ship,), daemon=True)
    worker.start()
    for order in batch:
        orders.put(order)
    orders.join()
    return len(batch)
""", """When `ship` raises for one order (an invalid address), the worker dies before `task_done()` and
`ship_all` blocks forever in `orders.join()`. Mark every order done in a `finally` block.""",
fix=[("""        order = orders.get()
        ship(order)
        orders.task_done()""", """        order = orders.get()
        try:
            ship(order)
        finally:
            orders.task_done()""")]),

ex("thr014-17", """
import queue
import threading

thumbs = queue.Queue()


def thumb_worker(render):
    while True:
        path = thumbs.get()
        render(path)


def render_gallery(paths, render):
    for _ in range(3):
        threading.Thread(target=thumb_worker, args=(render,), daemon=True).start()
    for path in paths:
        thumbs.put(path)
    thumbs.join()
    print("gallery ready")
""", """The thumbnail workers never call `thumbs.task_done()`, so `thumbs.join()` never returns and the
gallery is never reported ready. Call `task_done()` once per item, in a `finally`.""",
fix=[("""        path = thumbs.get()
        render(path)""", """        path = thumbs.get()
        try:
            render(path)
        finally:
            thumbs.task_done()""")]),
]

write("THR014", "queue-join-without-task-done", E)
