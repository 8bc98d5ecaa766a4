from _build import ex, write

E = [
ex("thr019-01", '''
import asyncio
import threading


def worker(fut, path):
    with open(path, "rb") as fh:
        fut.set_result(len(fh.read()))


async def file_size(path):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    threading.Thread(target=worker, args=(fut, path)).start()
    return await fut
''', """`fut.set_result` is called from the worker thread, but asyncio futures are not thread-safe: the
call races with the loop and does not wake it, so `await fut` may hang until some other event
arrives. Hand the result to the loop with `loop.call_soon_threadsafe`.""",
fixed='''
import asyncio
import threading


def worker(loop, fut, path):
    with open(path, "rb") as fh:
        size = len(fh.read())
    loop.call_soon_threadsafe(fut.set_result, size)


async def file_size(path):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    threading.Thread(target=worker, args=(loop, fut, path)).start()
    return await fut
'''),

ex("thr019-02", '''
import asyncio
import threading


def reader(q, stream):
    for line in stream:
        q.put_nowait(line)


async def consume(stream, handle):
    q = asyncio.Queue()
    threading.Thread(target=reader, args=(q, stream), daemon=True).start()
    while True:
        handle(await q.get())
''', """`asyncio.Queue.put_nowait` from a plain thread does not wake the event loop and can corrupt the
queue's waiters list; the consumer may sit in `await q.get()` with items already queued. Schedule
the put on the loop with `call_soon_threadsafe`.""",
fixed='''
import asyncio
import threading


def reader(loop, q, stream):
    for line in stream:
        loop.call_soon_threadsafe(q.put_nowait, line)


async def consume(stream, handle):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()
    threading.Thread(target=reader, args=(loop, q, stream), daemon=True).start()
    while True:
        handle(await q.get())
'''),

ex("thr019-03", '''
import asyncio
import threading
import time


def watchdog(loop, timeout):
    time.sleep(timeout)
    loop.stop()


def serve_with_deadline(app, timeout):
    loop = asyncio.new_event_loop()
    threading.Thread(target=watchdog, args=(loop, timeout), daemon=True).start()
    loop.create_task(app())
    loop.run_forever()
''', """`loop.stop()` is called from the watchdog thread; loop methods other than
`call_soon_threadsafe` are not thread-safe, and a loop sleeping in `select()` is not woken, so the
deadline can be missed by an arbitrary amount. Use `loop.call_soon_threadsafe(loop.stop)`.""",
fix=[("    loop.stop()", "    loop.call_soon_threadsafe(loop.stop)")]),

ex("thr019-04", '''
import asyncio
import threading


def on_message(loop, handler, message):
    loop.call_soon(handler, message)


def start_listener(loop, handler, subscribe):
    def listen():
        for message in subscribe():
            on_message(loop, handler, message)

    threading.Thread(target=listen, daemon=True).start()


async def main(subscribe):
    start_listener(asyncio.get_running_loop(), print, subscribe)
    await asyncio.sleep(3600)
''', """`loop.call_soon` from the listener thread appends to the loop's ready queue without waking it,
so messages are handled only when something else wakes the loop (possibly an hour later). The
thread-safe variant, `call_soon_threadsafe`, also writes to the loop's self-pipe to wake it.""",
fix=[("loop.call_soon(handler, message)", "loop.call_soon_threadsafe(handler, message)")]),

ex("thr019-05", '''
import asyncio
import threading


class Notifier:
    def __init__(self):
        self.changed = asyncio.Event()

    def watch_file(self, path, poll):
        for _ in poll(path):
            self.changed.set()

    async def run(self, path, poll, reload):
        threading.Thread(target=self.watch_file, args=(path, poll), daemon=True).start()
        while True:
            await self.changed.wait()
            self.changed.clear()
            reload()
''', """`asyncio.Event.set()` is called on the watcher thread; it is not thread-safe and does not wake the
loop, so `await self.changed.wait()` may not return after a change. Keep a reference to the loop
and call `self.loop.call_soon_threadsafe(self.changed.set)`.""",
fix=[("""        for _ in poll(path):
            self.changed.set()""", """        for _ in poll(path):
            self.loop.call_soon_threadsafe(self.changed.set)"""), ("""    async def run(self, path, poll, reload):
""", """    async def run(self, path, poll, reload):
        self.loop = asyncio.get_running_loop()
""")]),

ex("thr019-06", '''
import asyncio
import threading


def blocking_job(loop, on_done):
    result = sum(range(10_000_000))
    loop.create_task(on_done(result))


async def report(result):
    print("result", result)


async def main():
    loop = asyncio.get_running_loop()
    t = threading.Thread(target=blocking_job, args=(loop, report))
    t.start()
    await asyncio.sleep(1)
''', """`loop.create_task` from a worker thread manipulates the loop's internals without synchronisation
and does not wake it; the task may never be scheduled before `main` exits. Use
`asyncio.run_coroutine_threadsafe(coro, loop)`, or better, `await asyncio.to_thread(...)` in the
coroutine.""",
fixed='''
import asyncio


def blocking_job():
    return sum(range(10_000_000))


async def report(result):
    print("result", result)


async def main():
    result = await asyncio.to_thread(blocking_job)
    await report(result)
'''),

ex("thr019-07", '''
import asyncio
import threading


def producer(loop, q, items):
    for item in items:
        q.put_nowait(item)
    q.put_nowait(None)


async def main(items):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue()
    threading.Thread(target=producer, args=(loop, q, items)).start()
    while (item := await q.get()) is not None:
        print(item)
''', """The producer thread calls `q.put_nowait` directly even though it has the loop at hand; asyncio
queues are not thread-safe, so the consumer may miss wakeups and the program can stall. Route each
put through `loop.call_soon_threadsafe`.""",
fix=[("""    for item in items:
        q.put_nowait(item)
    q.put_nowait(None)""", """    for item in items:
        loop.call_soon_threadsafe(q.put_nowait, item)
    loop.call_soon_threadsafe(q.put_nowait, None)""")]),

ex("thr019-08", '''
import asyncio
import threading


class DownloadManager:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def _download(self, url):
        await asyncio.sleep(0.1)
        return url

    def download(self, url):
        return self.loop.create_task(self._download(url))
''', """The event loop runs on `self.thread`, but `download` is called from other threads and uses
`loop.create_task`, which is not thread-safe. Submit coroutines with
`asyncio.run_coroutine_threadsafe`, which returns a `concurrent.futures.Future` the caller can wait
on.""",
fix=[("""        return self.loop.create_task(self._download(url))""", """        return asyncio.run_coroutine_threadsafe(self._download(url), self.loop)""")]),

ex("thr019-09", '''
import asyncio
import threading


def compute(fut, numbers):
    try:
        fut.set_result(max(numbers))
    except ValueError as exc:
        fut.set_exception(exc)


async def biggest(numbers):
    fut = asyncio.get_running_loop().create_future()
    threading.Thread(target=compute, args=(fut, numbers)).start()
    return await fut
''', """Both `set_result` and `set_exception` run on the worker thread; future callbacks are then
scheduled from the wrong thread and the awaiting coroutine may not resume promptly. Let the
executor integration do it: `await loop.run_in_executor(None, max, numbers)`.""",
fixed='''
import asyncio


async def biggest(numbers):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, max, numbers)
'''),

ex("thr019-10", '''
import asyncio
import threading
import time


def heartbeat(loop, send):
    while True:
        loop.call_later(0, send, "ping")
        time.sleep(10)


async def connect(send):
    loop = asyncio.get_running_loop()
    threading.Thread(target=heartbeat, args=(loop, send), daemon=True).start()
    await asyncio.Event().wait()
''', """`loop.call_later` is invoked from the heartbeat thread; it is not thread-safe and does not wake a
sleeping loop, so pings go out late or not at all. Use `loop.call_soon_threadsafe(send, "ping")`, or
write the heartbeat as a coroutine with `asyncio.sleep`.""",
fixed='''
import asyncio


async def heartbeat(send):
    while True:
        send("ping")
        await asyncio.sleep(10)


async def connect(send):
    task = asyncio.create_task(heartbeat(send))
    try:
        await asyncio.Event().wait()
    finally:
        task.cancel()
'''),

ex("thr019-11", '''
import asyncio
import threading
import queue


def bridge(sync_q, async_q):
    while True:
        item = sync_q.get()
        async_q.put_nowait(item)


async def forward(sync_q, handle):
    async_q = asyncio.Queue()
    threading.Thread(target=bridge, args=(sync_q, async_q), daemon=True).start()
    while True:
        handle(await async_q.get())
''', """The bridge thread moves items from a thread-safe `queue.Queue` into an `asyncio.Queue` with
`put_nowait`, which is only safe on the loop's thread; the awaiting consumer may not be woken. Pass
the loop to the bridge and use `call_soon_threadsafe`.""",
fix=[("""def bridge(sync_q, async_q):
    while True:
        item = sync_q.get()
        async_q.put_nowait(item)""", """def bridge(loop, sync_q, async_q):
    while True:
        item = sync_q.get()
        loop.call_soon_threadsafe(async_q.put_nowait, item)"""), ("""    async_q = asyncio.Queue()
    threading.Thread(target=bridge, args=(sync_q, async_q), daemon=True).start()""", """    async_q = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=bridge, args=(loop, sync_q, async_q), daemon=True).start()""")]),

ex("thr019-12", '''
import asyncio
import threading


def cancel_after(task, seconds):
    threading.Event().wait(seconds)
    task.cancel()


async def with_timeout(coro, seconds):
    task = asyncio.ensure_future(coro)
    threading.Thread(target=cancel_after, args=(task, seconds), daemon=True).start()
    return await task
''', """`task.cancel()` is called from a helper thread; task methods are not thread-safe and the loop is
not woken, so the timeout is unreliable. asyncio has this built in: `await asyncio.wait_for(coro,
seconds)`.""",
fixed='''
import asyncio


async def with_timeout(coro, seconds):
    return await asyncio.wait_for(coro, seconds)
'''),

ex("thr019-13", '''
import asyncio
import threading


class SensorHub:
    def __init__(self, loop):
        self.loop = loop
        self.readings = asyncio.Queue()

    def sensor_thread(self, sensor):
        while True:
            value = sensor.read()
            self.readings.put_nowait((sensor.name, value))

    def start(self, sensors):
        for s in sensors:
            threading.Thread(target=self.sensor_thread, args=(s,), daemon=True).start()
''', """Each sensor thread puts readings straight into an `asyncio.Queue`, which is not thread-safe: with
several sensors the queue's internal deque and waiter list can be updated concurrently, and the
loop is never woken. Use `self.loop.call_soon_threadsafe(self.readings.put_nowait, ...)`.""",
fix=[("""            self.readings.put_nowait((sensor.name, value))""", """            self.loop.call_soon_threadsafe(self.readings.put_nowait, (sensor.name, value))""")]),

ex("thr019-14", '''
import asyncio
import threading


def run_callbacks(fut, callbacks):
    for cb in callbacks:
        fut.add_done_callback(cb)


async def main(callbacks):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    t = threading.Thread(target=run_callbacks, args=(fut, callbacks))
    t.start()
    t.join()
    fut.set_result(42)
    await fut
''', """`add_done_callback` is called on the future from a separate thread, racing with the loop's own
bookkeeping of the future's callback list; asyncio futures must only be touched from their loop's
thread. There is no reason for a thread here: register the callbacks in the coroutine.""",
fixed='''
import asyncio


async def main(callbacks):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    for cb in callbacks:
        fut.add_done_callback(cb)
    fut.set_result(42)
    await fut
'''),

ex("thr019-15", '''
import asyncio
import threading


def slow_lookup(loop, done, key):
    value = {"a": 1}.get(key)
    done.set_result(value)


async def lookup(key):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    threading.Thread(target=slow_lookup, args=(loop, done, key)).start()
    return await done
''', """The worker sets the asyncio future's result directly from its thread. Future methods are not
thread-safe, and the loop is not woken, so `await done` can stall. `loop.call_soon_threadsafe(done.set_result,
value)` runs the call on the loop's thread.""",
fix=[("    done.set_result(value)", "    loop.call_soon_threadsafe(done.set_result, value)")]),
ex("thr019-16", """
import asyncio
import threading


def listen(loop, subscribe, handler):
    for message in subscribe():
        loop.call_soon(handler, message)


async def main(subscribe):
    loop = asyncio.get_running_loop()
    threading.Thread(target=listen, args=(loop, subscribe, print), daemon=True).start()
    await asyncio.sleep(3600)
""", """`loop.call_soon` from the listener thread appends to the loop's ready queue without waking it, so
each message is handled only when something else wakes the loop, possibly much later.
`call_soon_threadsafe` also wakes the loop.""",
fix=[("loop.call_soon(handler, message)", "loop.call_soon_threadsafe(handler, message)")]),
]

write("THR019", "asyncio-from-thread", E)
