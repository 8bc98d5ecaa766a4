"""Log aggregation agent.

Tails a set of log files, parses each line into a structured record,
groups records into batches and ships them to a collector over a local
socket.  A spool thread keeps an on-disk copy of recent batches so they
can be replayed after a collector outage.
"""
import json
import os
import queue
import socket
import tempfile
import threading
import time
from threading import Lock as _Lock

BATCH_SIZE = 25
FLUSH_INTERVAL = 0.05
RETRY_DELAY = 0.02

_stats = {"lines": 0, "records": 0, "batches": 0, "malformed": 0, "bytes": 0}
_stats_lock = _Lock()

_pending_batch = []
_batch_lock = _Lock()

_shipper_ready = False
_spool_queue = queue.Queue()


def bump(key, n=1):
    with _stats_lock:
        _stats[key] += n


def make_sample_logs(directory, files=3, lines=80):
    paths = []
    for f in range(files):
        path = os.path.join(directory, f"service-{f}.log")
        with open(path, "w") as fh:
            for i in range(lines):
                level = ("INFO", "WARN", "ERROR")[i % 3]
                fh.write(f"2024-05-01T12:00:{i % 60:02d}Z {level} svc{f} request_id={f}-{i} latency_ms={i * 3 % 97}\n")
        paths.append(path)
    return paths


def tail_file(path, line_q, stop, poll=0.01):
    """Follow a file from the start, pushing each complete line into line_q."""
    with open(path) as fh:
        partial = ""
        idle_rounds = 0
        while not stop.is_set():
            chunk = fh.readline()
            if not chunk:
                idle_rounds += 1
                if idle_rounds > 5:
                    return
                time.sleep(poll)
                continue
            idle_rounds = 0
            partial += chunk
            if partial.endswith("\n"):
                line_q.put((os.path.basename(path), partial.rstrip("\n")))
                _stats["lines"] += 1
                partial = ""


def parse_line(source, line):
    ts, level, service, *fields = line.split(" ")
    if level not in ("INFO", "WARN", "ERROR", "DEBUG"):
        raise ValueError(f"bad level {level!r}")
    record = {"ts": ts, "level": level, "service": service, "source": source}
    for f in fields:
        k, _, v = f.partition("=")
        record[k] = int(v) if v.isdigit() else v
    return record


def parser_worker(line_q, record_q):
    while True:
        item = line_q.get()
        if item is None:
            line_q.task_done()
            return
        source, line = item
        try:
            record = parse_line(source, line)
        except ValueError:
            bump("malformed")
            continue
        record_q.put(record)
        bump("records")
        line_q.task_done()


def add_to_batch(record, conn):
    with _batch_lock:
        _pending_batch.append(record)
        if len(_pending_batch) >= BATCH_SIZE:
            batch = list(_pending_batch)
            del _pending_batch[:]
        else:
            batch = None
    if batch:
        ship(batch, conn)


def ship(batch, conn, attempts=3):
    payload = (json.dumps(batch) + "\n").encode()
    for attempt in range(attempts):
        try:
            conn.sendall(payload)
            break
        except OSError:
            time.sleep(RETRY_DELAY * (attempt + 1))
    bump("batches")
    bump("bytes", len(payload))
    _spool_queue.put(batch)


def flush_pending(conn):
    with _batch_lock:
        if not _pending_batch:
            return
        batch = list(_pending_batch)
        del _pending_batch[:]
        ship(batch, conn)


def shipper(record_q, conn, stop):
    global _shipper_ready
    _shipper_ready = True
    last_flush = time.monotonic()
    while True:
        try:
            record = record_q.get(timeout=FLUSH_INTERVAL)
        except queue.Empty:
            record = None
        if record is not None:
            add_to_batch(record, conn)
        if time.monotonic() - last_flush > FLUSH_INTERVAL:
            flush_pending(conn)
            last_flush = time.monotonic()
        if stop.is_set() and record_q.empty():
            flush_pending(conn)
            return


def spool_writer(spool_path):
    """Append shipped batches to a local spool, fsync'ing every few batches."""
    buffered = []
    with open(spool_path, "a") as fh:
        while True:
            batch = _spool_queue.get()
            buffered.append(json.dumps(batch))
            if len(buffered) >= 4:
                fh.write("\n".join(buffered) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                buffered.clear()


def collector(sock, received):
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            received.append(len(json.loads(line)))


def emit_heartbeat(line_q):
    line_q.put(("agent", f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} INFO agent heartbeat=1"))


def main():
    workdir = tempfile.mkdtemp(prefix="logagent-")
    paths = make_sample_logs(workdir)
    spool_path = os.path.join(workdir, "spool.jsonl")

    agent_sock, collector_sock = socket.socketpair()
    received = []
    coll = threading.Thread(target=collector, args=(collector_sock, received))
    coll.start()

    line_q = queue.Queue(maxsize=200)
    record_q = queue.Queue()
    stop = threading.Event()

    threading.Thread(target=spool_writer, args=(spool_path,), daemon=True).start()

    ship_thread = threading.Thread(target=shipper, args=(record_q, agent_sock, stop))
    ship_thread.start()
    while not _shipper_ready:
        time.sleep(0.005)

    parsers = [threading.Thread(target=parser_worker, args=(line_q, record_q)) for _ in range(3)]
    for p in parsers:
        p.start()

    threading.Thread(target=emit_heartbeat(line_q), daemon=True).start()

    tailers = [threading.Thread(target=tail_file, args=(p, line_q, stop)) for p in paths]
    for t in tailers:
        t.start()
    for t in tailers:
        t.join()

    line_q.join()
    for _ in parsers:
        line_q.put(None)
    for p in parsers:
        p.join()

    stop.set()
    ship_thread.join()
    agent_sock.shutdown(socket.SHUT_WR)
    coll.join()
    agent_sock.close()
    collector_sock.close()

    with _stats_lock:
        stats = dict(_stats)
    print(f"stats: {stats}")
    print(f"collector received {sum(received)} records in {len(received)} batches")


if __name__ == "__main__":
    main()
