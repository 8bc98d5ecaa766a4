"""Telemetry shipper.

Sampler threads produce metric values, an asyncio aggregator running on its
own loop batches them, a writer thread persists the batches as JSON lines,
and the CPU-heavy summaries are computed in worker processes at the end.
"""
import asyncio
import json
import multiprocessing as mp
import os
import queue
import random
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional, Tuple


def percentile_summary(values: List[float]) -> Dict[str, float]:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0, "var": 0.0}
    mean = sum(ordered) / n
    var = sum((v - mean) ** 2 for v in ordered) / n
    return {"p50": ordered[n // 2], "p99": ordered[min(n - 1, int(0.99 * n))], "mean": mean, "var": var}


class RateLimiter:
    def __init__(self, per_sec: float) -> None:
        self._lock = threading.Lock()
        self._interval = 1.0 / per_sec
        self._next = time.monotonic()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


class Aggregator:
    def __init__(self, flush_every: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.flush_every = flush_every
        self.batches: "queue.Queue[Optional[List[Tuple[str, float]]]]" = queue.Queue()
        self._queue: Optional[asyncio.Queue] = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aggregator")

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._queue = asyncio.Queue()
        self._started.set()
        self.loop.run_until_complete(self._consume())

    async def _consume(self) -> None:
        batch: List[Tuple[str, float]] = []
        while True:
            item = await self._queue.get()
            if item is None:
                break
            batch.append(item)
            if len(batch) >= self.flush_every:
                self.batches.put(batch)
                batch = []
        if batch:
            self.batches.put(batch)
        self.batches.put(None)

    async def _pending(self) -> int:
        return self._queue.qsize()

    def submit(self, name: str, value: float) -> None:
        self.loop.call_soon_threadsafe(self._queue.put_nowait, (name, value))

    def pending(self) -> int:
        return asyncio.run_coroutine_threadsafe(self._pending(), self.loop).result(timeout=5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._queue.put_nowait, None)
        self._thread.join()
        self.loop.close()


def write_batches(batches: "queue.Queue", path: str, written: List[int]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        while True:
            batch = batches.get()
            if batch is None:
                break
            for name, value in batch:
                fh.write(json.dumps({"m": name, "v": round(value, 3)}) + "\n")
            fh.flush()
            written.append(len(batch))
        os.fsync(fh.fileno())


class Sampler:
    def __init__(self, name: str, agg: Aggregator, limiter: RateLimiter, stop: threading.Event) -> None:
        self.name = name
        self.agg = agg
        self.limiter = limiter
        self.stop = stop
        self._values: List[float] = []
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, args=(0.002,), name=f"sampler-{name}")

    def _loop(self, interval: float) -> None:
        rng = random.Random(self.name)
        while not self.stop.wait(interval):
            self.limiter.wait()
            value = rng.random() * 100
            with self._lock:
                self._values.append(value)
            self.agg.submit(self.name, value)

    def drain(self) -> List[float]:
        with self._lock:
            values, self._values = self._values, []
        return values


def main() -> None:
    stop = threading.Event()
    agg = Aggregator(flush_every=25)
    agg.start()
    out = os.path.join(tempfile.mkdtemp(prefix="telemetry-"), "metrics.jsonl")
    written: List[int] = []
    writer = threading.Thread(target=write_batches, args=(agg.batches, out, written), name="writer")
    writer.start()
    limiter = RateLimiter(per_sec=500)
    samplers = [Sampler(n, agg, limiter, stop) for n in ("cpu", "mem", "disk")]
    for s in samplers:
        s.thread.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and not stop.wait(0.25):
        print("pending in aggregator:", agg.pending())
    stop.set()
    for s in samplers:
        s.thread.join()
    agg.close()
    writer.join()
    per_sampler = {s.name: s.drain() for s in samplers}
    with ProcessPoolExecutor(max_workers=2, mp_context=mp.get_context("spawn")) as pool:
        futures = {name: pool.submit(percentile_summary, vals) for name, vals in per_sampler.items()}
        summaries = {name: fut.result(timeout=60) for name, fut in futures.items()}
    print(f"wrote {sum(written)} samples in {len(written)} batches to {out}")
    for name, summary in sorted(summaries.items()):
        print(name, {k: round(v, 2) for k, v in summary.items()})


if __name__ == "__main__":
    main()
