"""Inventory reservation service.

Checkout requests reserve stock for an order; a reservation is later either
committed (payment captured, stock shipped) or expires after a hold period
and its quantity returns to the pool.  When available stock drops below a
low-water mark the SKU is queued for replenishment from the supplier API.

The service is used concurrently by request-handling threads, an expiry
sweeper thread and a replenishment worker.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Dict, List, Optional

HOLD_SECONDS = 15 * 60
SWEEP_INTERVAL_S = 5.0
LOW_WATER = 10
REORDER_QTY = 100
SUPPLIER_URL = "http://supplier.internal/api/v2/orders"
SUPPLIER_TIMEOUT_S = 10

log = logging.getLogger("inventory")


class InventoryError(Exception):
    pass


class InsufficientStock(InventoryError):
    pass


class UnknownReservation(InventoryError):
    pass


@dataclass
class StockItem:
    sku: str
    on_hand: int
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass
class Reservation:
    reservation_id: str
    order_id: str
    sku: str
    qty: int
    expires_at: float = field(default_factory=lambda: time.monotonic() + HOLD_SECONDS)


@dataclass
class LedgerEntry:
    ts: float
    kind: str
    sku: str
    qty: int
    ref: str


class SupplierClient:
    """Thin wrapper around the supplier's purchase-order endpoint."""

    def __init__(self, url: str = SUPPLIER_URL, timeout: float = SUPPLIER_TIMEOUT_S) -> None:
        self._url = url
        self._timeout = timeout

    def place_order(self, sku: str, qty: int) -> int:
        """Order ``qty`` units; returns the quantity the supplier confirmed."""
        body = json.dumps({"sku": sku, "quantity": qty}).encode("utf-8")
        req = urllib.request.Request(self._url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self._timeout) as resp:
            reply = json.load(resp)
        return int(reply.get("confirmed_quantity", 0))


class InventoryService:
    """Thread-safe stock levels, reservations and an append-only ledger."""

    def __init__(self, supplier: Optional[SupplierClient] = None) -> None:
        self._stock_lock = threading.Lock()
        self._ledger_lock = threading.Lock()
        self._metrics_lock = threading.Lock()
        self._items: Dict[str, StockItem] = {}
        self._reservations: Dict[str, Reservation] = {}
        self._ledger: List[LedgerEntry] = []
        self._metrics: Dict[str, int] = {"reservations": 0, "commits": 0, "expired": 0,
                                         "rejected": 0, "restocks": 0}
        self._supplier = supplier or SupplierClient()
        self.replenish_queue: "queue.Queue[Optional[str]]" = queue.Queue()

    # ------------------------------------------------------------ helpers

    def _bump(self, name: str, by: int = 1) -> None:
        with self._metrics_lock:
            self._metrics[name] = self._metrics.get(name, 0) + by

    def _record(self, kind: str, sku: str, qty: int, ref: str) -> None:
        """Append to the ledger.  Caller must hold the ledger lock."""
        self._ledger.append(LedgerEntry(time.time(), kind, sku, qty, ref))

    # ---------------------------------------------------------------- API

    def add_sku(self, sku: str, on_hand: int) -> None:
        with self._stock_lock:
            if sku in self._items:
                raise InventoryError(f"duplicate sku {sku}")
            self._items[sku] = StockItem(sku, on_hand)

    def reserve(self, order_id: str, sku: str, qty: int) -> str:
        if qty <= 0:
            raise ValueError("quantity must be positive")
        item = self._items.get(sku)
        if item is None:
            raise InventoryError(f"unknown sku {sku}")
        if item.available < qty:
            self._bump("rejected")
            raise InsufficientStock(f"{sku}: wanted {qty}, have {item.available}")
        reservation = Reservation(uuid.uuid4().hex, order_id, sku, qty)
        with self._stock_lock:
            item.reserved += qty
            low = item.available < LOW_WATER
            with self._ledger_lock:
                self._reservations[reservation.reservation_id] = reservation
                self._record("reserve", sku, qty, reservation.reservation_id)
        self._metrics["reservations"] += 1
        if low:
            self.replenish_queue.put(sku)
        return reservation.reservation_id

    def commit(self, reservation_id: str) -> None:
        with self._ledger_lock:
            reservation = self._reservations.pop(reservation_id, None)
            if reservation is None:
                raise UnknownReservation(reservation_id)
            self._record("commit", reservation.sku, reservation.qty, reservation_id)
        self._stock_lock.acquire()
        item = self._items[reservation.sku]
        if item.on_hand < reservation.qty:
            raise InventoryError(f"stock for {item.sku} went negative")
        item.reserved -= reservation.qty
        item.on_hand -= reservation.qty
        self._stock_lock.release()
        self._bump("commits")

    def release_expired(self, now: Optional[float] = None) -> int:
        """Return quantity held by expired reservations to the pool."""
        now = time.monotonic() if now is None else now
        released = 0
        with self._ledger_lock:
            expired = [r for r in self._reservations.values() if r.expires_at <= now]
            for r in expired:
                del self._reservations[r.reservation_id]
                self._record("expire", r.sku, r.qty, r.reservation_id)
                with self._stock_lock:
                    item = self._items.get(r.sku)
                    if item is not None:
                        item.reserved -= r.qty
                released += r.qty
        if expired:
            self._bump("expired", len(expired))
        return released

    def restock(self, sku: str) -> int:
        """Reorder from the supplier if the SKU is still below the low-water mark."""
        with self._stock_lock:
            item = self._items.get(sku)
            if item is None or item.available >= LOW_WATER:
                return 0
            confirmed = self._supplier.place_order(sku, REORDER_QTY)
            item.on_hand += confirmed
        with self._ledger_lock:
            self._record("restock", sku, confirmed, "supplier")
        self._bump("restocks")
        return confirmed

    def available(self, sku: str) -> int:
        with self._stock_lock:
            item = self._items.get(sku)
            return item.available if item is not None else 0

    def metrics(self) -> Dict[str, int]:
        with self._metrics_lock:
            return dict(self._metrics)


class ExpirySweeper(threading.Thread):
    """Periodically releases reservations whose hold period has lapsed."""

    def __init__(self, service: InventoryService, interval: float = SWEEP_INTERVAL_S) -> None:
        super().__init__(name="expiry-sweeper")
        self._service = service
        self._interval = interval
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                released = self._service.release_expired()
            except Exception:
                log.exception("expiry sweep failed")
                continue
            if released:
                log.info("released %d expired units", released)


def replenishment_worker(service: InventoryService) -> None:
    """Consumes low-stock SKUs until a None sentinel arrives."""
    q = service.replenish_queue
    while True:
        sku = q.get()
        try:
            if sku is None:
                return
            try:
                qty = service.restock(sku)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                log.warning("restock of %s failed: %s", sku, exc)
                continue
            if qty:
                log.info("restocked %s with %d units", sku, qty)
        finally:
            q.task_done()


def simulate_checkout(service: InventoryService, order_id: str, sku: str, qty: int) -> str:
    rid = service.reserve(order_id, sku, qty)
    time.sleep(0.01)
    service.commit(rid)
    return rid


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    service = InventoryService()
    for sku, qty in {"mug-blue": 60, "mug-red": 40, "tee-m": 120}.items():
        service.add_sku(sku, qty)
    sweeper = ExpirySweeper(service)
    replenisher = threading.Thread(target=replenishment_worker, args=(service,),
                                   name="replenisher")
    sweeper.start()
    replenisher.start()
    try:
        with ThreadPoolExecutor(max_workers=16, thread_name_prefix="checkout") as pool:
            futures = {
                pool.submit(simulate_checkout, service, f"order-{n}",
                            ("mug-blue", "mug-red", "tee-m")[n % 3], 1 + n % 4): n
                for n in range(200)
            }
            for fut in as_completed(futures):
                try:
                    fut.result()
                except InsufficientStock as exc:
                    log.info("order-%d rejected: %s", futures[fut], exc)
    finally:
        service.replenish_queue.put(None)
        replenisher.join()
        sweeper.stop()
        sweeper.join()
    log.info("final metrics: %s", service.metrics())


if __name__ == "__main__":
    main()
