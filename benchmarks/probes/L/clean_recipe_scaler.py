"""Recipe-scaling service.

A small line-oriented TCP service (localhost only) that scales recipes to a
requested number of servings.  Nutrition data comes from an asyncio-based
lookup client running on its own event-loop thread; scaled results are
memoised per (recipe, servings) with per-key locks so each combination is
computed once.  An access-log thread writes request lines in the
background and is drained on shutdown.
"""

import asyncio
import json
import queue
import socket
import socketserver
import threading
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

RECIPES = {
    "pancakes": {"serves": 4, "items": {"flour_g": 250, "milk_ml": 500, "egg": 2, "sugar_g": 30}},
    "risotto": {"serves": 2, "items": {"rice_g": 180, "stock_ml": 900, "parmesan_g": 40}},
    "chili": {"serves": 6, "items": {"beans_g": 800, "beef_g": 500, "tomato_g": 400, "chili": 3}},
}
KCAL_PER_UNIT = {"flour_g": 3.64, "milk_ml": 0.64, "egg": 72, "sugar_g": 3.87, "rice_g": 3.6,
                 "stock_ml": 0.05, "parmesan_g": 4.3, "beans_g": 1.27, "beef_g": 2.5,
                 "tomato_g": 0.18, "chili": 4}


class NutritionClient:
    """Runs an asyncio loop in a background thread; safe to call from any thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nutrition-loop")
        self.lookups = 0

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()
        self.loop.close()

    def start(self):
        self._thread.start()
        self._ready.wait()

    async def _lookup(self, items):
        await asyncio.sleep(0.002)
        self.lookups += 1          # only ever touched on the loop thread
        return sum(KCAL_PER_UNIT[k] * float(v) for k, v in items.items())

    def kcal(self, items, timeout=1.0):
        fut = asyncio.run_coroutine_threadsafe(self._lookup(items), self.loop)
        return fut.result(timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


class AccessLog:
    def __init__(self):
        self._q = queue.Queue()
        self.lines = []
        self._thread = threading.Thread(target=self._drain, daemon=True, name="access-log")
        self._thread.start()

    def _drain(self):
        while True:
            line = self._q.get()
            if line is None:
                return
            self.lines.append(line)

    def write(self, line):
        self._q.put(line)

    def close(self):
        self._q.put(None)
        self._thread.join()


class Scaler:
    def __init__(self, nutrition):
        self.nutrition = nutrition
        self._memo = {}
        self._memo_guard = threading.Lock()
        self._inflight = {}
        self._stats_lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0}

    def _bump(self, field):
        with self._stats_lock:
            self.stats[field] += 1

    def scale(self, name, servings):
        """Single-flight memoisation: the first caller computes, others wait."""
        key = (name, servings)
        with self._memo_guard:
            cached = self._memo.get(key)
            if cached is None:
                pending = self._inflight.get(key)
                owner = pending is None
                if owner:
                    pending = self._inflight[key] = threading.Event()
        if cached is not None:
            self._bump("hits")
            return cached
        if not owner:
            pending.wait(2.0)
            with self._memo_guard:
                cached = self._memo.get(key)
            if cached is None:
                raise KeyError(name)
            self._bump("hits")
            return cached
        try:
            result = self._compute(name, servings)
            with self._memo_guard:
                self._memo[key] = result
            self._bump("misses")
            return result
        finally:
            with self._memo_guard:
                self._inflight.pop(key, None)
            pending.set()

    def _compute(self, name, servings):
        recipe = RECIPES[name]
        factor = Fraction(servings, recipe["serves"])
        items = {k: v * factor for k, v in recipe["items"].items()}
        kcal = self.nutrition.kcal(items)
        return {"recipe": name, "servings": servings,
                "items": {k: round(float(v), 1) for k, v in items.items()},
                "kcal_per_serving": round(kcal / servings)}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        for raw in self.rfile:
            parts = raw.decode().split()
            if not parts:
                continue
            if parts[0] == "QUIT":
                break
            try:
                name, servings = parts[0], int(parts[1])
                body = json.dumps(srv.scaler.scale(name, servings))
            except (KeyError, IndexError, ValueError) as exc:
                body = json.dumps({"error": type(exc).__name__})
            srv.log.write(f"{self.client_address[1]} {raw.decode().strip()}")
            self.wfile.write(body.encode() + b"\n")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, scaler, log):
        super().__init__(("127.0.0.1", 0), Handler)
        self.scaler = scaler
        self.log = log


def client(port, requests, results, results_lock):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        f = s.makefile("rwb")
        got = []
        for name, servings in requests:
            f.write(f"{name} {servings}\n".encode())
            f.flush()
            got.append(json.loads(f.readline()))
        f.write(b"QUIT\n")
        f.flush()
    with results_lock:
        results.extend(got)
    return len(got)


def main():
    nutrition = NutritionClient()
    nutrition.start()
    log = AccessLog()
    scaler = Scaler(nutrition)
    server = Server(scaler, log)
    port = server.server_address[1]
    srv_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    srv_thread.start()

    plans = []
    for c in range(6):
        reqs = [(name, 2 + (c + i) % 5) for i, name in enumerate(sorted(RECIPES) * 3)]
        if c == 3:
            reqs.append(("lasagne", 4))
        plans.append(reqs)

    results, results_lock = [], threading.Lock()
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="client") as pool:
        futures = [pool.submit(client, port, reqs, results, results_lock) for reqs in plans]
        answered = sum(f.result() for f in futures)

    server.shutdown()
    srv_thread.join()
    server.server_close()
    nutrition.stop()
    log.close()

    errors = [r for r in results if "error" in r]
    print("answered:", answered, "errors:", len(errors), "log lines:", len(log.lines))
    print("memo stats:", scaler.stats, "nutrition lookups:", nutrition.lookups)


if __name__ == "__main__":
    main()
