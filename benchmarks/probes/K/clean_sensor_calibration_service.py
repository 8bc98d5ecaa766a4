"""Sensor calibration service.

Pulls raw samples from a rack of temperature sensors against a reference
probe, fits a linear gain/offset per sensor, verifies the fit and publishes
the new calibration to subscribers through an asyncio event loop that runs
in its own thread.  A watchdog timer flags the run if it stalls.
"""
import asyncio
import itertools
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

_tls = threading.local()
_seeds = itertools.count(100)
_seed_lock = threading.Lock()


def _init_sampler():
    with _seed_lock:
        seed = next(_seeds)
    _tls.rng = random.Random(seed)
    _tls.reads = 0


@dataclass(frozen=True)
class Sensor:
    sensor_id: str
    gain: float
    offset: float


@dataclass
class Fit:
    sensor_id: str
    gain: float
    offset: float
    residual: float


def sample_sensor(sensor, points):
    """Runs on a sampler thread: one slow bus read per reference point."""
    rng = _tls.rng
    out = []
    for ref in points:
        time.sleep(0.001)  # bus transaction
        _tls.reads += 1
        out.append((ref, sensor.gain * ref + sensor.offset + rng.gauss(0, 0.02)))
    return sensor.sensor_id, out, _tls.reads


def fit_line(samples):
    n = len(samples)
    sx = sum(r for r, _ in samples)
    sy = sum(m for _, m in samples)
    sxx = sum(r * r for r, _ in samples)
    sxy = sum(r * m for r, m in samples)
    gain = (n * sxy - sx * sy) / (n * sxx - sx * sx)
    offset = (sy - gain * sx) / n
    resid = max(abs(m - (gain * r + offset)) for r, m in samples)
    return gain, offset, resid


class CalibrationStore:
    def __init__(self):
        self._lock = threading.Lock()
        self._fits = {}
        self._audit_lock = threading.Lock()
        self._audit = []

    def commit(self, fit):
        with self._lock:
            previous = self._fits.get(fit.sensor_id)
            self._fits[fit.sensor_id] = fit
            with self._audit_lock:
                self._audit.append((fit.sensor_id, previous is not None))

    def rollback(self, sensor_id):
        with self._lock:
            removed = self._fits.pop(sensor_id, None)
            with self._audit_lock:
                self._audit.append((sensor_id, "rollback" if removed else "noop"))

    def fits(self):
        with self._lock:
            return dict(self._fits)

    def audit_len(self):
        with self._audit_lock:
            return len(self._audit)


class Publisher(threading.Thread):
    """Owns an asyncio loop; other threads hand it work thread-safely."""

    def __init__(self):
        super().__init__(name="publisher")
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.delivered = []
        self._inbox = None

    def run(self):
        asyncio.set_event_loop(self.loop)
        self._inbox = asyncio.Queue()
        self.ready.set()
        self.loop.run_forever()
        self.loop.close()

    async def _deliver(self, fit):
        await asyncio.sleep(0.001)
        self.delivered.append(fit.sensor_id)
        return len(self.delivered)

    def publish(self, fit, timeout=1.0):
        fut = asyncio.run_coroutine_threadsafe(self._deliver(fit), self.loop)
        return fut.result(timeout)

    def notify(self, message):
        self.loop.call_soon_threadsafe(self._inbox.put_nowait, message)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join()


class Watchdog:
    def __init__(self, limit, on_stall):
        self._lock = threading.Lock()
        self._limit = limit
        self._on_stall = on_stall
        self._timer = None
        self._stopped = False
        self.fired = 0

    def kick(self):
        with self._lock:
            if self._stopped:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._limit, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self):
        with self._lock:
            if self._stopped:
                return
            self.fired += 1
        self._on_stall()

    def stop(self):
        with self._lock:
            self._stopped = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            timer.join()


def fitter(inbox, store, publisher, watchdog, rejected):
    while True:
        item = inbox.get()
        try:
            if item is None:
                return
            sensor_id, samples = item
            gain, offset, resid = fit_line(samples)
            fit = Fit(sensor_id, gain, offset, resid)
            if resid > 0.2:
                rejected.put(sensor_id)
                continue
            store.commit(fit)
            publisher.publish(fit)
            watchdog.kick()
        finally:
            inbox.task_done()


def verify_batch(sensors, store, points):
    """Re-reads each sensor once and rolls back fits that drifted."""
    fits = store.fits()
    lock = threading.Lock()
    drifted = []
    threads = []
    for sensor in sensors:
        def check(s=sensor):
            fit = fits.get(s.sensor_id)
            if fit is None:
                return
            time.sleep(0.002)
            raw = s.gain * points[-1] + s.offset
            corrected = (raw - fit.offset) / fit.gain
            if abs(corrected - points[-1]) > 0.1:
                with lock:
                    drifted.append(s.sensor_id)
        threads.append(threading.Thread(target=check, name=f"verify-{sensor.sensor_id}"))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sensor_id in drifted:
        store.rollback(sensor_id)
    return drifted


def main():
    rng = random.Random(42)
    sensors = [Sensor(f"T{i:02d}", rng.uniform(0.95, 1.05), rng.uniform(-0.5, 0.5))
               for i in range(16)]
    sensors.append(Sensor("T99", 1.0, 0.0))
    points = [float(p) for p in range(-10, 41, 5)]

    store = CalibrationStore()
    publisher = Publisher()
    publisher.start()
    publisher.ready.wait()
    stalls = []
    watchdog = Watchdog(2.0, lambda: stalls.append(time.monotonic()))

    inbox, rejected = queue.Queue(maxsize=8), queue.Queue()
    fitters = [threading.Thread(target=fitter,
                                args=(inbox, store, publisher, watchdog, rejected),
                                name=f"fitter-{i}")
               for i in range(3)]
    for t in fitters:
        t.start()

    errors = []
    with ThreadPoolExecutor(max_workers=6, initializer=_init_sampler,
                            thread_name_prefix="sampler") as pool:
        futures = {pool.submit(sample_sensor, s, points): s for s in sensors}
        for fut in as_completed(futures):
            try:
                sensor_id, samples, _ = fut.result()
            except Exception as exc:  # a failed bus read loses only that sensor
                errors.append((futures[fut].sensor_id, exc))
                continue
            inbox.put((sensor_id, samples))
            publisher.notify(f"sampled {sensor_id}")

    inbox.join()
    for _ in fitters:
        inbox.put(None)
    for t in fitters:
        t.join()

    drifted = verify_batch(sensors, store, points)
    watchdog.stop()
    publisher.stop()

    bad = []
    while not rejected.empty():
        bad.append(rejected.get_nowait())
    print(f"calibrated={len(store.fits())} published={len(publisher.delivered)} "
          f"rejected={bad} drifted={drifted} errors={len(errors)}")
    print(f"audit entries={store.audit_len()} stalls={len(stalls)} "
          f"watchdog_fired={watchdog.fired}")


if __name__ == "__main__":
    main()
