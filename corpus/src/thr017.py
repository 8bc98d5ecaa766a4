from _build import ex, write

E = [
ex("thr017-01", '''
import queue
import threading

records = queue.Queue()


def writer():
    with open("audit.log", "a") as fh:
        while True:
            fh.write(records.get() + "\\n")


def main(events):
    threading.Thread(target=writer, daemon=True).start()
    for event in events:
        records.put(event)
''', """The writer is a daemon thread and nothing waits for it: when `main` returns the interpreter
exits and kills it, so records still in the queue (and lines in the file buffer) are lost. End the
writer with a sentinel and join it before exiting.""",
fixed='''
import queue
import threading

records = queue.Queue()


def writer():
    with open("audit.log", "a") as fh:
        while (line := records.get()) is not None:
            fh.write(line + "\\n")


def main(events):
    t = threading.Thread(target=writer)
    t.start()
    for event in events:
        records.put(event)
    records.put(None)
    t.join()
'''),

ex("thr017-02", '''
import queue
import socket
import threading


class MetricsShipper:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.outbox = queue.Queue()
        self.thread = threading.Thread(target=self._ship, daemon=True)
        self.thread.start()

    def _ship(self):
        while True:
            metric = self.outbox.get()
            self.sock.sendall(metric.encode() + b"\\n")

    def emit(self, name, value):
        self.outbox.put(f"{name} {value}")
''', """The shipper thread is a daemon and nobody joins it or the queue, so metrics emitted just before
the process exits are dropped silently, often the ones describing why it exited. Add a `close()`
that sends a sentinel and joins the thread.""",
fixed='''
import queue
import socket
import threading


class MetricsShipper:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.outbox = queue.Queue()
        self.thread = threading.Thread(target=self._ship)
        self.thread.start()

    def _ship(self):
        while (metric := self.outbox.get()) is not None:
            self.sock.sendall(metric.encode() + b"\\n")

    def emit(self, name, value):
        self.outbox.put(f"{name} {value}")

    def close(self):
        self.outbox.put(None)
        self.thread.join()
        self.sock.close()
'''),

ex("thr017-03", '''
import csv
import queue
import threading

rows = queue.Queue()


def csv_writer(path):
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        while True:
            out.writerow(rows.get())


def export(records, path):
    threading.Thread(target=csv_writer, args=(path,), daemon=True).start()
    for r in records:
        rows.put([r.id, r.name, r.total])
    print("export finished")
''', """"export finished" is printed as soon as the rows are queued, but the daemon writer may not have
written them; when the program exits the CSV is truncated. Stop the writer with a sentinel and join
it before reporting success.""",
fixed='''
import csv
import queue
import threading

rows = queue.Queue()


def csv_writer(path):
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        while (row := rows.get()) is not None:
            out.writerow(row)


def export(records, path):
    t = threading.Thread(target=csv_writer, args=(path,))
    t.start()
    for r in records:
        rows.put([r.id, r.name, r.total])
    rows.put(None)
    t.join()
    print("export finished")
'''),

ex("thr017-04", '''
import queue
import sys
import threading

lines = queue.Queue()


def printer():
    while True:
        sys.stdout.write(lines.get())
        sys.stdout.flush()


threading.Thread(target=printer, daemon=True).start()


def report(results):
    for name, value in results.items():
        lines.put(f"{name}: {value}\\n")
''', """The printer is started as a daemon at import time and never joined; a script that calls `report`
and exits loses whatever lines the thread had not printed yet. Register a shutdown that drains the
queue, or make the thread non-daemon with a sentinel.""",
fixed='''
import atexit
import queue
import sys
import threading

lines = queue.Queue()


def printer():
    while (line := lines.get()) is not None:
        sys.stdout.write(line)
        sys.stdout.flush()


_printer = threading.Thread(target=printer, daemon=True)
_printer.start()


@atexit.register
def _drain():
    lines.put(None)
    _printer.join()


def report(results):
    for name, value in results.items():
        lines.put(f"{name}: {value}\\n")
'''),

ex("thr017-05", '''
import json
import queue
import threading


class EventRecorder:
    def __init__(self, path):
        self.path = path
        self.events = queue.Queue()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        with open(self.path, "a") as fh:
            while True:
                json.dump(self.events.get(), fh)
                fh.write("\\n")

    def record(self, **event):
        self.events.put(event)
''', """The recorder's daemon thread holds the only copy of queued events; at interpreter exit it is
stopped mid-loop and unwritten events vanish without an error. Give the recorder a `close()` that
enqueues a sentinel and joins the thread, and call it at shutdown.""",
fixed='''
import json
import queue
import threading


class EventRecorder:
    def __init__(self, path):
        self.path = path
        self.events = queue.Queue()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        with open(self.path, "a") as fh:
            while (event := self.events.get()) is not None:
                json.dump(event, fh)
                fh.write("\\n")

    def record(self, **event):
        self.events.put(event)

    def close(self):
        self.events.put(None)
        self.thread.join()
'''),

ex("thr017-06", '''
import queue
import threading


def start_logger(path):
    q = queue.Queue()

    def drain():
        with open(path, "a", buffering=1) as fh:
            while True:
                fh.write(q.get())

    threading.Thread(target=drain, daemon=True).start()
    return q
''', """`start_logger` returns the queue and forgets the daemon thread, so nobody can wait for it; lines
still queued at exit are dropped. Return a handle that can send a sentinel and join the thread.""",
fixed='''
import queue
import threading


def start_logger(path):
    q = queue.Queue()

    def drain():
        with open(path, "a", buffering=1) as fh:
            while (line := q.get()) is not None:
                fh.write(line)

    t = threading.Thread(target=drain)
    t.start()

    def stop():
        q.put(None)
        t.join()

    return q, stop
'''),

ex("thr017-07", '''
import queue
import threading


class Outbox:
    def __init__(self, smtp):
        self.smtp = smtp
        self.pending = queue.Queue()
        self.sender = threading.Thread(target=self.loop)
        self.sender.daemon = True
        self.sender.start()

    def loop(self):
        while True:
            msg = self.pending.get()
            self.smtp.send(msg)

    def send_later(self, msg):
        self.pending.put(msg)
''', """`self.sender.daemon = True` makes the mail sender die with the main thread, and nothing joins it,
so mails accepted by `send_later` just before shutdown are never sent. Add a `close()` that
sends a sentinel and joins the sender.""",
fixed='''
import queue
import threading


class Outbox:
    def __init__(self, smtp):
        self.smtp = smtp
        self.pending = queue.Queue()
        self.sender = threading.Thread(target=self.loop)
        self.sender.start()

    def loop(self):
        while (msg := self.pending.get()) is not None:
            self.smtp.send(msg)

    def send_later(self, msg):
        self.pending.put(msg)

    def close(self):
        self.pending.put(None)
        self.sender.join()
'''),

ex("thr017-08", '''
import pickle
import queue
import threading

checkpoints = queue.Queue()


def saver(path):
    while True:
        state = checkpoints.get()
        with open(path, "wb") as fh:
            pickle.dump(state, fh)


def train(model, steps, path):
    threading.Thread(target=saver, args=(path,), daemon=True).start()
    for step in range(steps):
        model.step()
        if step % 100 == 0:
            checkpoints.put(model.state())
''', """Checkpoints are saved by a daemon thread that `train` never waits for; the last checkpoint (and
possibly a half-written file) is lost when the process exits right after training. Stop the saver
with a sentinel and join it at the end of `train`.""",
fixed='''
import pickle
import queue
import threading

checkpoints = queue.Queue()


def saver(path):
    while (state := checkpoints.get()) is not None:
        with open(path, "wb") as fh:
            pickle.dump(state, fh)


def train(model, steps, path):
    t = threading.Thread(target=saver, args=(path,))
    t.start()
    for step in range(steps):
        model.step()
        if step % 100 == 0:
            checkpoints.put(model.state())
    checkpoints.put(None)
    t.join()
'''),

ex("thr017-09", '''
import queue
import threading


class Tracer:
    def __init__(self, transport):
        self.transport = transport
        self.spans = queue.SimpleQueue()
        threading.Thread(target=self._export, name="tracer", daemon=True).start()

    def _export(self):
        while True:
            span = self.spans.get()
            self.transport.send(span.serialize())

    def finish(self, span):
        self.spans.put(span)
''', """Finished spans go to a daemon exporter that nothing ever joins; spans from the last requests
before a deploy or crash never reach the tracing backend. Keep a handle to the thread and add a
`shutdown()` that drains and joins it.""",
fixed='''
import queue
import threading


class Tracer:
    def __init__(self, transport):
        self.transport = transport
        self.spans = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._export, name="tracer")
        self.thread.start()

    def _export(self):
        while (span := self.spans.get()) is not None:
            self.transport.send(span.serialize())

    def finish(self, span):
        self.spans.put(span)

    def shutdown(self):
        self.spans.put(None)
        self.thread.join()
'''),

ex("thr017-10", '''
import queue
import threading

results = queue.Queue()


def result_writer(fh):
    while True:
        item = results.get()
        print(item, file=fh)


def run(jobs, fh):
    threading.Thread(target=result_writer, args=(fh,), daemon=True).start()
    for job in jobs:
        results.put(job())
''', """`run` returns right after queueing the last result while the daemon writer is still printing;
at exit the remaining results never reach `fh`. Stop the writer with a sentinel and join it before
returning.""",
fixed='''
import queue
import threading

results = queue.Queue()


def result_writer(fh):
    while (item := results.get()) is not None:
        print(item, file=fh)


def run(jobs, fh):
    t = threading.Thread(target=result_writer, args=(fh,))
    t.start()
    for job in jobs:
        results.put(job())
    results.put(None)
    t.join()
'''),

ex("thr017-11", '''
import queue
import threading


class AsyncFileHandler:
    def __init__(self, path):
        self.fh = open(path, "a")
        self.q = queue.Queue()
        self.worker = threading.Thread(target=self._work, daemon=True)
        self.worker.start()

    def _work(self):
        while True:
            self.fh.write(self.q.get())
            self.fh.flush()

    def emit(self, record):
        self.q.put(record + "\\n")

    def close(self):
        self.fh.close()
''', """`close()` closes the file while the daemon worker may still have records queued (they are lost,
or the worker crashes writing to a closed file), and at exit the worker is killed mid-queue. Send a
sentinel, join the worker, then close the file.""",
fix=[("""        self.worker = threading.Thread(target=self._work, daemon=True)""", """        self.worker = threading.Thread(target=self._work)"""),
     ("""        while True:
            self.fh.write(self.q.get())
            self.fh.flush()""", """        while (record := self.q.get()) is not None:
            self.fh.write(record)
            self.fh.flush()"""),
     ("""    def close(self):
        self.fh.close()""", """    def close(self):
        self.q.put(None)
        self.worker.join()
        self.fh.close()""")]),

ex("thr017-12", '''
import queue
import threading
import requests

webhooks = queue.Queue()


def deliver():
    session = requests.Session()
    while True:
        url, body = webhooks.get()
        resp = session.post(url, json=body, timeout=10)
        print("delivered", url, resp.status_code)


threading.Thread(target=deliver, daemon=True).start()


def notify(url, body):
    webhooks.put((url, body))
''', """Webhook deliveries are handed to a daemon thread started at import; a CLI command that calls
`notify` and exits ends before the POST is sent, so the webhook silently never fires. Register an
`atexit` hook that drains the queue and joins the thread.""",
fixed='''
import atexit
import queue
import threading
import requests

webhooks = queue.Queue()


def deliver():
    session = requests.Session()
    while (job := webhooks.get()) is not None:
        url, body = job
        resp = session.post(url, json=body, timeout=10)
        print("delivered", url, resp.status_code)


_deliverer = threading.Thread(target=deliver, daemon=True)
_deliverer.start()


@atexit.register
def _flush_webhooks():
    webhooks.put(None)
    _deliverer.join()


def notify(url, body):
    webhooks.put((url, body))
'''),

ex("thr017-13", '''
import queue
import threading


class Spooler(threading.Thread):
    def __init__(self, printer):
        super().__init__(daemon=True)
        self.printer = printer
        self.jobs = queue.Queue()

    def run(self):
        while True:
            self.printer.write(self.jobs.get())


def print_batch(printer, docs):
    spooler = Spooler(printer)
    spooler.start()
    for doc in docs:
        spooler.jobs.put(doc)
''', """The `Spooler` subclass is a daemon, and `print_batch` returns without joining it, so documents
still in `jobs` when the program ends are never printed. End the spooler with a sentinel and join
it.""",
fixed='''
import queue
import threading


class Spooler(threading.Thread):
    def __init__(self, printer):
        super().__init__()
        self.printer = printer
        self.jobs = queue.Queue()

    def run(self):
        while (doc := self.jobs.get()) is not None:
            self.printer.write(doc)


def print_batch(printer, docs):
    spooler = Spooler(printer)
    spooler.start()
    for doc in docs:
        spooler.jobs.put(doc)
    spooler.jobs.put(None)
    spooler.join()
'''),

ex("thr017-14", '''
import gzip
import queue
import threading

chunks = queue.Queue(maxsize=100)


def compressor(path):
    with gzip.open(path, "wb") as out:
        while True:
            out.write(chunks.get())


def archive(stream, path):
    threading.Thread(target=compressor, args=(path,), daemon=True).start()
    for chunk in stream:
        chunks.put(chunk)
''', """A daemon compressor is killed at exit before `gzip` writes its trailer, so the archive is not
only missing the last chunks but is corrupt (no end-of-stream marker). Send a sentinel and join the
thread so the `with` block closes the file properly.""",
fixed='''
import gzip
import queue
import threading

chunks = queue.Queue(maxsize=100)


def compressor(path):
    with gzip.open(path, "wb") as out:
        while (chunk := chunks.get()) is not None:
            out.write(chunk)


def archive(stream, path):
    t = threading.Thread(target=compressor, args=(path,))
    t.start()
    for chunk in stream:
        chunks.put(chunk)
    chunks.put(None)
    t.join()
'''),

ex("thr017-15", '''
import queue
import threading


class ChatBridge:
    def __init__(self, conn):
        self.conn = conn
        self.outgoing = queue.Queue()

    def start(self):
        t = threading.Thread(target=self.pump)
        t.daemon = True
        t.start()

    def pump(self):
        while True:
            self.conn.send(self.outgoing.get())

    def say(self, text):
        self.outgoing.put(text.encode())
''', """`start` launches a daemon pump and drops the thread object, so there is no way to flush messages
before exit: the last things a user said are lost when the bridge shuts down. Keep the thread, and
add a `stop()` that queues a sentinel and joins it.""",
fixed='''
import queue
import threading


class ChatBridge:
    def __init__(self, conn):
        self.conn = conn
        self.outgoing = queue.Queue()
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.pump)
        self.thread.start()

    def pump(self):
        while (data := self.outgoing.get()) is not None:
            self.conn.send(data)

    def say(self, text):
        self.outgoing.put(text.encode())

    def stop(self):
        self.outgoing.put(None)
        self.thread.join()
'''),
]

write("THR017", "daemon-thread-data-loss", E)
