#!/usr/bin/env python3
"""IoT gateway: batches sensor readings and uploads them to a cloud collector.

Sensors feed a bounded queue; a batcher groups readings per site and hands
full or aged batches to an uploader pool.  Uploads wait while the uplink is
down.  The "cloud" is a tiny TCP collector on localhost that acks each batch.
"""

import json
import logging
import queue
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait as wait_futures
from dataclasses import dataclass
from functools import partial
from threading import Lock as _Lock, RLock

log = logging.getLogger("gateway")

BATCH_SIZE = 25
FLUSH_INTERVAL = 0.05
SITES = ("greenhouse-1", "greenhouse-2", "cold-store")

_config = None
_config_lock = _Lock()


def _load_config():
    time.sleep(0.001)  # pretend to read /etc/gateway.json
    return {"gateway_id": "gw-0042", "firmware": "3.1.7"}


def gateway_config():
    global _config
    if _config is None:
        with _config_lock:
            if _config is None:
                _config = _load_config()
    return _config


@dataclass(frozen=True)
class Reading:
    sensor_id: int
    site: str
    value: float
    ts: float


class CloudCollector:
    def __init__(self):
        self._srv = socket.create_server(("127.0.0.1", 0))
        self._srv.settimeout(0.05)
        self.address = self._srv.getsockname()
        self._lock = _Lock()
        self._stored = {}
        self._stop = threading.Event()
        self._handlers = []
        self._thread = threading.Thread(target=self._serve, name="cloud", daemon=True)

    def start(self):
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except socket.timeout:
                continue
            handler = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            handler.start()
            self._handlers.append(handler)

    def _handle(self, conn):
        with conn, conn.makefile("rb") as rfile:
            for line in rfile:
                batch = json.loads(line)
                n = len(batch["readings"])
                self._lock.acquire()
                try:
                    self._stored[batch["site"]] = self._stored.get(batch["site"], 0) + n
                finally:
                    self._lock.release()
                conn.sendall(f"{n}\n".encode())

    def stored(self):
        with self._lock:
            return dict(self._stored)

    def stop(self):
        self._stop.set()
        self._thread.join()
        for handler in self._handlers:
            handler.join()
        self._srv.close()


class Link:
    """Uplink state; uploads block while the modem is re-attaching."""

    def __init__(self):
        self._cond = threading.Condition()
        self._up = True
        self.outages = 0

    def set_up(self, up):
        with self._cond:
            if self._up and not up:
                self.outages += 1
            self._up = up
            self._cond.notify_all()

    def wait_until_up(self, timeout=2.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._up:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("uplink still down")
                self._cond.wait(remaining)


class SiteRegistry:
    def __init__(self):
        self._lock = RLock()
        self._sites = {}

    def _entry(self, site):
        with self._lock:
            return self._sites.setdefault(site, {"batches": 0, "readings": 0})

    def note_batch(self, site, n):
        with self._lock:
            entry = self._entry(site)
            entry["batches"] += 1
            entry["readings"] += n

    def summary(self):
        with self._lock:
            return {site: dict(e) for site, e in self._sites.items()}


class Uploader:
    def __init__(self, address, link, registry, workers=3):
        self.address = address
        self.link = link
        self.registry = registry
        self._local = threading.local()
        self._conns_lock = _Lock()
        self._conns = []
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload")
        self._slots = threading.BoundedSemaphore(workers * 2)
        self._pending_lock = _Lock()
        self._pending = []
        self.acked = 0

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = socket.create_connection(self.address, timeout=2.0)
            self._local.conn = conn
            self._local.rfile = conn.makefile("rb")
            with self._conns_lock:
                self._conns.append((conn, self._local.rfile))
        return conn, self._local.rfile

    def _send(self, batch):
        self.link.wait_until_up()
        conn, rfile = self._connection()
        conn.sendall((json.dumps(batch) + "\n").encode())
        reply = rfile.readline()
        if not reply:
            raise ConnectionError("collector closed the connection")
        return int(reply)

    def _on_done(self, site, fut):
        self._slots.release()
        if not fut.cancelled() and fut.exception() is None:
            self.registry.note_batch(site, fut.result())

    def submit(self, batch):
        self._slots.acquire()
        try:
            fut = self._pool.submit(self._send, batch)
        except BaseException:
            self._slots.release()
            raise
        fut.add_done_callback(partial(self._on_done, batch["site"]))
        with self._pending_lock:
            self._pending.append(fut)
        return fut

    def drain(self):
        with self._pending_lock:
            pending, self._pending = self._pending, []
        done, _ = wait_futures(pending)
        total = sum(fut.result() for fut in done)
        with self._pending_lock:
            self.acked += total
        return total

    def close(self):
        self.drain()
        self._pool.shutdown(wait=True)
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn, rfile in conns:
            rfile.close()
            conn.close()


class Batcher(threading.Thread):
    def __init__(self, inbox, uploader):
        super().__init__(name="batcher")
        self.inbox = inbox
        self.uploader = uploader
        self._lock = _Lock()
        self._batches = {}
        self.shipped = 0

    def run(self):
        while True:
            try:
                item = self.inbox.get(timeout=FLUSH_INTERVAL)
            except queue.Empty:
                self._flush(aged_only=True)
                continue
            try:
                if item is None:
                    self._flush(aged_only=False)
                    return
                self._add(item)
            finally:
                self.inbox.task_done()

    def _add(self, reading):
        full = None
        with self._lock:
            _, items = self._batches.setdefault(reading.site, (time.monotonic(), []))
            items.append(reading)
            if len(items) >= BATCH_SIZE:
                full = self._batches.pop(reading.site)[1]
        if full:
            self._ship(reading.site, full)

    def _flush(self, aged_only):
        now = time.monotonic()
        ready = []
        with self._lock:
            for site, (opened, items) in list(self._batches.items()):
                if not aged_only or now - opened >= FLUSH_INTERVAL:
                    ready.append((site, items))
                    del self._batches[site]
        for site, items in ready:
            self._ship(site, items)

    def _ship(self, site, items):
        payload = {"gateway": gateway_config()["gateway_id"], "site": site,
                   "readings": [[r.sensor_id, r.value, r.ts] for r in items]}
        self.uploader.submit(payload)
        self.shipped += 1

    def open_batches(self):
        with self._lock:
            return {site: len(items) for site, (_, items) in self._batches.items()}


class SensorThread(threading.Thread):
    def __init__(self, sensor_id, site, out, samples, calibrate):
        super().__init__(name=f"sensor-{sensor_id}")
        self.sensor_id = sensor_id
        self.site = site
        self.out = out
        self.samples = samples
        self.calibrate = calibrate
        self.sent = 0

    def run(self):
        rng = random.Random(self.sensor_id)
        for _ in range(self.samples):
            self.out.put(Reading(self.sensor_id, self.site, self.calibrate(rng), time.time()))
            self.sent += 1
            time.sleep(rng.uniform(0.0005, 0.002))


def flap_link(link, stop, seed):
    rng = random.Random(seed)
    while not stop.wait(rng.uniform(0.02, 0.05)):
        link.set_up(False)
        time.sleep(0.005)
        link.set_up(True)


def monitor(batcher, stop, samples):
    while not stop.wait(0.03):
        samples.append(sum(batcher.open_batches().values()))


def main():
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    collector = CloudCollector()
    collector.start()
    link = Link()
    registry = SiteRegistry()
    uploader = Uploader(collector.address, link, registry)
    inbox = queue.Queue(maxsize=200)
    batcher = Batcher(inbox, uploader)
    batcher.start()

    stop = threading.Event()
    open_samples = []
    helpers = [
        threading.Thread(target=flap_link, args=(link, stop, 11), name="link-flapper"),
        threading.Thread(target=monitor, args=(batcher, stop, open_samples), name="monitor"),
    ]
    for t in helpers:
        t.start()

    sensors = []
    for sid in range(12):
        base = 4.0 if SITES[sid % 3] == "cold-store" else 18.0 + sid
        sensors.append(SensorThread(sid, SITES[sid % 3], inbox, samples=40,
                                    calibrate=lambda rng, base=base: round(base + rng.gauss(0, 0.4), 2)))
    for s in sensors:
        s.start()
    for s in sensors:
        s.join()

    inbox.join()
    inbox.put(None)
    batcher.join()
    stop.set()
    for t in helpers:
        t.join()
    uploader.close()
    collector.stop()

    produced = sum(s.sent for s in sensors)
    stored = collector.stored()
    print(f"readings produced={produced} acked={uploader.acked} stored={sum(stored.values())}")
    print(f"batches shipped={batcher.shipped}, uplink outages={link.outages}")
    print("per site:", registry.summary())
    print(f"max open readings seen by monitor: {max(open_samples, default=0)}")


if __name__ == "__main__":
    main()
