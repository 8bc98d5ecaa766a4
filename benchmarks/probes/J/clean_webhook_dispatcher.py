"""Rate-limited webhook dispatcher.

Events are queued per subscriber and delivered over HTTP to a local
receiver.  A token bucket caps the global delivery rate, failed
deliveries are retried with backoff, and an asyncio-based audit sink
running on its own loop thread records every outcome.
"""
import asyncio
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Condition as _Condition

RATE_PER_SEC = 400.0
BURST = 20
MAX_ATTEMPTS = 3


class TokenBucket:
    def __init__(self, rate, burst):
        self.rate = rate
        self.capacity = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def _refill_locked(self):
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def reserve(self):
        """Take a token, returning how long the caller must wait before using it."""
        self._lock.acquire()
        try:
            self._refill_locked()
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate
        finally:
            self._lock.release()

    def take(self):
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)


class Receiver(BaseHTTPRequestHandler):
    counts = {}
    counts_lock = threading.Lock()
    flaky_every = 7

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        sub = self.path.strip("/")
        with Receiver.counts_lock:
            n = Receiver.counts.get(sub, 0) + 1
            Receiver.counts[sub] = n
        status = 503 if body.get("seq", 0) % Receiver.flaky_every == 3 and body.get("attempt") == 1 else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class AuditSink:
    """Collects delivery outcomes on a dedicated asyncio loop."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.records = []
        self._thread = threading.Thread(target=self._run, name="audit-loop")
        self._ready = threading.Event()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()
        self.loop.close()

    def start(self):
        self._thread.start()
        self._ready.wait()

    async def _write(self, record):
        await asyncio.sleep(0)
        self.records.append(record)
        return len(self.records)

    def record(self, record):
        return asyncio.run_coroutine_threadsafe(self._write(record), self.loop)

    def note(self, text):
        self.loop.call_soon_threadsafe(self.records.append, {"note": text})

    def count(self):
        fut = asyncio.run_coroutine_threadsafe(self._count(), self.loop)
        return fut.result(timeout=2)

    async def _count(self):
        return len(self.records)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


class Dispatcher:
    def __init__(self, base_url, bucket, audit, workers=4):
        self.base_url = base_url
        self.bucket = bucket
        self.audit = audit
        self.jobs = queue.Queue()
        self.workers = [threading.Thread(target=self._worker, args=(i,), name=f"hook-{i}") for i in range(workers)]
        self._state = _Condition()
        self._outstanding = 0
        self.delivered = 0
        self.failed = 0
        self._pending_audits = []

    def start(self):
        for w in self.workers:
            w.start()

    def submit(self, subscriber, payload):
        with self._state:
            self._outstanding += 1
        self.jobs.put((subscriber, payload, 1))

    def _post(self, subscriber, payload, attempt):
        data = json.dumps(dict(payload, attempt=attempt)).encode()
        req = urllib.request.Request(f"{self.base_url}/{subscriber}", data=data,
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def _worker(self, idx):
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                subscriber, payload, attempt = job
                self.bucket.take()
                status = self._post(subscriber, payload, attempt)
                if status >= 500 and attempt < MAX_ATTEMPTS:
                    time.sleep(0.005 * attempt)
                    self.jobs.put((subscriber, payload, attempt + 1))
                    continue
                outcome = "ok" if status < 300 else "failed"
                fut = self.audit.record({"sub": subscriber, "seq": payload["seq"], "attempt": attempt, "outcome": outcome})
                with self._state:
                    self._pending_audits.append(fut)
                    if outcome == "ok":
                        self.delivered += 1
                    else:
                        self.failed += 1
                    self._outstanding -= 1
                    if self._outstanding == 0:
                        self._state.notify_all()
            finally:
                self.jobs.task_done()

    def drain(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self._state:
            while self._outstanding > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._outstanding} deliveries still pending")
                self._state.wait(remaining)
            audits = list(self._pending_audits)
        for fut in audits:
            fut.result(timeout=2)

    def stop(self):
        self.jobs.join()
        for _ in self.workers:
            self.jobs.put(None)
        for w in self.workers:
            w.join()


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    server_thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"

    audit = AuditSink()
    audit.start()
    audit.note("dispatcher starting")

    bucket = TokenBucket(RATE_PER_SEC, BURST)
    dispatcher = Dispatcher(base_url, bucket, audit)
    dispatcher.start()

    subscribers = ["billing", "crm", "analytics"]
    producers = []
    for sub in subscribers:
        t = threading.Thread(target=lambda name=sub: [dispatcher.submit(name, {"seq": i, "event": "order.created"})
                                                      for i in range(30)],
                             name=f"producer-{sub}")
        producers.append(t)
        t.start()
    for t in producers:
        t.join()

    dispatcher.drain()
    dispatcher.stop()
    audit.note("dispatcher stopped")
    total_records = audit.count()
    audit.stop()

    server.shutdown()
    server_thread.join()
    server.server_close()

    with Receiver.counts_lock:
        counts = dict(Receiver.counts)
    print(f"delivered={dispatcher.delivered} failed={dispatcher.failed} audit_records={total_records}")
    print(f"receiver saw: {counts}")


if __name__ == "__main__":
    main()
