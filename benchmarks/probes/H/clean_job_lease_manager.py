"""Distributed job lease manager (single-process simulation).

Worker nodes lease jobs, heartbeat to keep them alive and complete them; a
reaper expires leases whose holder went silent and requeues the job.
"""
import functools
import itertools
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional


class _WorkerContext(threading.local):
    def __init__(self) -> None:
        super().__init__()
        self.worker = threading.current_thread().name
        self.job_id: Optional[str] = None


_ctx = _WorkerContext()
_log_lines: List[str] = []
_log_lock = threading.Lock()


def log(message: str) -> None:
    line = f"[{_ctx.worker}:{_ctx.job_id}] {message}"
    with _log_lock:
        _log_lines.append(line)


@dataclass
class Job:
    job_id: str
    payload: int
    attempts: int = 0
    result: Optional[int] = None
    done: bool = False

    def run(self, keep_going: Callable[[], bool]) -> Optional[int]:
        """Compute in small steps; give up as soon as the lease is lost."""
        total = 0
        for step in range(self.payload):
            if not keep_going():
                return None
            total += step * step
            time.sleep(0.002)
        return total


@dataclass
class Lease:
    job_id: str
    holder: str
    token: int
    expires_at: float


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.held: set = set()
        self.finished = 0

    def on_granted(self, job_id: str) -> None:
        with self._lock:
            self.held.add(job_id)

    def on_released(self, job_id: str, finished: bool) -> None:
        with self._lock:
            self.held.discard(job_id)
            if finished:
                self.finished += 1

    def finished_count(self) -> int:
        with self._lock:
            return self.finished


class LeaseCoordinator:
    def __init__(self, lease_ttl: float = 0.08) -> None:
        self.lease_ttl = lease_ttl
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._jobs: Dict[str, Job] = {}
        self._pending: Deque[str] = deque()
        self._leases: Dict[str, Lease] = {}
        self._nodes: Dict[str, Node] = {}
        self._tokens = itertools.count(1)
        self._stats: Counter = Counter()
        self._closed = False

    # Helpers below expect the caller to hold self._lock.
    def _bump(self, key: str) -> None:
        self._stats[key] += 1

    def _is_current(self, lease: Lease) -> bool:
        cur = self._leases.get(lease.job_id)
        return (cur is not None and cur.token == lease.token
                and cur.expires_at > time.monotonic())

    def _work_or_closed(self) -> bool:
        return bool(self._pending) or self._closed

    # Public API.
    def register_node(self, node: Node) -> None:
        with self._lock:
            self._nodes[node.name] = node

    def submit(self, job: Job) -> None:
        with self._changed:
            self._jobs[job.job_id] = job
            self._pending.append(job.job_id)
            self._bump("submitted")
            self._changed.notify()

    def job(self, job_id: str) -> Job:
        with self._lock:
            return self._jobs[job_id]

    def is_closed(self) -> bool:
        with self._lock:
            return self._closed

    def acquire(self, holder: str, timeout: float) -> Optional[Lease]:
        with self._changed:
            if not self._changed.wait_for(self._work_or_closed, timeout):
                return None
            if not self._pending:
                return None  # closed and drained
            return self._grant(self._pending.popleft(), holder)

    def _grant(self, job_id: str, holder: str) -> Lease:
        with self._lock:  # re-entrant: acquire() already holds it
            lease = Lease(job_id, holder, next(self._tokens),
                          time.monotonic() + self.lease_ttl)
            self._leases[job_id] = lease
            self._jobs[job_id].attempts += 1
            self._bump("granted")
            self._nodes[holder].on_granted(job_id)
            return lease

    def heartbeat(self, lease: Lease) -> bool:
        with self._lock:
            if not self._is_current(lease):
                return False
            self._leases[lease.job_id].expires_at = (
                time.monotonic() + self.lease_ttl)
            self._bump("heartbeats")
            return True

    def still_held(self, lease: Lease) -> bool:
        with self._lock:
            return self._is_current(lease)

    def complete(self, lease: Lease, result: int) -> bool:
        with self._changed:
            if not self._is_current(lease):
                self._bump("late_completions")
                return False
            del self._leases[lease.job_id]
            job = self._jobs[lease.job_id]
            job.result, job.done = result, True
            self._bump("completed")
            self._nodes[lease.holder].on_released(lease.job_id, finished=True)
            self._changed.notify_all()
            return True

    def reap_expired(self) -> int:
        expired = 0
        with self._changed:
            now = time.monotonic()
            for job_id, lease in list(self._leases.items()):
                if lease.expires_at <= now:
                    del self._leases[job_id]
                    self._pending.append(job_id)
                    self._nodes[lease.holder].on_released(job_id, False)
                    self._bump("expired")
                    expired += 1
            if expired:
                self._changed.notify_all()
        return expired

    def wait_all_done(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not all(j.done for j in self._jobs.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def stats(self) -> Dict[str, int]:
        with self._lock:
            retried = sum(1 for j in self._jobs.values() if j.attempts > 1)
            return dict(self._stats, retried_jobs=retried)


class Reaper(threading.Thread):
    def __init__(self, coord: LeaseCoordinator, interval: float) -> None:
        super().__init__(name="reaper", daemon=True)
        self.coord = coord
        self.interval = interval
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            if self.coord.reap_expired():
                log("expired stale leases")

    def stop(self) -> None:
        self._halt.set()
        self.join()


class Heartbeat(threading.Thread):
    def __init__(self, coord: LeaseCoordinator, lease: Lease,
                 partition_after: Optional[int] = None) -> None:
        super().__init__(name=f"hb-{lease.job_id}", daemon=True)
        self.coord, self.lease = coord, lease
        self.partition_after = partition_after
        self.lost = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        beats = 0
        while not self._halt.wait(self.coord.lease_ttl / 3):
            if self.partition_after is not None and beats >= self.partition_after:
                continue  # simulated partition: heartbeats never arrive
            if not self.coord.heartbeat(self.lease):
                self.lost.set()
                return
            beats += 1

    def stop(self) -> None:
        self._halt.set()
        self.join()


_coordinator: Optional[LeaseCoordinator] = None
_coordinator_lock = threading.Lock()


def get_coordinator() -> LeaseCoordinator:
    global _coordinator
    if _coordinator is None:
        with _coordinator_lock:
            if _coordinator is None:
                _coordinator = LeaseCoordinator()
    return _coordinator


def worker_loop(coord: LeaseCoordinator, node: Node,
                slots: threading.Semaphore, flaky: bool) -> int:
    completed = leases_taken = 0
    while not coord.is_closed():
        lease = coord.acquire(node.name, timeout=0.1)
        if lease is None:
            continue
        leases_taken += 1
        _ctx.job_id = lease.job_id
        if not slots.acquire(timeout=0.5):
            log("no execution slot, letting the lease lapse")
            continue
        try:
            partition = 1 if flaky and leases_taken == 1 else None
            hb = Heartbeat(coord, lease, partition_after=partition)
            hb.start()
            try:
                job = coord.job(lease.job_id)
                result = job.run(lambda: not hb.lost.is_set()
                                 and coord.still_held(lease))
            finally:
                hb.stop()
        finally:
            slots.release()
        if result is not None and coord.complete(lease, result):
            completed += 1
            log("completed")
        else:
            log("lease lost before completion")
        _ctx.job_id = None
    return completed


def audit_nodes(nodes: List[Node]) -> Dict[str, int]:
    """Cross-check the per-node counters from several auditor threads."""
    totals: Dict[str, int] = {}
    totals_lock = threading.Lock()

    def audit_one(node: Node) -> None:
        count = node.finished_count()
        with totals_lock:
            totals[node.name] = totals.get(node.name, 0) + count

    auditors = [threading.Thread(target=audit_one, args=(node,))
                for node in nodes]
    for t in auditors:
        t.start()
    for t in auditors:
        t.join()
    return totals


def main() -> None:
    coord = get_coordinator()
    nodes = [Node(f"node-{i}") for i in range(4)]
    for node in nodes:
        coord.register_node(node)
    for i in range(16):
        coord.submit(Job(f"job-{i:02d}", payload=10 + (i % 5) * 4))

    reaper = Reaper(coord, interval=0.02)
    reaper.start()
    slots = threading.Semaphore(3)
    per_worker: Dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=len(nodes),
                            thread_name_prefix="worker") as pool:
        futures = {}
        for node in nodes:
            fut = pool.submit(worker_loop, coord, node, slots,
                              node.name == "node-3")
            fut.add_done_callback(
                functools.partial(lambda name, f: log(f"{name} exited"),
                                  node.name))
            futures[fut] = node.name
        all_done = coord.wait_all_done(timeout=3.0)
        coord.close()
        for fut in as_completed(futures):
            per_worker[futures[fut]] = fut.result()
    reaper.stop()

    print(f"all jobs done: {all_done}")
    print(f"completed per worker: {per_worker}")
    print(f"audited per node: {audit_nodes(nodes)}")
    print(f"coordinator stats: {coord.stats()}")
    print(f"log lines: {len(_log_lines)}")


if __name__ == "__main__":
    main()
