from _build import ex, write

E = [
ex("thr022-01", '''
import os
import threading
import time


def heartbeat():
    while True:
        print("alive")
        time.sleep(5)


def serve(handle_requests):
    threading.Thread(target=heartbeat, daemon=True).start()
    pid = os.fork()
    if pid == 0:
        handle_requests()
        os._exit(0)
    os.waitpid(pid, 0)
''', """The heartbeat thread is already running when `os.fork()` is called; the child gets a copy of any
lock it held at that instant (such as the stdout buffer lock inside `print`) in the locked state,
with no thread left to release it, so the child can deadlock on its first `print`. Fork (or spawn
the worker process) before starting threads.""",
fixed='''
import multiprocessing
import threading
import time


def heartbeat():
    while True:
        print("alive")
        time.sleep(5)


def serve(handle_requests):
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=handle_requests)
    child.start()
    threading.Thread(target=heartbeat, daemon=True).start()
    child.join()
'''),

ex("thr022-02", '''
import logging
import os
import queue
import threading

log_queue = queue.Queue()


def log_pump():
    while True:
        logging.getLogger("app").info(log_queue.get())


threading.Thread(target=log_pump, daemon=True).start()


def daemonize():
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
''', """A logging thread is started at import time, so by the time `daemonize()` forks there is always
another thread that may hold the logging module's lock or the queue's mutex; the daemonized child
inherits it locked and hangs on its first log call. Daemonize first, then start the pump.""",
fixed='''
import logging
import os
import queue
import threading

log_queue = queue.Queue()


def log_pump():
    while True:
        logging.getLogger("app").info(log_queue.get())


def daemonize():
    if os.fork() > 0:
        os._exit(0)
    os.setsid()


def start_logging():
    threading.Thread(target=log_pump, daemon=True).start()
''', notes="call daemonize() before start_logging()"),

ex("thr022-03", '''
import multiprocessing
import threading


def monitor(stats):
    while True:
        stats.refresh()


def crunch(chunk):
    return sum(x * x for x in chunk)


def run(chunks, stats):
    threading.Thread(target=monitor, args=(stats,), daemon=True).start()
    multiprocessing.set_start_method("fork")
    with multiprocessing.Pool(4) as pool:
        return pool.map(crunch, chunks)
''', """Forcing the `"fork"` start method after a monitor thread is running copies the process with
that thread missing and any lock it held stuck forever; pool workers can hang at random. Use the
`"spawn"` (or `"forkserver"`) context, which starts fresh interpreters.""",
fixed='''
import multiprocessing
import threading


def monitor(stats):
    while True:
        stats.refresh()


def crunch(chunk):
    return sum(x * x for x in chunk)


def run(chunks, stats):
    threading.Thread(target=monitor, args=(stats,), daemon=True).start()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        return pool.map(crunch, chunks)
'''),

ex("thr022-04", '''
import os
import threading


class Supervisor:
    def __init__(self, poll):
        self.poll = poll
        self.watcher = threading.Thread(target=self.watch, daemon=True)

    def watch(self):
        while True:
            self.poll()

    def start(self, worker_main, n):
        self.watcher.start()
        for _ in range(n):
            if os.fork() == 0:
                worker_main()
                os._exit(0)
''', """`start` launches the watcher thread and then forks the workers, so every child is a copy of a
multi-threaded process taken at an arbitrary moment; a lock the watcher held (inside `poll`, the
allocator, logging) stays locked in the child. Fork the workers before starting the watcher.""",
fix=[("""        self.watcher.start()
        for _ in range(n):
            if os.fork() == 0:
                worker_main()
                os._exit(0)""", """        for _ in range(n):
            if os.fork() == 0:
                worker_main()
                os._exit(0)
        self.watcher.start()""")]),

ex("thr022-05", '''
import os
import threading
from concurrent.futures import ThreadPoolExecutor

pool = ThreadPoolExecutor(max_workers=4)


def prefetch(urls, fetch):
    return [pool.submit(fetch, u) for u in urls]


def run_hook(script):
    pid = os.fork()
    if pid == 0:
        os.execv("/bin/sh", ["sh", script])
    return os.waitpid(pid, 0)
''', """The module-level thread pool may have worker threads in the middle of `fetch` when `run_hook`
forks; even though the child only calls `execv`, anything between fork and exec that needs a held
lock can hang. `subprocess.run` forks and execs safely without running Python code in between.""",
fixed='''
import subprocess
from concurrent.futures import ThreadPoolExecutor

pool = ThreadPoolExecutor(max_workers=4)


def prefetch(urls, fetch):
    return [pool.submit(fetch, u) for u in urls]


def run_hook(script):
    return subprocess.run(["sh", script], check=False).returncode
''',
notes="analyzer miss: executor threads exist only after the first submit, which a static check cannot order against the fork; weak example", missed=True),

ex("thr022-06", '''
import os
import threading


def reader(sock, inbox):
    while True:
        inbox.append(sock.recv(4096))


def start(sock, inbox, child_main):
    t = threading.Thread(target=reader, args=(sock, inbox))
    t.start()
    pid = os.fork()
    if pid == 0:
        child_main(inbox)
        os._exit(0)
    return pid
''', """The reader thread is running when `os.fork()` executes; the child sees `inbox` in whatever state
the reader left it and can deadlock on any lock the reader held. Start the child first, or use
`multiprocessing` with the `"spawn"` context.""",
fixed='''
import multiprocessing
import threading


def reader(sock, inbox):
    while True:
        inbox.append(sock.recv(4096))


def start(sock, inbox, child_main):
    child = multiprocessing.get_context("spawn").Process(target=child_main, args=([],))
    child.start()
    t = threading.Thread(target=reader, args=(sock, inbox))
    t.start()
    return child
'''),

ex("thr022-07", '''
import os
import threading
import time

stats = {"ticks": 0}


def ticker():
    while True:
        stats["ticks"] += 1
        time.sleep(1)


threading.Thread(target=ticker, daemon=True).start()


def spawn_worker(job):
    pid = os.fork()
    if pid == 0:
        job()
        os._exit(0)
    return pid
''', """The ticker thread starts at import, so every `os.fork()` in `spawn_worker` happens in a
multi-threaded process; in the child the ticker is gone and any lock it held is stuck. Use
`multiprocessing` with the `"spawn"` start method for workers.""",
fixed='''
import multiprocessing
import threading
import time

stats = {"ticks": 0}


def ticker():
    while True:
        stats["ticks"] += 1
        time.sleep(1)


threading.Thread(target=ticker, daemon=True).start()


def spawn_worker(job):
    proc = multiprocessing.get_context("spawn").Process(target=job)
    proc.start()
    return proc
'''),

ex("thr022-08", '''
import os
import pty
import threading


def pump_output(fd, sink):
    while data := os.read(fd, 1024):
        sink.write(data)


def open_shell(sink):
    t = threading.Thread(target=pump_output, args=(0, sink), daemon=True)
    t.start()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("bash", ["bash"])
    return pid, fd
''', """`pty.fork()` runs after an output pump thread has started, so the child process is forked from
a multi-threaded parent; if the pump holds the sink's lock at that moment, the child inherits it
locked. Fork the pty first and start the pump afterwards.""",
fix=[("""    t = threading.Thread(target=pump_output, args=(0, sink), daemon=True)
    t.start()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("bash", ["bash"])
    return pid, fd""", """    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("bash", ["bash"])
    t = threading.Thread(target=pump_output, args=(fd, sink), daemon=True)
    t.start()
    return pid, fd""")]),

ex("thr022-09", '''
import os
import threading


class Server:
    def __init__(self, listener, handle):
        self.listener = listener
        self.handle = handle

    def accept_loop(self):
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self.serve, args=(conn,)).start()

    def serve(self, conn):
        if os.fork() == 0:
            self.handle(conn)
            os._exit(0)
        conn.close()
''', """`serve` runs on a per-connection thread and calls `os.fork()` from there, while other connection
threads are active; the child inherits their held locks with no owner. Choose one model: fork
per connection from a single-threaded accept loop, or handle connections in threads without
forking.""",
fixed='''
import threading


class Server:
    def __init__(self, listener, handle):
        self.listener = listener
        self.handle = handle

    def accept_loop(self):
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self.serve, args=(conn,)).start()

    def serve(self, conn):
        with conn:
            self.handle(conn)
'''),

ex("thr022-10", '''
import multiprocessing as mp
import threading


def progress(counter):
    while True:
        counter.report()


def main(tasks, counter, work):
    threading.Thread(target=progress, args=(counter,), daemon=True).start()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=work, args=(t,)) for t in tasks]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
''', """The `"fork"` context is chosen after a progress thread is running, so each worker process is
forked from a multi-threaded parent and may start with locks held by the progress thread. Use the
`"spawn"` context.""",
fix=[("""ctx = mp.get_context("fork")""", """ctx = mp.get_context("spawn")""")]),

ex("thr022-11", '''
import os
import threading
import time


def cleanup_loop(tmpdir):
    while True:
        for name in os.listdir(tmpdir):
            os.remove(os.path.join(tmpdir, name))
        time.sleep(60)


def launch(tmpdir, run_job):
    threading.Thread(target=cleanup_loop, args=(tmpdir,), daemon=True).start()
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            run_job()
            os._exit(0)
        children.append(pid)
    return children
''', """The cleanup thread is started before the four forks, so each child is a copy of a threaded
process taken mid-flight; locks held by the cleanup thread (for example inside `os.listdir` or the
allocator) remain locked in the children. Fork first, then start the cleanup thread.""",
fix=[("""    threading.Thread(target=cleanup_loop, args=(tmpdir,), daemon=True).start()
    children = []""", """    children = []"""), ("""        children.append(pid)
    return children""", """        children.append(pid)
    threading.Thread(target=cleanup_loop, args=(tmpdir,), daemon=True).start()
    return children""")]),

ex("thr022-12", '''
import os
import threading
import queue

events = queue.Queue()


def event_logger():
    while True:
        print(events.get())


def reload_worker(main):
    threading.Thread(target=event_logger, daemon=True).start()
    events.put("reloading")
    if os.fork() == 0:
        main()
''', """`reload_worker` starts the logger thread and forks immediately afterwards; the logger may be in
the middle of `print` or `events.get()`, and the child inherits those locks held by a thread that
does not exist there. Start the child process with `"spawn"` or fork before starting the logger.""",
fixed='''
import multiprocessing
import threading
import queue

events = queue.Queue()


def event_logger():
    while True:
        print(events.get())


def reload_worker(main):
    multiprocessing.get_context("spawn").Process(target=main).start()
    threading.Thread(target=event_logger, daemon=True).start()
    events.put("reloading")
'''),

ex("thr022-13", '''
import os
import threading
from concurrent.futures import ThreadPoolExecutor


def snapshot_then_fork(db, items, save):
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(db.load, i) for i in items]
        pid = os.fork()
        if pid == 0:
            save([f.result() for f in futures])
            os._exit(0)
    os.waitpid(pid, 0)
''', """`os.fork()` is called inside the executor block, while pool threads are loading; the child has
none of those threads, so `f.result()` waits for futures that nobody will ever complete and the
child hangs. Collect the results first and then fork (or use a spawned process).""",
fixed='''
import multiprocessing
from concurrent.futures import ThreadPoolExecutor


def snapshot_then_fork(db, items, save):
    with ThreadPoolExecutor(max_workers=4) as pool:
        rows = list(pool.map(db.load, items))
    child = multiprocessing.get_context("spawn").Process(target=save, args=(rows,))
    child.start()
    child.join()
''', notes="forking after the `with` block would also be safe (the pool threads are joined), but the analyzer still reports it"),

ex("thr022-14", '''
import os
import threading


class Agent:
    def __init__(self, report):
        self.report = report
        self.reporter = threading.Thread(target=self.loop, daemon=True)
        self.reporter.start()

    def loop(self):
        while True:
            self.report()

    def restart(self):
        pid = os.fork()
        if pid == 0:
            os.execv("/usr/bin/agent", ["agent"])
        os._exit(0)
''', """The constructor starts a reporter thread, so `restart()` always forks a multi-threaded process;
between fork and exec the child can block on a lock the reporter held. Re-executing in place with
`os.execv` (no fork) or `subprocess.Popen` avoids running Python code in a half-copied process.""",
fix=[("""        pid = os.fork()
        if pid == 0:
            os.execv("/usr/bin/agent", ["agent"])
        os._exit(0)""", """        os.execv("/usr/bin/agent", ["agent"])""")],
notes="analyzer miss: thread started in a constructor, fork in another method of the same object", missed=True),

ex("thr022-15", '''
import os
import threading

cache = {}
cache_lock = threading.Lock()


def warm(keys, load):
    for k in keys:
        with cache_lock:
            cache[k] = load(k)


def preforked_workers(keys, load, serve, n=4):
    warmer = threading.Thread(target=warm, args=(keys, load))
    warmer.start()
    for _ in range(n):
        if os.fork() == 0:
            serve(cache)
            os._exit(0)
    warmer.join()
''', """The cache warmer runs while workers are forked; a child forked while the warmer holds
`cache_lock` inherits it locked, and the first request that takes the lock hangs forever. Join the
warmer before forking so the children get a complete cache and a free lock.""",
fix=[("""    warmer.start()
    for _ in range(n):
        if os.fork() == 0:
            serve(cache)
            os._exit(0)
    warmer.join()""", """    warmer.start()
    warmer.join()
    for _ in range(n):
        if os.fork() == 0:
            serve(cache)
            os._exit(0)""")]),
ex("thr022-16", """
import os
import signal
import threading


def watch_signals(stop):
    signal.sigwait({signal.SIGTERM})
    stop.set()


def main(work):
    stop = threading.Event()
    threading.Thread(target=watch_signals, args=(stop,), daemon=True).start()
    while not stop.is_set():
        pid = os.fork()
        if pid == 0:
            work()
            os._exit(0)
        os.waitpid(pid, 0)
""", """Each job is run in a forked child while the signal-watching thread is alive, so every child starts
as a copy of a two-threaded process, with the watcher missing and any lock it held stuck. Use a
spawned process for each job (or fork the children from a process without threads).""",
fix=[("""        pid = os.fork()
        if pid == 0:
            work()
            os._exit(0)
        os.waitpid(pid, 0)""", """        child = multiprocessing.get_context("spawn").Process(target=work)
        child.start()
        child.join()"""), ("""import os
import signal""", """import multiprocessing
import signal""")]),

ex("thr022-17", """
import os
import threading

results = []


def collect(source):
    for item in source:
        results.append(item)


def checkpoint_in_child(source, dump):
    collector = threading.Thread(target=collect, args=(source,))
    collector.start()
    pid = os.fork()
    if pid == 0:
        dump(results)
        os._exit(0)
    collector.join()
    return pid
""", """The child is forked while the collector thread is still appending, so it dumps a partial
`results` list and may deadlock on a lock the collector held (for example inside `source`). Join
the collector before forking.""",
fix=[("""    collector.start()
    pid = os.fork()
    if pid == 0:
        dump(results)
        os._exit(0)
    collector.join()""", """    collector.start()
    collector.join()
    pid = os.fork()
    if pid == 0:
        dump(results)
        os._exit(0)""")]),
]

write("THR022", "fork-with-threads", E)
