#!/usr/bin/env python3
"""Multi-channel data logger for a bench instrument.

One sampler thread per channel reads the (simulated) ADC, converts raw
counts to engineering units with the shared calibration table and pushes
samples into a ring buffer.  An exporter drains the buffer in blocks and
writes CSV files through a small thread pool.
"""
import csv
import io
import logging
import math
import os
import random
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait

log = logging.getLogger("daq")

CHANNELS = ("thermo_a", "thermo_b", "strain_1", "pressure")
SAMPLE_PERIOD = 0.002
RUN_SECONDS = 0.6
BLOCK_SIZE = 64

_ctx = threading.local()


class Calibration:
    """Per-channel linear calibration loaded once from the config store."""

    _instance = None
    _lock = threading.Lock()

    def __init__(self, table):
        self.table = table
        self.loaded_at = time.time()

    @classmethod
    def _load(cls):
        time.sleep(0.01)  # pretend to read the EEPROM/config file
        table = {name: (1.0 + 0.01 * i, -0.5 * i)
                 for i, name in enumerate(CHANNELS)}
        return cls(table)

    @classmethod
    def instance(cls):
        if cls._instance is None:
            with cls._lock:
                cls._instance = cls._load()
        return cls._instance

    def apply(self, channel, counts):
        gain, offset = self.table[channel]
        return counts * gain + offset


class RingBuffer:
    def __init__(self, capacity):
        self._lock = threading.Lock()
        self._items = deque()
        self.capacity = capacity
        self.dropped = 0

    def push(self, item):
        with self._lock:
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)

    def drain(self, limit=None):
        with self._lock:
            n = len(self._items) if limit is None else min(limit, len(self._items))
            return [self._items.popleft() for _ in range(n)]

    def __len__(self):
        with self._lock:
            return len(self._items)

    def resize(self, capacity):
        with self._lock:
            if capacity < len(self._items):
                overflow = self.drain(len(self._items) - capacity)
                self.dropped += len(overflow)
            self.capacity = capacity


class ChannelSampler(threading.Thread):
    def __init__(self, channel, buffer, stop):
        super().__init__(name=f"sampler-{channel}")
        self.channel = channel
        self.buffer = buffer
        self.stop = stop
        self.samples = 0
        self._phase = random.random() * math.pi

    def read_adc(self, t):
        return 2048 + 1000 * math.sin(t * 20 + self._phase) + random.gauss(0, 5)

    def run(self):
        _ctx.channel = self.channel
        cal = Calibration.instance()
        while not self.stop.is_set():
            t = time.monotonic()
            value = cal.apply(self.channel, self.read_adc(t))
            self.buffer.push((t, self.channel, value))
            self.samples += 1
            self.stop.wait(SAMPLE_PERIOD)


class NoiseProbe(threading.Thread):
    """Measures the noise floor of every channel with the inputs shorted."""

    def __init__(self, reads=200):
        super().__init__(name="noise-probe")
        self.reads = reads
        self.noise_floor = {}

    def run(self):
        for ch in CHANNELS:
            vals = [random.gauss(0, 5) for _ in range(self.reads)]
            mean = sum(vals) / len(vals)
            var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)
            time.sleep(0.005)
            self.noise_floor[ch] = math.sqrt(var)


def _report_fault(exc):
    log.error("[%s] export fault: %s", _ctx.channel, exc)


class Exporter:
    def __init__(self, buffer, out_dir, workers=3):
        self.buffer = buffer
        self.out_dir = out_dir
        self.pool = ThreadPoolExecutor(max_workers=workers,
                                       thread_name_prefix="export")
        self.blocks_written = 0
        self.rows_written = 0
        self._counter_lock = threading.Lock()
        self._block_no = 0

    def _next_block_no(self):
        with self._counter_lock:
            self._block_no += 1
            return self._block_no

    def _write_block(self, block_no, rows):
        path = os.path.join(self.out_dir, f"block_{block_no:04d}.csv")
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["t", "channel", "value"])
        writer.writerows((f"{t:.6f}", ch, f"{v:.4f}") for t, ch, v in rows)
        try:
            with open(path, "w", newline="") as fh:
                fh.write(buf.getvalue())
        except OSError as exc:
            _report_fault(exc)
            raise
        guard = threading.Lock()
        with guard:
            self.blocks_written += 1
            self.rows_written += len(rows)
        return path

    def _write_manifest(self, paths):
        with open(os.path.join(self.out_dir, "MANIFEST"), "w") as fh:
            fh.write("\n".join(sorted(os.path.basename(p) for p in paths)))
        return len(paths)

    def flush_once(self):
        rows = self.buffer.drain(BLOCK_SIZE)
        if rows:
            self.pool.submit(self._write_block, self._next_block_no(), rows)
        return len(rows)

    def finish(self):
        futures = []
        while True:
            rows = self.buffer.drain(BLOCK_SIZE)
            if not rows:
                break
            futures.append(self.pool.submit(self._write_block,
                                            self._next_block_no(), rows))
        done, _ = wait(futures)
        paths = [f.result() for f in done]
        manifest = self.pool.submit(self._write_manifest, paths)
        count = manifest.result()
        self.pool.shutdown(wait=True)
        return count


def exporter_loop(exporter, stop, interval=0.05):
    while not stop.wait(interval):
        exporter.flush_once()


def main():
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    out_dir = tempfile.mkdtemp(prefix="daq-")
    buffer = RingBuffer(capacity=4096)
    stop = threading.Event()

    probe = NoiseProbe()
    probe.start()
    baseline = dict(probe.noise_floor)

    samplers = [ChannelSampler(ch, buffer, stop) for ch in CHANNELS]
    for s in samplers:
        s.start()

    exporter = Exporter(buffer, out_dir)
    export_thread = threading.Thread(target=exporter_loop,
                                     args=(exporter, stop), name="export-loop")
    export_thread.start()

    time.sleep(RUN_SECONDS)
    stop.set()
    for s in samplers:
        s.join()
    export_thread.join()
    probe.join()

    manifest_entries = exporter.finish()
    total = sum(s.samples for s in samplers)
    print(f"sampled {total} points, dropped {buffer.dropped}")
    print(f"exported {exporter.rows_written} rows in {exporter.blocks_written} "
          f"blocks ({manifest_entries} in final manifest) -> {out_dir}")
    print("noise floor:", {k: round(v, 2) for k, v in baseline.items()})


if __name__ == "__main__":
    main()
