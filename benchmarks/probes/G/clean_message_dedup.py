"""
Message deduplicator for an at-least-once queue consumer.

Messages pulled from the broker are fingerprinted and checked against a
sharded "seen" table with a TTL.  Duplicates are acknowledged and dropped;
new messages are forwarded to a downstream service with bounded concurrency.
If forwarding fails the fingerprint is forgotten so that a redelivery of the
same message is not mistaken for a duplicate.  A timer-driven janitor evicts
expired fingerprints.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

log = logging.getLogger("dedup")

SHARDS = 16
WORKERS = 4
SEEN_TTL_S = 300.0
JANITOR_INTERVAL_S = 30.0
MAX_DOWNSTREAM_INFLIGHT = 3
DOWNSTREAM_SLOT_TIMEOUT_S = 5.0
INBOX_CAPACITY = 1000

_SENTINEL = None
_worker_state = threading.local()


def _init_worker_state(worker_id: int) -> None:
    _worker_state.worker_id = worker_id
    _worker_state.algorithm = "blake2b"
    _worker_state.processed = 0


def fingerprint(payload: bytes) -> str:
    algorithm = getattr(_worker_state, "algorithm", "blake2b")
    return hashlib.new(algorithm, payload).hexdigest()


@dataclass(frozen=True)
class Message:
    message_id: str
    payload: bytes


class _Shard:
    __slots__ = ("lock", "seen")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.seen: Dict[str, float] = {}


class SeenTable:
    """Fingerprint -> expiry time, split into independently locked shards."""

    def __init__(self, shards: int = SHARDS, ttl: float = SEEN_TTL_S) -> None:
        self._shards = [_Shard() for _ in range(shards)]
        self._ttl = ttl

    def _shard_for(self, digest: str) -> _Shard:
        return self._shards[int(digest[:8], 16) % len(self._shards)]

    def check_and_mark(self, digest: str, now: float) -> bool:
        """Atomically mark ``digest`` as seen; return False if it already was."""
        shard = self._shard_for(digest)
        with shard.lock:
            expires = shard.seen.get(digest)
            if expires is not None and expires > now:
                return False
            shard.seen[digest] = now + self._ttl
            return True

    def _forget_in(self, shard: _Shard, digests: List[str]) -> None:
        with shard.lock:
            for digest in digests:
                shard.seen.pop(digest, None)

    def forget(self, digest: str) -> None:
        shard = self._shard_for(digest)
        self._forget_in(shard, [digest])

    def evict_expired(self, now: float) -> int:
        evicted = 0
        for shard in self._shards:
            with shard.lock:
                stale = [digest for digest, expires in shard.seen.items() if expires <= now]
                self._forget_in(shard, stale)
            evicted += len(stale)
        return evicted

    def __len__(self) -> int:
        total = 0
        for shard in self._shards:
            with shard.lock:
                total += len(shard.seen)
        return total


class Downstream:
    """Client for the downstream service; allows a few requests in flight."""

    def __init__(self, max_inflight: int = MAX_DOWNSTREAM_INFLIGHT) -> None:
        self._slots = threading.BoundedSemaphore(max_inflight)
        self._lock = threading.Lock()
        self._delivered: List[str] = []

    def deliver(self, message: Message) -> None:
        if not self._slots.acquire(timeout=DOWNSTREAM_SLOT_TIMEOUT_S):
            raise TimeoutError("downstream saturated")
        try:
            time.sleep(0.002)
            if not message.payload:
                raise ValueError(f"{message.message_id}: empty payload rejected")
        finally:
            self._slots.release()
        with self._lock:
            self._delivered.append(message.message_id)

    def delivered(self) -> List[str]:
        with self._lock:
            return list(self._delivered)


class Deduplicator:
    def __init__(self, downstream: Downstream, workers: int = WORKERS) -> None:
        self._inbox: "queue.Queue[Optional[Message]]" = queue.Queue(maxsize=INBOX_CAPACITY)
        self._seen = SeenTable()
        self._downstream = downstream
        self._counters = [{"forwarded": 0, "duplicates": 0, "failed": 0} for _ in range(workers)]
        self._counter_locks = [threading.Lock() for _ in range(workers)]
        self._workers = [
            threading.Thread(target=self._work, args=(i,), name=f"dedup-{i}") for i in range(workers)
        ]
        self._janitor_lock = threading.Lock()
        self._janitor: Optional[threading.Timer] = None
        self._stopping = False
        self._evicted_total = 0

    # -- workers ----------------------------------------------------------

    def _work(self, worker_id: int) -> None:
        _init_worker_state(worker_id)
        counters = self._counters[worker_id]
        lock = self._counter_locks[worker_id]
        while True:
            message = self._inbox.get()
            try:
                if message is _SENTINEL:
                    return
                digest = fingerprint(message.payload)
                if not self._seen.check_and_mark(digest, time.monotonic()):
                    with lock:
                        counters["duplicates"] += 1
                    continue
                try:
                    self._downstream.deliver(message)
                except (TimeoutError, ValueError) as exc:
                    self._seen.forget(digest)
                    with lock:
                        counters["failed"] += 1
                    log.warning("worker %d: could not forward %s: %s", worker_id, message.message_id, exc)
                    continue
                with lock:
                    counters["forwarded"] += 1
                _worker_state.processed += 1
            finally:
                self._inbox.task_done()

    # -- janitor ----------------------------------------------------------

    def _arm_janitor(self) -> None:
        with self._janitor_lock:
            if self._stopping:
                return
            self._janitor = threading.Timer(JANITOR_INTERVAL_S, self._run_janitor)
            self._janitor.name = "dedup-janitor"
            self._janitor.start()

    def _run_janitor(self) -> None:
        try:
            evicted = self._seen.evict_expired(time.monotonic())
            with self._janitor_lock:
                self._evicted_total += evicted
            log.debug("janitor evicted %d fingerprints", evicted)
        finally:
            self._arm_janitor()

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        for worker in self._workers:
            worker.start()
        self._arm_janitor()

    def submit(self, message: Message) -> None:
        self._inbox.put(message)

    def drain(self) -> None:
        """Block until every submitted message has been processed."""
        self._inbox.join()

    def stop(self) -> None:
        for _ in self._workers:
            self._inbox.put(_SENTINEL)
        for worker in self._workers:
            worker.join()
        with self._janitor_lock:
            self._stopping = True
            janitor = self._janitor
        if janitor is not None:
            janitor.cancel()
            janitor.join()

    def stats(self) -> Dict[str, int]:
        totals = {"forwarded": 0, "duplicates": 0, "failed": 0}
        for lock, counters in zip(self._counter_locks, self._counters):
            with lock:
                for key, value in counters.items():
                    totals[key] += value
        with self._janitor_lock:
            totals["evicted"] = self._evicted_total
        totals["tracked"] = len(self._seen)
        return totals


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    downstream = Downstream()
    dedup = Deduplicator(downstream)
    dedup.start()
    try:
        for i in range(200):
            body = f"order-{i % 150}".encode()
            dedup.submit(Message(f"m-{i}", body))
        dedup.submit(Message("m-empty", b""))
        dedup.drain()
    finally:
        dedup.stop()
    log.info("stats: %s; %d delivered", dedup.stats(), len(downstream.delivered()))


if __name__ == "__main__":
    main()
