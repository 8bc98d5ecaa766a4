"""Breadth-first site crawler used by the nightly link-checker job.

Pages are fetched by a fixed set of worker threads pulling from a shared
frontier queue.  A per-host politeness delay is enforced, the total number
of fetches is capped, and every fetched page is recorded (URL, status,
outgoing links) so the caller can dump a JSON-lines report afterwards.

``fetch`` is injectable so tests can drive the crawler with canned pages.
"""

import argparse
import json
import logging
import queue
import re
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

log = logging.getLogger("crawler")

HREF_RE = re.compile(r"""href=["']([^"'#]+)""", re.IGNORECASE)
DEFAULT_UA = "linkcheck-crawler/0.4 (+https://example.invalid/bot)"

# Request context (user agent, extra headers) for the fetch helpers.
_ctx = threading.local()


@dataclass
class CrawlStats:
    fetched: int = 0
    failed: int = 0
    bytes: int = 0
    per_host: dict = field(default_factory=dict)


def set_request_context(user_agent, headers=None):
    _ctx.user_agent = user_agent
    _ctx.headers = dict(headers or {})


def default_fetch(url, timeout=10.0):
    headers = {"User-Agent": _ctx.user_agent}
    headers.update(getattr(_ctx, "headers", {}))
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if "html" not in resp.headers.get("Content-Type", ""):
            return ""
        return resp.read(2_000_000).decode("utf-8", "replace")


class Crawler:
    def __init__(self, seeds, max_pages=500, max_depth=3, workers=8,
                 delay=1.0, same_host=True, fetch=default_fetch,
                 user_agent=DEFAULT_UA):
        self.frontier = queue.Queue()
        self.seen = set()
        self.max_pages = max_pages
        self.max_depth = max_depth
        self.delay = delay
        self.same_host = same_host
        self.fetch = fetch
        self.stats = CrawlStats()
        self.records = []
        self._started = 0
        self._lock = threading.Lock()
        self._host_lock = threading.Lock()
        self._next_slot = {}
        self._stop = threading.Event()
        self._n_workers = workers
        self._threads = []
        set_request_context(user_agent)
        for url in seeds:
            self._enqueue(url, 0)

    def _enqueue(self, url, depth):
        if url not in self.seen:
            self.seen.add(url)
            self.frontier.put((url, depth))

    def _reserve(self):
        """Claim one fetch out of the global budget."""
        with self._lock:
            if self._started >= self.max_pages:
                return False
            self._started += 1
            return True

    def _wait_for_host(self, url):
        host = urllib.parse.urlsplit(url).netloc
        with self._host_lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(host, now))
            self._next_slot[host] = slot + self.delay
        if slot > now:
            time.sleep(slot - now)

    def _extract_links(self, base, body):
        base_host = urllib.parse.urlsplit(base).netloc
        links = []
        for href in HREF_RE.findall(body):
            parts = urllib.parse.urlsplit(urllib.parse.urljoin(base, href.strip()))
            if parts.scheme not in ("http", "https"):
                continue
            if self.same_host and parts.netloc != base_host:
                continue
            links.append(urllib.parse.urlunsplit(parts._replace(fragment="")))
        return links

    def _record(self, url, ok, size, links, error=None):
        host = urllib.parse.urlsplit(url).netloc
        with self._lock:
            if ok:
                self.stats.fetched += 1
                self.stats.bytes += size
            else:
                self.stats.failed += 1
            self.stats.per_host[host] = self.stats.per_host.get(host, 0) + 1
            self.records.append({"url": url, "ok": ok, "links": links, "error": error})

    def _worker(self, wid):
        log.debug("crawl worker %d up", wid)
        # stagger start-up so the workers don't all hit the seed host at once
        time.sleep(wid * self.delay / max(self._n_workers, 1))
        while not self._stop.is_set():
            try:
                url, depth = self.frontier.get(timeout=0.5)
            except queue.Empty:
                continue
            if depth > self.max_depth or not self._reserve():
                continue
            self._wait_for_host(url)
            try:
                body = self.fetch(url)
            except Exception as exc:  # HTTP errors, timeouts, resets
                log.info("worker %d: %s: %s", wid, url, exc)
                self._record(url, False, 0, [], error=str(exc))
                continue
            links = self._extract_links(url, body)
            self._record(url, True, len(body), links)
            for link in links:
                self._enqueue(link, depth + 1)
        log.debug("crawl worker %d down", wid)

    def run(self):
        for i in range(self._n_workers):
            t = threading.Thread(target=lambda: self._worker(i), name=f"crawl-{i}")
            t.start()
            self._threads.append(t)
        self.frontier.join()
        self._stop.set()
        for t in self._threads:
            t.join()
        return self.stats

    def write_report(self, path):
        with self._lock:
            records = list(self.records)
        with open(path, "w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, sort_keys=True) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="crawl a site and report its links")
    ap.add_argument("seeds", nargs="+")
    ap.add_argument("--max-pages", type=int, default=500)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--delay", type=float, default=1.0)
    ap.add_argument("--any-host", action="store_true")
    ap.add_argument("-o", "--output", default="crawl.jsonl")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(message)s")

    crawler = Crawler(args.seeds, max_pages=args.max_pages,
                      max_depth=args.depth, workers=args.workers,
                      delay=args.delay, same_host=not args.any_host)
    started = time.monotonic()
    stats = crawler.run()
    crawler.write_report(args.output)
    log.info("fetched=%d failed=%d bytes=%d hosts=%d in %.1fs",
             stats.fetched, stats.failed, stats.bytes, len(stats.per_host),
             time.monotonic() - started)
    return 0 if stats.failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
