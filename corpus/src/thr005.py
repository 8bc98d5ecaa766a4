from _build import ex, write

E = [
ex("thr005-01", '''
import threading


class JobQueue:
    def __init__(self):
        self.jobs = []
        self.cond = threading.Condition()

    def put(self, job):
        with self.cond:
            self.jobs.append(job)
            self.cond.notify()

    def take(self):
        with self.cond:
            if not self.jobs:
                self.cond.wait()
            return self.jobs.pop(0)
''', """With several workers calling `take()`, one `notify()` can wake a worker after another worker has
already taken the job, and `wait()` may also wake spuriously; the `if` does not re-check, so
`self.jobs.pop(0)` raises `IndexError` on an empty list. Re-test the predicate in a `while` loop.""",
fix=[("            if not self.jobs:", "            while not self.jobs:")]),

ex("thr005-02", '''
import threading

ready = False
ready_cond = threading.Condition()


def wait_until_ready():
    with ready_cond:
        ready_cond.wait()
    print("service is ready")


def mark_ready():
    global ready
    with ready_cond:
        ready = True
        ready_cond.notify_all()
''', """`wait_until_ready` waits unconditionally: if `mark_ready` ran first, the notification is already
gone and the caller blocks forever, even though `ready` is true. Check the flag before and after
waiting, which `wait_for` does for you.""",
fix=[("        ready_cond.wait()", "        ready_cond.wait_for(lambda: ready)")]),

ex("thr005-03", '''
import threading


class BoundedBuffer:
    def __init__(self, capacity):
        self.items = []
        self.capacity = capacity
        self.not_full = threading.Condition()

    def put(self, item):
        with self.not_full:
            if len(self.items) >= self.capacity:
                self.not_full.wait()
            self.items.append(item)

    def get(self):
        with self.not_full:
            item = self.items.pop(0)
            self.not_full.notify()
            return item
''', """Two producers blocked on a full buffer can both be released (by two `get` calls, or a spurious
wakeup) and each appends without re-checking, so the buffer grows past `capacity`. Waiting in a
`while` loop re-tests the size after every wakeup.""",
fix=[("            if len(self.items) >= self.capacity:", "            while len(self.items) >= self.capacity:")]),

ex("thr005-04", '''
import threading


class ResultSlot:
    def __init__(self):
        self.value = None
        self.done = False
        self.cv = threading.Condition()

    def set(self, value):
        with self.cv:
            self.value = value
            self.done = True
            self.cv.notify_all()

    def get(self):
        with self.cv:
            if not self.done:
                self.cv.wait()
            return self.value
''', """`Condition.wait()` may return without a matching `notify` (spurious wakeups are allowed), and
then `get()` returns `None` as if it were the result. Loop on `self.done` so only a real `set()`
ends the wait.""",
fix=[("            if not self.done:", "            while not self.done:")]),

ex("thr005-05", '''
import threading
import collections

messages = collections.deque()
inbox = threading.Condition()


def receiver(handle):
    while True:
        with inbox:
            if not messages:
                inbox.wait()
            msg = messages.popleft()
        handle(msg)


def deliver(msg):
    with inbox:
        messages.append(msg)
        inbox.notify_all()
''', """`notify_all()` wakes every receiver thread for a single message; the first one pops it and the
rest fall through the `if` and call `popleft()` on an empty deque, raising `IndexError`. The
emptiness check must be repeated in a `while` loop.""",
fix=[("            if not messages:", "            while not messages:")]),

ex("thr005-06", '''
import threading


class Gate:
    def __init__(self):
        self.open = False
        self._cond = threading.Condition()

    def release_all(self):
        with self._cond:
            self.open = True
            self._cond.notify_all()

    def close(self):
        with self._cond:
            self.open = False

    def pass_through(self):
        with self._cond:
            if not self.open:
                self._cond.wait()
''', """Between `release_all()` and the moment a waiter reacquires the lock, another thread may call
`close()`; the waiter then passes a closed gate because the `if` never re-checks `self.open`. Use
`while not self.open:` (or `wait_for`).""",
fix=[("            if not self.open:", "            while not self.open:")]),

ex("thr005-07", '''
import threading


class Tokens:
    def __init__(self, count):
        self.count = count
        self.cond = threading.Condition()

    def acquire(self):
        with self.cond:
            if self.count == 0:
                self.cond.wait()
            self.count -= 1

    def release(self):
        with self.cond:
            self.count += 1
            self.cond.notify()
''', """If a waiter is woken but a newly arriving thread grabs the lock first and takes the token, the
waiter decrements anyway and `count` goes negative, handing out more tokens than exist. Re-check
`self.count` in a `while` loop after waking.""",
fix=[("            if self.count == 0:", "            while self.count == 0:")]),

ex("thr005-08", '''
import threading


class Pipeline:
    def __init__(self):
        self.stage = 0
        self.cond = threading.Condition()

    def advance(self):
        with self.cond:
            self.stage += 1
            self.cond.notify_all()

    def wait_for_stage(self, n):
        with self.cond:
            if self.stage < n:
                self.cond.wait()
            return self.stage
''', """`notify_all()` is sent on every stage change, so a thread waiting for stage 3 is woken at stage 1
and returns early because the `if` is not re-evaluated. `self.cond.wait_for(lambda: self.stage >= n)`
keeps waiting until the condition actually holds.""",
fixed='''
import threading


class Pipeline:
    def __init__(self):
        self.stage = 0
        self.cond = threading.Condition()

    def advance(self):
        with self.cond:
            self.stage += 1
            self.cond.notify_all()

    def wait_for_stage(self, n):
        with self.cond:
            self.cond.wait_for(lambda: self.stage >= n)
            return self.stage
'''),

ex("thr005-09", '''
import threading

pending_orders = []
orders_cv = threading.Condition()


def dispatcher(send):
    while True:
        with orders_cv:
            orders_cv.wait()
            batch = pending_orders[:]
            pending_orders.clear()
        for order in batch:
            send(order)


def submit(order):
    with orders_cv:
        pending_orders.append(order)
        orders_cv.notify()
''', """The dispatcher waits without checking whether orders are already pending: an order submitted
while it was busy sending is notified when nobody waits, so it sits in the list until the next
submission. Wait only while the list is empty.""",
fix=[("            orders_cv.wait()", "            while not pending_orders:\n                orders_cv.wait()")]),

ex("thr005-10", '''
import threading


class Latch:
    def __init__(self, count):
        self.count = count
        self.condition = threading.Condition()

    def count_down(self):
        with self.condition:
            self.count -= 1
            if self.count <= 0:
                self.condition.notify_all()

    def await_zero(self):
        with self.condition:
            if self.count > 0:
                self.condition.wait()
''', """A spurious wakeup lets `await_zero()` return while `count` is still positive, so callers proceed
before every party has counted down. Loop while `self.count > 0`.""",
fix=[("            if self.count > 0:", "            while self.count > 0:")]),

ex("thr005-11", '''
import threading


class ConnectionLimiter:
    def __init__(self, limit):
        self.active = 0
        self.limit = limit
        self.slot_free = threading.Condition()

    def enter(self):
        with self.slot_free:
            if self.active >= self.limit:
                self.slot_free.wait()
            self.active += 1

    def leave(self):
        with self.slot_free:
            self.active -= 1
            self.slot_free.notify()
''', """When a slot frees up, a thread arriving in `enter()` can win the lock before the woken waiter,
and the waiter then increments `active` past `limit` without re-checking. A `while` loop restores
the limit.""",
fix=[("            if self.active >= self.limit:", "            while self.active >= self.limit:")]),

ex("thr005-12", '''
import threading


class Mailbox:
    def __init__(self):
        self.letter = None
        self.cond = threading.Condition(threading.Lock())

    def send(self, letter):
        with self.cond:
            self.letter = letter
            self.cond.notify()

    def receive(self, timeout=None):
        with self.cond:
            if self.letter is None:
                self.cond.wait(timeout)
            letter, self.letter = self.letter, None
            return letter
''', """After a timed `wait` returns, nothing says a letter arrived: it may have timed out, woken
spuriously, or another receiver may have taken the letter. Using `wait_for` with the timeout
re-checks the predicate and tells the caller which happened.""",
fixed='''
import threading


class Mailbox:
    def __init__(self):
        self.letter = None
        self.cond = threading.Condition(threading.Lock())

    def send(self, letter):
        with self.cond:
            self.letter = letter
            self.cond.notify()

    def receive(self, timeout=None):
        with self.cond:
            if not self.cond.wait_for(lambda: self.letter is not None, timeout):
                raise TimeoutError("no letter")
            letter, self.letter = self.letter, None
            return letter
'''),

ex("thr005-13", '''
import threading

config = {}
config_changed = threading.Condition()


def watch_config(apply):
    version = config.get("version", 0)
    while True:
        with config_changed:
            config_changed.wait()
            if config.get("version", 0) == version:
                continue
            version = config["version"]
            snapshot = dict(config)
        apply(snapshot)
''', """The watcher is inside a `while True`, but that loop does not re-check before waiting: a change
published while `apply` runs is notified to nobody, so the watcher sleeps through it until the
next change. Wait only while the version is unchanged, e.g. with `wait_for`.""",
fix=[("""            config_changed.wait()
            if config.get("version", 0) == version:
                continue
""", """            config_changed.wait_for(lambda: config.get("version", 0) != version)
""")]),

ex("thr005-14", '''
import threading


class Barrier2:
    def __init__(self):
        self.arrived = 0
        self.cond = threading.Condition()

    def arrive(self):
        with self.cond:
            self.arrived += 1
            if self.arrived < 2:
                self.cond.wait()
            else:
                self.cond.notify_all()
''', """The first thread waits once and then leaves; a spurious wakeup lets it pass before the second
thread arrives, which breaks the barrier's only promise. Wait in a loop while fewer than two threads
have arrived (or use `threading.Barrier(2)`).""",
fixed='''
import threading


class Barrier2:
    def __init__(self):
        self.arrived = 0
        self.cond = threading.Condition()

    def arrive(self):
        with self.cond:
            self.arrived += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.arrived >= 2)
'''),

ex("thr005-15", '''
import threading


class PrintSpooler:
    def __init__(self, printer):
        self.printer = printer
        self.documents = []
        self.has_work = threading.Condition()
        self.running = True

    def spool(self, doc):
        with self.has_work:
            self.documents.append(doc)
            self.has_work.notify()

    def worker(self):
        while self.running:
            with self.has_work:
                if not self.documents:
                    self.has_work.wait()
                doc = self.documents.pop(0)
            self.printer.print(doc)
''', """A spurious wakeup, or a second worker that took the document first, leaves `documents` empty
after `wait()` returns, and `pop(0)` raises `IndexError`, killing the worker thread. Replace the
`if` with `while` so the list is re-checked under the lock.""",
fix=[("                if not self.documents:", "                while not self.documents:")]),
ex("thr005-16", """
import collections
import threading

messages = collections.deque()
inbox = threading.Condition()


def next_message():
    with inbox:
        if not messages:
            inbox.wait()
        return messages.popleft()


def deliver(msg):
    with inbox:
        messages.append(msg)
        inbox.notify_all()
""", """`deliver` wakes every thread blocked in `next_message()`, but only one message was added: the
first waiter takes it and the others fall through the `if` and call `popleft()` on an empty deque.
The emptiness test has to be repeated after each wakeup.""",
fix=[("        if not messages:", "        while not messages:")]),

ex("thr005-17", """
import threading


class Service:
    def __init__(self):
        self.stopped = False
        self._cv = threading.Condition()

    def stop(self):
        with self._cv:
            self.stopped = True
            self._cv.notify_all()

    def wait_stopped(self):
        with self._cv:
            self._cv.wait()
""", """`wait_stopped()` ignores `self.stopped`: if `stop()` already ran, the notification is lost and
the caller blocks forever, and a spurious wakeup returns early while the service still runs.
Wait on the flag with `wait_for`.""",
fix=[("            self._cv.wait()", "            self._cv.wait_for(lambda: self.stopped)")]),

ex("thr005-18", """
import threading


class TicketCounter:
    def __init__(self):
        self.next_ticket = 0
        self.serving = 0
        self.cond = threading.Condition()

    def take_ticket(self):
        with self.cond:
            ticket = self.next_ticket
            self.next_ticket += 1
            return ticket

    def wait_turn(self, ticket):
        with self.cond:
            if self.serving != ticket:
                self.cond.wait()

    def done(self):
        with self.cond:
            self.serving += 1
            self.cond.notify_all()
""", """Every `done()` wakes all ticket holders, so a holder of ticket 7 is woken when ticket 3 is served
and returns from `wait_turn` out of order. Loop until `self.serving == ticket`.""",
fix=[("            if self.serving != ticket:", "            while self.serving != ticket:")]),

ex("thr005-19", """
import threading


class DownloadSlots:
    def __init__(self, max_parallel):
        self.running = 0
        self.max_parallel = max_parallel
        self.cond = threading.Condition()

    def begin(self):
        with self.cond:
            if self.running == self.max_parallel:
                self.cond.wait()
            self.running += 1

    def end(self):
        with self.cond:
            self.running -= 1
            self.cond.notify_all()
""", """`end()` wakes every waiting downloader for a single free slot; each one increments `running`
without re-checking, so far more than `max_parallel` downloads start at once. Use a `while` loop
(or a `BoundedSemaphore`).""",
fix=[("            if self.running == self.max_parallel:", "            while self.running == self.max_parallel:")]),
]

write("THR005", "condition-wait-not-in-loop", E)
