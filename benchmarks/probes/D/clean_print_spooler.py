"""A small print spooler.

Clients submit jobs from any thread; spool workers take them off a FIFO queue,
check out an idle printer from the pool and print.  Jobs can be cancelled
while still queued.  A low-priority monitor thread logs the spool state.
"""

import collections
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Dict, List, Optional

log = logging.getLogger("spooler")


class JobState(Enum):
    QUEUED = "queued"
    PRINTING = "printing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SpoolFull(Exception):
    pass


@dataclass
class PrintJob:
    job_id: str
    owner: str
    document: bytes
    copies: int = 1
    state: JobState = JobState.QUEUED
    error: Optional[str] = None


class Printer:
    def __init__(self, name: str, pages_per_minute: int = 30) -> None:
        self.name = name
        self.ppm = pages_per_minute
        self._lock = threading.Lock()
        self._pages_printed = 0

    def print_document(self, document: bytes, copies: int) -> int:
        pages = (len(document) // 3000 + 1) * copies
        time.sleep(pages * 60.0 / self.ppm / 100.0)
        with self._lock:
            self._pages_printed += pages
        return pages

    @property
    def pages_printed(self) -> int:
        with self._lock:
            return self._pages_printed


class PrinterPool:
    def __init__(self, printers: List[Printer]) -> None:
        self._cond = threading.Condition()
        self._idle: List[Printer] = list(printers)
        self.printers = tuple(printers)

    def checkout(self, timeout: Optional[float] = None) -> Optional[Printer]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._idle:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._idle.pop()

    def checkin(self, printer: Printer) -> None:
        with self._cond:
            self._idle.append(printer)
            self._cond.notify()


class Spooler:
    def __init__(self, pool: PrinterPool, workers: int = 2, max_pending: int = 100,
                 report_interval: float = 5.0) -> None:
        self._pool = pool
        self._q: "queue.Queue[Optional[PrintJob]]" = queue.Queue()
        self._jobs: Dict[str, PrintJob] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_pending)
        self._seq = itertools.count(1)
        self._stop = threading.Event()
        self.report_interval = report_interval
        self._workers = [
            threading.Thread(target=self._worker, args=(i,), name=f"spool-{i}")
            for i in range(workers)
        ]
        self._monitor = threading.Thread(target=self._monitor_loop, name="spool-monitor", daemon=True)

    def start(self) -> None:
        for w in self._workers:
            w.start()
        self._monitor.start()

    def submit(self, owner: str, document: bytes, copies: int = 1,
               job_id: Optional[str] = None) -> str:
        if not self._slots.acquire(timeout=5.0):
            raise SpoolFull("spool is full")
        try:
            with self._lock:
                if job_id is None:
                    job_id = f"job-{next(self._seq)}"
                if job_id in self._jobs:
                    raise ValueError(f"duplicate job id {job_id}")
                job = PrintJob(job_id, owner, document, copies)
                self._jobs[job_id] = job
        except BaseException:
            self._slots.release()
            raise
        self._q.put(job)
        return job_id

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state is not JobState.QUEUED:
                return False
            job.state = JobState.CANCELLED
            return True

    def status(self) -> Dict[str, str]:
        with self._lock:
            return {jid: job.state.value for jid, job in self._jobs.items()}

    def _worker(self, idx: int) -> None:
        while True:
            job = self._q.get()
            try:
                if job is None:
                    return
                try:
                    self._run_job(job)
                finally:
                    self._slots.release()
            finally:
                self._q.task_done()

    def _run_job(self, job: PrintJob) -> None:
        with self._lock:
            if job.state is JobState.CANCELLED:
                return
            job.state = JobState.PRINTING
        printer = self._pool.checkout()
        assert printer is not None
        try:
            pages = printer.print_document(job.document, job.copies)
        except Exception as exc:
            log.exception("job %s failed on %s", job.job_id, printer.name)
            with self._lock:
                job.state = JobState.FAILED
                job.error = str(exc)
        else:
            log.info("job %s: %d pages on %s", job.job_id, pages, printer.name)
            with self._lock:
                job.state = JobState.DONE
        finally:
            self._pool.checkin(printer)

    def _monitor_loop(self) -> None:
        while not self._stop.wait(self.report_interval):
            counts = collections.Counter(self.status().values())
            log.info("spool: %d waiting, states=%s", self._q.qsize(), dict(counts))

    def wait_idle(self) -> None:
        self._q.join()

    def shutdown(self) -> None:
        self._q.join()
        self._stop.set()
        for _ in self._workers:
            self._q.put(None)
        for w in self._workers:
            w.join()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    printers = [Printer("laser-1", 40), Printer("laser-2", 25)]
    spooler = Spooler(PrinterPool(printers), workers=3)
    spooler.start()

    def client(owner: str, n_jobs: int, out: List[str]) -> None:
        for i in range(n_jobs):
            out.append(spooler.submit(owner, b"x" * (1000 * (i + 1))))

    submitted: Dict[str, List[str]] = {name: [] for name in ("ana", "bo", "cy")}
    clients = [
        threading.Thread(target=client, args=(name, 5, ids), name=f"client-{name}")
        for name, ids in submitted.items()
    ]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    spooler.cancel(submitted["cy"][-1])
    spooler.wait_idle()
    spooler.shutdown()
    for p in printers:
        log.info("%s printed %d pages", p.name, p.pages_printed)
    log.info("final: %s", spooler.status())


if __name__ == "__main__":
    main()
