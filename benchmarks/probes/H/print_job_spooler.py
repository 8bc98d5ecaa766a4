#!/usr/bin/env python3
"""Office print spooler.

Workstations submit jobs to a shared spool; a pool of printers on the same
floor pull jobs off the spool and "print" them (each sheet takes a couple of
milliseconds).  Per-user sheet usage is tracked against a monthly quota, and
an accounting writer appends one line per finished job to a log file that the
facilities team imports into their billing sheet.
"""

import logging
import os
import random
import tempfile
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

log = logging.getLogger("spooler")

SHEET_TIME = 0.002
DEFAULT_QUOTA = 400


@dataclass
class PrintJob:
    owner: str
    title: str
    pages: int
    copies: int = 1
    duplex: bool = False
    job_id: int = 0
    submitted_at: float = field(default_factory=time.monotonic)

    @property
    def sheets(self) -> int:
        per_copy = (self.pages + 1) // 2 if self.duplex else self.pages
        return per_copy * self.copies


class AccountingWriter(threading.Thread):
    """Collects accounting records and appends them to the billing log."""

    def __init__(self, path: str, interval: float = 0.1):
        super().__init__(name="acct-writer", daemon=True)
        self.path = path
        self.interval = interval
        self._buf: List[str] = []
        self._buf_lock = threading.Lock()

    def record(self, job: PrintJob, printer: str) -> None:
        line = f"{job.job_id}\t{job.owner}\t{printer}\t{job.sheets}\t{job.title}\n"
        with self._buf_lock:
            self._buf.append(line)

    def _flush(self) -> None:
        with self._buf_lock:
            pending, self._buf = self._buf, []
        if pending:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.writelines(pending)

    def run(self) -> None:
        while True:
            time.sleep(self.interval)
            self._flush()


def _post_status(board: Dict[str, tuple], printer: str, state: str) -> None:
    """Update the floor display board: (state, jobs printed so far)."""
    with threading.Lock():
        prev_state, printed = board.get(printer, ("offline", 0))
        if prev_state == "printing" and state == "idle":
            printed += 1
        board[printer] = (state, printed)


class Spooler:
    def __init__(self, printers, quota: int = DEFAULT_QUOTA,
                 accounting: Optional[AccountingWriter] = None):
        self.printers = list(printers)
        self.quota = quota
        self.accounting = accounting
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._spool: deque = deque()
        self._next_id = 1
        self._usage: Dict[str, int] = defaultdict(int)
        self._closed = False
        self._workers: List[threading.Thread] = []
        self.status_board: Dict[str, tuple] = {}
        self.total_sheets = 0
        self.on_finished: List[Callable[[PrintJob, str], None]] = []

    # -- submission side -------------------------------------------------
    def submit(self, job: PrintJob) -> Optional[int]:
        with self._ready:
            if self._closed:
                raise RuntimeError("spooler is shut down")
            if self._usage[job.owner] + job.sheets > self.quota:
                log.warning("quota exceeded for %s, rejecting %r", job.owner, job.title)
                return None
            job.job_id = self._next_id
            self._next_id += 1
            self._usage[job.owner] += job.sheets
            self._spool.append(job)
            self._ready.notify()
            return job.job_id

    def _refund(self, job: PrintJob) -> None:
        with self._lock:
            self._usage[job.owner] -= job.sheets

    def cancel(self, job_id: int) -> bool:
        with self._lock:
            for job in self._spool:
                if job.job_id == job_id:
                    self._spool.remove(job)
                    break
            else:
                return False
        self._refund(job)
        return True

    def purge_owner(self, owner: str) -> int:
        """Drop every queued job of `owner` (account closed, user left...)."""
        with self._lock:
            doomed = [j for j in self._spool if j.owner == owner]
            for job in doomed:
                self._spool.remove(job)
                self._refund(job)
        return len(doomed)

    def usage_report(self) -> Dict[str, int]:
        with self._lock:
            return dict(self._usage)

    def queued(self) -> int:
        with self._lock:
            return len(self._spool)

    # -- printer side ----------------------------------------------------
    def _next_job(self) -> Optional[PrintJob]:
        with self._ready:
            if not self._spool and not self._closed:
                self._ready.wait()
            if not self._spool:
                return None
            return self._spool.popleft()

    def _print(self, job: PrintJob, printer: str) -> None:
        for _ in range(job.sheets):
            time.sleep(SHEET_TIME)
        self.total_sheets += job.sheets
        if self.accounting is not None:
            self.accounting.record(job, printer)
        for callback in list(self.on_finished):
            callback(job, printer)

    def _drive(self, printer: str) -> None:
        _post_status(self.status_board, printer, "idle")
        while True:
            job = self._next_job()
            if job is None:
                break
            _post_status(self.status_board, printer, "printing")
            try:
                self._print(job, printer)
            except Exception:
                log.exception("printer %s failed on job %d", printer, job.job_id)
            _post_status(self.status_board, printer, "idle")
        _post_status(self.status_board, printer, "offline")

    def start(self) -> None:
        for name in self.printers:
            t = threading.Thread(target=lambda: self._drive(name), name=f"printer-{name}")
            t.start()
            self._workers.append(t)

    def close(self, wait: bool = True) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        if wait:
            for t in self._workers:
                t.join()


def workstation(spooler: Spooler, owner: str, n_jobs: int, seed: int,
                accepted: List[int]) -> None:
    rng = random.Random(seed)
    for i in range(n_jobs):
        job = PrintJob(
            owner=owner,
            title=f"{owner}-report-{i}.pdf",
            pages=rng.randint(1, 12),
            copies=rng.choice([1, 1, 1, 2]),
            duplex=rng.random() < 0.5,
        )
        job_id = spooler.submit(job)
        if job_id is not None:
            accepted.append(job_id)
        time.sleep(rng.uniform(0.001, 0.012))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    fd, acct_path = tempfile.mkstemp(prefix="print-acct-", suffix=".tsv")
    os.close(fd)

    writer = AccountingWriter(acct_path)
    writer.start()

    spooler = Spooler(["laser-2a", "laser-2b", "colour-2c"], accounting=writer)
    latencies: List[float] = []
    lat_lock = threading.Lock()

    def track_latency(job: PrintJob, printer: str) -> None:
        with lat_lock:
            latencies.append(time.monotonic() - job.submitted_at)

    spooler.on_finished.append(track_latency)
    spooler.start()

    owners = ["alice", "bob", "carol", "dave", "erin"]
    accepted: Dict[str, List[int]] = {o: [] for o in owners}
    stations = [
        threading.Thread(target=workstation, name=f"ws-{o}",
                         args=(spooler, o, 8, idx * 31 + 7, accepted[o]))
        for idx, o in enumerate(owners)
    ]
    for t in stations:
        t.start()
    for t in stations:
        t.join()

    # Bob sent one report twice; pull the last one if it is still queued.
    if accepted["bob"]:
        if spooler.cancel(accepted["bob"][-1]):
            log.info("cancelled bob's job %d", accepted["bob"][-1])

    spooler.close()

    n_jobs = sum(len(v) for v in accepted.values())
    print(f"jobs accepted: {n_jobs}, sheets printed: {spooler.total_sheets}")
    with lat_lock:
        if latencies:
            print(f"mean latency: {sum(latencies) / len(latencies) * 1000:.1f} ms")
    for owner, used in sorted(spooler.usage_report().items()):
        print(f"  {owner:6s} {used:4d} sheets")
    print("status board:", spooler.status_board)
    with open(acct_path, encoding="utf-8") as fh:
        print(f"accounting lines written: {sum(1 for _ in fh)}")
    os.unlink(acct_path)


if __name__ == "__main__":
    main()
