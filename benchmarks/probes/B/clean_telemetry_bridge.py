"""Telemetry bridge: sensor-polling threads feed an asyncio uplink.

Each sensor is polled on its own thread (the vendor SDK is blocking).  The
uplink lives on an asyncio loop in a dedicated thread; pollers hand samples
over with call_soon_threadsafe and query uplink state with
run_coroutine_threadsafe.  FFT-style smoothing is CPU-bound, so it runs in a
spawn-based process pool instead of on the polling threads.
"""
from __future__ import annotations

import asyncio
import functools
import math
import multiprocessing
import random
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def smooth(samples: list[float], window: int = 8) -> list[float]:
    """Deliberately pure-Python; runs in worker processes, not threads."""
    out = []
    for i in range(len(samples)):
        lo = max(0, i - window + 1)
        seg = samples[lo:i + 1]
        out.append(sum(seg) / len(seg))
    return out


class Uplink:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="uplink-loop")
        self._inbox: asyncio.Queue | None = None
        self._sent = 0
        self._ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._inbox = asyncio.Queue()
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        self._sender = asyncio.run_coroutine_threadsafe(self._send_forever(), self.loop)

    def submit(self, sample: tuple[str, float, float]) -> None:
        """Thread-safe: may be called from any polling thread."""
        self.loop.call_soon_threadsafe(self._inbox.put_nowait, sample)

    async def _send_forever(self) -> None:
        while True:
            sample = await self._inbox.get()
            if sample is None:
                return
            await asyncio.sleep(0)  # stands in for the websocket write
            self._sent += 1

    async def _sent_count(self) -> int:
        return self._sent

    def sent_count(self, timeout: float = 2.0) -> int:
        return asyncio.run_coroutine_threadsafe(self._sent_count(), self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._inbox.put_nowait, None)
        self._sender.result(timeout=5.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


class SensorRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def update(self, name: str, value: float) -> None:
        with self._lock:
            self._last[name] = value

    def items(self) -> list[tuple[str, float]]:
        with self._lock:
            return list(self._last.items())


def poll_sensor(name: str, phase: float, uplink: Uplink, registry: SensorRegistry,
                stop: threading.Event, history: list[float]) -> None:
    rng = random.Random(name)
    t = 0.0
    while not stop.is_set():
        value = math.sin(t + phase) + rng.gauss(0, 0.05)
        registry.update(name, value)
        history.append(value)  # each poller owns its own history list
        uplink.submit((name, time.time(), value))
        t += 0.1
        stop.wait(0.002)


def main() -> None:
    uplink = Uplink()
    uplink.start()
    registry = SensorRegistry()
    stop = threading.Event()
    histories: dict[str, list[float]] = {}
    pollers = []
    for idx, name in enumerate(["temp", "vib-x", "vib-y", "pressure"]):
        histories[name] = []
        target = functools.partial(poll_sensor, name, idx * 0.7)
        pollers.append(threading.Thread(target=target, args=(uplink, registry, stop, histories[name]),
                                        name=f"poll-{name}"))
    for t in pollers:
        t.start()

    for _ in range(5):
        time.sleep(0.1)
        live = registry.items()
        print("live:", ", ".join(f"{n}={v:+.2f}" for n, v in sorted(live)),
              "| uplinked:", uplink.sent_count())

    stop.set()
    for t in pollers:
        t.join()
    uplink.stop()

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as procs:
        smoothed = dict(zip(histories, procs.map(smooth, histories.values())))
    for name, series in smoothed.items():
        print(f"{name:>9}: {len(series)} samples, last smoothed {series[-1]:+.3f}")


if __name__ == "__main__":
    main()
