"""Print-shop job scheduler.

Jobs are posted on a shared job board; each printer is a worker thread that
picks the next job it can handle (mono printers skip colour jobs). Paper is
drawn from a shared tray that a stock clerk refills, colour jobs need one of
the two fuser units, and a billing thread charges customers as jobs finish.
"""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

log = logging.getLogger("printshop")

MAX_COPIES = 500
PRICE_PER_PAGE = {False: 8, True: 35}  # cents, keyed by colour


@dataclass
class PrintJob:
    job_id: int
    customer: str
    pages: int
    color: bool = False
    copies: int = 1

    @property
    def sheets(self) -> int:
        return self.pages * self.copies


@dataclass
class Printer:
    name: str
    color: bool
    ppm: int
    printed_sheets: int = 0
    jobs_done: list = field(default_factory=list)


class PaperTray:
    def __init__(self, sheets: int):
        self.sheets = sheets
        self.cond = threading.Condition()

    def take(self, n: int) -> None:
        with self.cond:
            if self.sheets < n:
                self.cond.wait()
            self.sheets -= n

    def refill(self, n: int) -> None:
        with self.cond:
            self.sheets += n
            self.cond.notify_all()


# --- shared shop state -------------------------------------------------------

board_lock = threading.Lock()
board_cond = threading.Condition(board_lock)
pending_jobs: list[PrintJob] = []
shop_closed = False

ledger_lock = threading.Lock()
ledger: dict[str, int] = defaultdict(int)
deposits: dict[int, int] = {}
closed_invoices: dict[str, int] = {}

fuser_units = threading.Semaphore(2)
billing_q: "queue.Queue[tuple[PrintJob, str] | None]" = queue.Queue()
tray = PaperTray(sheets=60)


def post_job(job: PrintJob, deposit: int = 0) -> None:
    with ledger_lock:
        deposits[job.job_id] = deposit
    with board_cond:
        pending_jobs.append(job)
        board_cond.notify()


def close_board() -> None:
    global shop_closed
    with board_cond:
        shop_closed = True
        board_cond.notify_all()


def next_job_for(printer: Printer) -> PrintJob | None:
    with board_cond:
        while True:
            for i, job in enumerate(pending_jobs):
                if job.color and not printer.color:
                    continue
                return pending_jobs.pop(i)
            if shop_closed:
                return None
            board_cond.wait(timeout=0.1)


def cancel_job(job_id: int) -> bool:
    """Pull a job off the board and refund its deposit."""
    with board_lock:
        for i, job in enumerate(pending_jobs):
            if job.job_id == job_id:
                del pending_jobs[i]
                with ledger_lock:
                    refund = deposits.pop(job_id, 0)
                    ledger[job.customer] -= refund
                log.info("cancelled job %d, refunded %d", job_id, refund)
                return True
    return False


def customer_has_pending(customer: str) -> bool:
    return any(j.customer == customer for j in pending_jobs)


def close_invoice(customer: str) -> None:
    with ledger_lock:
        with board_lock:
            still_waiting = customer_has_pending(customer)
        if not still_waiting:
            closed_invoices[customer] = ledger[customer]


# --- printing ----------------------------------------------------------------

def print_job(printer: Printer, job: PrintJob) -> None:
    if job.color:
        fuser_units.acquire()
    try:
        tray.take(job.sheets)
        time.sleep(job.sheets / (printer.ppm * 400))
        printer.printed_sheets += job.sheets
        printer.jobs_done.append(job.job_id)
    finally:
        fuser_units.release()


def printer_loop(printer: Printer) -> None:
    while True:
        job = next_job_for(printer)
        if job is None:
            break
        print_job(printer, job)
        billing_q.put((job, printer.name))
    log.info("%s idle: %d sheets, jobs %s", printer.name, printer.printed_sheets, printer.jobs_done)


# --- billing -----------------------------------------------------------------

def price_job(job: PrintJob) -> int:
    if job.copies > MAX_COPIES:
        raise ValueError(f"job {job.job_id}: {job.copies} copies needs a quote")
    return job.sheets * PRICE_PER_PAGE[job.color]


def post_charge(job: PrintJob, amount: int) -> None:
    ledger_lock.acquire()
    ledger[job.customer] += amount - deposits.pop(job.job_id)
    ledger_lock.release()


def billing_loop() -> None:
    while True:
        item = billing_q.get()
        if item is None:
            billing_q.task_done()
            break
        job, printer_name = item
        try:
            amount = price_job(job)
        except ValueError as exc:
            log.warning("billing skipped: %s", exc)
            continue
        post_charge(job, amount)
        close_invoice(job.customer)
        log.debug("billed %s %d cents for job %d on %s", job.customer, amount, job.job_id, printer_name)
        billing_q.task_done()


# --- stock clerk ------------------------------------------------------------

def clerk_loop(stop: threading.Event) -> None:
    while not stop.wait(0.01):
        with tray.cond:
            low = tray.sheets < 40
        if low:
            tray.refill(50)


def load_overnight_jobs(customers: list[str], rng: random.Random) -> None:
    for n in range(1, 19):
        job = PrintJob(
            job_id=n,
            customer=rng.choice(customers),
            pages=rng.randint(1, 12),
            color=rng.random() < 0.4,
            copies=rng.choice((1, 1, 2, 3)),
        )
        post_job(job, deposit=100 if job.color else 0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(threadName)-10s %(message)s")
    rng = random.Random(7)
    customers = ["acme", "bakery", "city-hall", "dentist"]

    printers = [
        Printer("laser-1", color=False, ppm=40),
        Printer("laser-2", color=False, ppm=35),
        Printer("inkjet-c", color=True, ppm=20),
        Printer("xerox-c", color=True, ppm=30),
    ]

    loader = threading.Thread(target=load_overnight_jobs(customers, rng), name="loader")
    loader.start()

    stop_clerk = threading.Event()
    clerk = threading.Thread(target=clerk_loop, args=(stop_clerk,), name="clerk")
    clerk.start()
    biller = threading.Thread(target=billing_loop, name="billing")
    biller.start()

    workers = [threading.Thread(target=printer_loop, args=(p,), name=p.name) for p in printers]
    for w in workers:
        w.start()

    time.sleep(0.01)
    for jid in (17, 18):
        cancel_job(jid)

    loader.join()
    close_board()
    for w in workers:
        w.join()
    billing_q.join()
    billing_q.put(None)
    biller.join()
    stop_clerk.set()
    clerk.join()

    with ledger_lock:
        for customer in sorted(ledger):
            log.info("%-10s owes %6.2f", customer, ledger[customer] / 100)
    log.info("paper left in tray: %d", tray.sheets)


if __name__ == "__main__":
    main()
