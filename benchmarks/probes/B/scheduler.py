"""Lightweight in-process job scheduler.

Jobs are registered with a name, a zero-argument callable and a retry
policy.  A dispatcher thread hands due jobs to a thread pool; outcomes are
stored in a results registry that the /status handler reads from its own
request threads.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

log = logging.getLogger("scheduler")


@dataclass
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay_for(self, attempt: int) -> float:
        d = self.base_delay * (2 ** (attempt - 1))
        return min(d, self.max_delay) * (0.5 + random.random() / 2)


@dataclass
class JobSpec:
    name: str
    func: Callable[[], Any]
    interval: float
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    next_run: float = 0.0


@dataclass
class JobResult:
    name: str
    ok: bool
    attempts: int
    value: Any = None
    error: Optional[str] = None
    finished_at: float = field(default_factory=time.time)


class ResultsRegistry:
    """Keeps the last N results per job plus aggregate counters."""

    def __init__(self, keep: int = 20) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._history: dict[str, list[JobResult]] = {}
        self.failed = 0
        self.total = 0

    def record(self, result: JobResult) -> None:
        with self._lock:
            hist = self._history.setdefault(result.name, [])
            hist.append(result)
            del hist[: -self._keep]
            if not result.ok:
                self.failed += 1
        self.total += 1

    def last(self, name: str) -> Optional[JobResult]:
        with self._lock:
            hist = self._history.get(name)
            return hist[-1] if hist else None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "jobs": {k: len(v) for k, v in self._history.items()},
                "failed": self.failed,
                "total": self.total,
            }


class Scheduler:
    def __init__(self, workers: int = 4,
                 on_result: Optional[Callable[[JobResult], None]] = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._jobs: dict[str, JobSpec] = {}
        self._jobs_lock = threading.Lock()
        self._stop = threading.Event()
        self._dispatcher: Optional[threading.Thread] = None
        self._on_result = on_result
        self.registry = ResultsRegistry()

    def add(self, spec: JobSpec) -> None:
        with self._jobs_lock:
            self._jobs[spec.name] = spec

    def remove(self, name: str) -> None:
        with self._jobs_lock:
            self._jobs.pop(name, None)

    def _execute(self, spec: JobSpec) -> JobResult:
        attempt = 0
        while True:
            attempt += 1
            try:
                value = spec.func()
            except Exception as exc:  # job code is untrusted
                if attempt >= spec.policy.max_attempts or self._stop.is_set():
                    result = JobResult(spec.name, False, attempt, error=repr(exc))
                    break
                delay = spec.policy.delay_for(attempt)
                log.warning("%s failed (%r), retrying in %.2fs", spec.name, exc, delay)
                self._stop.wait(delay)
            else:
                result = JobResult(spec.name, True, attempt, value=value)
                break
        self.registry.record(result)
        if self._on_result is not None:
            self._on_result(result)
        return result

    @staticmethod
    def _log_crash(fut: Future) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            log.error("job wrapper crashed: %r", exc)

    def _dispatch_loop(self, tick: float) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._jobs_lock:
                due = [s for s in self._jobs.values() if s.next_run <= now]
                for s in due:
                    s.next_run = now + s.interval
            for spec in due:
                fut = self._pool.submit(self._execute, spec)
                fut.add_done_callback(self._log_crash)
            self._stop.wait(tick)

    def run_now(self, name: str) -> bool:
        """Trigger a job immediately (used by the admin 'run' button)."""
        with self._jobs_lock:
            spec = self._jobs.get(name)
        if spec is None:
            return False
        self._pool.submit(self._execute, spec)
        return True

    def start(self, tick: float = 0.1) -> None:
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, args=(tick,), name="dispatcher")
        self._dispatcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._dispatcher is not None:
            self._dispatcher.join()
        self._pool.shutdown(wait=True)


class HealthClient:
    """Small stand-in for the pooled HTTP client used in production."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session_id = random.getrandbits(32)
        time.sleep(0.05)  # TLS handshake + token exchange in the real client
        self._rng = random.Random(self.session_id)

    def check(self) -> dict[str, Any]:
        if self._rng.random() < 0.2:
            raise ConnectionError(f"{self.base_url}: connection reset by peer")
        return {"url": self.base_url, "session": self.session_id,
                "latency_ms": self._rng.randint(5, 80)}


_clients: dict[str, HealthClient] = {}


def client_for(base_url: str) -> HealthClient:
    if base_url not in _clients:
        _clients[base_url] = HealthClient(base_url)
    return _clients[base_url]


def register_health_checks(sched: Scheduler, endpoints: dict[str, str]) -> None:
    for name, url in endpoints.items():
        sched.add(JobSpec(f"health:{name}", lambda: client_for(url).check(), interval=1.0))


def make_alerter(threshold: int) -> Callable[[JobResult], None]:
    streaks: dict[str, int] = {}
    lock = threading.Lock()

    def on_result(result: JobResult) -> None:
        with lock:
            streaks[result.name] = 0 if result.ok else streaks.get(result.name, 0) + 1
            streak = streaks[result.name]
        if streak == threshold:
            log.critical("paging on-call: %s failed %d runs in a row (%s)",
                         result.name, streak, result.error)

    return on_result


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(threadName)-10s %(message)s")
    sched = Scheduler(workers=4, on_result=make_alerter(threshold=3))
    register_health_checks(sched, {
        "billing": "https://billing.internal/healthz",
        "search": "https://search.internal/healthz",
        "auth": "https://auth.internal/healthz",
    })
    sched.add(JobSpec("registry-report", lambda: sched.registry.snapshot(), interval=2.0))
    sched.start()
    try:
        time.sleep(3.0)
        sched.run_now("health:billing")
        time.sleep(1.0)
    finally:
        sched.stop()
    for name in ("health:billing", "health:search", "health:auth"):
        print(name, sched.registry.last(name))
    print(sched.registry.snapshot())


if __name__ == "__main__":
    main()
