#!/usr/bin/env python3
"""Library book reservation service (in-memory demo).

Patrons check books out at a desk served by several clerk threads.  When no
copy is on the shelf the patron is put on a hold queue for that title; a
background sweeper expires holds that were not picked up in time, and a
reporting thread produces a small circulation summary at the end of the day.
"""
from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, List, Optional

log = logging.getLogger("library")

MAX_LOANS = 4


@dataclass
class Book:
    isbn: str
    title: str
    copies: int
    available: int = -1

    def __post_init__(self) -> None:
        if self.available < 0:
            self.available = self.copies


@dataclass
class Hold:
    patron: str
    isbn: str
    placed_at: float = field(default_factory=time.monotonic)
    ready: bool = False


class Catalog:
    """Thread-safe registry of the titles the branch owns."""

    def __init__(self) -> None:
        self._books: Dict[str, Book] = {}
        self._lock = threading.Lock()

    def add(self, book: Book) -> None:
        with self._lock:
            self._books[book.isbn] = book

    def get(self, isbn: str) -> Optional[Book]:
        with self._lock:
            return self._books.get(isbn)

    def isbns(self) -> List[str]:
        with self._lock:
            return sorted(self._books)


Listener = Callable[[str, str, str], None]


class ReservationDesk:
    HOLD_TTL = 0.15

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._loans: Dict[str, List[str]] = defaultdict(list)
        self._holds: Dict[str, Deque[Hold]] = defaultdict(deque)
        self._listeners: List[Listener] = []
        self.checkouts = 0
        self.returns = 0
        self.rejections = 0
        self.expired = 0

    # -- events ---------------------------------------------------------
    def on_event(self, cb: Listener) -> None:
        with self._lock:
            self._listeners.append(cb)

    def _notify(self, kind: str, patron: str, isbn: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb(kind, patron, isbn)
            except Exception:
                log.exception("listener failed")

    # -- queries --------------------------------------------------------
    def loan_count(self, patron: str) -> int:
        with self._lock:
            return len(self._loans.get(patron, ()))

    def holds_for(self, isbn: str) -> List[str]:
        with self._lock:
            return [h.patron for h in self._holds.get(isbn, ())]

    # -- mutations ------------------------------------------------------
    def checkout(self, patron: str, isbn: str) -> bool:
        book = self.catalog.get(isbn)
        if book is None:
            raise KeyError(isbn)
        if book.available > 0:
            with self._lock:
                book.available -= 1
                self._loans[patron].append(isbn)
                self.checkouts += 1
            self._notify("checkout", patron, isbn)
            return True
        self.rejections += 1
        self.place_hold(patron, isbn)
        return False

    def place_hold(self, patron: str, isbn: str) -> None:
        with self._lock:
            queue = self._holds[isbn]
            if any(h.patron == patron for h in queue):
                return
            queue.append(Hold(patron, isbn))
        self._notify("hold", patron, isbn)

    def return_book(self, patron: str, isbn: str) -> None:
        with self._lock:
            loans = self._loans.get(patron)
            if not loans or isbn not in loans:
                raise KeyError(f"{patron} does not hold {isbn}")
            loans.remove(isbn)
            self.returns += 1
            book = self.catalog.get(isbn)
            book.available += 1
            promoted = self._promote_hold_locked(isbn)
        if promoted is not None:
            self._notify("hold_ready", promoted.patron, isbn)

    def _promote_hold_locked(self, isbn: str) -> Optional[Hold]:
        """Mark the first waiting hold as ready.  Caller holds ``_lock``."""
        for hold in self._holds.get(isbn, ()):
            if not hold.ready:
                hold.ready = True
                hold.placed_at = time.monotonic()
                return hold
        return None

    def transfer_loan(self, src: str, dst: str, isbn: str) -> None:
        """Hand a borrowed copy directly to another patron (desk override)."""
        with self._lock:
            if isbn not in self._loans.get(src, ()):
                raise KeyError(isbn)
            if self.loan_count(dst) >= MAX_LOANS:
                raise RuntimeError(f"{dst} is at the loan limit")
            self._loans[src].remove(isbn)
            self._loans[dst].append(isbn)

    def expire_stale_holds(self) -> int:
        now = time.monotonic()
        dropped = 0
        for isbn, queue in self._holds.items():
            with self._lock:
                while queue and queue[0].ready and now - queue[0].placed_at > self.HOLD_TTL:
                    queue.popleft()
                    dropped += 1
        with self._lock:
            self.expired += dropped
        return dropped


class HoldSweeper(threading.Thread):
    def __init__(self, desk: ReservationDesk, interval: float = 0.02) -> None:
        super().__init__(name="hold-sweeper", daemon=True)
        self.desk = desk
        self.interval = interval
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            n = self.desk.expire_stale_holds()
            if n:
                log.debug("expired %d holds", n)


def run_patron(desk: ReservationDesk, patron: str, seed: int) -> None:
    rng = random.Random(seed)
    isbns = desk.catalog.isbns()
    borrowed: List[str] = []
    for _ in range(25):
        if borrowed and rng.random() < 0.45:
            isbn = borrowed.pop(rng.randrange(len(borrowed)))
            desk.return_book(patron, isbn)
        elif len(borrowed) < MAX_LOANS:
            isbn = rng.choice(isbns)
            if isbn in borrowed:
                continue
            if desk.checkout(patron, isbn):
                borrowed.append(isbn)
        time.sleep(rng.uniform(0, 0.003))
    for isbn in borrowed:
        desk.return_book(patron, isbn)


def build_report(desk: ReservationDesk, out: Dict[str, object]) -> None:
    time.sleep(0.01)
    with desk._lock:
        out["checkouts"] = desk.checkouts
        out["returns"] = desk.returns
        out["expired"] = desk.expired
        out["waiting"] = sum(len(q) for q in desk._holds.values())


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    catalog = Catalog()
    for i, title in enumerate(["Dune", "Emma", "Ulysses", "Beloved", "Middlemarch",
                               "Invisible Man", "Kindred", "Solaris"]):
        catalog.add(Book(isbn=f"978-{i:04d}", title=title, copies=1 + i % 3))

    desk = ReservationDesk(catalog)
    events: Dict[str, int] = defaultdict(int)
    events_lock = threading.Lock()

    def count_event(kind: str, patron: str, isbn: str) -> None:
        with events_lock:
            events[kind] += 1

    desk.on_event(count_event)

    sweeper = HoldSweeper(desk)
    sweeper.start()

    patrons = [f"patron-{n:02d}" for n in range(12)]
    threads = []
    for idx, name in enumerate(patrons):
        t = threading.Thread(target=lambda: run_patron(desk, name, idx), name=name)
        threads.append(t)
        t.start()
    for t in threads:
        t.join()

    sweeper.stop_event.set()
    sweeper.join(timeout=1.0)

    report: Dict[str, object] = {}
    reporter = threading.Thread(target=build_report, args=(desk, report), name="report")
    reporter.start()
    print("circulation summary:")
    for key in ("checkouts", "returns", "expired", "waiting"):
        print(f"  {key:10s} {report.get(key, 0)}")
    reporter.join()

    with events_lock:
        print("events:", dict(events))
    print("rejections:", desk.rejections)
    for isbn in catalog.isbns():
        book = catalog.get(isbn)
        print(f"  {book.title:14s} {book.available}/{book.copies} on shelf,"
              f" holds={len(desk.holds_for(isbn))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
