from _build import ex, write

E = [
ex("thr013-01", '''
from concurrent.futures import ThreadPoolExecutor


def upload(client, path):
    with open(path, "rb") as fh:
        client.put(path, fh.read())


def upload_all(client, paths):
    with ThreadPoolExecutor(max_workers=8) as pool:
        for path in paths:
            pool.submit(upload, client, path)
''', """Each `submit` returns a future that is thrown away; if `upload` raises (missing file, network
error), the exception is stored in that future and never seen, so `upload_all` returns normally
with files silently missing. Keep the futures and call `result()` on each.""",
fix=[("""        for path in paths:
            pool.submit(upload, client, path)""", """        futures = [pool.submit(upload, client, path) for path in paths]
        for future in as_completed(futures):
            future.result()"""), ("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ThreadPoolExecutor, as_completed")]),

ex("thr013-02", '''
from concurrent.futures import ThreadPoolExecutor

executor = ThreadPoolExecutor(max_workers=4)


def send_receipt(order):
    order.customer.email(order.receipt())


def checkout(order):
    order.charge()
    executor.submit(send_receipt, order)
    return order.id
''', """The receipt is sent in the background and the future is discarded, so a failing email (bad
address, SMTP down) disappears without a log line. Attach a done-callback that logs the
exception.""",
fixed='''
import logging
from concurrent.futures import ThreadPoolExecutor

executor = ThreadPoolExecutor(max_workers=4)
log = logging.getLogger(__name__)


def send_receipt(order):
    order.customer.email(order.receipt())


def _log_failure(future):
    exc = future.exception()
    if exc is not None:
        log.error("sending receipt failed", exc_info=exc)


def checkout(order):
    order.charge()
    executor.submit(send_receipt, order).add_done_callback(_log_failure)
    return order.id
'''),

ex("thr013-03", '''
from concurrent.futures import ThreadPoolExecutor


def resize(path):
    from PIL import Image
    with Image.open(path) as img:
        img.thumbnail((200, 200))
        img.save(path + ".thumb.jpg")


def make_thumbnails(paths):
    with ThreadPoolExecutor() as pool:
        pool.map(resize, paths)
''', """`pool.map` returns an iterator of results, and exceptions are only raised when it is consumed;
discarding it means a corrupt image fails silently and the thumbnail is just missing. Iterate the
result (for example with `list(...)`) so errors propagate.""",
fix=[("        pool.map(resize, paths)", "        list(pool.map(resize, paths))")]),

ex("thr013-04", '''
import logging
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("sync")


class Syncer:
    def __init__(self, remote):
        self.remote = remote
        self.pool = ThreadPoolExecutor(max_workers=2)

    def push(self, record):
        self.remote.save(record)

    def on_change(self, record):
        future = self.pool.submit(self.push, record)
        log.debug("queued %s", record.id)
''', """`future` is assigned but never looked at, so a failed `remote.save` vanishes: the local change is
never synced and nothing reports it. Check the future with a done-callback (or return it to the
caller).""",
fix=[("""        future = self.pool.submit(self.push, record)
        log.debug("queued %s", record.id)""", """        future = self.pool.submit(self.push, record)
        future.add_done_callback(self._report)
        log.debug("queued %s", record.id)

    def _report(self, future):
        if future.exception() is not None:
            log.error("sync failed", exc_info=future.exception())""")]),

ex("thr013-05", '''
from concurrent.futures import ThreadPoolExecutor
import sqlite3


def archive_day(db_path, day):
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO archive SELECT * FROM events WHERE day = ?", (day,))
    conn.commit()


def archive_month(db_path, days):
    with ThreadPoolExecutor(max_workers=4) as pool:
        for day in days:
            pool.submit(archive_day, db_path, day)
    print("archive complete")
''', """"archive complete" is printed even if some days failed ("database is locked" is likely with
four writers), because each future and its exception is discarded. Collect the futures and call
`result()` so a failure is reported.""",
fix=[("""        for day in days:
            pool.submit(archive_day, db_path, day)""", """        futures = [pool.submit(archive_day, db_path, day) for day in days]
        for future in futures:
            future.result()""")]),

ex("thr013-06", '''
from concurrent.futures import ThreadPoolExecutor

pool = ThreadPoolExecutor(max_workers=2)


def warm_cache(cache, keys, loader):
    for key in keys:
        cache[key] = loader(key)


def on_startup(cache, keys, loader):
    pool.submit(warm_cache, cache, keys, loader)
''', """The cache warm-up runs in the pool and its future is dropped; if `loader` raises on the first
key the warm-up stops and the service starts cold with no trace of why. Log failures with a
done-callback.""",
fixed='''
import logging
from concurrent.futures import ThreadPoolExecutor

pool = ThreadPoolExecutor(max_workers=2)


def warm_cache(cache, keys, loader):
    for key in keys:
        cache[key] = loader(key)


def _check(future):
    if future.exception() is not None:
        logging.getLogger(__name__).error("cache warm-up failed", exc_info=future.exception())


def on_startup(cache, keys, loader):
    pool.submit(warm_cache, cache, keys, loader).add_done_callback(_check)
'''),

ex("thr013-07", '''
import concurrent.futures


def ping(host):
    import subprocess
    subprocess.run(["ping", "-c", "1", host], check=True, capture_output=True)


def check_hosts(hosts):
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
        for host in hosts:
            ex.submit(ping, host)
    return "all hosts reachable"
''', """`check=True` makes `ping` raise for an unreachable host, but the exception lands in a discarded
future, so `check_hosts` reports every host as reachable. Inspect each future's exception.""",
fixed='''
import concurrent.futures


def ping(host):
    import subprocess
    subprocess.run(["ping", "-c", "1", host], check=True, capture_output=True)


def check_hosts(hosts):
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as ex:
        futures = {ex.submit(ping, host): host for host in hosts}
        down = [futures[f] for f in concurrent.futures.as_completed(futures) if f.exception()]
    return f"unreachable: {down}" if down else "all hosts reachable"
'''),

ex("thr013-08", '''
from concurrent.futures import ThreadPoolExecutor


class Indexer:
    def __init__(self, index):
        self.index = index
        self.executor = ThreadPoolExecutor(max_workers=3)

    def add(self, doc):
        self.index.add(doc.id, doc.text.split())

    def add_many(self, docs):
        for doc in docs:
            self.executor.submit(self.add, doc)

    def close(self):
        self.executor.shutdown(wait=True)
''', """Documents that fail to index (a `None` text, an index error) raise inside futures nobody keeps,
so `add_many` and `close` succeed while the index is incomplete. Keep the futures and surface
their exceptions.""",
fix=[("""        for doc in docs:
            self.executor.submit(self.add, doc)""", """        futures = [self.executor.submit(self.add, doc) for doc in docs]
        for future in futures:
            future.result()""")]),

ex("thr013-09", '''
from concurrent.futures import ThreadPoolExecutor
import json


def export_user(user, out_dir):
    with open(f"{out_dir}/{user['id']}.json", "w") as fh:
        json.dump(user, fh)


def export_users(users, out_dir):
    with ThreadPoolExecutor(max_workers=4) as pool:
        pool.map(lambda u: export_user(u, out_dir), users)
''', """The `map` result is discarded, so a user whose data is not JSON-serialisable (or a full disk)
fails silently and the export looks complete. Consume the iterator so the first error is raised.""",
fix=[("""        pool.map(lambda u: export_user(u, out_dir), users)""", """        for _ in pool.map(lambda u: export_user(u, out_dir), users):
            pass""")]),

ex("thr013-10", '''
from concurrent.futures import ThreadPoolExecutor
import requests

hooks = ThreadPoolExecutor(max_workers=4)


def post(url, payload):
    requests.post(url, json=payload, timeout=5).raise_for_status()


def fire_webhooks(urls, payload):
    for url in urls:
        hooks.submit(post, url, payload)
''', """`raise_for_status()` raises for a 4xx/5xx response, but the future holding that exception is
discarded, so failed webhooks are never noticed or retried. Log failures from a done-callback.""",
fixed='''
from concurrent.futures import ThreadPoolExecutor
import logging
import requests

hooks = ThreadPoolExecutor(max_workers=4)
log = logging.getLogger(__name__)


def post(url, payload):
    requests.post(url, json=payload, timeout=5).raise_for_status()


def fire_webhooks(urls, payload):
    for url in urls:
        future = hooks.submit(post, url, payload)
        future.add_done_callback(
            lambda f, url=url: f.exception() and log.warning("webhook %s failed: %s", url, f.exception())
        )
'''),

ex("thr013-11", '''
from concurrent.futures import ThreadPoolExecutor


def compile_asset(src, dst):
    with open(src) as fh:
        text = fh.read()
    with open(dst, "w") as fh:
        fh.write(text.replace("  ", " "))


def build(assets):
    with ThreadPoolExecutor() as pool:
        futures = [pool.submit(compile_asset, src, dst) for src, dst in assets]
    print(f"built {len(futures)} assets")
''', """The futures are kept in a list but only counted, never checked; a missing source file raises
inside its future and the build reports success. Call `result()` on each future so a failing asset
fails the build.""",
fix=[("""    print(f"built {len(futures)} assets")""", """        for future in futures:
            future.result()
    print(f"built {len(futures)} assets")""")],
notes="analyzer miss: futures stored in a list that is only passed to len()", missed=True),

ex("thr013-12", '''
from concurrent.futures import ThreadPoolExecutor


def notify(user, message):
    user.push(message)


def broadcast(users, message):
    executor = ThreadPoolExecutor(max_workers=10)
    for user in users:
        executor.submit(notify, user, message)
    executor.shutdown(wait=False)
''', """Every push runs in a future that is immediately dropped, so a user whose device token is invalid
raises an exception nobody sees. Keep the futures and check them (here, after waiting for the pool
to finish).""",
fixed='''
from concurrent.futures import ThreadPoolExecutor, wait


def notify(user, message):
    user.push(message)


def broadcast(users, message):
    with ThreadPoolExecutor(max_workers=10) as executor:
        futures = [executor.submit(notify, user, message) for user in users]
    done, _ = wait(futures)
    return [f.exception() for f in done if f.exception() is not None]
'''),

ex("thr013-13", '''
from concurrent.futures import ThreadPoolExecutor
import shutil


def backup(src, dst):
    shutil.copytree(src, dst, dirs_exist_ok=True)


def nightly(jobs):
    with ThreadPoolExecutor(max_workers=2) as pool:
        for src, dst in jobs:
            job = pool.submit(backup, src, dst)
''', """Each `job` future is overwritten on the next iteration and never inspected, so a failed copy
(permissions, disk full) leaves a stale backup with no error. Collect the futures and call
`result()`.""",
fix=[("""        for src, dst in jobs:
            job = pool.submit(backup, src, dst)""", """        futures = [pool.submit(backup, src, dst) for src, dst in jobs]
        for future in futures:
            future.result()""")]),

ex("thr013-14", '''
from concurrent.futures import ThreadPoolExecutor

audit_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")


def write_audit(entry):
    with open("/var/log/app/audit.log", "a") as fh:
        fh.write(entry + "\\n")


def audit(user, action):
    audit_pool.submit(write_audit, f"{user} {action}")
''', """Audit entries are written on a background thread and the future is discarded; if the log file is
not writable every entry is lost without a single error, which defeats the purpose of an audit
log. Report write failures from a done-callback.""",
fixed='''
from concurrent.futures import ThreadPoolExecutor
import sys

audit_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")


def write_audit(entry):
    with open("/var/log/app/audit.log", "a") as fh:
        fh.write(entry + "\\n")


def _report(future):
    if future.exception() is not None:
        print(f"audit write failed: {future.exception()}", file=sys.stderr)


def audit(user, action):
    audit_pool.submit(write_audit, f"{user} {action}").add_done_callback(_report)
'''),

ex("thr013-15", '''
from concurrent.futures import ThreadPoolExecutor


def refresh_feed(feed):
    feed.entries = feed.fetch()


def refresh_all(feeds):
    with ThreadPoolExecutor(max_workers=6) as pool:
        [pool.submit(refresh_feed, f) for f in feeds]
''', """The list of futures is built and thrown away in the same expression, so a feed that fails to
fetch keeps its stale entries and nobody finds out. Keep the list and check each future.""",
fix=[("""        [pool.submit(refresh_feed, f) for f in feeds]""", """        futures = [pool.submit(refresh_feed, f) for f in feeds]
        for future in futures:
            future.result()""")],
notes="analyzer miss: a list comprehension of submit() calls used as a bare statement", missed=True),

ex("thr013-16", """
from concurrent.futures import ThreadPoolExecutor


def transcode(video, preset):
    video.encode(preset)


def publish(videos, presets):
    with ThreadPoolExecutor(max_workers=3) as pool:
        for video in videos:
            for preset in presets:
                pool.submit(transcode, video, preset)
    return [v.url for v in videos]
""", """Each transcode's future is discarded, so an encoder crash on one preset is swallowed and
`publish` hands out URLs for renditions that do not exist. Keep the futures and call `result()` on
each before publishing.""",
fix=[("""        for video in videos:
            for preset in presets:
                pool.submit(transcode, video, preset)""", """        futures = [pool.submit(transcode, v, p) for v in videos for p in presets]
        for future in futures:
            future.result()""")]),

ex("thr013-17", """
from concurrent.futures import ThreadPoolExecutor
import time


class Scheduler:
    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=4)

    def every(self, seconds, job):
        def loop():
            while True:
                job()
                time.sleep(seconds)

        self.pool.submit(loop)
""", """The periodic loop runs inside a future that is dropped; the first exception from `job` ends the
loop for good and is never reported, so the scheduled task silently stops running. Catch and log
inside the loop, or keep the future and watch it.""",
fix=[("""            while True:
                job()
                time.sleep(seconds)

        self.pool.submit(loop)""", """            while True:
                try:
                    job()
                except Exception:
                    logging.getLogger(__name__).exception("scheduled job failed")
                time.sleep(seconds)

        return self.pool.submit(loop)"""), ("""import time
""", """import logging
import time
""")]),
]

write("THR013", "future-exception-lost", E)
