"""Caching tile server in front of a slow map renderer.

Serves /tiles/{z}/{x}/{y}.png.  Tiles are fetched from the upstream renderer
over HTTP and kept in a bounded LRU.  Concurrent requests for the same tile
coalesce: the first caller fetches it and the others wait until it lands.
/admin/{stats,purge,resize}?arg=... expose a few maintenance commands, and
--warm z0-z1 pre-fetches a bounding box before the server starts.
"""
import argparse
import http.client
import json
import logging
import math
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Tuple
from urllib.parse import parse_qs, urlparse

log = logging.getLogger("tiles")

TileKey = Tuple[int, int, int]

_local = threading.local()


class UpstreamError(Exception):
    pass


def make_fetcher(host: str, port: int) -> Callable[[TileKey], bytes]:
    def fetch(key: TileKey) -> bytes:
        conn = getattr(_local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=30)
            _local.conn = conn
        z, x, y = key
        try:
            conn.request("GET", f"/render/{z}/{x}/{y}.png")
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            _local.conn = None
            raise UpstreamError(f"{key}: {exc}") from exc
        if resp.status != 200:
            raise UpstreamError(f"{key}: upstream answered {resp.status}")
        return body
    return fetch


class TileCache:
    def __init__(self, fetch: Callable[[TileKey], bytes], capacity: int) -> None:
        self._fetch = fetch
        self._capacity = capacity
        self._lock = threading.Lock()
        self._landed = threading.Condition(self._lock)
        self._tiles: "OrderedDict[TileKey, bytes]" = OrderedDict()
        self._loading: set = set()
        self._hits = self._misses = self._errors = 0
        self._admin: Dict[str, Callable[[str], dict]] = {
            "stats": self._cmd_stats,
            "purge": self._cmd_purge,
            "resize": self._cmd_resize,
        }

    def get(self, key: TileKey) -> bytes:
        with self._landed:
            while True:
                data = self._tiles.get(key)
                if data is not None:
                    self._tiles.move_to_end(key)
                    self._hits += 1
                    return data
                if key not in self._loading:
                    self._loading.add(key)
                    self._misses += 1
                    break
                self._landed.wait()
        try:
            data = self._fetch(key)
        except Exception:
            with self._landed:
                self._loading.discard(key)
                self._errors += 1
                self._landed.notify_all()
            raise
        with self._landed:
            self._loading.discard(key)
            self._tiles[key] = data
            self._evict_locked()
            self._landed.notify_all()
        return data

    def _evict_locked(self) -> None:
        while len(self._tiles) > self._capacity:
            self._tiles.popitem(last=False)

    def admin(self, command: str, arg: str) -> dict:
        handler = self._admin.get(command)
        if handler is None:
            return {"error": f"unknown command {command!r}"}
        return handler(arg)

    def _cmd_stats(self, arg: str) -> dict:
        self._lock.acquire()
        try:
            return {"tiles": len(self._tiles), "loading": len(self._loading),
                    "hits": self._hits, "misses": self._misses, "errors": self._errors,
                    "bytes": sum(len(b) for b in self._tiles.values())}
        finally:
            self._lock.release()

    def _cmd_purge(self, arg: str) -> dict:
        zoom = int(arg) if arg else None
        with self._lock:
            doomed = [k for k in self._tiles if zoom is None or k[0] == zoom]
            for k in doomed:
                del self._tiles[k]
        return {"purged": len(doomed)}

    def _cmd_resize(self, arg: str) -> dict:
        with self._lock:
            self._capacity = max(1, int(arg))
            self._evict_locked()
            return {"capacity": self._capacity, "tiles": len(self._tiles)}


def tiles_for_bbox(zoom: int, west: float, south: float, east: float, north: float) -> List[TileKey]:
    def to_xy(lon: float, lat: float) -> Tuple[int, int]:
        n = 2 ** zoom
        x = int((lon + 180.0) / 360.0 * n)
        lat_r = math.radians(lat)
        y = int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)
        return min(max(x, 0), n - 1), min(max(y, 0), n - 1)

    x0, y0 = to_xy(west, north)
    x1, y1 = to_xy(east, south)
    return [(zoom, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


class WarmReport:
    def __init__(self) -> None:
        self.fetched = 0
        self.failed: List[TileKey] = []


def warm(cache: TileCache, keys: List[TileKey], threads: int) -> WarmReport:
    reports: List[WarmReport] = [WarmReport() for _ in range(threads)]

    def worker(slot: int) -> None:
        mine = WarmReport()
        for key in keys[slot::threads]:
            try:
                cache.get(key)
                mine.fetched += 1
            except UpstreamError:
                mine.failed.append(key)
        reports[slot] = mine

    pool = [threading.Thread(target=worker, args=(i,), name=f"warm-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    total = WarmReport()
    for r in reports:
        total.fetched += r.fetched
        total.failed.extend(r.failed)
    return total


class TileHandler(BaseHTTPRequestHandler):
    server: "TileServer"

    def do_GET(self) -> None:
        url = urlparse(self.path)
        parts = url.path.strip("/").split("/")
        try:
            if len(parts) == 4 and parts[0] == "tiles" and parts[3].endswith(".png"):
                key = (int(parts[1]), int(parts[2]), int(parts[3][:-4]))
                self._reply(200, self.server.cache.get(key), "image/png")
            elif len(parts) == 2 and parts[0] == "admin":
                arg = parse_qs(url.query).get("arg", [""])[0]
                body = json.dumps(self.server.cache.admin(parts[1], arg)).encode()
                self._reply(200, body, "application/json")
            else:
                self._reply(404, b"not found\n", "text/plain")
        except ValueError:
            self._reply(400, b"bad request\n", "text/plain")
        except UpstreamError as exc:
            self._reply(502, f"{exc}\n".encode(), "text/plain")

    def _reply(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, cache: TileCache) -> None:
        super().__init__(addr, TileHandler)
        self.cache = cache


def main() -> None:
    ap = argparse.ArgumentParser(description="caching tile server")
    ap.add_argument("--upstream", default="127.0.0.1:8090")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--capacity", type=int, default=50_000)
    ap.add_argument("--warm", help="zoom range like 3-8")
    ap.add_argument("--bbox", default="-10.5,35.0,30.0,60.0", help="west,south,east,north")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")

    host, _, port = args.upstream.partition(":")
    cache = TileCache(make_fetcher(host, int(port or 80)), args.capacity)
    if args.warm:
        lo, _, hi = args.warm.partition("-")
        west, south, east, north = (float(v) for v in args.bbox.split(","))
        keys = [k for z in range(int(lo), int(hi or lo) + 1)
                for k in tiles_for_bbox(z, west, south, east, north)]
        report = warm(cache, keys, threads=16)
        log.info("warmed %d tiles, %d failed", report.fetched, len(report.failed))
    with TileServer(("0.0.0.0", args.port), cache) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
