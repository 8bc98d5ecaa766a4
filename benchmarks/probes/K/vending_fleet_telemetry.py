"""Vending machine fleet telemetry collector.

Each simulated machine connects to the collector over a local TCP socket and
streams newline-delimited JSON reports (sales and stock levels per slot).
The collector aggregates the reports, a restock planner periodically sends
truck plans to the depot service, and low-stock reorder alerts are appended
to an operations log file.
"""
import json
import logging
import os
import queue
import random
import socket
import tempfile
import threading
import time
from threading import Lock as _Lock

log = logging.getLogger("fleet")

LOW_STOCK_THRESHOLD = 3
SLOT_CAPACITY = 12
PRODUCT_SLOTS = ("A1", "A2", "B1", "B2", "C1")
ALERT_BATCH = 8


class AlertLog:
    """Batched appender for the operations alert log."""

    def __init__(self, path):
        self.path = path
        self._q = queue.Queue()
        self._buf = []
        self._writer = threading.Thread(target=self._drain, name="alert-writer", daemon=True)
        self._writer.start()

    def write(self, line):
        self._q.put(line)

    def _drain(self):
        while True:
            line = self._q.get()
            self._buf.append(line)
            if len(self._buf) >= ALERT_BATCH:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write("\n".join(self._buf) + "\n")
                self._buf.clear()


class FleetState:
    """Aggregated view of the fleet, shared by collector handlers and the planner."""

    def __init__(self):
        self.lock = _Lock()
        self.stock = {}
        self.sales = {}
        self.last_seen = {}
        self.total_sales_cents = 0
        self.reordered = set()
        self.trucks_out = 0

    def apply_report(self, report):
        mid = report["machine"]
        sold = int(report.get("sold_cents", 0))
        with self.lock:
            self.stock[mid] = dict(report["stock"])
            self.sales[mid] = self.sales.get(mid, 0) + sold
            self.last_seen[mid] = time.monotonic()
        self.total_sales_cents += sold

    def needs_reorder(self, sku):
        with self.lock:
            seen = sku in self.reordered
        return not seen

    def mark_reordered(self, sku):
        with self.lock:
            self.reordered.add(sku)

    def low_slots(self):
        """Return (machine, slot, count) for every slot at or below threshold."""
        found = []
        for mid, slots in self.stock.items():
            for slot, count in slots.items():
                if count <= LOW_STOCK_THRESHOLD:
                    found.append((mid, slot, count))
        return found

    def daily_totals(self):
        with self.lock:
            return self.total_sales_cents, dict(self.sales)

    def close_day(self):
        with self.lock:
            total = self.total_sales_cents
            self.total_sales_cents = 0
            self.sales.clear()
            self.reordered.clear()
        return total


class Collector:
    """Accepts machine connections and feeds reports into FleetState."""

    def __init__(self, state, on_report):
        self.state = state
        self._on_report = on_report
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(32)
        self.address = self._srv.getsockname()
        self._handlers = []
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name="collector-accept")

    def start(self):
        self._acceptor.start()

    def _accept_loop(self):
        self._srv.settimeout(0.05)
        while not self._stopping.is_set():
            try:
                conn, _peer = self._srv.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn.settimeout(None)
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._handlers.append(t)
            t.start()

    def _handle(self, conn):
        with conn, conn.makefile("r", encoding="utf-8") as rf:
            for raw in rf:
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    report = json.loads(raw)
                except ValueError:
                    log.warning("dropping malformed report: %r", raw[:40])
                    continue
                self.state.apply_report(report)
                self._on_report(report)

    def stop(self):
        self._stopping.set()
        self._acceptor.join()
        for t in self._handlers:
            t.join(timeout=1.0)
        self._srv.close()


class DepotStub(threading.Thread):
    """Pretends to be the depot dispatch service: acks each truck plan."""

    def __init__(self):
        super().__init__(name="depot", daemon=True)
        self._srv = socket.socket()
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(1)
        self.address = self._srv.getsockname()

    def run(self):
        conn, _ = self._srv.accept()
        with conn, conn.makefile("rw", encoding="utf-8") as f:
            for line in f:
                plan = json.loads(line)
                time.sleep(0.01)
                f.write(json.dumps({"ack": plan["truck"]}) + "\n")
                f.flush()

    def stop(self):
        self._srv.close()


class RestockPlanner(threading.Thread):
    def __init__(self, state, depot_addr, interval=0.04):
        super().__init__(name="restock-planner")
        self.state = state
        self.depot_addr = depot_addr
        self.interval = interval
        self.routes = []
        self._stop_evt = threading.Event()

    def stop(self):
        self._stop_evt.set()

    def run(self):
        depot = socket.create_connection(self.depot_addr)
        rf = depot.makefile("r", encoding="utf-8")
        try:
            while not self._stop_evt.wait(self.interval):
                low = self.state.low_slots()
                if not low:
                    continue
                stops = sorted({mid for mid, _slot, _n in low})
                with self.state.lock:
                    self.state.trucks_out += 1
                    plan = {"truck": self.state.trucks_out, "stops": stops}
                    depot.sendall((json.dumps(plan) + "\n").encode())
                    ack = rf.readline()
                self.routes.append((plan, json.loads(ack) if ack else None))
        finally:
            rf.close()
            depot.close()


class MachineSimulator(threading.Thread):
    def __init__(self, machine_id, address, reports=6, seed=None):
        super().__init__(name=f"vm-{machine_id}")
        self.machine_id = machine_id
        self.address = address
        self.reports = reports
        self.rng = random.Random(seed)
        self.slots = {s: SLOT_CAPACITY for s in PRODUCT_SLOTS}

    def _sell(self):
        sold = 0
        for slot, left in self.slots.items():
            if left and self.rng.random() < 0.6:
                n = min(left, self.rng.randint(1, 3))
                self.slots[slot] = left - n
                sold += n * 125
        return sold

    def run(self):
        with socket.create_connection(self.address) as s:
            for _ in range(self.reports):
                msg = {"machine": self.machine_id, "stock": self.slots, "sold_cents": self._sell()}
                s.sendall((json.dumps(msg) + "\n").encode())
                time.sleep(self.rng.uniform(0.005, 0.02))


def make_alert_hook(state, alert_log):
    def hook(report):
        mid = report["machine"]
        for sku, count in report["stock"].items():
            if count <= LOW_STOCK_THRESHOLD and state.needs_reorder(sku):
                state.mark_reordered(sku)
                alert_log.write(f"{time.strftime('%H:%M:%S')} REORDER {sku} (first seen on {mid}, {count} left)")
    return hook


def main():
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    state = FleetState()
    log_path = os.path.join(tempfile.mkdtemp(prefix="fleet-"), "alerts.log")
    alerts = AlertLog(log_path)

    depot = DepotStub()
    depot.start()
    collector = Collector(state, make_alert_hook(state, alerts))
    collector.start()
    planner = RestockPlanner(state, depot.address)
    planner.start()

    sims = [MachineSimulator(f"VM-{i:03d}", collector.address, seed=i) for i in range(8)]
    for sim in sims:
        sim.start()

    # the lobby machine was power-cycled overnight and reports in late
    lobby = MachineSimulator("VM-900", collector.address, reports=4, seed=900)
    lobby.run()

    for sim in sims:
        sim.join()
    time.sleep(0.1)
    collector.stop()
    planner.stop()
    planner.join()
    depot.stop()

    total, per_machine = state.daily_totals()
    log.info("machines reporting: %d", len(per_machine))
    log.info("fleet revenue: $%.2f", total / 100)
    log.info("truck plans sent: %d", len(planner.routes))
    alerts.write(f"{time.strftime('%H:%M:%S')} END OF DAY total={total}")
    state.close_day()
    if os.path.exists(log_path):
        with open(log_path, encoding="utf-8") as fh:
            log.info("alert log lines: %d", sum(1 for _ in fh))


if __name__ == "__main__":
    main()
