"""Wallet ledger used by the in-game store.

Accounts carry their own locks; transfers take both account locks in id
order.  The ledger-wide RLock guards the journal and is re-entered by
helper methods.  Journal batches are handed to a flusher thread that is
stopped and joined on close.
"""
from __future__ import annotations

import random
import threading
from typing import Optional


class InsufficientFunds(Exception):
    pass


class Account:
    def __init__(self, acct_id: int, balance: int) -> None:
        self.id = acct_id
        self.balance = balance
        self.lock = threading.Lock()


class Ledger:
    def __init__(self, n_accounts: int, opening: int = 1000) -> None:
        self.accounts = {i: Account(i, opening) for i in range(n_accounts)}
        self._journal_lock = threading.RLock()
        self._journal: list[tuple[int, int, int]] = []
        self._pending: list[tuple[int, int, int]] = []
        self._flushed: list[tuple[int, int, int]] = []
        self._audit_slots = threading.BoundedSemaphore(2)
        self._flush_wanted = threading.Event()
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="ledger-flusher", daemon=True)
        self._flusher.start()

    def _append(self, src: int, dst: int, amount: int) -> None:
        with self._journal_lock:
            self._journal.append((src, dst, amount))
            self._pending.append((src, dst, amount))
            if len(self._pending) >= 64:
                self._flush_wanted.set()

    def record(self, src: int, dst: int, amount: int) -> None:
        with self._journal_lock:
            self._append(src, dst, amount)  # RLock: re-entry by the same thread is fine

    def transfer(self, src: int, dst: int, amount: int) -> None:
        if src == dst:
            return
        a, b = self.accounts[src], self.accounts[dst]
        first, second = (a, b) if a.id < b.id else (b, a)
        with first.lock:
            with second.lock:
                if a.balance < amount:
                    raise InsufficientFunds(f"{src} has {a.balance}, needs {amount}")
                a.balance -= amount
                b.balance += amount
        self.record(src, dst, amount)

    def try_refund(self, acct_id: int, amount: int, timeout: float = 0.05) -> bool:
        acct = self.accounts[acct_id]
        if not acct.lock.acquire(timeout=timeout):
            return False
        try:
            acct.balance += amount
        finally:
            acct.lock.release()
        self.record(-1, acct_id, amount)
        return True

    def audit(self) -> Optional[int]:
        if not self._audit_slots.acquire(blocking=False):
            return None  # enough auditors already running
        try:
            ordered = [self.accounts[i] for i in sorted(self.accounts)]
            for acct in ordered:
                acct.lock.acquire()
            return self._sum_and_release(ordered)
        finally:
            self._audit_slots.release()

    @staticmethod
    def _sum_and_release(locked: list[Account]) -> int:
        """Takes ownership of the already-held account locks and releases them."""
        try:
            return sum(acct.balance for acct in locked)
        finally:
            for acct in reversed(locked):
                acct.lock.release()

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            self._flush_wanted.wait(0.2)
            self._flush_wanted.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        with self._journal_lock:
            batch, self._pending = self._pending, []
        if batch:
            self._flushed.extend(batch)  # only the flusher thread touches _flushed

    def close(self) -> int:
        self._stop.set()
        self._flush_wanted.set()
        self._flusher.join()
        return len(self._flushed)


_ledger: Optional[Ledger] = None
_ledger_lock = threading.Lock()


def get_ledger() -> Ledger:
    global _ledger
    if _ledger is None:
        with _ledger_lock:
            if _ledger is None:
                _ledger = Ledger(n_accounts=16)
    return _ledger


def shopper(seed: int, ops: int) -> None:
    rng = random.Random(seed)
    ledger = get_ledger()
    for _ in range(ops):
        src, dst = rng.randrange(16), rng.randrange(16)
        try:
            ledger.transfer(src, dst, rng.randint(1, 50))
        except InsufficientFunds:
            ledger.try_refund(src, 25)


def main() -> None:
    threads = [threading.Thread(target=shopper, args=(seed, 2000), name=f"shopper-{seed}")
               for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger = get_ledger()
    total = ledger.audit()
    flushed = ledger.close()
    with ledger._journal_lock:
        refunds = sum(amt for src, _, amt in ledger._journal if src == -1)
    print(f"balance total {total} (= {16 * 1000} + refunds {refunds}); journal flushed {flushed}")
    assert total == 16 * 1000 + refunds


if __name__ == "__main__":
    main()
