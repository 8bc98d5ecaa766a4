"""Process-wide metrics aggregation.

Library code calls ``incr`` / ``gauge`` / ``timing`` from any thread; a
background flusher periodically renders everything in InfluxDB line
protocol and hands it to the configured sink (a local spool file by
default, which the node agent tails).  Counters and timers are reset after
each flush, gauges keep their last value.

    import metrics_agg as m
    m.configure(m.FileSink("/var/spool/metrics/billing.lp"), prefix="billing.")
    m.incr("invoices.created", region="eu")
    with m.timed("invoices.render"):
        ...
"""

import os
import socket
import sys
import time
from contextlib import contextmanager
from threading import Event, Thread
from threading import Lock as L

_lock = L()
_io_lock = L()
_counters = {}
_timers = {}
_gauges = {}
_sink = None
_prefix = ""
_flusher = None
_stop = Event()
_host = socket.gethostname()


class FileSink:
    """Append line-protocol records to a spool file."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8", buffering=1 << 16)

    def write_lines(self, lines):
        self._fh.write("".join(line + "\n" for line in lines))

    def close(self):
        self._fh.close()


class StderrSink:
    def write_lines(self, lines):
        for line in lines:
            print(line, file=sys.stderr)


def _key(name, tags):
    if not tags:
        return name
    return name + "," + ",".join(f"{k}={tags[k]}" for k in sorted(tags))


def configure(sink, prefix="", interval=10.0):
    """Install the sink and start the flusher (idempotent)."""
    global _sink, _prefix, _flusher
    with _lock:
        _sink = sink
        _prefix = prefix
        if _flusher is None:
            _flusher = Thread(target=_flush_loop, args=(interval,), name="metrics-flush", daemon=True)
            _flusher.start()


def incr(name, value=1, **tags):
    key = _key(name, tags)
    _counters[key] = _counters.get(key, 0) + value


def gauge(name, value, **tags):
    key = _key(name, tags)
    with _lock:
        _gauges[key] = value


def timing(name, ms, **tags):
    key = _key(name, tags)
    with _lock:
        t = _timers.get(key)
        if t is None:
            _timers[key] = [1, ms, ms, ms]
        else:
            t[0] += 1
            t[1] += ms
            t[2] = min(t[2], ms)
            t[3] = max(t[3], ms)


@contextmanager
def timed(name, **tags):
    start = time.perf_counter()
    try:
        yield
    finally:
        timing(name, (time.perf_counter() - start) * 1000.0, **tags)


def reset():
    """Zero counters and timers; gauges keep their last value."""
    with _lock:
        _counters.clear()
        _timers.clear()


def _render_gauges(prefix, ts):
    lines = []
    for key, value in _gauges.items():
        lines.append(f"{prefix}{key},host={_host} value={value} {ts}")
    return lines


def flush():
    """Render and ship everything accumulated since the last flush."""
    ts = time.time_ns()
    with _lock:
        sink, prefix = _sink, _prefix
        if sink is None:
            return 0
        lines = [f"{prefix}{k},host={_host} count={v}i {ts}"
                 for k, v in _counters.items()]
        for key, (n, total, lo, hi) in _timers.items():
            lines.append(f"{prefix}{key},host={_host} count={n}i,"
                         f"mean={total / n:.3f},min={lo:.3f},max={hi:.3f} {ts}")
        reset()
    lines.extend(_render_gauges(prefix, ts))
    if lines:
        with _io_lock:
            sink.write_lines(lines)
    return len(lines)


def _flush_loop(interval):
    while not _stop.wait(interval):
        try:
            flush()
        except Exception as exc:  # never let the flusher die
            print(f"metrics flush failed: {exc!r}", file=sys.stderr)


def snapshot():
    """Current values, for the /debug/metrics endpoint."""
    with _lock:
        return {
            "counters": dict(_counters),
            "timers": {k: list(v) for k, v in _timers.items()},
            "gauges": dict(_gauges),
        }


if __name__ == "__main__":
    import random
    import threading

    configure(StderrSink(), prefix="demo.", interval=1.0)

    def job(n, shard):
        for _ in range(n):
            with timed("job.step", shard=shard):
                time.sleep(random.random() / 100)
            incr("job.steps", shard=shard)
            gauge("job.last_step_at", time.time(), shard=shard)

    workers = [threading.Thread(target=job, args=(200, s)) for s in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print("done:", snapshot()["counters"], file=sys.stderr)
