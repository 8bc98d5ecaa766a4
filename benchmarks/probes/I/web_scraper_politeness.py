#!/usr/bin/env python3
"""Small polite web crawler.

Crawls a set of seed sites breadth-first while respecting robots.txt and a
per-host crawl delay.  Each host gets at most MAX_PER_HOST requests in
flight, and consecutive requests to one host are spaced CRAWL_DELAY apart.
Fetched pages are archived (compressed) and one result row per page is
streamed to a JSON-lines file.

The "network" here is an in-memory fake so the module can run offline.
"""

import json
import logging
import os
import queue
import random
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin, urlsplit

log = logging.getLogger("crawler")

CRAWL_DELAY = 0.02
MAX_PER_HOST = 1
SLOT_TIMEOUT = 2.0
MAX_DEPTH = 3
N_WORKERS = 4

# --------------------------------------------------------------------------
# Fake network
# --------------------------------------------------------------------------
HOSTS = ["alpha.test", "beta.test", "gamma.test"]


def _build_fake_web():
    web = {}
    for h in HOSTS:
        web[f"http://{h}/robots.txt"] = "User-agent: *\nDisallow: /private\n"
        for i in range(8):
            links = [f"/page{(i + 1) % 8}", f"/page{(i + 3) % 8}"]
            if i % 4 == 0:
                links.append(f"http://{HOSTS[(HOSTS.index(h) + 1) % len(HOSTS)]}/page{i}")
            if i == 2:
                links.append("/private/admin")
            body = " ".join(f'<a href="{l}">x</a>' for l in links)
            web[f"http://{h}/page{i}"] = f"<html><title>{h} {i}</title>{body}</html>"
        web[f"http://{h}/private/admin"] = "<html>secret</html>"
    # One site serves a broken robots file and a page with non-ASCII text.
    web["http://gamma.test/robots.txt"] = "User-agent *\nDisallow /private\n"
    web["http://beta.test/page5"] = "<html><title>caf\u00e9</title><a href=\"/page6\">x</a></html>"
    return web


FAKE_WEB = _build_fake_web()


class FetchError(Exception):
    pass


def fetch(url):
    time.sleep(random.uniform(0.002, 0.008))
    body = FAKE_WEB.get(url)
    if body is None:
        raise FetchError(f"404 {url}")
    return body


# --------------------------------------------------------------------------
# Robots handling
# --------------------------------------------------------------------------
_robots = {}


def parse_robots(text):
    rules = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed robots line: {line!r}")
        if key.strip().lower() == "disallow":
            rules.append(value.strip())
    return rules


def fetch_robots(host):
    return parse_robots(fetch(f"http://{host}/robots.txt"))


def _robots_loaded(host, fut):
    try:
        _robots[host] = fut.result()
    except Exception as exc:
        log.warning("robots for %s unusable (%s); allowing all", host, exc)
        _robots[host] = []


def robots_allows(url):
    parts = urlsplit(url)
    return not any(parts.path.startswith(p) for p in _robots.get(parts.hostname, ()))


def prefetch_robots(hosts):
    with ThreadPoolExecutor(max_workers=len(hosts), thread_name_prefix="robots") as pool:
        for host in hosts:
            fut = pool.submit(fetch_robots, host)
            fut.add_done_callback(lambda f: _robots_loaded(host, f))


# --------------------------------------------------------------------------
# Politeness scheduler
# --------------------------------------------------------------------------
_sched_lock = threading.Lock()
_host_slots = {}
_next_allowed = {}


class SlotTimeout(Exception):
    pass


def _host_semaphore(host):
    with _sched_lock:
        sem = _host_slots.get(host)
        if sem is None:
            sem = _host_slots[host] = threading.Semaphore(MAX_PER_HOST)
        return sem


def _wait_turn(host):
    with _sched_lock:
        now = time.monotonic()
        start = max(now, _next_allowed.get(host, now))
        _next_allowed[host] = start + CRAWL_DELAY
    if start > now:
        time.sleep(start - now)


def polite_fetch(url):
    host = urlsplit(url).hostname
    sem = _host_semaphore(host)
    got = sem.acquire(timeout=SLOT_TIMEOUT)
    try:
        if not got:
            raise SlotTimeout(host)
        _wait_turn(host)
        return fetch(url)
    finally:
        sem.release()


# --------------------------------------------------------------------------
# Crawl state
# --------------------------------------------------------------------------
frontier = queue.Queue()
_results_q = queue.Queue()
_seen = set()
_seen_lock = threading.Lock()
_stats = Counter()
_stats_lock = threading.Lock()
_archive = {}
_archive_lock = threading.Lock()
archive_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="archive")


def bump(key, n=1):
    with _stats_lock:
        _stats[key] += n


def schedule(url, depth):
    with _seen_lock:
        if url in _seen:
            return False
        _seen.add(url)
    frontier.put((url, depth))
    return True


def extract_links(base, html):
    links = []
    for chunk in html.split('href="')[1:]:
        href = chunk.split('"', 1)[0]
        links.append(urljoin(base, href))
    return links


def archive_page(url, body):
    blob = zlib.compress(body.encode("ascii"))
    with _archive_lock:
        _archive[url] = blob


def results_writer(path, batch_size=16):
    batch = []
    with open(path, "a", encoding="utf-8") as fh:
        while True:
            batch.append(json.dumps(_results_q.get()))
            if len(batch) >= batch_size:
                fh.write("\n".join(batch) + "\n")
                fh.flush()
                batch.clear()


def crawl_worker():
    while True:
        item = frontier.get()
        if item is None:
            frontier.task_done()
            return
        url, depth = item
        if not robots_allows(url):
            bump("disallowed")
            frontier.task_done()
            continue
        try:
            body = polite_fetch(url)
        except FetchError as exc:
            bump("errors")
            _results_q.put({"url": url, "error": str(exc)})
            frontier.task_done()
            continue
        bump("pages")
        _stats["bytes"] += len(body)
        archive_pool.submit(archive_page, url, body)
        _results_q.put({"url": url, "depth": depth, "size": len(body)})
        if depth < MAX_DEPTH:
            for link in extract_links(url, body):
                if schedule(link, depth + 1):
                    bump("discovered")
        frontier.task_done()


def main():
    logging.basicConfig(level=logging.WARNING, format="%(threadName)s %(message)s")
    out_path = os.path.join(tempfile.gettempdir(), "crawl_results.jsonl")
    open(out_path, "w").close()
    threading.Thread(target=results_writer, args=(out_path,), name="results-writer", daemon=True).start()

    t0 = time.monotonic()
    prefetch_robots(HOSTS)
    for h in HOSTS:
        schedule(f"http://{h}/page0", 0)

    workers = [threading.Thread(target=crawl_worker, name=f"crawler-{i}") for i in range(N_WORKERS)]
    for w in workers:
        w.start()
    frontier.join()
    for _ in workers:
        frontier.put(None)
    for w in workers:
        w.join()
    archive_pool.shutdown(wait=True)

    with _stats_lock:
        summary = dict(_stats)
    with _archive_lock:
        archived = len(_archive)
    print(f"crawl finished in {time.monotonic() - t0:.2f}s: {summary}")
    print(f"archived {archived} pages, robots rules: {_robots}")
    print(f"results streamed to {out_path}")


if __name__ == "__main__":
    main()
