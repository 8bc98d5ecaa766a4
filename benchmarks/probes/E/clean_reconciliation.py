"""Nightly payment reconciliation.

Matches the card processor's settlement report (CSV) against our payments
ledger (SQLite).  Settlement rows are fed through a queue to worker threads;
each worker has its own SQLite connection and builds its own partial result,
and the partials are merged as workers finish.  Settlements in a foreign
currency are converted with the day's rate from the FX service, fetched by an
asyncio client whose event loop runs in a dedicated thread.

    python reconcile.py settlement-2024-05-01.csv ledger.sqlite --fx fx.internal:9000
"""
import argparse
import asyncio
import csv
import json
import logging
import queue
import sqlite3
import sys
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Dict, List, Optional

log = logging.getLogger("reconcile")

TOLERANCE = Decimal("0.01")


class FxClient:
    """Asyncio FX-rate client; its cache is only touched on the loop thread."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._rates: Dict[str, Decimal] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fx-loop")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _fetch(self, pair: str, day: str) -> Decimal:
        key = f"{pair}@{day}"
        if key in self._rates:
            return self._rates[key]
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(f"GET /rates/{pair}/{day} HTTP/1.0\r\nHost: {self.host}\r\n\r\n".encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise LookupError(f"no rate for {key}")
        rate = Decimal(json.loads(body)["rate"])
        self._rates[key] = rate
        return rate

    def rate(self, pair: str, day: str, timeout: float = 10.0) -> Decimal:
        fut = asyncio.run_coroutine_threadsafe(self._fetch(pair, day), self._loop)
        return fut.result(timeout)


_fx: Optional[FxClient] = None
_fx_lock = threading.Lock()
_fx_addr = ("127.0.0.1", 9000)


def fx_client() -> FxClient:
    global _fx
    if _fx is None:
        with _fx_lock:
            if _fx is None:
                client = FxClient(*_fx_addr)
                client.start()
                _fx = client
    return _fx


@dataclass
class Partial:
    matched: int = 0
    amount_mismatch: List[dict] = field(default_factory=list)
    missing_in_ledger: List[dict] = field(default_factory=list)
    total_settled: Decimal = Decimal("0")

    def merge(self, other: "Partial") -> None:
        self.matched += other.matched
        self.amount_mismatch.extend(other.amount_mismatch)
        self.missing_in_ledger.extend(other.missing_in_ledger)
        self.total_settled += other.total_settled


class Matcher(threading.Thread):
    def __init__(self, rows: "queue.Queue", ledger_path: str, base: str,
                 on_done, index: int) -> None:
        super().__init__(name=f"matcher-{index}")
        self.rows = rows
        self.ledger_path = ledger_path
        self.base = base
        self.on_done = on_done

    def run(self) -> None:
        db = sqlite3.connect(self.ledger_path)
        mine = Partial()
        try:
            while True:
                row = self.rows.get()
                try:
                    if row is None:
                        return
                    self._match(db, row, mine)
                except Exception as exc:
                    log.error("row %s: %s", row.get("reference"), exc)
                    mine.missing_in_ledger.append(dict(row, error=str(exc)))
                finally:
                    self.rows.task_done()
        finally:
            db.close()
            self.on_done(mine)

    def _match(self, db: sqlite3.Connection, row: dict, out: Partial) -> None:
        amount = Decimal(row["amount"])
        if row["currency"] != self.base:
            amount = (amount * fx_client().rate(f"{row['currency']}{self.base}",
                                                row["date"])).quantize(Decimal("0.01"))
        out.total_settled += amount
        hit = db.execute("SELECT amount FROM payments WHERE processor_ref = ?",
                         (row["reference"],)).fetchone()
        if hit is None:
            out.missing_in_ledger.append(row)
        elif abs(Decimal(hit[0]) - amount) > TOLERANCE:
            out.amount_mismatch.append(dict(row, ledger_amount=hit[0], settled=str(amount)))
        else:
            out.matched += 1


def reconcile(csv_path: str, ledger_path: str, base: str, workers: int) -> Partial:
    rows: "queue.Queue[Optional[dict]]" = queue.Queue(maxsize=10_000)
    total = Partial()
    merge_lock = threading.Lock()

    def on_done(part: Partial) -> None:
        with merge_lock:
            total.merge(part)

    matchers = [Matcher(rows, ledger_path, base, on_done, i) for i in range(workers)]
    for m in matchers:
        m.start()
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            rows.put(row)
    rows.join()
    for _ in matchers:
        rows.put(None)
    for m in matchers:
        m.join()
    return total


def main() -> int:
    global _fx_addr
    ap = argparse.ArgumentParser(description="reconcile a settlement report with the ledger")
    ap.add_argument("settlement_csv")
    ap.add_argument("ledger")
    ap.add_argument("--base", default="EUR")
    ap.add_argument("--fx", default="127.0.0.1:9000")
    ap.add_argument("--workers", type=int, default=6)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    host, _, port = args.fx.partition(":")
    _fx_addr = (host, int(port or 80))
    try:
        result = reconcile(args.settlement_csv, args.ledger, args.base, args.workers)
    finally:
        if _fx is not None:
            _fx.close()
    print(json.dumps({
        "matched": result.matched,
        "amount_mismatch": result.amount_mismatch,
        "missing_in_ledger": result.missing_in_ledger,
        "total_settled": str(result.total_settled),
    }, indent=2, default=str))
    return 0 if not (result.amount_mismatch or result.missing_in_ledger) else 1


if __name__ == "__main__":
    sys.exit(main())
