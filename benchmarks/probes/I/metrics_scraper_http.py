#!/usr/bin/env python3
"""Tiny metrics scraper / re-exporter.

Periodically scrapes the ``/metrics`` endpoint of a set of targets (here: a few
fake application servers started on localhost), merges the samples into one
registry with a ``target`` label, and re-exposes everything on its own
``/metrics`` endpoint served by a ThreadingHTTPServer.  Each exporter request
is written to an access log file.

Run:  python3 metrics_scraper_http.py
"""

import os
import queue
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple

SCRAPE_INTERVAL = 0.05
RUN_SECONDS = 1.0
ACCESS_LOG_BATCH = 25

LabelKey = Tuple[Tuple[str, str], ...]


# --------------------------------------------------------------------------
# registry

class MetricRegistry:
    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self._lock = threading.Lock()
        self._samples: Dict[Tuple[str, LabelKey], float] = {}
        self._help: Dict[str, str] = {}

    def set(self, name: str, labels: Dict[str, str], value: float) -> None:
        key = (self.prefix + name, tuple(sorted(labels.items())))
        with self._lock:
            self._samples[key] = value

    def inc(self, name: str, labels: Dict[str, str], amount: float = 1.0) -> None:
        key = (self.prefix + name, tuple(sorted(labels.items())))
        with self._lock:
            self._samples[key] = self._samples.get(key, 0.0) + amount

    def describe(self, name: str, text: str) -> None:
        with self._lock:
            self._help.setdefault(self.prefix + name, text)

    def series_count(self) -> int:
        with self._lock:
            return len(self._samples)

    def render(self) -> str:
        lines = []
        for (name, labels), value in sorted(self._samples.items()):
            label_txt = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{label_txt}}} {value:g}" if label_txt
                         else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


_registry: Optional[MetricRegistry] = None
_registry_lock = threading.Lock()


def get_registry() -> MetricRegistry:
    global _registry
    if _registry is None:
        with _registry_lock:
            _registry = MetricRegistry(prefix="fleet_")
    return _registry


# --------------------------------------------------------------------------
# fake application targets

class _AppHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        app = self.server.app_state
        with app["lock"]:
            app["hits"] += 1
            hits = app["hits"]
        lines = [f"app_requests_total {hits * 3}",
                 f'app_queue_depth{{queue="default"}} {hits % 7}']
        # Every few scrapes a new worker shows up, so the series set keeps growing.
        for w in range(hits // 3):
            lines.append(f'app_worker_busy{{worker="w{w}"}} {(hits + w) % 2}')
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def start_app(name: str) -> Tuple[ThreadingHTTPServer, threading.Thread]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _AppHandler)
    srv.app_state = {"name": name, "hits": 0, "lock": threading.Lock()}
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"app-{name}")
    t.start()
    return srv, t


# --------------------------------------------------------------------------
# scraping

@dataclass
class TargetState:
    name: str
    url: str
    scrapes: int = 0
    failures: int = 0
    last_duration: float = 0.0
    last_error: str = ""
    last_body: bytes = field(default=b"", repr=False)


def parse_exposition(text: str) -> List[Tuple[str, Dict[str, str], float]]:
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        labels: Dict[str, str] = {}
        if "{" in head:
            name, _, rest = head.partition("{")
            for pair in rest.rstrip("}").split(","):
                if pair:
                    k, _, v = pair.partition("=")
                    labels[k] = v.strip('"')
        else:
            name = head
        samples.append((name, labels, float(value)))
    return samples


class Scraper:
    def __init__(self, targets: Dict[str, str]):
        self._lock = threading.Lock()
        self._states = {n: TargetState(n, u) for n, u in targets.items()}
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []

    def start(self) -> None:
        for name in self._states:
            t = threading.Thread(target=self._loop, args=(name,), name=f"scrape-{name}")
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _loop(self, name: str) -> None:
        while not self._stop.wait(SCRAPE_INTERVAL):
            self.scrape_one(name)

    def scrape_one(self, name: str) -> None:
        reg = get_registry()
        started = time.monotonic()
        with self._lock:
            state = self._states[name]
            try:
                with urllib.request.urlopen(state.url, timeout=1.0) as resp:
                    state.last_body = resp.read()
                state.scrapes += 1
                state.last_error = ""
            except OSError as exc:
                state.failures += 1
                state.last_error = str(exc)
            state.last_duration = time.monotonic() - started
            body, ok = state.last_body, not state.last_error
        reg.describe("up", "1 if the last scrape of the target succeeded")
        reg.set("up", {"target": name}, 1.0 if ok else 0.0)
        reg.set("scrape_duration_seconds", {"target": name}, time.monotonic() - started)
        if ok:
            for metric, labels, value in parse_exposition(body.decode()):
                labels["target"] = name
                reg.set(metric, labels, value)

    def summary(self) -> Dict[str, Tuple[int, int]]:
        with self._lock:
            return {n: (s.scrapes, s.failures) for n, s in self._states.items()}


# --------------------------------------------------------------------------
# exporter endpoint + access log

_http_stats = {"requests": 0, "bytes_out": 0, "errors": 0}
_stats_lock = threading.Lock()
_access_log: "queue.Queue[str]" = queue.Queue()

_exporter: Optional[ThreadingHTTPServer] = None
_exporter_ready = False


def _access_log_writer(path: str) -> None:
    buffered: List[str] = []
    with open(path, "a", encoding="utf-8") as fh:
        while True:
            try:
                buffered.append(_access_log.get(timeout=0.5))
            except queue.Empty:
                pass
            if len(buffered) >= ACCESS_LOG_BATCH:
                fh.write("".join(buffered))
                fh.flush()
                buffered.clear()


class ExporterHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        with _stats_lock:
            _http_stats["requests"] += 1
        if self.path == "/healthz":
            body = b"ok\n"
        elif self.path == "/metrics":
            body = get_registry().render().encode()
        else:
            with _stats_lock:
                _http_stats["errors"] += 1
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        _http_stats["bytes_out"] += len(body)

    def log_message(self, fmt, *args):
        _access_log.put("%s - [%s] %s\n" % (self.client_address[0],
                                            self.log_date_time_string(), fmt % args))


def serve_exporter() -> None:
    global _exporter, _exporter_ready
    _exporter = ThreadingHTTPServer(("127.0.0.1", 0), ExporterHandler)
    _exporter_ready = True
    _exporter.serve_forever(poll_interval=0.05)


def client(port: int, rounds: int, sizes: List[int]) -> None:
    for _ in range(rounds):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                sizes.append(len(r.read()))
        except OSError:
            sizes.append(-1)
        time.sleep(0.02)


def main() -> None:
    log_path = os.path.join(tempfile.mkdtemp(prefix="scraper-"), "access.log")
    threading.Thread(target=_access_log_writer, args=(log_path,), daemon=True).start()

    apps = {f"app{i}": start_app(f"app{i}") for i in range(3)}
    targets = {n: f"http://127.0.0.1:{srv.server_address[1]}/metrics"
               for n, (srv, _) in apps.items()}

    exporter_thread = threading.Thread(target=serve_exporter, name="exporter")
    exporter_thread.start()
    while not _exporter_ready:
        time.sleep(0.005)
    port = _exporter.server_address[1]

    scraper = Scraper(targets)
    scraper.start()

    per_client: List[List[int]] = [[] for _ in range(4)]
    clients = [threading.Thread(target=client, args=(port, 10, per_client[i]),
                                name=f"client-{i}") for i in range(4)]
    for c in clients:
        c.start()
    time.sleep(RUN_SECONDS / 2)
    for c in clients:
        c.join()
    time.sleep(RUN_SECONDS / 2)

    scraper.stop()
    _exporter.shutdown()
    _exporter.server_close()
    exporter_thread.join()
    for srv, t in apps.values():
        srv.shutdown()
        srv.server_close()
        t.join()

    with _stats_lock:
        stats = dict(_http_stats)
    failed = sum(1 for sizes in per_client for s in sizes if s < 0)
    print("scrapes per target:", scraper.summary())
    print(f"series in registry: {get_registry().series_count()}")
    print(f"exporter requests={stats['requests']} bytes_out={stats['bytes_out']} "
          f"client_failures={failed}")
    with open(log_path, encoding="utf-8") as fh:
        print(f"access log lines on disk: {sum(1 for _ in fh)}")


if __name__ == "__main__":
    main()
