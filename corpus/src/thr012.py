from _build import ex, write

E = [
ex("thr012-01", '''
import threading


def fetch(url):
    print("fetching", url)


def fetch_all(urls):
    threads = []
    for url in urls:
        t = threading.Thread(target=lambda: fetch(url))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
''', """The lambda looks up `url` when the thread runs, not when it is created; by then the loop has
often advanced, so several threads fetch the same (usually the last) URL and others are skipped.
Pass the value as an argument so each thread gets its own.""",
fix=[("target=lambda: fetch(url)", "target=fetch, args=(url,)")]),

ex("thr012-02", '''
from concurrent.futures import ThreadPoolExecutor


def resize(path, width):
    return f"{path}@{width}"


def resize_all(paths, width=640):
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = []
        for path in paths:
            futures.append(pool.submit(lambda: resize(path, width)))
        return [f.result() for f in futures]
''', """Each submitted lambda reads `path` when a worker gets to it; the loop submits faster than the
pool runs, so most futures resize the last path in the list. `pool.submit(resize, path, width)`
binds the arguments at submission time.""",
fix=[("pool.submit(lambda: resize(path, width))", "pool.submit(resize, path, width)")]),

ex("thr012-03", '''
import threading


class Notifier:
    def __init__(self, channels):
        self.channels = channels

    def send(self, channel, text):
        channel.post(text)

    def broadcast(self, text):
        workers = []
        for channel in self.channels:
            worker = threading.Thread(target=lambda: self.send(channel, text))
            worker.start()
            workers.append(worker)
        for worker in workers:
            worker.join()
''', """`channel` is a variable of `broadcast`, captured by reference in each lambda; threads that start
after the loop has moved on post to the wrong channel, so some channels get the message twice and
others never. Bind it with a default argument or pass it via `args`.""",
fix=[("target=lambda: self.send(channel, text)", "target=self.send, args=(channel, text)")]),

ex("thr012-04", '''
import threading


def start_shards(shard_count, process_shard):
    threads = []
    for shard in range(shard_count):
        def run():
            process_shard(shard)
        t = threading.Thread(target=run, name=f"shard-{shard}")
        t.start()
        threads.append(t)
    return threads
''', """The nested `run` closes over `shard`, which keeps changing; a thread that starts late processes
a later shard, so some shards are processed twice and others never (the thread names still look
right). Bind the current value with a default argument.""",
fix=[("        def run():", "        def run(shard=shard):")]),

ex("thr012-05", '''
import threading


def schedule_reminders(reminders):
    timers = []
    for reminder in reminders:
        timer = threading.Timer(reminder.delay, lambda: print(reminder.text))
        timer.start()
        timers.append(timer)
    return timers
''', """All timers fire after the loop finished, and each lambda reads `reminder` then, so every timer
prints the last reminder's text. Capture the current object with a default argument.""",
fix=[("lambda: print(reminder.text)", "lambda reminder=reminder: print(reminder.text)")]),

ex("thr012-06", '''
from concurrent.futures import ThreadPoolExecutor, as_completed


def ping(host, port):
    return host, port


def scan(hosts, ports):
    results = []
    with ThreadPoolExecutor(max_workers=16) as executor:
        futures = [executor.submit(lambda: ping(host, port)) for host in hosts for port in ports]
        for future in as_completed(futures):
            results.append(future.result())
    return results
''', """The comprehension's `host` and `port` are captured by the lambdas and read later by the workers,
after the comprehension has advanced, so many scans probe the same host/port pair and others are
missed. Submit the function with its arguments.""",
fix=[("executor.submit(lambda: ping(host, port))", "executor.submit(ping, host, port)")]),

ex("thr012-07", '''
import threading

totals = {}
totals_lock = threading.Lock()


def count_words(name, text):
    with totals_lock:
        totals[name] = len(text.split())


def count_all(documents):
    threads = []
    for name, text in documents.items():
        t = threading.Thread(target=lambda: count_words(name, text))
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
''', """Both `name` and `text` are loop variables read by the lambda when the thread runs; a thread that
starts late counts another document under another name, so `totals` ends up with missing or
duplicated entries. Pass them through `args`.""",
fix=[("target=lambda: count_words(name, text)", "target=count_words, args=(name, text)")]),

ex("thr012-08", '''
import threading


class Crawler:
    def __init__(self, client):
        self.client = client
        self.pages = {}
        self.lock = threading.Lock()

    def store(self, url):
        body = self.client.get(url)
        with self.lock:
            self.pages[url] = body

    def crawl(self, urls):
        threads = []
        i = 0
        while i < len(urls):
            url = urls[i]
            threads.append(threading.Thread(target=lambda: self.store(url)))
            threads[-1].start()
            i += 1
        for t in threads:
            t.join()
''', """`url` is reassigned on every iteration of the `while` loop and the lambda reads it only when the
thread runs, so several threads may store the same page and some URLs are never crawled. Pass the
URL as an argument.""",
fix=[("threading.Thread(target=lambda: self.store(url))", "threading.Thread(target=self.store, args=(url,))")]),

ex("thr012-09", '''
from concurrent.futures import ThreadPoolExecutor


def export_table(db, table):
    return db.dump(table)


def export_all(db, tables):
    pool = ThreadPoolExecutor(max_workers=3)
    futures = {}
    for table in tables:
        futures[table] = pool.submit(lambda: export_table(db, table))
    pool.shutdown(wait=True)
    return {name: f.result() for name, f in futures.items()}
''', """The dictionary keys are right, but each lambda exports whatever `table` holds when it finally
runs, so several keys map to dumps of the last table. Submit `export_table` with its arguments so
each future exports its own table.""",
fix=[("pool.submit(lambda: export_table(db, table))", "pool.submit(export_table, db, table)")]),

ex("thr012-10", '''
import threading
import time


def retry_later(jobs, run):
    for attempt, job in enumerate(jobs):
        delay = 2 ** attempt
        threading.Timer(delay, lambda: run(job)).start()
    time.sleep(2 ** len(jobs))
''', """The timers fire seconds after the loop ended, and each lambda then reads the final value of
`job`, so the last job is retried many times and the others never. Bind `job` when the timer is
created.""",
fix=[("lambda: run(job)", "lambda job=job: run(job)")]),

ex("thr012-11", '''
import threading
import logging

log = logging.getLogger("workers")


def start_workers(queues, handle):
    threads = []
    for index, q in enumerate(queues):
        def drain():
            while (item := q.get()) is not None:
                log.info("worker %d got %r", index, item)
                handle(item)
        threads.append(threading.Thread(target=drain, daemon=True))
    for t in threads:
        t.start()
    return threads
''', """The threads start only after the loop, so every `drain` closure sees the last `q` and `index`:
all workers consume from the same queue and the other queues are never drained. Make `q` and
`index` parameters with defaults bound at definition time.""",
fix=[("        def drain():", "        def drain(q=q, index=index):")]),

ex("thr012-12", '''
import threading


def warm_cache(cache, keys, loader):
    workers = [threading.Thread(target=lambda: cache.update({key: loader(key)})) for key in keys]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
''', """All lambdas are created before any thread starts, and they read the comprehension variable
`key` when they run, by which time it holds the last key; the cache ends up with one entry. Bind
`key` as a default argument.""",
fix=[("lambda: cache.update({key: loader(key)})", "lambda key=key: cache.update({key: loader(key)})")],
notes="`dict.update` with one key is atomic under the GIL; with free-threading a lock would be needed"),

ex("thr012-13", '''
from concurrent.futures import ThreadPoolExecutor


def send_invoice(customer, month):
    return f"sent {month} invoice to {customer}"


def send_invoices(customers, month, executor: ThreadPoolExecutor):
    futures = []
    for customer in customers:
        futures.append(executor.submit(lambda: send_invoice(customer, month)))
    return [f.result() for f in futures]
''', """The lambda reads `customer` when the executor runs it; if the pool is busy the loop moves ahead
and some customers get several invoices while others get none. `executor.submit(send_invoice,
customer, month)` binds the arguments immediately.""",
fix=[("executor.submit(lambda: send_invoice(customer, month))", "executor.submit(send_invoice, customer, month)")]),

ex("thr012-14", '''
import threading


class Game:
    def __init__(self, players):
        self.players = players
        self.scores = {p: 0 for p in players}
        self.lock = threading.Lock()

    def play_turn(self, player):
        with self.lock:
            self.scores[player] += 1

    def round(self):
        turns = []
        for player in self.players:
            turns.append(threading.Thread(target=lambda: self.play_turn(player)))
        for t in turns:
            t.start()
        for t in turns:
            t.join()
''', """All threads start after the loop, so every lambda sees the last `player` and only that player's
score increases, by the number of players. Pass `player` through `args` instead.""",
fix=[("threading.Thread(target=lambda: self.play_turn(player))", "threading.Thread(target=self.play_turn, args=(player,))")]),

ex("thr012-15", '''
import threading


def upload(bucket, path):
    bucket.put(path)


def upload_dir(bucket, paths):
    for path in paths:
        def job():
            upload(bucket, path)
        t = threading.Thread(target=job)
        t.start()
        t.join(timeout=0.1)
''', """`job` reads `path` from the enclosing loop when the thread runs; an upload that takes longer than
the 0.1 s join lets the loop move on before the thread reads it, so paths get skipped or uploaded
twice. Bind `path` as a default argument of `job`.""",
fix=[("        def job():", "        def job(path=path):")],
notes="analyzer miss: a timed join inside the loop is treated like a full join", missed=True),

ex("thr012-16", '''
import threading


def tail_logs(paths, emit):
    readers = []
    for path in paths:
        def follow():
            with open(path) as fh:
                for line in fh:
                    emit(path, line)
        readers.append(threading.Thread(target=follow, daemon=True))
    for r in readers:
        r.start()
    for r in readers:
        r.join()
''', """Every `follow` closure reads `path` after the loop has finished, so all readers open the last
log file and the others are never tailed. Give `follow` a `path=path` default so each reader
keeps its own file.""",
fix=[("        def follow():", "        def follow(path=path):")]),
]

write("THR012", "late-binding-loop-variable", E)
