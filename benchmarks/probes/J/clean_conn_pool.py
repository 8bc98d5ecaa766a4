#!/usr/bin/env python3
"""Bounded TCP connection pool with background health checks.

A local echo server stands in for the upstream service.  Callers borrow a
connection with ``pool.connection()``; idle connections are pinged
periodically by a health-check thread and replaced when they fail.  A relay
stage pulls outgoing messages from a queue and sends them through the pool.
"""
import queue
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait, FIRST_EXCEPTION
from contextlib import contextmanager

HOST = "127.0.0.1"


class EchoServer(threading.Thread):
    def __init__(self):
        super().__init__(name="echo-server")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self._clients = []

    def run(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            t = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            t.start()
            self._clients.append(t)
        self.sock.close()
        for t in self._clients:
            t.join(timeout=1.0)

    @staticmethod
    def _echo(conn):
        with conn:
            conn.settimeout(1.0)
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError:
                return


class PoolTimeout(Exception):
    pass


class ConnectionPool:
    def __init__(self, port, max_size=4, check_interval=0.02, max_concurrent_checks=2):
        self.port = port
        self.max_size = max_size
        self._cond = threading.Condition()
        self._idle = []
        self._in_use = 0
        self._closed = False
        self._stats_lock = threading.Lock()
        self.stats = {"created": 0, "reused": 0, "replaced": 0, "checks": 0}
        self._check_slots = threading.Semaphore(max_concurrent_checks)
        self._stop = threading.Event()
        self._checker = threading.Thread(target=self._health_loop, args=(check_interval,),
                                         name="health", daemon=True)

    def start(self):
        self._checker.start()

    def _bump(self, key, n=1):
        with self._stats_lock:
            self.stats[key] += n

    def _open(self):
        conn = socket.create_connection((HOST, self.port), timeout=1.0)
        self._bump("created")
        return conn

    def acquire(self, timeout=1.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._idle and self._in_use >= self.max_size:
                if self._closed:
                    raise PoolTimeout("pool closed")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolTimeout("no connection available")
                self._cond.wait(remaining)
            self._in_use += 1
            conn = self._idle.pop() if self._idle else None
        if conn is not None:
            self._bump("reused")
            return conn
        try:
            return self._open()
        except OSError:
            with self._cond:
                self._in_use -= 1
                self._cond.notify()
            raise

    def release(self, conn, broken=False):
        with self._cond:
            self._in_use -= 1
            if not broken and not self._closed:
                self._idle.append(conn)
                conn = None
            self._cond.notify()
        if conn is not None:
            conn.close()

    @contextmanager
    def connection(self):
        conn = self.acquire()
        broken = False
        try:
            yield conn
        except OSError:
            broken = True
            raise
        finally:
            self.release(conn, broken=broken)

    @staticmethod
    def _ping(conn):
        return exchange(conn, b"PING\n") == b"PING\n"

    def _check_one(self, conn):
        if not self._check_slots.acquire(timeout=0.05):
            return conn, True
        try:
            self._bump("checks")
            return conn, self._ping(conn)
        except OSError:
            return conn, False
        finally:
            self._check_slots.release()

    def _health_loop(self, interval):
        while not self._stop.wait(interval):
            with self._cond:
                batch, self._idle = self._idle, []
                self._in_use += len(batch)
            results = [self._check_one(c) for c in batch]
            for conn, healthy in results:
                if not healthy:
                    self._bump("replaced")
                self.release(conn, broken=not healthy)

    def close(self):
        self._stop.set()
        self._checker.join()
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for conn in idle:
            conn.close()


def exchange(conn, msg):
    conn.sendall(msg)
    reply = b""
    while len(reply) < len(msg):
        chunk = conn.recv(len(msg) - len(reply))
        if not chunk:
            raise ConnectionError("upstream closed")
        reply += chunk
    return reply


def relay_worker(pool, outbox, delivered, delivered_lock):
    while True:
        msg = outbox.get()
        try:
            if msg is None:
                return
            with pool.connection() as conn:
                reply = exchange(conn, msg)
            with delivered_lock:
                delivered.append(reply)
        finally:
            outbox.task_done()


def make_handler(pool, tag):
    def handler(n):
        with pool.connection() as conn:
            payload = f"{tag}-{n}\n".encode()
            return exchange(conn, payload) == payload
    return handler


def main():
    server = EchoServer()
    server.start()
    pool = ConnectionPool(server.port, max_size=4)
    pool.start()

    outbox = queue.Queue()
    delivered, delivered_lock = [], threading.Lock()
    relays = [threading.Thread(target=relay_worker, args=(pool, outbox, delivered, delivered_lock),
                               name=f"relay-{i}") for i in range(3)]
    for t in relays:
        t.start()
    for i in range(60):
        outbox.put(f"message {i:03d}\n".encode())
    outbox.join()

    handlers = [make_handler(pool, tag) for tag in ("alpha", "beta", "gamma")]
    with ThreadPoolExecutor(max_workers=6) as ex:
        futs = [ex.submit(h, n) for h in handlers for n in range(10)]
        done, not_done = wait(futs, timeout=3.0, return_when=FIRST_EXCEPTION)
        failures = [f for f in done if f.exception() is not None]
        for f in failures:
            print("handler failed:", f.exception())
        ok = sum(1 for f in done if f.exception() is None and f.result())

    time.sleep(0.06)  # give the health checker a couple of rounds on idle conns
    for _ in relays:
        outbox.put(None)
    for t in relays:
        t.join()
    pool.close()
    server.stopping.set()
    server.join()

    with delivered_lock:
        n_delivered = len(delivered)
    with pool._stats_lock:
        stats = dict(pool.stats)
    print(f"relayed {n_delivered}/60 messages, handlers ok {ok}/{len(futs)},"
          f" pending {len(not_done)}")
    print("pool stats:", stats)
    return 0 if n_delivered == 60 and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
