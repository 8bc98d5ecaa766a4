#!/usr/bin/env python3
"""OTA firmware rollout coordinator.

Simulates a fleet of IoT devices (each one a thread behind a socketpair) and
pushes a firmware image to them in staged waves.  Devices that fail to flash
are retried on a timer; if a wave's failure ratio crosses the threshold the
whole rollout is rolled back to the previous firmware.
"""
import json
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from threading import Lock as _Lock

log = logging.getLogger("ota")

FIRMWARE_OLD = "2.3.1"
FIRMWARE_NEW = "2.4.0"
WAVE_FRACTIONS = (0.1, 0.4, 1.0)
MAX_PARALLEL = 4
SLOT_TIMEOUT = 1.0
RETRY_DELAY = 0.02
MAX_RETRIES = 2
ROLLBACK_THRESHOLD = 0.5


class DevicePeer(threading.Thread):
    """Simulated device speaking line-delimited JSON over a socket."""

    def __init__(self, device_id, sock, flaky=0.0):
        super().__init__(name=f"dev-{device_id}", daemon=True)
        self.device_id = device_id
        self.sock = sock
        self.flaky = flaky
        self.version = FIRMWARE_OLD
        self._rng = random.Random(sum(map(ord, device_id)))

    def run(self):
        stream = self.sock.makefile("rwb")
        try:
            for raw in stream:
                msg = json.loads(raw)
                op = msg.get("op")
                if op == "bye":
                    break
                if op == "flash":
                    time.sleep(0.002)
                    ok = self._rng.random() >= self.flaky
                    if ok:
                        self.version = msg["version"]
                    reply = {"ok": ok, "version": self.version}
                elif op == "version":
                    reply = {"ok": True, "version": self.version}
                else:
                    reply = {"ok": False, "error": f"unknown op {op!r}"}
                stream.write((json.dumps(reply) + "\n").encode())
                stream.flush()
        finally:
            stream.close()
            self.sock.close()


@dataclass
class DeviceHandle:
    device_id: str
    sock: socket.socket
    state: str = "idle"
    version: str = FIRMWARE_OLD
    attempts: int = 0
    io_lock: _Lock = field(default_factory=_Lock, repr=False)

    def __post_init__(self):
        self._stream = self.sock.makefile("rwb")

    def request(self, payload):
        with self.io_lock:
            self._stream.write((json.dumps(payload) + "\n").encode())
            self._stream.flush()
            line = self._stream.readline()
        if not line:
            raise ConnectionError(f"{self.device_id} hung up")
        return json.loads(line)

    def close(self):
        try:
            self.request({"op": "bye"})
        except (OSError, ValueError):
            pass
        self._stream.close()
        self.sock.close()


class RolloutCoordinator:
    def __init__(self, handles):
        self.handles = {h.device_id: h for h in handles}
        self._fleet_lock = _Lock()
        self._wave_lock = _Lock()
        self._wave_cv = threading.Condition()
        self._slots = threading.Semaphore(MAX_PARALLEL)
        self._pending = 0
        self._current_wave = 0
        self._rolled_back = False
        self.events = []
        self.finished = False

    # -- device operations -------------------------------------------------
    def _flash(self, handle, version):
        with self._fleet_lock:
            handle.state = "flashing"
            reply = handle.request({"op": "flash", "version": version})
            handle.attempts += 1
            handle.version = reply.get("version", handle.version)
            handle.state = "ok" if reply.get("ok") else "failed"
        return handle.state == "ok"

    def _flash_worker(self, handle, version):
        try:
            if not self._slots.acquire(timeout=SLOT_TIMEOUT):
                log.warning("no flash slot for %s, skipping", handle.device_id)
                return False
            return self._flash(handle, version)
        except (OSError, ValueError) as exc:
            log.error("flash of %s failed: %s", handle.device_id, exc)
            return False
        finally:
            self._slots.release()

    def _wave_member(self, handle, version):
        try:
            self._flash_worker(handle, version)
        finally:
            with self._wave_cv:
                self._pending -= 1
                if self._pending == 0:
                    self._wave_cv.notify_all()

    # -- waves -------------------------------------------------------------
    def _plan_waves(self):
        ids = sorted(self.handles)
        waves, start = [], 0
        for frac in WAVE_FRACTIONS:
            end = max(start + 1, int(len(ids) * frac))
            waves.append([self.handles[i] for i in ids[start:end]])
            start = end
        return [w for w in waves if w]

    def run_wave(self, number, batch, version):
        with self._wave_lock:
            self._current_wave = number
        with self._wave_cv:
            self._pending = len(batch)
        for handle in batch:
            threading.Thread(target=self._wave_member, args=(handle, version),
                             name=f"flash-{handle.device_id}").start()
        with self._wave_cv:
            if self._pending > 0:
                self._wave_cv.wait(timeout=2.0)
        failed = [h for h in batch if h.state != "ok"]
        if failed:
            self._schedule_retries(failed, version)
        still_failed = [h for h in batch if h.state != "ok"]
        ratio = len(still_failed) / len(batch)
        self.events.append(("wave", number, len(batch), len(still_failed)))
        return ratio

    def _schedule_retries(self, failed, version):
        timers = []
        for handle in failed:
            if handle.attempts > MAX_RETRIES:
                continue
            timer = threading.Timer(RETRY_DELAY * handle.attempts,
                                    lambda: self._flash_worker(handle, version))
            timer.start()
            timers.append(timer)
        for timer in timers:
            timer.join()

    def rollback(self, reason):
        log.warning("rolling back: %s", reason)
        with self._wave_lock:
            self._rolled_back = True
            self.events.append(("rollback", reason))
            with self._fleet_lock:
                targets = [h for h in self.handles.values()
                           if h.version != FIRMWARE_OLD]
        for handle in targets:
            self._flash_worker(handle, FIRMWARE_OLD)

    def snapshot(self):
        with self._fleet_lock:
            states = {}
            for handle in self.handles.values():
                states[handle.state] = states.get(handle.state, 0) + 1
            with self._wave_lock:
                wave = self._current_wave
                rolled_back = self._rolled_back
        return {"wave": wave, "rolled_back": rolled_back, "states": states}

    def run_rollout(self, version=FIRMWARE_NEW):
        try:
            for number, batch in enumerate(self._plan_waves(), start=1):
                ratio = self.run_wave(number, batch, version)
                log.info("wave %d: %d devices, failure ratio %.2f",
                         number, len(batch), ratio)
                if ratio > ROLLBACK_THRESHOLD:
                    self.rollback(f"wave {number} failure ratio {ratio:.2f}")
                    break
        finally:
            self.finished = True


class StatusReporter(threading.Thread):
    def __init__(self, coordinator, interval=0.01):
        super().__init__(name="status-reporter", daemon=True)
        self.coordinator = coordinator
        self.interval = interval
        self.stop_event = threading.Event()
        self.samples = []

    def run(self):
        while not self.stop_event.wait(self.interval):
            self.samples.append(self.coordinator.snapshot())


def build_fleet(count, flaky_every=5):
    peers, handles = [], []
    for i in range(count):
        dev_id = f"sensor-{i:03d}"
        ours, theirs = socket.socketpair()
        flaky = 0.6 if i % flaky_every == 0 else 0.0
        peer = DevicePeer(dev_id, theirs, flaky=flaky)
        peer.start()
        peers.append(peer)
        handles.append(DeviceHandle(dev_id, ours))
    return peers, handles


def main():
    logging.basicConfig(level=logging.INFO,
                        format="%(threadName)s %(levelname)s %(message)s")
    peers, handles = build_fleet(24)
    coordinator = RolloutCoordinator(handles)
    reporter = StatusReporter(coordinator)
    reporter.start()

    runner = threading.Thread(target=coordinator.run_rollout, name="rollout")
    runner.start()
    while not coordinator.finished:
        time.sleep(0.01)
    runner.join()

    reporter.stop_event.set()
    reporter.join()
    print("final:", coordinator.snapshot())
    print("events:", coordinator.events)
    print("status samples:", len(reporter.samples))
    for handle in handles:
        handle.close()
    for peer in peers:
        peer.join(timeout=1.0)


if __name__ == "__main__":
    main()
