"""Thread-safe connection pool for the line-oriented protocol spoken by our
key/value storage nodes ("GET key" -> "VALUE ..." / "NOT_FOUND").

At most ``size`` connections are checked out at any time; callers beyond
that block (with a timeout) on the pool semaphore.  Idle connections are
kept for reuse and closed by a background reaper once they have been idle
for ``max_idle`` seconds.
"""

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager

log = logging.getLogger(__name__)


class PoolTimeout(Exception):
    pass


class ConnectionBroken(Exception):
    pass


class Connection:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.rfile = self.sock.makefile("rb")
        self.last_used = time.monotonic()
        self.broken = False

    def request(self, line):
        try:
            self.sock.sendall(line.encode("utf-8") + b"\n")
            reply = self.rfile.readline()
        except OSError as exc:
            self.broken = True
            raise ConnectionBroken(str(exc)) from exc
        if not reply:
            self.broken = True
            raise ConnectionBroken("server closed the connection")
        return reply.decode("utf-8").rstrip("\r\n")

    def close(self):
        self.rfile.close()
        self.sock.close()


class ConnectionPool:
    def __init__(self, host, port, size=8, connect_timeout=2.0,
                 max_idle=60.0, retries=3):
        self.host, self.port = host, port
        self.size = size
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self.retries = retries
        self._slots = threading.Semaphore(size)
        self._lock = threading.Lock()
        self._idle = []
        self._closed = False
        self._reaper = None
        self._reaper_stop = threading.Event()
        self.stats = {"created": 0, "reused": 0, "evicted": 0, "timeouts": 0}

    def _connect(self):
        delay = 0.1
        for attempt in range(self.retries):
            try:
                return Connection(self.host, self.port, self.connect_timeout)
            except OSError as exc:
                if attempt == self.retries - 1:
                    raise
                log.warning("connect to %s:%s failed (%s), retrying",
                            self.host, self.port, exc)
                time.sleep(delay)
                delay *= 2

    def checkout(self, timeout=5.0):
        if not self._slots.acquire(timeout=timeout):
            with self._lock:
                self.stats["timeouts"] += 1
            raise PoolTimeout(f"no connection to {self.host}:{self.port} "
                              f"within {timeout}s")
        try:
            with self._lock:
                if self._closed:
                    raise RuntimeError("pool is closed")
                if self._idle:
                    self.stats["reused"] += 1
                    return self._idle.pop()
                conn = self._connect()
                self.stats["created"] += 1
                return conn
        except BaseException:
            self._slots.release()
            raise

    def checkin(self, conn):
        self._lock.acquire()
        if conn.broken or self._closed:
            conn.close()
        else:
            conn.last_used = time.monotonic()
            self._idle.append(conn)
        self._lock.release()
        self._slots.release()

    @contextmanager
    def connection(self, timeout=5.0):
        conn = self.checkout(timeout)
        try:
            yield conn
        except ConnectionBroken:
            conn.broken = True
            raise
        finally:
            self.checkin(conn)

    def evict_idle(self):
        now = time.monotonic()
        with self._lock:
            keep, stale = [], []
            for c in self._idle:
                (stale if now - c.last_used > self.max_idle else keep).append(c)
            self._idle = keep
            self.stats["evicted"] += len(stale)
        for c in stale:
            try:
                c.close()
            except OSError:
                pass
            self._slots.release()
        return len(stale)

    def _reap_loop(self, interval):
        while not self._reaper_stop.wait(interval):
            n = self.evict_idle()
            if n:
                log.debug("evicted %d idle connections", n)

    def start_reaper(self, interval=15.0):
        with self._lock:
            if self._reaper is not None:
                return
            self._reaper = threading.Thread(target=self._reap_loop,
                                            args=(interval,),
                                            name="kv-pool-reaper", daemon=True)
            self._reaper.start()

    def close(self):
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            reaper = self._reaper
        for c in idle:
            try:
                c.close()
            except OSError:
                pass
        if reaper is not None:
            self._reaper_stop.set()
            reaper.join()


_default_pool = None


def get_default_pool():
    global _default_pool
    if _default_pool is None:
        host = os.environ.get("KV_HOST", "127.0.0.1")
        port = int(os.environ.get("KV_PORT", "7411"))
        _default_pool = ConnectionPool(host, port)
        _default_pool.start_reaper()
    return _default_pool


def kv_get(key, pool=None):
    pool = pool or get_default_pool()
    with pool.connection() as conn:
        reply = conn.request(f"GET {key}")
    if reply == "NOT_FOUND":
        return None
    if not reply.startswith("VALUE "):
        raise ValueError(f"unexpected reply {reply!r}")
    return reply[len("VALUE "):]


def kv_set(key, value, pool=None):
    pool = pool or get_default_pool()
    with pool.connection() as conn:
        reply = conn.request(f"SET {key} {value}")
    if reply != "STORED":
        raise ValueError(f"SET {key} failed: {reply!r}")


def kv_multi_get(keys, pool=None, parallelism=4):
    """Fetch many keys over up to ``parallelism`` connections."""
    pool = pool or get_default_pool()
    keys = list(keys)
    results, errors = {}, []
    res_lock = threading.Lock()

    def worker(chunk):
        for k in chunk:
            try:
                v = kv_get(k, pool)
            except Exception as exc:
                with res_lock:
                    errors.append(exc)
                return
            with res_lock:
                results[k] = v

    chunks = [keys[i::parallelism] for i in range(parallelism)]
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks if c]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
