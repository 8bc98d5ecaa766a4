"""Ship application log records to the central collector in batches.

Application threads call ``LogShipper.ship(record)`` (or attach a
``ShipperHandler`` to a logger).  Records go into a bounded in-memory
buffer; when it is full the oldest records are dropped.  Batcher threads
drain the buffer, waiting up to ``linger`` seconds for a batch to fill, and
hand each batch to an asyncio sender running on a dedicated event-loop
thread, which keeps one framed TCP connection to the collector:

    frame := uint32 big-endian length || gzip(ndjson lines)
"""

import asyncio
import collections
import gzip
import json
import logging
import threading
import time


class LogShipper:
    def __init__(self, host, port, capacity=20000, batch_size=500,
                 linger=1.0, batchers=2):
        self.host, self.port = host, port
        self.capacity = capacity
        self.batch_size = batch_size
        self.linger = linger
        self._buf = collections.deque()        # (enqueued_at, line)
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self.dropped = 0
        self.sent = 0
        self._loop = asyncio.new_event_loop()
        self._send_lock = asyncio.Lock()
        self._writer = None
        self._loop_thread = threading.Thread(target=self._run_loop,
                                             name="shipper-loop", daemon=True)
        self._batchers = [threading.Thread(target=self._batch_loop,
                                           name=f"shipper-batch-{i}")
                          for i in range(batchers)]

    # -- producer side -------------------------------------------------

    def start(self):
        self._loop_thread.start()
        for t in self._batchers:
            t.start()
        return self

    def ship(self, record):
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._cond:
            if self._closing.is_set():
                raise RuntimeError("shipper is closed")
            if len(self._buf) >= self.capacity:
                self._buf.popleft()
                self.dropped += 1
            self._buf.append((time.monotonic(), line))
            if len(self._buf) >= self.batch_size:
                self._cond.notify()
            elif len(self._buf) == 1:
                self._cond.notify()

    # -- batching threads ----------------------------------------------

    def _next_batch(self):
        with self._cond:
            if not self._buf:
                if self._closing.is_set():
                    return None
                self._cond.wait()
            deadline = self._buf[0][0] + self.linger
            while len(self._buf) < self.batch_size and not self._closing.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(self.batch_size, len(self._buf))
            return [self._buf.popleft()[1] for _ in range(n)]

    def _batch_loop(self):
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._loop.create_task(self._send(batch))

    # -- event-loop thread ---------------------------------------------

    def _run_loop(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _send(self, batch):
        payload = gzip.compress(("\n".join(batch) + "\n").encode("utf-8"))
        frame = len(payload).to_bytes(4, "big") + payload
        async with self._send_lock:
            for attempt in range(4):
                try:
                    if self._writer is None or self._writer.is_closing():
                        _, self._writer = await asyncio.open_connection(
                            self.host, self.port)
                    self._writer.write(frame)
                    await self._writer.drain()
                    self.sent += len(batch)
                    return
                except OSError:
                    if self._writer is not None:
                        self._writer.close()
                    self._writer = None
                    await asyncio.sleep(0.25 * 2 ** attempt)
            self.dropped += len(batch)

    async def _drain(self):
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    # -- shutdown ------------------------------------------------------

    def close(self, timeout=10.0):
        with self._cond:
            self._closing.set()
            self._cond.notify_all()
        for t in self._batchers:
            t.join(timeout)
        fut = asyncio.run_coroutine_threadsafe(self._drain(), self._loop)
        try:
            fut.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout)

    def stats(self):
        with self._cond:
            return {"buffered": len(self._buf), "dropped": self.dropped,
                    "sent": self.sent}


class ShipperHandler(logging.Handler):
    """logging.Handler that forwards formatted records to a LogShipper."""

    def __init__(self, shipper, service, level=logging.INFO):
        super().__init__(level)
        self.shipper = shipper
        self.service = service

    def emit(self, record):
        try:
            self.shipper.ship({
                "ts": record.created,
                "level": record.levelname,
                "logger": record.name,
                "service": self.service,
                "thread": record.threadName,
                "msg": self.format(record),
            })
        except Exception:
            self.handleError(record)

    def close(self):
        # don't block logging.shutdown() on the network drain
        threading.Thread(target=self.shipper.close(), name="shipper-close").start()
        super().close()


def install(logger, host, port, service):
    shipper = LogShipper(host, port).start()
    handler = ShipperHandler(shipper, service)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return shipper
