"""Nightly payment batch settler.

Reads authorised payments, captures each one through the acquiring gateway on
a pool of settlement workers and books the result into a settlement ledger.
Captures are idempotent across retries (a payment is claimed before it is sent
to the gateway), per-merchant running totals are guarded by one lock per
merchant, and the number of in-flight gateway calls is capped.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal, ROUND_HALF_EVEN
from typing import Dict, Iterable, List, Optional

SETTLE_WORKERS = 6
MAX_INFLIGHT_CAPTURES = 4
CAPTURE_SLOT_TIMEOUT_S = 10.0
QUEUE_DEPTH = 256
FEE_RATE = Decimal("0.029")
FEE_FIXED = Decimal("0.30")

log = logging.getLogger("settler")

_tls = threading.local()


class GatewayError(Exception):
    pass


@dataclass(frozen=True)
class Payment:
    payment_id: str
    merchant_id: str
    amount: Decimal
    currency: str = "USD"


class GatewaySession:
    """A (simulated) keep-alive connection to the gateway; not thread-safe."""

    def __init__(self) -> None:
        self.name = threading.current_thread().name
        self._rng = random.Random()
        self.calls = 0

    def capture(self, payment: Payment) -> str:
        self.calls += 1
        time.sleep(0.005)
        if self._rng.random() < 0.02:
            raise GatewayError(f"gateway timeout capturing {payment.payment_id}")
        return f"cap-{payment.payment_id}"


def gateway_session() -> GatewaySession:
    """Return this thread's gateway session, opening it on first use."""
    session = getattr(_tls, "session", None)
    if session is None:
        session = GatewaySession()
        _tls.session = session
    return session


class MerchantAccount:
    """Running settlement totals for one merchant."""

    def __init__(self, merchant_id: str) -> None:
        self.merchant_id = merchant_id
        self.lock = threading.Lock()
        self.total = Decimal("0")
        self.count = 0


class MerchantAccounts:
    """Creates one account (with its own lock) per merchant id, on demand."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._accounts: Dict[str, MerchantAccount] = {}

    def get(self, merchant_id: str) -> MerchantAccount:
        with self._guard:
            account = self._accounts.get(merchant_id)
            if account is None:
                account = MerchantAccount(merchant_id)
                self._accounts[merchant_id] = account
            return account

    def credit(self, merchant_id: str, amount: Decimal) -> None:
        account = self.get(merchant_id)
        with account.lock:
            account.total += amount
            account.count += 1

    def totals(self) -> Dict[str, Decimal]:
        with self._guard:
            accounts = list(self._accounts.values())
        result = {}
        for account in accounts:
            with account.lock:
                result[account.merchant_id] = account.total
        return result


class SettlementLedger:
    """Records captures; never sends or books the same payment twice."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claimed: set = set()
        self._entries: Dict[str, str] = {}
        self._failures: List[str] = []

    def claim(self, payment_id: str) -> bool:
        """Reserve a payment for capture.  False if already claimed or booked."""
        with self._lock:
            if payment_id in self._claimed or payment_id in self._entries:
                return False
            self._claimed.add(payment_id)
            return True

    def book(self, payment: Payment, capture_ref: str) -> None:
        with self._lock:
            self._claimed.discard(payment.payment_id)
            self._entries[payment.payment_id] = capture_ref

    def fail(self, payment: Payment, reason: str) -> None:
        with self._lock:
            self._claimed.discard(payment.payment_id)
            self._failures.append(f"{payment.payment_id}: {reason}")

    def summary(self) -> Dict[str, int]:
        with self._lock:
            return {"settled": len(self._entries), "failed": len(self._failures)}


class Settler:
    """Owns the work queue, the worker threads and the shared state."""

    def __init__(self, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.ledger = SettlementLedger()
        self.accounts = MerchantAccounts()
        self.enqueued = 0
        self._queue: "queue.Queue[Optional[Payment]]" = queue.Queue(QUEUE_DEPTH)
        self._capture_slots = threading.BoundedSemaphore(MAX_INFLIGHT_CAPTURES)
        self._done = threading.Condition()
        self._processed = 0
        self._workers = [
            threading.Thread(target=self._worker, name=f"settle-{i}")
            for i in range(SETTLE_WORKERS)
        ]

    def _capture(self, payment: Payment) -> str:
        if not self._capture_slots.acquire(timeout=CAPTURE_SLOT_TIMEOUT_S):
            raise GatewayError("no capture slot available")
        try:
            return gateway_session().capture(payment)
        finally:
            self._capture_slots.release()

    def _settle_one(self, payment: Payment) -> None:
        if not self.ledger.claim(payment.payment_id):
            log.info("skipping already claimed %s", payment.payment_id)
            return
        try:
            if self.dry_run:
                ref = f"dry-{payment.payment_id}"
            else:
                ref = self._capture(payment)
        except GatewayError as exc:
            self.ledger.fail(payment, str(exc))
            return
        self.ledger.book(payment, ref)
        self.accounts.credit(payment.merchant_id, payment.amount)

    def _worker(self) -> None:
        while True:
            payment = self._queue.get()
            try:
                if payment is None:
                    return
                try:
                    self._settle_one(payment)
                except Exception:
                    log.exception("unexpected error settling %s", payment.payment_id)
                    self.ledger.fail(payment, "internal error")
                with self._done:
                    self._processed += 1
                    self._done.notify_all()
            finally:
                self._queue.task_done()

    def _processed_at_least(self, n: int) -> bool:
        return self._processed >= n

    def wait_processed(self, n: int, timeout: Optional[float] = None) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self._processed_at_least(n), timeout)

    def _report_progress(self, finished: threading.Event, step: int = 100) -> None:
        milestone = step
        while not finished.is_set():
            if self.wait_processed(milestone, timeout=1.0):
                log.info("processed %d payments", milestone)
                milestone += step

    def run(self, payments: Iterable[Payment]) -> Dict[str, object]:
        finished = threading.Event()
        reporter = threading.Thread(target=self._report_progress, args=(finished,),
                                    name="progress")
        for t in self._workers:
            t.start()
        reporter.start()
        try:
            for payment in payments:
                self._queue.put(payment)
                self.enqueued += 1
            self._queue.join()
        finally:
            for _ in self._workers:
                self._queue.put(None)
            for t in self._workers:
                t.join()
            finished.set()
            reporter.join()
        log.info("enqueued %d payments", self.enqueued)
        summary: Dict[str, object] = dict(self.ledger.summary())
        summary["totals"] = self.accounts.totals()
        return summary


def _fee_for(total: Decimal) -> Decimal:
    return (total * FEE_RATE + FEE_FIXED).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def compute_fees(totals: Dict[str, Decimal]) -> Dict[str, Decimal]:
    """Fee statements are independent; compute them concurrently and check each."""
    fees: Dict[str, Decimal] = {}
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="fees") as pool:
        futures = {pool.submit(_fee_for, total): merchant for merchant, total in totals.items()}
        for fut in as_completed(futures):
            fees[futures[fut]] = fut.result()
    return fees


def sample_payments(n: int = 500, merchants: int = 12) -> List[Payment]:
    rng = random.Random(7)
    return [
        Payment(f"pay-{i:05d}", f"m-{rng.randrange(merchants):03d}",
                Decimal(rng.randrange(100, 50_000)) / 100)
        for i in range(n)
    ]


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    settler = Settler(dry_run=False)
    summary = settler.run(sample_payments())
    fees = compute_fees(summary["totals"])  # type: ignore[arg-type]
    log.info("settled=%s failed=%s", summary["settled"], summary["failed"])
    for merchant in sorted(fees):
        log.info("%s fee %s", merchant, fees[merchant])


if __name__ == "__main__":
    main()
