"""
Job retry scheduler with exponential backoff.

Jobs are submitted to an intake queue, validated and placed on a time-ordered
schedule.  A dispatcher thread hands due jobs to a worker pool; a failed job is
rescheduled with exponential backoff plus jitter until ``max_attempts`` is
reached, after which it goes to a dead-letter sink.  Job lifecycle events are
published on an asyncio event loop running in its own thread so that async
subscribers (websocket pushers, metrics exporters) can consume them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

log = logging.getLogger("retry")

BASE_DELAY_S = 0.5
MAX_DELAY_S = 60.0
JITTER_FRACTION = 0.2
DEFAULT_MAX_ATTEMPTS = 5
WORKERS = 8
DISPATCH_IDLE_S = 0.5
SHUTDOWN_TIMEOUT_S = 30.0

_SENTINEL = object()

Subscriber = Callable[["JobEvent"], Awaitable[None]]


def backoff_delay(attempt: int, base: float = BASE_DELAY_S, cap: float = MAX_DELAY_S,
                  jitter: float = JITTER_FRACTION) -> float:
    """Delay before retry number ``attempt`` (1-based), with +/- jitter."""
    delay = min(cap, base * (2 ** (attempt - 1)))
    return delay * (1.0 + random.uniform(-jitter, jitter))


@dataclass
class Job:
    job_id: str
    func: Callable[..., Any]
    args: tuple = ()
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    attempts: int = 0
    last_error: Optional[str] = None


@dataclass(order=True)
class _Scheduled:
    run_at: float
    seq: int
    job: Job = field(compare=False)


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    status: str
    attempts: int
    detail: str = ""


def _log_dead_letter(job: Job) -> None:
    log.error("job %s exhausted %d attempts: %s", job.job_id, job.attempts, job.last_error)


class RetryScheduler:
    def __init__(self, workers: int = WORKERS,
                 dead_letter: Optional[Callable[[Job], None]] = None) -> None:
        self._intake: "queue.Queue[object]" = queue.Queue()
        self._schedule: "queue.PriorityQueue[_Scheduled]" = queue.PriorityQueue()
        self._seq = itertools.count()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._side_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dead-letter")
        self._dead_letter = dead_letter or _log_dead_letter
        self._lock = threading.Lock()
        self._inflight: Dict[str, Future] = {}
        self._results: Dict[str, Any] = {}
        self._outcomes: Dict[Tuple[str, str], int] = {}
        self._known_ids: set = set()
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._loop_ready = threading.Event()
        self._events: Optional[asyncio.Queue] = None
        self._subscribers: List[Subscriber] = []
        self._intake_thread = threading.Thread(target=self._intake_loop, name="intake")
        self._dispatch_thread = threading.Thread(target=self._dispatch_loop, name="dispatcher")
        self._loop_thread = threading.Thread(target=self._run_event_loop, name="events")

    # -- submission -------------------------------------------------------

    def submit(self, job: Job) -> None:
        self._intake.put(job)

    def flush(self) -> None:
        """Block until every submitted job has been validated and scheduled."""
        self._intake.join()

    def _intake_loop(self) -> None:
        while True:
            item = self._intake.get()
            if item is _SENTINEL:
                self._intake.task_done()
                return
            job = item
            if job.job_id in self._known_ids:
                log.warning("duplicate job id %s ignored", job.job_id)
                continue
            if not callable(job.func) or job.max_attempts < 1:
                log.error("rejecting malformed job %s", job.job_id)
                self._intake.task_done()
                continue
            self._known_ids.add(job.job_id)
            self._schedule_at(job, time.monotonic())
            self._intake.task_done()

    def _schedule_at(self, job: Job, run_at: float) -> None:
        self._schedule.put(_Scheduled(run_at, next(self._seq), job))

    # -- dispatch ---------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                entry = self._schedule.get(timeout=DISPATCH_IDLE_S)
            except queue.Empty:
                continue
            delay = entry.run_at - time.monotonic()
            if delay > 0:
                self._schedule.put(entry)
                self._stop.wait(min(delay, DISPATCH_IDLE_S))
                continue
            self._start(entry.job)

    def _start(self, job: Job) -> None:
        job.attempts += 1
        future = self._pool.submit(job.func, *job.args)
        with self._lock:
            self._inflight[job.job_id] = future
        future.add_done_callback(lambda fut, job=job: self._on_done(job, fut))

    def _record_outcome(self, job: Job, outcome: str) -> None:
        key = (getattr(job.func, "__name__", "job"), outcome)
        with threading.Lock():
            self._outcomes[key] = self._outcomes.get(key, 0) + 1

    def _on_done(self, job: Job, future: Future) -> None:
        with self._lock:
            self._inflight.pop(job.job_id, None)
        exc = future.exception()
        if exc is None:
            with self._lock:
                self._results[job.job_id] = future.result()
            self._record_outcome(job, "succeeded")
            self._publish(JobEvent(job.job_id, "succeeded", job.attempts))
            return
        job.last_error = f"{type(exc).__name__}: {exc}"
        if job.attempts >= job.max_attempts:
            self._record_outcome(job, "dead")
            self._publish(JobEvent(job.job_id, "dead", job.attempts, job.last_error))
            self._side_pool.submit(self._dead_letter, job)
            return
        delay = backoff_delay(job.attempts)
        log.info("job %s attempt %d failed (%s); retrying in %.2fs",
                 job.job_id, job.attempts, job.last_error, delay)
        self._record_outcome(job, "retrying")
        self._publish(JobEvent(job.job_id, "retrying", job.attempts, job.last_error))
        self._schedule_at(job, time.monotonic() + delay)

    # -- queries ----------------------------------------------------------

    def wait_for(self, job_id: str, timeout: Optional[float] = None) -> Any:
        """Wait for the running attempt of ``job_id`` and return its result."""
        with self._lock:
            if job_id in self._results:
                return self._results[job_id]
            future = self._inflight.get(job_id)
            if future is None:
                raise KeyError(f"job {job_id} is not running")
            return future.result(timeout=timeout)

    def outcome_counts(self) -> Dict[Tuple[str, str], int]:
        with self._lock:
            return dict(self._outcomes)

    # -- events -----------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        """Register an async subscriber; safe to call from any thread."""
        self._loop.call_soon_threadsafe(self._subscribers.append, subscriber)

    def _publish(self, event: JobEvent) -> None:
        if self._events is None:
            return
        self._loop.call_soon(self._events.put_nowait, event)

    async def _consume_events(self) -> None:
        while True:
            event = await self._events.get()
            if event is None:
                return
            for subscriber in list(self._subscribers):
                try:
                    await subscriber(event)
                except Exception:
                    log.exception("event subscriber failed on %s", event)

    def _run_event_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._events = asyncio.Queue()
        consumer = self._loop.create_task(self._consume_events())
        self._loop_ready.set()
        try:
            self._loop.run_forever()
        finally:
            if not consumer.done():
                consumer.cancel()
                self._loop.run_until_complete(asyncio.gather(consumer, return_exceptions=True))
            self._loop.close()

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        self._loop_thread.start()
        if not self._loop_ready.wait(timeout=5.0):
            raise RuntimeError("event loop thread did not start")
        self._intake_thread.start()
        self._dispatch_thread.start()

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        self._intake.put(_SENTINEL)
        self._intake_thread.join(timeout)
        self._stop.set()
        self._dispatch_thread.join(timeout)
        self._pool.shutdown(wait=True)
        self._side_pool.shutdown(wait=True)
        done = asyncio.run_coroutine_threadsafe(self._events.put(None), self._loop)
        done.result(timeout=5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout)


def flaky_fetch(url: str, fail_rate: float) -> int:
    """Pretend to fetch ``url``; fails with probability ``fail_rate``."""
    time.sleep(random.uniform(0.01, 0.05))
    if random.random() < fail_rate:
        raise ConnectionError(f"connection reset fetching {url}")
    return len(url)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    scheduler = RetryScheduler()

    async def print_event(event: JobEvent) -> None:
        log.info("event: %s %s (attempt %d)", event.job_id, event.status, event.attempts)

    scheduler.subscribe(print_event)
    scheduler.start()
    for i in range(20):
        scheduler.submit(Job(f"fetch-{i}", flaky_fetch, (f"https://example.invalid/item/{i}", 0.4)))
    scheduler.flush()
    time.sleep(5.0)
    log.info("outcomes: %s", scheduler.outcome_counts())
    scheduler.shutdown()


if __name__ == "__main__":
    main()
