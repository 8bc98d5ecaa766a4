"""sensord - poll 1-wire temperature sensors and append readings to CSV.

Every attached sensor is polled on its own thread.  Readings are buffered and
written in batches by a single writer thread, one CSV file per sensor per day.
A hotplug scanner picks up sensors that appear or disappear at runtime and a
periodic health check warns about sensors that stopped reporting.
"""
import csv
import glob
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional

log = logging.getLogger("sensord")

BATCH_SIZE = 64
HOTPLUG_INTERVAL = 5.0
HEALTH_INTERVAL = 30.0
MAX_FAILURES = 5
DEVICE_GLOB = "/sys/bus/w1/devices/28-*"
CSV_FIELDS = ("timestamp", "device", "celsius", "raw")

_ctx = threading.local()


@dataclass(frozen=True)
class Device:
    name: str
    path: str
    interval: float = 1.0


@dataclass
class Reading:
    device: str
    ts: float
    value: float
    raw: str


def log_device_error(msg: str, exc: BaseException) -> None:
    dev = _ctx.device
    log.error("[%s] %s: %s", dev.name, msg, exc)


def parse_w1_slave(raw: str) -> float:
    lines = raw.strip().splitlines()
    if len(lines) < 2 or not lines[0].endswith("YES"):
        raise ValueError("CRC check failed")
    _, sep, milli = lines[1].partition("t=")
    if not sep:
        raise ValueError("no temperature field")
    return int(milli) / 1000.0


def read_device(dev: Device) -> Reading:
    with open(os.path.join(dev.path, "w1_slave")) as fh:
        raw = fh.read()
    return Reading(dev.name, time.time(), parse_w1_slave(raw), " ".join(raw.split()))


class SensorDaemon:
    def __init__(self, out_dir: str, reader: Callable[[Device], Reading] = read_device) -> None:
        self.out_dir = out_dir
        self.reader = reader
        self.devices: Dict[str, Device] = {}
        self.latest: Dict[str, Reading] = {}
        self._latest_lock = threading.Lock()
        self._buf: List[Reading] = []
        self._buf_lock = threading.Lock()
        self.batch_ready = False
        self.running = True
        self._stop = threading.Event()
        self._pollers: Dict[str, threading.Thread] = {}
        self._writer = threading.Thread(target=self._writer_loop, name="csv-writer")
        self._hotplug = threading.Thread(target=self._hotplug_loop, name="hotplug")
        self._timer_lock = threading.Lock()
        self._health_timer: Optional[threading.Timer] = None

    # -- polling -------------------------------------------------------------
    def _poll_loop(self, dev: Device) -> None:
        _ctx.device = dev
        failures = 0
        while not self._stop.is_set() and dev.name in self.devices:
            try:
                reading = self.reader(dev)
            except (OSError, ValueError) as exc:
                failures += 1
                log_device_error(f"read failed ({failures}/{MAX_FAILURES})", exc)
                if failures >= MAX_FAILURES:
                    return
                self._stop.wait(dev.interval)
                continue
            failures = 0
            with self._latest_lock:
                self.latest[dev.name] = reading
            with self._buf_lock:
                self._buf.append(reading)
                if len(self._buf) >= BATCH_SIZE:
                    self.batch_ready = True
            self._stop.wait(dev.interval)

    def _start_poller(self, dev: Device) -> None:
        t = threading.Thread(target=self._poll_loop(dev), name=f"poll-{dev.name}")
        self._pollers[dev.name] = t
        t.start()

    # -- hotplug -------------------------------------------------------------
    def scan_devices(self) -> None:
        found = {os.path.basename(p): p for p in glob.glob(DEVICE_GLOB)}
        for name, path in sorted(found.items()):
            if name not in self.devices:
                dev = Device(name, path)
                self.devices[name] = dev
                log.info("sensor attached: %s", name)
                self._start_poller(dev)
        for name in [n for n in self.devices if n not in found]:
            log.info("sensor detached: %s", name)
            del self.devices[name]
            with self._latest_lock:
                self.latest.pop(name, None)

    def _hotplug_loop(self) -> None:
        while not self._stop.wait(HOTPLUG_INTERVAL):
            self.scan_devices()

    # -- output --------------------------------------------------------------
    def _csv_path(self, device: str, ts: float) -> str:
        day = datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y%m%d")
        return os.path.join(self.out_dir, f"{device}-{day}.csv")

    def _write_batch(self, batch: List[Reading]) -> None:
        by_file: Dict[str, List[Reading]] = {}
        for r in batch:
            by_file.setdefault(self._csv_path(r.device, r.ts), []).append(r)
        for path, rows in by_file.items():
            new = not os.path.exists(path)
            with open(path, "a", newline="") as fh:
                w = csv.writer(fh)
                if new:
                    w.writerow(CSV_FIELDS)
                for r in rows:
                    iso = datetime.fromtimestamp(r.ts, tz=timezone.utc).isoformat()
                    w.writerow((iso, r.device, f"{r.value:.3f}", r.raw))

    def _writer_loop(self) -> None:
        while self.running:
            while not self.batch_ready and self.running:
                time.sleep(0.01)
            with self._buf_lock:
                batch, self._buf = self._buf, []
                self.batch_ready = False
            if batch:
                try:
                    self._write_batch(batch)
                except OSError as exc:
                    log_device_error(f"could not write {len(batch)} readings", exc)

    # -- health --------------------------------------------------------------
    def _health_check(self) -> None:
        now = time.time()
        stale = []
        for name, reading in self.latest.items():
            dev = self.devices.get(name)
            limit = 10 * (dev.interval if dev else 1.0)
            if now - reading.ts > limit:
                stale.append(f"{name} ({now - reading.ts:.0f}s)")
        if stale:
            log.warning("stale sensors: %s", ", ".join(stale))
        self._schedule_health()

    def _schedule_health(self) -> None:
        with self._timer_lock:
            if self._stop.is_set():
                return
            self._health_timer = threading.Timer(HEALTH_INTERVAL, self._health_check)
            self._health_timer.name = "health"
            self._health_timer.start()

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        self._writer.start()
        self.scan_devices()
        self._hotplug.start()
        self._schedule_health()
        log.info("sensord running with %d sensors", len(self.devices))

    def shutdown(self) -> None:
        self._stop.set()
        with self._timer_lock:
            if self._health_timer is not None:
                self._health_timer.cancel()
        self._hotplug.join()
        for t in list(self._pollers.values()):
            t.join()
        self.running = False
        self._writer.join()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "/var/lib/sensord"
    daemon = SensorDaemon(out_dir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    daemon.start()
    stop.wait()
    daemon.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
