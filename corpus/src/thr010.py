from _build import ex, write

E = [
ex("thr010-01", '''
import threading
import urllib.request


def fetch(url, results):
    with urllib.request.urlopen(url, timeout=10) as resp:
        results[url] = resp.status


def fetch_all(urls):
    results = {}
    for url in urls:
        t = threading.Thread(target=fetch, args=(url, results))
        t.start()
    return results
''', """`fetch_all` returns `results` right after starting the threads, without waiting for them, so the
caller usually gets an empty or partial dict, and failures in the threads are never seen. Keep the
threads and join them before returning.""",
fix=[("""    results = {}
    for url in urls:
        t = threading.Thread(target=fetch, args=(url, results))
        t.start()
    return results""", """    results = {}
    threads = [threading.Thread(target=fetch, args=(url, results)) for url in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results""")]),

ex("thr010-02", '''
import threading


def checksum(path, out):
    import hashlib
    with open(path, "rb") as fh:
        out.append((path, hashlib.sha256(fh.read()).hexdigest()))


def checksums(paths):
    sums = []
    for path in paths:
        threading.Thread(target=checksum, args=(path, sums)).start()
    return sorted(sums)
''', """The threads are started and immediately forgotten, and `sorted(sums)` runs while they are still
hashing, so the function returns only the files that happened to finish first. Join every thread
before reading `sums`.""",
fix=[("""    for path in paths:
        threading.Thread(target=checksum, args=(path, sums)).start()
    return sorted(sums)""", """    threads = [threading.Thread(target=checksum, args=(path, sums)) for path in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(sums)""")]),

ex("thr010-03", '''
import threading


def load_config(path, config):
    import json
    with open(path) as fh:
        config.update(json.load(fh))


def start_app(path):
    config = {}
    loader = threading.Thread(target=load_config, args=(path, config))
    loader.start()
    return config.get("port", 8080)
''', """`config.get("port")` runs right after the loader starts, before the file has been read, so the
app almost always starts on the default port. Join the loader first (or just load synchronously).""",
fix=[("""    loader.start()
    return config.get("port", 8080)""", """    loader.start()
    loader.join()
    return config.get("port", 8080)""")]),

ex("thr010-04", '''
import threading


def run_tests(suites):
    failures = []

    def run(suite):
        for case in suite:
            if not case():
                failures.append(case.__name__)

    for suite in suites:
        threading.Thread(target=run, args=(suite,)).start()
    return failures
''', """The nested `run` appends to `failures`, but `run_tests` returns the list without waiting for the
suite threads, so it reports no failures for tests that have not finished yet. Keep the threads and
join them.""",
fix=[("""    for suite in suites:
        threading.Thread(target=run, args=(suite,)).start()
    return failures""", """    threads = [threading.Thread(target=run, args=(suite,)) for suite in suites]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures""")]),

ex("thr010-05", '''
import threading
import subprocess


def lint(path, problems):
    out = subprocess.run(["flake8", path], capture_output=True, text=True).stdout
    problems.extend(out.splitlines())


def lint_project(paths):
    problems = []
    for p in paths:
        worker = threading.Thread(target=lint, args=(p, problems))
        worker.start()
    if problems:
        print("\\n".join(problems))
    return len(problems)
''', """The `if problems` check and the count run while the lint threads are still in `subprocess.run`,
so the project almost always looks clean. Join the workers before inspecting `problems`.""",
fix=[("""    for p in paths:
        worker = threading.Thread(target=lint, args=(p, problems))
        worker.start()
    if problems:""", """    workers = [threading.Thread(target=lint, args=(p, problems)) for p in paths]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if problems:""")]),

ex("thr010-06", '''
import threading


def count_lines(path, counts):
    with open(path) as fh:
        counts[path] = sum(1 for _ in fh)


def total_lines(paths):
    counts = {}
    threads = []
    for path in paths:
        t = threading.Thread(target=count_lines, args=(path, counts))
        t.start()
        threads.append(t)
    return sum(counts.values())
''', """The threads are collected in `threads` but never joined, so `sum(counts.values())` adds up
whatever has been counted so far (and may even hit a dict changing size). Join them before
summing.""",
fix=[("""        threads.append(t)
    return sum(counts.values())""", """        threads.append(t)
    for t in threads:
        t.join()
    return sum(counts.values())""")]),

ex("thr010-07", '''
import threading
import time


def measure(host, latencies):
    start = time.perf_counter()
    import socket
    socket.create_connection((host, 443), timeout=5).close()
    latencies[host] = time.perf_counter() - start


def fastest(hosts):
    latencies = {}
    for host in hosts:
        threading.Thread(target=measure, args=(host, latencies)).start()
    time.sleep(0.1)
    return min(latencies, key=latencies.get)
''', """Sleeping 0.1 s is not waiting: hosts slower than that are missing from `latencies`, and if none
answered in time `min` raises on an empty dict. Join the threads (with a timeout if needed) instead
of sleeping.""",
fix=[("""    for host in hosts:
        threading.Thread(target=measure, args=(host, latencies)).start()
    time.sleep(0.1)
    return min""", """    threads = [threading.Thread(target=measure, args=(host, latencies)) for host in hosts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return min""")]),

ex("thr010-08", '''
import threading


def render_pages(pages, render):
    html = {}

    def work(page):
        html[page.slug] = render(page)

    for page in pages:
        threading.Thread(target=work, args=(page,)).start()
    return html
''', """`work` fills `html` from the page threads, but `render_pages` returns the dict immediately;
the site generator then writes out whatever pages happened to finish. Join the threads before
returning.""",
fix=[("""    for page in pages:
        threading.Thread(target=work, args=(page,)).start()
    return html""", """    threads = [threading.Thread(target=work, args=(page,)) for page in pages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return html""")]),

ex("thr010-09", '''
import threading


def geocode(address, coords, lookup):
    coords.append((address, lookup(address)))


def geocode_all(addresses, lookup):
    coords = []
    for address in addresses:
        t = threading.Thread(target=geocode, args=(address, coords, lookup))
        t.start()
    print(f"geocoded {len(coords)} of {len(addresses)}")
    return coords
''', """The progress line and the returned list are read before any lookup has finished, so the report
says "geocoded 0 of N" and the caller gets a partial list. Keep and join the threads first.""",
fix=[("""    for address in addresses:
        t = threading.Thread(target=geocode, args=(address, coords, lookup))
        t.start()
    print""", """    threads = [threading.Thread(target=geocode, args=(a, coords, lookup)) for a in addresses]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print""")]),

ex("thr010-10", '''
import threading


class Report:
    def __init__(self, sources):
        self.sources = sources

    def collect(self):
        rows = []
        for source in self.sources:
            t = threading.Thread(target=self._pull, args=(source, rows))
            t.start()
        return rows

    def _pull(self, source, rows):
        rows.extend(source.rows())
''', """`collect` returns `rows` while the `_pull` threads are still extending it, so the report is
built from an incomplete list. Join the threads before returning.""",
fix=[("""        rows = []
        for source in self.sources:
            t = threading.Thread(target=self._pull, args=(source, rows))
            t.start()
        return rows""", """        rows = []
        threads = [threading.Thread(target=self._pull, args=(s, rows)) for s in self.sources]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return rows""")]),

ex("thr010-11", '''
import threading


def resolve(name, addrs):
    import socket
    addrs[name] = socket.gethostbyname(name)


def resolve_one(name):
    addrs = {}
    t = threading.Thread(target=resolve, args=(name, addrs))
    t.start()
    return addrs.get(name)
''', """`addrs.get(name)` runs immediately after `start()`, long before the DNS lookup returns, so the
function returns `None` nearly every time. Join the thread (a thread is pointless here; calling
`resolve` directly is simpler).""",
fix=[("""    t.start()
    return addrs.get(name)""", """    t.start()
    t.join()
    return addrs.get(name)""")]),

ex("thr010-12", '''
import threading


def score(model, batch, scores):
    scores.extend(model.predict(batch))


def evaluate(model, batches):
    scores = []
    for batch in batches:
        threading.Thread(target=score, args=(model, batch, scores)).start()
    return sum(scores) / max(len(scores), 1)
''', """The average is computed while the scoring threads are still running, so it covers only the
batches that finished (often none, giving 0). Join all threads before averaging.""",
fix=[("""    for batch in batches:
        threading.Thread(target=score, args=(model, batch, scores)).start()
    return""", """    threads = [threading.Thread(target=score, args=(model, b, scores)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return""")]),

ex("thr010-13", '''
import threading


def download_parts(url, ranges, fetch_range):
    parts = [None] * len(ranges)

    def fetch(i, rng):
        parts[i] = fetch_range(url, rng)

    for i, rng in enumerate(ranges):
        threading.Thread(target=fetch, args=(i, rng)).start()
    return b"".join(parts)
''', """`b"".join(parts)` runs before the range downloads finish, so it fails on the `None` placeholders
(or assembles a truncated file). Wait for every part thread before joining the bytes.""",
fix=[("""    for i, rng in enumerate(ranges):
        threading.Thread(target=fetch, args=(i, rng)).start()
    return""", """    threads = [threading.Thread(target=fetch, args=(i, rng)) for i, rng in enumerate(ranges)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return""")]),

ex("thr010-14", '''
import threading


def search_shard(shard, query, hits):
    hits.extend(shard.search(query))


def search(shards, query, limit=10):
    hits = []
    for shard in shards:
        th = threading.Thread(target=search_shard, args=(shard, query, hits))
        th.start()
    hits.sort(key=lambda h: -h.score)
    return hits[:limit]
''', """The sort and slice run while shard threads are still appending, so results from slow shards are
missing (and the sort can race with `extend`). Join the shard threads before ranking.""",
fix=[("""    for shard in shards:
        th = threading.Thread(target=search_shard, args=(shard, query, hits))
        th.start()
    hits.sort""", """    threads = [threading.Thread(target=search_shard, args=(s, query, hits)) for s in shards]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    hits.sort""")]),

ex("thr010-15", '''
import threading


def convert(doc, outputs):
    outputs.append(doc.to_pdf())


def export(docs, zipfile):
    outputs = []
    for doc in docs:
        threading.Thread(target=convert, args=(doc, outputs)).start()
    for i, pdf in enumerate(outputs):
        zipfile.writestr(f"doc{i}.pdf", pdf)
''', """The zip loop iterates `outputs` while conversions are still appending, so the archive is missing
documents and the loop may skip or repeat entries. Join all conversion threads before writing the
archive.""",
fix=[("""    for doc in docs:
        threading.Thread(target=convert, args=(doc, outputs)).start()
    for i, pdf""", """    threads = [threading.Thread(target=convert, args=(doc, outputs)) for doc in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, pdf""")]),
]

write("THR010", "thread-not-joined", E)
