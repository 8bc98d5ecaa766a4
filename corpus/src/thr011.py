from _build import ex, write

E = [
ex("thr011-01", '''
import threading
import time


class Loader:
    def __init__(self, load):
        self.data = None
        self.loaded = False
        threading.Thread(target=self._run, args=(load,)).start()

    def _run(self, load):
        self.data = load()
        self.loaded = True

    def wait_until_loaded(self):
        while not self.loaded:
            time.sleep(0.05)
        return self.data
''', """`wait_until_loaded` polls a plain attribute every 50 ms: it burns wake-ups while waiting and adds
up to 50 ms of latency. A `threading.Event` set by the loader wakes the waiter immediately and
makes the hand-off of `self.data` well defined.""",
fixed='''
import threading


class Loader:
    def __init__(self, load):
        self.data = None
        self.loaded = threading.Event()
        threading.Thread(target=self._run, args=(load,)).start()

    def _run(self, load):
        self.data = load()
        self.loaded.set()

    def wait_until_loaded(self):
        self.loaded.wait()
        return self.data
'''),

ex("thr011-02", '''
import threading

ready = False


def init_db():
    global ready
    import sqlite3
    sqlite3.connect("app.db").execute("CREATE TABLE IF NOT EXISTS t (x)")
    ready = True


def main():
    threading.Thread(target=init_db).start()
    while not ready:
        pass
    print("database ready")
''', """`while not ready: pass` spins at full speed holding the GIL, which slows down the very thread it
is waiting for, and burns a CPU core. Wait on a `threading.Event` instead.""",
fixed='''
import threading

ready = threading.Event()


def init_db():
    import sqlite3
    sqlite3.connect("app.db").execute("CREATE TABLE IF NOT EXISTS t (x)")
    ready.set()


def main():
    threading.Thread(target=init_db).start()
    ready.wait()
    print("database ready")
'''),

ex("thr011-03", '''
import threading
import time


class Worker:
    def __init__(self):
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop)

    def loop(self):
        while not self.stopped.is_set():
            time.sleep(1)
        print("worker exiting")

    def stop(self):
        self.stopped.set()
        self.thread.join()
''', """The loop polls an `Event` with `is_set()` and a one-second sleep, so `stop()` can take up to a
second to return. `self.stopped.wait()` blocks until the event is set and returns at once when
it is.""",
fix=[("""        while not self.stopped.is_set():
            time.sleep(1)
        print""", """        self.stopped.wait()
        print"""), ("import threading\nimport time\n", "import threading\n")]),

ex("thr011-04", '''
import threading
import time

results = []
done = False


def producer(items):
    global done
    for item in items:
        results.append(item * 2)
    done = True


def consume(items):
    threading.Thread(target=producer, args=(items,)).start()
    while not done:
        time.sleep(0.01)
    return list(results)
''', """The consumer polls the `done` flag 100 times a second; that wastes CPU and gives no ordering
guarantee for `results`. Joining the producer thread expresses "wait until it is finished"
directly.""",
fixed='''
import threading

results = []


def producer(items):
    for item in items:
        results.append(item * 2)


def consume(items):
    t = threading.Thread(target=producer, args=(items,))
    t.start()
    t.join()
    return list(results)
'''),

ex("thr011-05", '''
import threading
import time


class Job:
    def __init__(self, fn):
        self.fn = fn
        self.finished = False
        self.result = None

    def run(self):
        self.result = self.fn()
        self.finished = True

    def start(self):
        threading.Thread(target=self.run).start()

    def wait(self):
        while not self.finished:
            time.sleep(0.1)
        return self.result
''', """`wait()` sleeps and re-checks a plain boolean, adding up to 100 ms per job and spinning while the
job runs. Use an `Event` that `run` sets, and wait on it (or use a `Future`).""",
fix=[("""        self.finished = False
        self.result = None

    def run(self):
        self.result = self.fn()
        self.finished = True""", """        self.finished = threading.Event()
        self.result = None

    def run(self):
        self.result = self.fn()
        self.finished.set()"""), ("""        while not self.finished:
            time.sleep(0.1)
        return self.result""", """        self.finished.wait()
        return self.result"""), ("import threading\nimport time\n", "import threading\n")]),

ex("thr011-06", '''
import threading
import time

server_up = False


def start_server(app):
    global server_up
    app.bind()
    server_up = True
    app.serve_forever()


def run_with_server(app, tests):
    threading.Thread(target=start_server, args=(app,), daemon=True).start()
    while not server_up:
        time.sleep(0.2)
    return [t() for t in tests]
''', """The test runner polls `server_up` every 200 ms; each test run waits longer than necessary and the
flag gives no memory-ordering guarantee. Signal readiness with a `threading.Event`.""",
fixed='''
import threading

server_up = threading.Event()


def start_server(app):
    app.bind()
    server_up.set()
    app.serve_forever()


def run_with_server(app, tests):
    threading.Thread(target=start_server, args=(app,), daemon=True).start()
    server_up.wait(timeout=30)
    return [t() for t in tests]
'''),

ex("thr011-07", '''
import threading
import time


class Downloader:
    def __init__(self):
        self.pending = 0
        self.lock = threading.Lock()

    def _get(self, url, fetch):
        fetch(url)
        with self.lock:
            self.pending -= 1

    def download_all(self, urls, fetch):
        self.pending = len(urls)
        for url in urls:
            threading.Thread(target=self._get, args=(url, fetch)).start()
        while self.pending:
            time.sleep(0.5)
''', """`download_all` waits by re-reading `self.pending` every half second, so it returns up to 0.5 s
late and wakes needlessly. Keep the threads and `join()` them, which waits exactly as long as
needed.""",
fixed='''
import threading


class Downloader:
    def _get(self, url, fetch):
        fetch(url)

    def download_all(self, urls, fetch):
        threads = [threading.Thread(target=self._get, args=(url, fetch)) for url in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
'''),

ex("thr011-08", '''
import threading
import time

paused = False


def toggle_pause():
    global paused
    paused = not paused


def player(frames, show):
    for frame in frames:
        while paused:
            time.sleep(0.1)
        show(frame)


def start(frames, show):
    threading.Thread(target=player, args=(frames, show), daemon=True).start()
''', """While paused, the player wakes ten times a second to look at a global flag, and resumes up to
100 ms late. An `Event` that is set while playing lets the player block in `wait()` and resume
immediately.""",
fixed='''
import threading

playing = threading.Event()
playing.set()


def toggle_pause():
    if playing.is_set():
        playing.clear()
    else:
        playing.set()


def player(frames, show):
    for frame in frames:
        playing.wait()
        show(frame)


def start(frames, show):
    threading.Thread(target=player, args=(frames, show), daemon=True).start()
'''),

ex("thr011-09", '''
import threading
import time


class Gate:
    def __init__(self):
        self.is_open = False

    def open(self):
        self.is_open = True

    def pass_through(self):
        while not self.is_open:
            time.sleep(0.01)


def visitors(gate, n):
    threads = [threading.Thread(target=gate.pass_through) for _ in range(n)]
    for t in threads:
        t.start()
    gate.open()
    for t in threads:
        t.join()
''', """Every visitor thread spins on `self.is_open` with a 10 ms sleep, so n threads wake 100n times a
second while waiting. This is exactly what `threading.Event` is for: `open()` sets it and
`pass_through()` waits on it.""",
fix=[("""    def __init__(self):
        self.is_open = False

    def open(self):
        self.is_open = True

    def pass_through(self):
        while not self.is_open:
            time.sleep(0.01)""", """    def __init__(self):
        self.is_open = threading.Event()

    def open(self):
        self.is_open.set()

    def pass_through(self):
        self.is_open.wait()"""), ("import threading\nimport time\n", "import threading\n")]),

ex("thr011-10", '''
import threading
import time

config = None


def watch(load):
    global config
    config = load()


def main(load, serve):
    threading.Thread(target=watch, args=(load,)).start()
    while config is None:
        time.sleep(0.25)
    serve(config)
''', """The main thread polls for `config` four times a second instead of waiting for the loader; start-up
is slower than needed and the loop never ends if loading fails. Join the loader (or use an
`Event`) and handle the failure case.""",
fixed='''
import threading

config = None


def watch(load):
    global config
    config = load()


def main(load, serve):
    t = threading.Thread(target=watch, args=(load,))
    t.start()
    t.join()
    if config is None:
        raise RuntimeError("configuration did not load")
    serve(config)
'''),

ex("thr011-11", '''
import threading
import time


class Batch:
    def __init__(self, size):
        self.size = size
        self.items = []

    def add(self, item):
        self.items.append(item)

    def wait_full(self):
        while len(self.items) < self.size:
            time.sleep(0.05)
        return list(self.items)


def fill(batch, source):
    for item in source:
        batch.add(item)


def collect(source, size):
    batch = Batch(size)
    threading.Thread(target=fill, args=(batch, source)).start()
    return batch.wait_full()
''', """`wait_full` polls the list length every 50 ms, so it wakes needlessly and notices a full batch
late. A `Condition` lets `add` notify the waiter as soon as the batch is full, with no polling and no
unsynchronised reads of the list.""",
fix=[("""        self.items = []

    def add(self, item):
        self.items.append(item)

    def wait_full(self):
        while len(self.items) < self.size:
            time.sleep(0.05)
        return list(self.items)""", """        self.items = []
        self.cond = threading.Condition()

    def add(self, item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_full(self):
        with self.cond:
            self.cond.wait_for(lambda: len(self.items) >= self.size)
            return list(self.items)"""), ("import threading\nimport time\n", "import threading\n")]),

ex("thr011-12", '''
import threading
import time

shutdown_requested = False


def request_shutdown():
    global shutdown_requested
    shutdown_requested = True


def serve(handle_one):
    while not shutdown_requested:
        time.sleep(1)
    print("shutting down")


def main(handle_one):
    t = threading.Thread(target=serve, args=(handle_one,))
    t.start()
    return t
''', """The server loop checks a global flag once a second, so shutdown takes up to a second and the
thread wakes for nothing in between. Use an `Event`: `request_shutdown` sets it and `serve` waits
on it.""",
fixed='''
import threading

shutdown_requested = threading.Event()


def request_shutdown():
    shutdown_requested.set()


def serve(handle_one):
    shutdown_requested.wait()
    print("shutting down")


def main(handle_one):
    t = threading.Thread(target=serve, args=(handle_one,))
    t.start()
    return t
'''),

ex("thr011-13", '''
import threading
import time


class Reply:
    def __init__(self):
        self.value = None

    def set(self, value):
        self.value = value

    def get(self):
        while self.value is None:
            time.sleep(0.02)
        return self.value


def call_remote(send):
    reply = Reply()
    threading.Thread(target=lambda: reply.set(send())).start()
    return reply.get()
''', """`Reply.get` busy-waits on `self.value` with 20 ms sleeps and hangs forever if the remote call
legitimately returns `None`. A `concurrent.futures.Future` (or an `Event` plus the value) gives a
blocking `result()` with a timeout and exception propagation.""",
fixed='''
import threading
from concurrent.futures import Future


def call_remote(send):
    reply = Future()

    def run():
        try:
            reply.set_result(send())
        except Exception as exc:
            reply.set_exception(exc)

    threading.Thread(target=run).start()
    return reply.result(timeout=30)
'''),

ex("thr011-14", '''
import threading
import time

buffer = []


def reader(stream):
    for line in stream:
        buffer.append(line)


def next_line():
    while not buffer:
        time.sleep(0.01)
    return buffer.pop(0)


def start(stream):
    threading.Thread(target=reader, args=(stream,), daemon=True).start()
''', """`next_line` polls the shared list every 10 ms until something appears, waking needlessly and
adding latency. A `queue.Queue` does the same hand-off with a blocking `get()` and no polling, and
is safe with several readers.""",
fixed='''
import queue
import threading

buffer = queue.Queue()


def reader(stream):
    for line in stream:
        buffer.put(line)


def next_line():
    return buffer.get()


def start(stream):
    threading.Thread(target=reader, args=(stream,), daemon=True).start()
'''),

ex("thr011-15", '''
import threading
import time


class Countdown:
    def __init__(self, n):
        self.remaining = n
        self.lock = threading.Lock()

    def arrive(self):
        with self.lock:
            self.remaining -= 1

    def wait(self):
        while self.remaining > 0:
            time.sleep(0.1)


def run_parties(n, work):
    latch = Countdown(n)
    for _ in range(n):
        threading.Thread(target=lambda: (work(), latch.arrive())).start()
    latch.wait()
''', """`Countdown.wait` polls `remaining` every 100 ms instead of being woken by the last `arrive()`. A
`Condition` (or `threading.Barrier`) lets the waiter sleep until the count reaches zero.""",
fix=[("""        self.remaining = n
        self.lock = threading.Lock()

    def arrive(self):
        with self.lock:
            self.remaining -= 1

    def wait(self):
        while self.remaining > 0:
            time.sleep(0.1)""", """        self.remaining = n
        self.cond = threading.Condition()

    def arrive(self):
        with self.cond:
            self.remaining -= 1
            self.cond.notify_all()

    def wait(self):
        with self.cond:
            self.cond.wait_for(lambda: self.remaining <= 0)"""), ("import threading\nimport time\n", "import threading\n")],
notes="analyzer miss: polling a comparison on shared state (`self.remaining > 0`)", missed=True),

ex("thr011-16", """
import socket
import threading
import time


class Client:
    def __init__(self, host, port):
        self.sock = None
        self.connected = False
        threading.Thread(target=self._connect, args=(host, port), daemon=True).start()

    def _connect(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.connected = True

    def send(self, data):
        while not self.connected:
            time.sleep(0.1)
        self.sock.sendall(data)
""", """`send` sleeps and re-checks `self.connected` until the connector thread flips it, adding up to
100 ms to the first send and hanging forever if the connection fails. Use an `Event`, and wait on
it with a timeout so a failed connect is noticed.""",
fix=[("""        self.connected = False
""", """        self.connected = threading.Event()
"""), ("""        self.connected = True
""", """        self.connected.set()
"""), ("""        while not self.connected:
            time.sleep(0.1)
        self.sock.sendall(data)""", """        if not self.connected.wait(timeout=10):
            raise ConnectionError("not connected")
        self.sock.sendall(data)"""), ("import threading\nimport time\n", "import threading\n")]),

ex("thr011-17", """
import threading

go = False


def racer(name, results):
    while not go:
        continue
    results.append(name)


def race(names):
    global go
    results = []
    threads = [threading.Thread(target=racer, args=(n, results)) for n in names]
    for t in threads:
        t.start()
    go = True
    for t in threads:
        t.join()
    return results
""", """Each racer spins on `go` with `continue`, burning CPU and fighting over the GIL with the thread
that is supposed to set the flag. A `threading.Event` (or a `Barrier`) starts them all without
spinning.""",
fixed="""
import threading

go = threading.Event()


def racer(name, results):
    go.wait()
    results.append(name)


def race(names):
    results = []
    threads = [threading.Thread(target=racer, args=(n, results)) for n in names]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join()
    return results
"""),
]

write("THR011", "busy-wait-polling", E)
