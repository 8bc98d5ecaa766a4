"""Batch email digest builder.

For each subscriber, fetch recent items from several (fake) feeds, render a
digest, and hand it to an asyncio-based outbox that "sends" the messages.
Feed fetching runs on a thread pool, rendering uses a per-thread template
cache, and delivery statistics are kept in a shared counter object.
"""
import asyncio
import hashlib
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

log = logging.getLogger("digest")

FEEDS = ["news", "releases", "forum", "jobs"]
SUBSCRIBERS = [f"user{n}@example.org" for n in range(12)]


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    fetched: int = 0
    failed_feeds: int = 0
    rendered: int = 0
    sent: int = 0
    per_feed: dict = field(default_factory=dict)

    def bump(self, name, n=1):
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def feed_ok(self, feed):
        with self.lock:
            self.per_feed[feed] = self.per_feed.get(feed, 0) + 1
            self.fetched += 1


stats = Stats()

_registry = None
_registry_lock = threading.Lock()


class TemplateRegistry:
    def __init__(self):
        time.sleep(0.01)
        self.templates = {
            "header": "Your digest for {who}\n",
            "item": " * [{feed}] {title}\n",
            "footer": "-- {count} items\n",
        }


def get_registry():
    global _registry
    reg = _registry
    if reg is None:
        with _registry_lock:
            if _registry is None:
                _registry = TemplateRegistry()
            reg = _registry
    return reg


_tls = threading.local()


def _init_worker():
    _tls.rendered_here = 0
    _tls.cache = {}


def compiled(name):
    cache = _tls.cache
    if name not in cache:
        cache[name] = get_registry().templates[name]
    return cache[name]


def fetch_feed(feed, who, rng_seed):
    rng = random.Random(rng_seed)
    time.sleep(rng.uniform(0.001, 0.01))
    if feed == "forum" and rng.random() < 0.2:
        raise ConnectionError(f"{feed} timed out for {who}")
    return [{"feed": feed, "title": f"{feed} item {i} for {who.split('@')[0]}"}
            for i in range(rng.randint(0, 3))]


def render_digest(who, items):
    out = [compiled("header").format(who=who)]
    for item in items:
        out.append(compiled("item").format(**item))
    out.append(compiled("footer").format(count=len(items)))
    _tls.rendered_here += 1
    stats.bump("rendered")
    return "".join(out)


def gather_items(pool, who):
    futures = {pool.submit(fetch_feed, feed, who, hash((feed, who)) & 0xFFFF): feed for feed in FEEDS}
    items = []
    for fut in as_completed(futures):
        feed = futures[fut]
        exc = fut.exception()
        if exc is not None:
            stats.bump("failed_feeds")
            log.debug("feed %s failed: %s", feed, exc)
            continue
        stats.feed_ok(feed)
        items.extend(fut.result())
    return items


class Outbox:
    """Asyncio outbox running on its own loop thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.delivered = []
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._ready = threading.Event()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def start(self):
        self._thread.start()
        self._ready.wait()

    async def _send(self, who, body):
        await asyncio.sleep(0.002)
        self.delivered.append((who, hashlib.md5(body.encode()).hexdigest()[:8]))
        return len(body)

    def submit(self, who, body):
        return asyncio.run_coroutine_threadsafe(self._send(who, body), self.loop)

    def note(self, msg):
        self.loop.call_soon_threadsafe(log.debug, msg)

    def close(self):
        async def _drain():
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            await asyncio.gather(*pending, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(_drain(), self.loop).result(timeout=2)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def build_and_send(fetch_pool, outbox, who):
    items = gather_items(fetch_pool, who)
    body = render_digest(who, items)
    outbox.note(f"queued digest for {who}")
    return outbox.submit(who, body)


def hourly_checksums(bodies):
    """Checksum a batch of digests in worker threads; results read after join."""
    results = [None] * len(bodies)
    guard = threading.Lock()
    done = []

    def work(idx, text):
        digest = hashlib.sha256(text.encode()).hexdigest()
        results[idx] = digest
        with guard:
            done.append(idx)

    threads = [threading.Thread(target=work, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, sorted(done)


def main():
    logging.basicConfig(level=logging.INFO, format="%(threadName)-12s %(message)s")
    outbox = Outbox()
    outbox.start()

    heartbeat_ticks = []
    hb_stop = threading.Event()

    def heartbeat():
        while not hb_stop.wait(0.02):
            heartbeat_ticks.append(time.monotonic())

    hb = threading.Thread(target=heartbeat, name="heartbeat", daemon=True)
    hb.start()
    watchdog = threading.Timer(5.0, lambda: log.error("digest run is stuck"))
    watchdog.daemon = True
    watchdog.start()

    sends = []
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="fetch") as fetch_pool, \
         ThreadPoolExecutor(max_workers=3, thread_name_prefix="render", initializer=_init_worker) as render_pool:
        jobs = [render_pool.submit(lambda w=who: build_and_send(fetch_pool, outbox, w)) for who in SUBSCRIBERS]
        for job in as_completed(jobs):
            sends.append(job.result())

    sizes = []
    for send in sends:
        try:
            sizes.append(send.result(timeout=2))
            stats.bump("sent")
        except Exception as exc:
            log.warning("send failed: %s", exc)

    hb_stop.set()
    hb.join()
    watchdog.cancel()
    watchdog.join()
    outbox.close()

    checksums, done = hourly_checksums([f"{w}:{s}" for w, s in zip(SUBSCRIBERS, sizes)])
    with stats.lock:
        log.info("fetched=%d failed=%d rendered=%d sent=%d", stats.fetched, stats.failed_feeds,
                 stats.rendered, stats.sent)
        log.info("per feed: %s", dict(sorted(stats.per_feed.items())))
    log.info("delivered=%d bytes=%d checksums=%d/%d heartbeats>=%d", len(outbox.delivered), sum(sizes),
             sum(1 for c in checksums if c), len(done), len(heartbeat_ticks))


if __name__ == "__main__":
    main()
