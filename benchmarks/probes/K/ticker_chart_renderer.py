"""Stock-ticker chart renderer.

An asyncio front end serves a tiny line protocol on localhost:

    CHART <SYMBOL> <RANGE>\n   ->  OK <nbytes> <etag>\n<image bytes>
    THUMB <SYMBOL>\n           ->  OK <nbytes> <etag>\n<image bytes>

Rendering is plain Python pixel pushing, so it runs on a thread pool. Rendered
images are kept in an LRU cache keyed by (symbol, range, quote version); a
quote feed coroutine bumps versions as new prices arrive.
"""
import asyncio
import hashlib
import logging
import math
import random
import threading
import time
import zlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("charts")

WIDTH, HEIGHT = 96, 48
RANGES = {"1d": 78, "5d": 130, "1m": 22}
WATCHLIST = ["AAPL", "MSFT", "NVDA", "TSLA", "BRK.B", "AMZN"]

_prices = {}
_versions = {}
_prices_lock = threading.Lock()

_atlas = None
_atlas_lock = threading.Lock()


class FontAtlas:
    """Glyph bitmaps for axis labels (expensive to build)."""

    def __init__(self, glyphs):
        self.glyphs = glyphs

    @classmethod
    def load(cls):
        time.sleep(0.02)
        glyphs = {}
        for ch in "0123456789.$-":
            seed = ord(ch)
            glyphs[ch] = [[(seed >> ((x + y) % 7)) & 1 for x in range(3)] for y in range(5)]
        return cls(glyphs)


def get_font_atlas():
    global _atlas
    if _atlas is None:
        with _atlas_lock:
            _atlas = FontAtlas.load()
    return _atlas


def seed_prices(rng):
    with _prices_lock:
        for sym in WATCHLIST:
            if "." in sym:
                continue
            base = rng.uniform(50, 900)
            _prices[sym] = [base * (1 + 0.01 * math.sin(i / 5.0)) for i in range(200)]
            _versions[sym] = 1


def price_series(symbol, rng_name):
    with _prices_lock:
        series = list(_prices[symbol][-RANGES[rng_name]:])
        version = _versions[symbol]
    return series, version


class ChartCache:
    def __init__(self, capacity=64):
        self.capacity = capacity
        self._lock = threading.Lock()
        self._items = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        with self._lock:
            img = self._items.get(key)
            if img is not None:
                self._items.move_to_end(key)
        with threading.Lock():
            if img is None:
                self.misses += 1
            else:
                self.hits += 1
        return img

    def put(self, key, img):
        with self._lock:
            self._items[key] = img
            self._items.move_to_end(key)
            if len(self._items) > self.capacity:
                self._evict_oldest()

    def _evict_oldest(self):
        with self._lock:
            key, _ = self._items.popitem(last=False)
        log.debug("evicted %s", key)

    def __len__(self):
        with self._lock:
            return len(self._items)


cache = ChartCache()


def rasterize(series):
    lo, hi = min(series), max(series)
    span = (hi - lo) or 1.0
    rows = [bytearray(WIDTH) for _ in range(HEIGHT)]
    for x in range(WIDTH):
        idx = int(x * (len(series) - 1) / (WIDTH - 1))
        y = HEIGHT - 1 - int((series[idx] - lo) / span * (HEIGHT - 1))
        for yy in range(y, HEIGHT):
            rows[yy][x] = 80 if yy > y else 255
    atlas = get_font_atlas()
    label = f"{hi:.2f}"
    for i, ch in enumerate(label[:10]):
        for gy, line in enumerate(atlas.glyphs.get(ch, [])):
            for gx, bit in enumerate(line):
                if bit:
                    rows[1 + gy][2 + i * 4 + gx] = 200
    return zlib.compress(b"".join(bytes(r) for r in rows))


def render_chart(symbol, rng_name):
    series, version = price_series(symbol, rng_name)
    key = (symbol, rng_name, version)
    img = cache.get(key)
    if img is None:
        img = rasterize(series)
        cache.put(key, img)
    return img


def render_thumbnail_into(fut, symbol):
    img = render_chart(symbol, "1d")
    thumb = zlib.compress(zlib.decompress(img)[::4])
    fut.set_result(thumb)


def etag(img):
    return hashlib.sha1(img).hexdigest()[:12]


class ChartServer:
    def __init__(self, pool):
        self.pool = pool
        self.served = 0

    async def handle(self, reader, writer):
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                parts = line.decode().split()
                try:
                    if parts[0] == "CHART":
                        img = await loop.run_in_executor(self.pool, render_chart, parts[1], parts[2])
                    elif parts[0] == "THUMB":
                        fut = loop.create_future()
                        self.pool.submit(render_thumbnail_into, fut, parts[1])
                        img = await asyncio.wait_for(fut, timeout=2.0)
                    else:
                        raise ValueError(parts[0])
                except (KeyError, ValueError, IndexError) as exc:
                    writer.write(f"ERR {exc!r}\n".encode())
                else:
                    writer.write(f"OK {len(img)} {etag(img)}\n".encode() + img)
                    self.served += 1
                await writer.drain()
        finally:
            writer.close()


async def quote_feed(pool, stop, rng):
    """Append fresh prices and re-render the 1d chart of every symbol that moved."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        await asyncio.sleep(0.02)
        changed = []
        with _prices_lock:
            for sym, series in _prices.items():
                if rng.random() < 0.5:
                    series.append(series[-1] * rng.uniform(0.995, 1.005))
                    _versions[sym] += 1
                    changed.append(sym)
        jobs = []
        for sym in changed:
            jobs.append(loop.run_in_executor(pool, lambda: render_chart(sym, "1d")))
        if jobs:
            await asyncio.gather(*jobs)


async def client(port, requests):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = []
    for req in requests:
        writer.write((req + "\n").encode())
        await writer.drain()
        header = (await reader.readline()).decode().split()
        if header[0] == "OK":
            await reader.readexactly(int(header[1]))
            got.append((req, header[2]))
        else:
            got.append((req, "error"))
    writer.close()
    await writer.wait_closed()
    return got


async def main_async():
    rng = random.Random(42)
    seed_prices(rng)
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="render")
    for sym in WATCHLIST:
        pool.submit(render_chart, sym, "1d")

    app = ChartServer(pool)
    server = await asyncio.start_server(app.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    stop = asyncio.Event()
    feed = asyncio.create_task(quote_feed(pool, stop, random.Random(1)))

    scripts = [
        [f"CHART {s} {r}" for s in WATCHLIST[:4] for r in RANGES],
        ["CHART NVDA 1d", "THUMB NVDA", "CHART TSLA 5d", "THUMB AAPL"],
        ["THUMB MSFT", "CHART AMZN 1m", "CHART BRK.B 1d", "CHART AMZN 1m"],
    ]
    results = await asyncio.gather(*(client(port, s) for s in scripts))
    stop.set()
    await feed

    server.close()
    await server.wait_closed()
    pool.shutdown(wait=True)

    for batch in results:
        for req, tag in batch:
            log.info("%-16s %s", req, tag)
    log.info("served=%d cached=%d hits=%d misses=%d", app.served, len(cache), cache.hits, cache.misses)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    asyncio.run(main_async())
