from _build import ex, write

E = [
ex("thr006-01", '''
import threading

hits = 0


def worker(urls, fetch):
    global hits
    for url in urls:
        fetch(url)
        hits += 1


def crawl(chunks, fetch):
    threads = [threading.Thread(target=worker, args=(c, fetch)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return hits
''', """`hits += 1` is a read, an add and a store; with several `worker` threads running, two can read
the same value and one increment is lost, so the final count comes out low. Guard the update with a
lock shared by all workers.""",
fixed='''
import threading

hits = 0
hits_lock = threading.Lock()


def worker(urls, fetch):
    global hits
    for url in urls:
        fetch(url)
        with hits_lock:
            hits += 1


def crawl(chunks, fetch):
    threads = [threading.Thread(target=worker, args=(c, fetch)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return hits
'''),

ex("thr006-02", '''
import threading
from concurrent.futures import ThreadPoolExecutor


class Stats:
    def __init__(self):
        self.processed = 0
        self.failed = 0

    def handle(self, job):
        try:
            job()
            self.processed += 1
        except Exception:
            self.failed += 1

    def run_all(self, jobs):
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self.handle, jobs))
        return self.processed, self.failed
''', """`pool.map(self.handle, jobs)` runs `handle` on eight threads against the same `Stats` instance,
and `self.processed += 1` / `self.failed += 1` are unsynchronised read-modify-writes, so counts are
lost under contention. Protect them with an instance lock.""",
fixed='''
import threading
from concurrent.futures import ThreadPoolExecutor


class Stats:
    def __init__(self):
        self.processed = 0
        self.failed = 0
        self._lock = threading.Lock()

    def handle(self, job):
        try:
            job()
            ok = True
        except Exception:
            ok = False
        with self._lock:
            if ok:
                self.processed += 1
            else:
                self.failed += 1

    def run_all(self, jobs):
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self.handle, jobs))
        return self.processed, self.failed
'''),

ex("thr006-03", '''
import threading

word_counts = {}


def count_words(lines):
    for line in lines:
        for word in line.split():
            word_counts[word] = word_counts.get(word, 0) + 1


def count_file(path, parts=4):
    with open(path) as fh:
        lines = fh.readlines()
    size = len(lines) // parts + 1
    threads = [threading.Thread(target=count_words, args=(lines[i:i + size],))
               for i in range(0, len(lines), size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return word_counts
''', """`word_counts[word] = word_counts.get(word, 0) + 1` reads and writes the shared dict in separate
steps; two threads counting the same word can both read 5 and both write 6. Either lock around the
update or give each thread its own `Counter` and merge them after `join()`.""",
fixed='''
import threading
from collections import Counter


def count_words(lines, out):
    out.update(word for line in lines for word in line.split())


def count_file(path, parts=4):
    with open(path) as fh:
        lines = fh.readlines()
    size = len(lines) // parts + 1
    partials = []
    threads = []
    for i in range(0, len(lines), size):
        partial = Counter()
        partials.append(partial)
        threads.append(threading.Thread(target=count_words, args=(lines[i:i + size], partial)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(partials, Counter())
'''),

ex("thr006-04", '''
import threading


class BankAccount:
    def __init__(self, balance=0):
        self.balance = balance

    def deposit(self, amount):
        self.balance += amount

    def withdraw(self, amount):
        self.balance -= amount


def simulate(account, n):
    threads = [threading.Thread(target=account.deposit, args=(10,)) for _ in range(n)]
    threads += [threading.Thread(target=account.withdraw, args=(10,)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return account.balance
''', """Deposits and withdrawals run concurrently on the same account, and `self.balance += amount` is
not atomic, so updates overwrite each other and the final balance drifts from the starting value.
Put both operations under one lock owned by the account.""",
fixed='''
import threading


class BankAccount:
    def __init__(self, balance=0):
        self.balance = balance
        self._lock = threading.Lock()

    def deposit(self, amount):
        with self._lock:
            self.balance += amount

    def withdraw(self, amount):
        with self._lock:
            self.balance -= amount


def simulate(account, n):
    threads = [threading.Thread(target=account.deposit, args=(10,)) for _ in range(n)]
    threads += [threading.Thread(target=account.withdraw, args=(10,)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return account.balance
'''),

ex("thr006-05", '''
import threading
import time

bytes_sent = 0


def sender(sock, chunks):
    global bytes_sent
    for chunk in chunks:
        sock.sendall(chunk)
        bytes_sent = bytes_sent + len(chunk)


def report():
    while True:
        print(f"{bytes_sent} bytes sent")
        time.sleep(1)


def start(socks, chunks):
    for sock in socks:
        threading.Thread(target=sender, args=(sock, chunks)).start()
''', """One `sender` thread per socket updates `bytes_sent` with `bytes_sent = bytes_sent + len(chunk)`,
a read and a write that another sender can slip between, so the total under-reports. Use a lock
around the update (or per-thread totals summed at the end).""",
fixed='''
import threading
import time

bytes_sent = 0
bytes_lock = threading.Lock()


def sender(sock, chunks):
    global bytes_sent
    for chunk in chunks:
        sock.sendall(chunk)
        with bytes_lock:
            bytes_sent = bytes_sent + len(chunk)


def report():
    while True:
        print(f"{bytes_sent} bytes sent")
        time.sleep(1)


def start(socks, chunks):
    threads = [threading.Thread(target=sender, args=(sock, chunks)) for sock in socks]
    for t in threads:
        t.start()
    return threads
'''),

ex("thr006-06", '''
import threading
from concurrent.futures import ThreadPoolExecutor


def download_all(urls, fetch):
    total = 0

    def download(url):
        nonlocal total
        data = fetch(url)
        total += len(data)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(download, urls))
    return total
''', """`total` is a closure variable updated from six pool threads; `total += len(data)` can interleave
and drop sizes. Return the sizes from `download` and sum them on the calling thread instead.""",
fixed='''
from concurrent.futures import ThreadPoolExecutor


def download_all(urls, fetch):
    def download(url):
        return len(fetch(url))

    with ThreadPoolExecutor(max_workers=6) as pool:
        return sum(pool.map(download, urls))
'''),

ex("thr006-07", '''
import threading


class RequestCounter:
    def __init__(self):
        self.by_status = {}

    def record(self, status):
        self.by_status[status] = self.by_status.get(status, 0) + 1


counter = RequestCounter()


def handle(conn):
    status = conn.process()
    counter.record(status)


def serve(listener):
    while True:
        conn = listener.accept()
        threading.Thread(target=handle, args=(conn,)).start()
''', """Each connection is handled on its own thread and all of them call `counter.record`, whose
`get(...) + 1` and store are separate steps; concurrent requests with the same status lose
counts. Give `RequestCounter` a lock and hold it for the update.""",
fixed='''
import threading


class RequestCounter:
    def __init__(self):
        self.by_status = {}
        self._lock = threading.Lock()

    def record(self, status):
        with self._lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1


counter = RequestCounter()


def handle(conn):
    status = conn.process()
    counter.record(status)


def serve(listener):
    while True:
        conn = listener.accept()
        threading.Thread(target=handle, args=(conn,)).start()
'''),

ex("thr006-08", '''
import threading


class ProgressBar:
    def __init__(self, total):
        self.total = total
        self.done = 0

    def advance(self):
        self.done += 1
        print(f"\\r{self.done}/{self.total}", end="")


def process(items, work, workers=4):
    bar = ProgressBar(len(items))

    def run(chunk):
        for item in chunk:
            work(item)
            bar.advance()

    threads = [threading.Thread(target=run, args=(items[i::workers],)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """All four threads call `bar.advance()`, and `self.done += 1` is an unlocked read-modify-write on
the shared bar, so the progress can finish below 100%. A lock inside `ProgressBar` keeps the count
exact.""",
fix=[("""        self.done = 0

    def advance(self):
        self.done += 1
        print(f"\\r{self.done}/{self.total}", end="")""", """        self.done = 0
        self._lock = threading.Lock()

    def advance(self):
        with self._lock:
            self.done += 1
            done = self.done
        print(f"\\r{done}/{self.total}", end="")""")]),

ex("thr006-09", '''
import threading
import queue

errors = 0


def consumer(q, handle):
    global errors
    while True:
        item = q.get()
        if item is None:
            break
        try:
            handle(item)
        except ValueError:
            errors += 1


def run(items, handle, n=3):
    q = queue.Queue()
    threads = [threading.Thread(target=consumer, args=(q, handle)) for _ in range(n)]
    for t in threads:
        t.start()
    for item in items:
        q.put(item)
    for _ in threads:
        q.put(None)
    for t in threads:
        t.join()
    return errors
''', """Three consumer threads increment the global `errors` without a lock; two failures handled at the
same time can be counted once. Guard `errors += 1` with a lock shared by the consumers.""",
fix=[("""errors = 0
""", """errors = 0
errors_lock = threading.Lock()
"""), ("""        except ValueError:
            errors += 1""", """        except ValueError:
            with errors_lock:
                errors += 1""")]),

ex("thr006-10", '''
import threading


class Inventory:
    def __init__(self):
        self.stock = {"widget": 100}
        self.lock = threading.Lock()

    def restock(self, item, qty):
        with self.lock:
            self.stock[item] = self.stock.get(item, 0) + qty

    def sell(self, item, qty):
        self.stock[item] = self.stock[item] - qty


def rush(inv, buyers):
    threads = [threading.Thread(target=inv.sell, args=("widget", 1)) for _ in range(buyers)]
    threads.append(threading.Thread(target=inv.restock, args=("widget", 50)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """`restock` holds the lock but `sell` does not, so a sale can read the old stock, a restock lands,
and the sale writes back a value that erases it (or two sales sell the same unit). Every writer of
`stock` has to take the same lock.""",
fix=[("""    def sell(self, item, qty):
        self.stock[item] = self.stock[item] - qty""", """    def sell(self, item, qty):
        with self.lock:
            self.stock[item] = self.stock[item] - qty""")]),

ex("thr006-11", '''
import threading
import time

retries = {}


def call_with_retry(name, fn, attempts=3):
    for _ in range(attempts):
        try:
            return fn()
        except ConnectionError:
            retries[name] = retries.get(name, 0) + 1
            time.sleep(0.5)
    raise ConnectionError(name)


def call_endpoints(endpoints):
    threads = [threading.Thread(target=call_with_retry, args=(name, fn)) for name, fn in endpoints]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return retries
''', """Several threads run `call_with_retry` and update the shared `retries` dict with a separate get
and store. `endpoints` may list one service name several times (one per endpoint), and the threads
counting under the same name overwrite each other's increments. Take a lock around the update.""",
fix=[("""retries = {}
""", """retries = {}
retries_lock = threading.Lock()
"""), ("""            retries[name] = retries.get(name, 0) + 1""", """            with retries_lock:
                retries[name] = retries.get(name, 0) + 1""")]),

ex("thr006-12", '''
import threading


class Scoreboard:
    def __init__(self):
        self.points = 0

    def player(self, moves):
        for move in moves:
            if move.scores:
                self.points += move.value

    def play(self, players):
        threads = [threading.Thread(target=self.player, args=(moves,)) for moves in players]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.points
''', """Every player thread adds to `self.points` on the same scoreboard; `+=` on an attribute is a
load, add and store, so simultaneous scores overwrite each other. Use a lock on the scoreboard.""",
fix=[("""        self.points = 0
""", """        self.points = 0
        self._lock = threading.Lock()
"""), ("""                self.points += move.value""", """                with self._lock:
                    self.points += move.value""")]),

ex("thr006-13", '''
import threading
import requests

quota_used = 0


def fetch(url):
    global quota_used
    resp = requests.get(url, timeout=10)
    quota_used += int(resp.headers.get("X-Cost", "1"))
    return resp.text


def fetch_many(urls):
    out = []
    threads = [threading.Thread(target=lambda u=u: out.append(fetch(u))) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, quota_used
''', """`fetch` runs on one thread per URL and all of them update `quota_used`; concurrent responses can
read the same old value, so the tracked API cost is lower than what was really spent. Protect the
increment with a lock.""",
fix=[("""quota_used = 0
""", """quota_used = 0
quota_lock = threading.Lock()
"""), ("""    quota_used += int(resp.headers.get("X-Cost", "1"))""", """    cost = int(resp.headers.get("X-Cost", "1"))
    with quota_lock:
        quota_used += cost""")]),

ex("thr006-14", '''
import threading


class Batcher:
    def __init__(self, flush):
        self.flush = flush
        self.pending = 0
        self.batches = 0

    def add(self, n):
        self.pending += n
        if self.pending >= 100:
            self.flush()
            self.batches += 1
            self.pending = 0


def feed(batcher, sizes):
    for size in sizes:
        batcher.add(size)


def run(flush, streams):
    batcher = Batcher(flush)
    threads = [threading.Thread(target=feed, args=(batcher, s)) for s in streams]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
''', """Several `feed` threads share one `Batcher`, and `add` updates `pending` and `batches` without a
lock; additions are lost and two threads can both see the threshold and flush twice. Hold an
instance lock for the whole update-and-check.""",
fix=[("""        self.batches = 0

    def add(self, n):
        self.pending += n
        if self.pending >= 100:
            self.flush()
            self.batches += 1
            self.pending = 0""", """        self.batches = 0
        self._lock = threading.Lock()

    def add(self, n):
        with self._lock:
            self.pending += n
            if self.pending < 100:
                return
            self.batches += 1
            self.pending = 0
        self.flush()""")]),

ex("thr006-15", '''
import threading
from concurrent.futures import ThreadPoolExecutor

cache_misses = 0
cache = {}


def lookup(key, load):
    global cache_misses
    value = cache.get(key)
    if value is None:
        cache_misses += 1
        value = load(key)
        cache[key] = value
    return value


def warm(keys, load):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda k: lookup(k, load), keys))
''', """`lookup` runs on four pool threads and bumps the global `cache_misses` with no lock, so the
metric undercounts exactly when the cache is cold and busy. Increment it under a lock.""",
fix=[("""cache_misses = 0
""", """cache_misses = 0
misses_lock = threading.Lock()
"""), ("""        cache_misses += 1""", """        with misses_lock:
            cache_misses += 1""")],
notes="two threads may still both load the same key; that is a separate check-then-act issue"),
ex("thr006-16", """
import threading


class BankAccount:
    def __init__(self, balance=0):
        self.balance = balance

    def deposit(self, amount):
        self.balance += amount

    def withdraw(self, amount):
        self.balance -= amount

    def stress(self, n):
        threads = [threading.Thread(target=self.deposit, args=(10,)) for _ in range(n)]
        threads += [threading.Thread(target=self.withdraw, args=(10,)) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.balance
""", """`stress` runs `deposit` and `withdraw` on many threads against the same account, and
`self.balance += amount` is a load, add and store, so concurrent updates overwrite each other and
the balance drifts. Both methods must take the same instance lock.""",
fix=[("""        self.balance = balance

    def deposit(self, amount):
        self.balance += amount

    def withdraw(self, amount):
        self.balance -= amount""", """        self.balance = balance
        self._lock = threading.Lock()

    def deposit(self, amount):
        with self._lock:
            self.balance += amount

    def withdraw(self, amount):
        with self._lock:
            self.balance -= amount""")]),

ex("thr006-17", """
import threading

stock = {"widget": 100}
stock_lock = threading.Lock()


def restock(item, qty):
    with stock_lock:
        stock[item] = stock.get(item, 0) + qty


def sell(item, qty):
    stock[item] = stock[item] - qty


def rush(buyers):
    threads = [threading.Thread(target=sell, args=("widget", 1)) for _ in range(buyers)]
    threads.append(threading.Thread(target=restock, args=("widget", 50)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
""", """`restock` holds `stock_lock` but `sell` does not, so a sale can read the old count, a restock
lands, and the sale writes back a value that erases it; two buyers can also sell the same unit.
Every writer of `stock` has to hold the same lock.""",
fix=[("""def sell(item, qty):
    stock[item] = stock[item] - qty""", """def sell(item, qty):
    with stock_lock:
        stock[item] = stock[item] - qty""")]),

ex("thr006-18", """
import threading


class Batcher:
    def __init__(self, flush):
        self.flush = flush
        self.pending = 0

    def add(self, n):
        self.pending += n
        if self.pending >= 100:
            self.pending = 0
            self.flush()

    def feed(self, sizes):
        for size in sizes:
            self.add(size)

    def run(self, streams):
        threads = [threading.Thread(target=self.feed, args=(s,)) for s in streams]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
""", """Each stream is fed on its own thread into the same `Batcher`, and `add` updates `pending` with no
lock: sizes are lost and two threads can both cross the threshold and flush the same batch. Hold an
instance lock while updating and testing `pending`.""",
fix=[("""        self.pending = 0

    def add(self, n):
        self.pending += n
        if self.pending >= 100:
            self.pending = 0
            self.flush()""", """        self.pending = 0
        self._lock = threading.Lock()

    def add(self, n):
        with self._lock:
            self.pending += n
            if self.pending < 100:
                return
            self.pending = 0
        self.flush()""")]),
]

write("THR006", "unsynchronized-read-modify-write", E)
