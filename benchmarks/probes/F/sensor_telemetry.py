"""Sensor telemetry collector.

Polls a fleet of field sensors on dedicated reader threads, buffers the
readings in memory and lets a small pool of flusher threads append them to
sharded CSV archives in batches.  A calibration pass runs once at start-up to
estimate a zero offset for every device.

Run directly for a short demo against simulated devices.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Iterable, List, Optional

SENSOR_IDS = ("temp-01", "temp-02", "hum-01", "press-01", "press-02")
BASELINES = {"temp": 21.0, "hum": 45.0, "press": 101.3}
SAMPLE_INTERVAL_S = 0.25
CALIBRATION_SAMPLES = 20
BATCH_SIZE = 32
FLUSH_WORKERS = 2
BUFFER_CAPACITY = 10_000
GLITCH_RATE = 0.002
VALID_RANGE = (-50.0, 150.0)
ARCHIVE_PATH = os.environ.get("TELEMETRY_ARCHIVE", "telemetry.csv")

log = logging.getLogger("telemetry")
sensor_log = logging.getLogger("telemetry.sensor")

_ctx = threading.local()


class SensorContextFilter(logging.Filter):
    """Stamp every record on the sensor logger with the active sensor id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.sensor = _ctx.sensor_id
        return True


sensor_log.addFilter(SensorContextFilter())


@dataclass(frozen=True)
class Sample:
    sensor_id: str
    timestamp: float
    value: float


class SimulatedDevice:
    """Stand-in for a Modbus/serial sensor.  Reads take a few milliseconds."""

    def __init__(self, sensor_id: str, baseline: float, noise: float = 0.4) -> None:
        self.sensor_id = sensor_id
        self._baseline = baseline
        self._noise = noise
        self._rng = random.Random(sum(map(ord, sensor_id)))

    def read(self) -> float:
        time.sleep(0.005)
        if self._rng.random() < GLITCH_RATE:
            return 9999.0
        return self._baseline + self._rng.gauss(0.0, self._noise)


class TelemetryStats:
    """Counters shared by every reader and flusher thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.dropped = 0
        self.flushed = 0

    def record_sample(self) -> None:
        self.received += 1

    def record_drop(self, count: int = 1) -> None:
        with self._lock:
            self.dropped += count

    def record_flush(self, count: int) -> None:
        with self._lock:
            self.flushed += count

    def snapshot(self) -> Dict[str, int]:
        with self._lock:
            return {
                "received": self.received,
                "dropped": self.dropped,
                "flushed": self.flushed,
            }


class SampleBuffer:
    """Bounded FIFO shared between the reader threads and the flushers."""

    def __init__(self, capacity: int, stats: TelemetryStats) -> None:
        self._items: Deque[Sample] = deque()
        self._capacity = capacity
        self._stats = stats
        self._cond = threading.Condition()
        self._closed = False

    def put(self, sample: Sample) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("buffer closed")
            if len(self._items) >= self._capacity:
                self._items.popleft()
                self._stats.record_drop()
                sensor_log.warning("buffer full, dropped oldest sample")
            self._items.append(sample)
            self._cond.notify()

    def take_batch(self, max_items: int) -> Optional[List[Sample]]:
        """Block until samples are available.  Returns None once closed and drained."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                return None
            batch: List[Sample] = []
            while self._items and len(batch) < max_items:
                batch.append(self._items.popleft())
            return batch

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class SensorReader(threading.Thread):
    """Polls one device at a fixed interval until stopped."""

    def __init__(self, device: SimulatedDevice, buffer: SampleBuffer,
                 stats: TelemetryStats, interval: float = SAMPLE_INTERVAL_S) -> None:
        super().__init__(name=f"reader-{device.sensor_id}")
        self.device = device
        self.offset = 0.0
        self._buffer = buffer
        self._stats = stats
        self._interval = interval
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        _ctx.sensor_id = self.device.sensor_id
        sensor_log.info("reader started (offset %.3f)", self.offset)
        while not self._stop_event.is_set():
            try:
                raw = self.device.read()
            except OSError as exc:
                sensor_log.error("read failed: %s", exc)
                self._stop_event.wait(self._interval * 4)
                continue
            sample = Sample(self.device.sensor_id, time.time(), raw - self.offset)
            try:
                self._buffer.put(sample)
            except RuntimeError:
                break
            self._stats.record_sample()
            self._stop_event.wait(self._interval)
        sensor_log.info("reader stopped")


class CalibrationThread(threading.Thread):
    """Averages a burst of readings to estimate a device's zero offset."""

    def __init__(self, device: SimulatedDevice, reference: float,
                 samples: int = CALIBRATION_SAMPLES) -> None:
        super().__init__(name=f"calibrate-{device.sensor_id}")
        self.device = device
        self.reference = reference
        self.samples = samples
        self.offset: Optional[float] = None

    def run(self) -> None:
        readings = [self.device.read() for _ in range(self.samples)]
        readings = [r for r in readings if VALID_RANGE[0] <= r <= VALID_RANGE[1]]
        if not readings:
            log.warning("calibration of %s produced no valid readings", self.device.sensor_id)
            return
        self.offset = sum(readings) / len(readings) - self.reference
        log.info("calibrated %s: offset %+.3f", self.device.sensor_id, self.offset)


class ArchiveWriter:
    """Appends batches to one CSV shard.  Each flusher owns its own writer."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh = open(path, "a", newline="", buffering=1 << 16)
        self._writer = csv.writer(self._fh)

    def write_batch(self, batch: Iterable[Sample]) -> None:
        for s in batch:
            self._writer.writerow((s.sensor_id, f"{s.timestamp:.3f}", f"{s.value:.4f}"))

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


class Flusher:
    """Drains the shared buffer into one archive shard."""

    def __init__(self, worker_id: int, buffer: SampleBuffer,
                 stats: TelemetryStats, path: str) -> None:
        self.worker_id = worker_id
        self._buffer = buffer
        self._stats = stats
        self._path = path

    def run(self) -> None:
        writer = ArchiveWriter(self._path)
        log.info("flusher %d writing to %s", self.worker_id, self._path)
        try:
            while True:
                batch = self._buffer.take_batch(BATCH_SIZE)
                if batch is None:
                    break
                good = [s for s in batch if VALID_RANGE[0] <= s.value <= VALID_RANGE[1]]
                rejected = len(batch) - len(good)
                if rejected:
                    sensor_log.warning("discarding %d out-of-range readings", rejected)
                    self._stats.record_drop(rejected)
                writer.write_batch(good)
                self._stats.record_flush(len(good))
        finally:
            writer.close()
            log.info("flusher %d closed %s", self.worker_id, self._path)


class TelemetryCollector:
    """Wires devices, readers, the shared buffer and the flushers together."""

    def __init__(self, devices: Iterable[SimulatedDevice],
                 archive_path: str = ARCHIVE_PATH) -> None:
        self._stats = TelemetryStats()
        self._buffer = SampleBuffer(BUFFER_CAPACITY, self._stats)
        self._readers = [SensorReader(d, self._buffer, self._stats) for d in devices]
        self._flush_threads: List[threading.Thread] = []
        self._archive_path = archive_path

    def calibrate(self, references: Dict[str, float]) -> None:
        """Calibrate every device concurrently before the readers start."""
        threads = [
            CalibrationThread(r.device, references.get(r.device.sensor_id, 0.0))
            for r in self._readers
        ]
        for t in threads:
            t.run()
        for t, reader in zip(threads, self._readers):
            reader.offset = t.offset if t.offset is not None else 0.0

    def start(self) -> None:
        base, ext = os.path.splitext(self._archive_path)
        for i in range(FLUSH_WORKERS):
            flusher = Flusher(i, self._buffer, self._stats, f"{base}-{i}{ext or '.csv'}")
            t = threading.Thread(target=flusher.run, name=f"flusher-{i}", daemon=True)
            t.start()
            self._flush_threads.append(t)
        for reader in self._readers:
            reader.start()
        log.info("collector started with %d readers", len(self._readers))

    def stop(self) -> None:
        for reader in self._readers:
            reader.stop()
        for reader in self._readers:
            reader.join()
        self._buffer.close()
        log.info("collector stopped: %s (pending %d)", self._stats.snapshot(), len(self._buffer))


def build_devices(sensor_ids: Iterable[str] = SENSOR_IDS) -> List[SimulatedDevice]:
    devices = []
    for sid in sensor_ids:
        kind = sid.split("-", 1)[0]
        devices.append(SimulatedDevice(sid, BASELINES.get(kind, 0.0) + 0.7))
    return devices


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s [%(sensor)s] %(levelname)s %(message)s"))
    sensor_log.addHandler(handler)
    sensor_log.propagate = False


def main(duration: float = 5.0) -> None:
    configure_logging()
    devices = build_devices()
    collector = TelemetryCollector(devices)
    refs = {d.sensor_id: BASELINES[d.sensor_id.split("-", 1)[0]] for d in devices}
    collector.calibrate(refs)
    collector.start()
    try:
        time.sleep(duration)
    finally:
        collector.stop()


if __name__ == "__main__":
    main()
