"""
Database connection health checker.

Probes a fleet of database endpoints on a fixed cadence (TCP connect plus a
read of the server greeting), keeps a rolling per-endpoint status table and
publishes healthy/unhealthy transitions to registered listeners.  New
endpoints can be registered at runtime, typically by a service-discovery
watcher when replicas are added.

Typical use::

    checker = HealthChecker([Endpoint("pg-primary", "10.0.0.5", 5432, "primary")])
    checker.add_listener(lambda ep, ok: print(ep.name, ok))
    checker.start()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

log = logging.getLogger("dbhealth")

PROBE_INTERVAL_S = 5.0
PROBE_TIMEOUT_S = 2.0
REPORT_INTERVAL_S = 15.0
FAILOVER_CHECK_S = 1.0
DISCOVERY_INTERVAL_S = 30.0
MAX_PROBE_WORKERS = 8
UNHEALTHY_AFTER_FAILURES = 3
SLOW_LATENCY_MS = 250.0
LATENCY_HISTORY = 50
BANNER_BYTES = 128
DISCOVERY_FILE = os.environ.get("DBHEALTH_ENDPOINTS", "endpoints.txt")

Listener = Callable[["Endpoint", bool], None]


@dataclass(frozen=True)
class Endpoint:
    """A database endpoint to be probed."""

    name: str
    host: str
    port: int
    role: str = "replica"

    @property
    def address(self) -> Tuple[str, int]:
        return (self.host, self.port)


@dataclass
class EndpointStatus:
    """Mutable health record for one endpoint; guarded by the checker's lock."""

    endpoint: Endpoint
    healthy: bool = True
    consecutive_failures: int = 0
    last_latency_ms: Optional[float] = None
    last_error: Optional[str] = None
    last_checked: float = 0.0
    history: List[float] = field(default_factory=list)

    def record_success(self, latency_ms: float) -> None:
        self.consecutive_failures = 0
        self.healthy = True
        self.last_error = None
        self.last_latency_ms = latency_ms
        self.last_checked = time.time()
        self.history.append(latency_ms)
        del self.history[:-LATENCY_HISTORY]

    def record_failure(self, error: str) -> None:
        self.consecutive_failures += 1
        self.last_error = error
        self.last_checked = time.time()
        if self.consecutive_failures >= UNHEALTHY_AFTER_FAILURES:
            self.healthy = False

    @property
    def p50_latency_ms(self) -> Optional[float]:
        if not self.history:
            return None
        ordered = sorted(self.history)
        return ordered[len(ordered) // 2]


def probe_endpoint(endpoint: Endpoint, timeout: float = PROBE_TIMEOUT_S) -> float:
    """Connect, read the server greeting and return the round trip in ms."""
    started = time.monotonic()
    with socket.create_connection(endpoint.address, timeout=timeout) as sock:
        sock.settimeout(timeout)
        banner = sock.recv(BANNER_BYTES)
        if not banner:
            raise ConnectionError(f"{endpoint.name}: connection closed before greeting")
    return (time.monotonic() - started) * 1000.0


class ReportThread(threading.Thread):
    """Logs a status summary every ``interval`` seconds until stopped."""

    def __init__(self, checker: "HealthChecker", interval: float) -> None:
        super().__init__(name="health-report", daemon=True)
        self._checker = checker
        self._interval = interval

    def run(self) -> None:
        while not self._checker.stopped.wait(self._interval):
            try:
                self._checker.log_report()
            except Exception:
                log.exception("status report failed")


class HealthChecker:
    """Runs probe rounds on a worker pool and tracks endpoint health."""

    def __init__(self, endpoints: List[Endpoint], interval: float = PROBE_INTERVAL_S) -> None:
        self._interval = interval
        self._status_lock = threading.Lock()
        self._status: Dict[str, EndpointStatus] = {ep.name: EndpointStatus(ep) for ep in endpoints}
        self._listeners: List[Listener] = []
        self._pool = ThreadPoolExecutor(max_workers=MAX_PROBE_WORKERS, thread_name_prefix="probe")
        self.stopped = threading.Event()
        self.total_failures = 0
        self.rounds_completed = 0
        self._loop_thread: Optional[threading.Thread] = None
        self._reporter: Optional[ReportThread] = None

    # -- registration -----------------------------------------------------

    def register(self, endpoint: Endpoint) -> bool:
        with self._status_lock:
            if endpoint.name in self._status:
                return False
            self._status[endpoint.name] = EndpointStatus(endpoint)
        log.info("registered endpoint %s (%s:%d)", endpoint.name, endpoint.host, endpoint.port)
        return True

    def add_listener(self, listener: Listener) -> None:
        with self._status_lock:
            self._listeners.append(listener)

    # -- probing ----------------------------------------------------------

    def _notify(self, endpoint: Endpoint, healthy: bool) -> None:
        with self._status_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            self._pool.submit(listener, endpoint, healthy)

    def _check_one(self, endpoint: Endpoint) -> bool:
        try:
            latency = probe_endpoint(endpoint)
        except OSError as exc:
            self.total_failures += 1
            with self._status_lock:
                status = self._status[endpoint.name]
                was_healthy = status.healthy
                status.record_failure(str(exc))
                now_healthy = status.healthy
            if was_healthy and not now_healthy:
                log.warning("%s marked unhealthy: %s", endpoint.name, exc)
                self._notify(endpoint, False)
            return False
        with self._status_lock:
            status = self._status[endpoint.name]
            was_healthy = status.healthy
            status.record_success(latency)
        if not was_healthy:
            log.info("%s recovered (%.1f ms)", endpoint.name, latency)
            self._notify(endpoint, True)
        return True

    def run_round(self) -> int:
        """Probe every registered endpoint once; return how many are healthy."""
        with self._status_lock:
            endpoints = [st.endpoint for st in self._status.values()]
        futures = {self._pool.submit(self._check_one, ep): ep for ep in endpoints}
        healthy = 0
        for future in as_completed(futures):
            endpoint = futures[future]
            try:
                if future.result():
                    healthy += 1
            except Exception:
                log.exception("probe of %s crashed", endpoint.name)
        self.rounds_completed += 1
        return healthy

    def _probe_loop(self) -> None:
        while not self.stopped.is_set():
            started = time.monotonic()
            healthy = self.run_round()
            log.debug("round %d: %d healthy", self.rounds_completed, healthy)
            elapsed = time.monotonic() - started
            self.stopped.wait(max(0.0, self._interval - elapsed))

    # -- failover ---------------------------------------------------------

    def pick_failover_candidate(self) -> Optional[Endpoint]:
        """Return the fastest replica that still answers if the primary is down."""
        with self._status_lock:
            primary = next((st for st in self._status.values() if st.endpoint.role == "primary"), None)
            if primary is None or primary.healthy:
                return None
            replicas = sorted(
                (st for st in self._status.values() if st.endpoint.role == "replica" and st.healthy),
                key=lambda st: st.p50_latency_ms or float("inf"),
            )
            for status in replicas:
                try:
                    probe_endpoint(status.endpoint, timeout=PROBE_TIMEOUT_S)
                except OSError as exc:
                    status.record_failure(str(exc))
                    continue
                return status.endpoint
        return None

    # -- reporting --------------------------------------------------------

    def snapshot(self) -> Dict[str, dict]:
        with self._status_lock:
            return {
                name: {
                    "healthy": st.healthy,
                    "failures": st.consecutive_failures,
                    "latency_ms": st.last_latency_ms,
                    "error": st.last_error,
                }
                for name, st in self._status.items()
            }

    def log_report(self) -> None:
        unhealthy: List[str] = []
        slow: List[str] = []
        for name, status in self._status.items():
            if not status.healthy:
                unhealthy.append(name)
            elif (status.p50_latency_ms or 0.0) > SLOW_LATENCY_MS:
                slow.append(name)
        with self._status_lock:
            failures, self.total_failures = self.total_failures, 0
            count = len(self._status)
        log.info(
            "health: %d endpoints, unhealthy=%s slow=%s, %d probe failures since last report",
            count, unhealthy, slow, failures,
        )

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        if self._loop_thread is not None:
            raise RuntimeError("health checker already started")
        self._loop_thread = threading.Thread(target=self._probe_loop, name="probe-loop", daemon=True)
        self._loop_thread.start()
        self._reporter = ReportThread(self, REPORT_INTERVAL_S)
        self._reporter.run()
        log.info("health checker started")

    def stop(self, timeout: float = 10.0) -> None:
        self.stopped.set()
        if self._loop_thread is not None:
            self._loop_thread.join(timeout)
        if self._reporter is not None and self._reporter.is_alive():
            self._reporter.join(timeout)
        self._pool.shutdown(wait=True)


def load_endpoints(path: str) -> List[Endpoint]:
    """Parse ``name host port [role]`` lines; blank lines and # comments are skipped."""
    endpoints: List[Endpoint] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) not in (3, 4):
                log.warning("%s:%d: malformed endpoint line", path, lineno)
                continue
            role = parts[3] if len(parts) == 4 else "replica"
            endpoints.append(Endpoint(parts[0], parts[1], int(parts[2]), role))
    return endpoints


def discovery_watcher(checker: HealthChecker, path: str, interval: float = DISCOVERY_INTERVAL_S) -> None:
    """Register endpoints that appear in the discovery file."""
    while not checker.stopped.wait(interval):
        try:
            for endpoint in load_endpoints(path):
                checker.register(endpoint)
        except (OSError, ValueError):
            log.exception("service discovery poll of %s failed", path)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    seed = [
        Endpoint("pg-primary", "127.0.0.1", 5432, "primary"),
        Endpoint("pg-replica-1", "127.0.0.1", 5433),
        Endpoint("pg-replica-2", "127.0.0.1", 5434),
    ]
    checker = HealthChecker(seed)
    checker.add_listener(lambda ep, ok: log.warning("%s is now %s", ep.name, "UP" if ok else "DOWN"))
    watcher = threading.Thread(target=discovery_watcher, args=(checker, DISCOVERY_FILE), name="discovery")
    watcher.start()
    checker.start()
    try:
        while not checker.stopped.wait(FAILOVER_CHECK_S):
            candidate = checker.pick_failover_candidate()
            if candidate is not None:
                log.error("primary down; promote %s", candidate.name)
    except KeyboardInterrupt:
        pass
    finally:
        checker.stop()
        watcher.join()


if __name__ == "__main__":
    main()
