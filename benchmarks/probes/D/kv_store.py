"""A small Redis-like in-memory key/value server with asynchronous replication.

Protocol: one JSON array per line, e.g. ``["SET", "k", "v", 30]``; the reply is
one JSON object per line, ``{"ok": ...}`` or ``{"err": "..."}``.

Commands: GET SET SETNX DEL INCR KEYS MULTI EXEC DISCARD BGSAVE SYNC.
A replica connects and sends ``["SYNC"]``; it receives a full snapshot
followed by a stream of write operations.
"""

import fnmatch
import json
import logging
import os
import queue
import socket
import socketserver
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

log = logging.getLogger("kvstore")

SNAPSHOT_PATH = os.environ.get("KV_SNAPSHOT", "dump.json")

_store: Dict[str, Any] = {}
_expiry: Dict[str, float] = {}
_store_lock = threading.Lock()
_tls = threading.local()


class Replicator:
    """Forwards write operations to every attached replica, in order."""

    _instance: Optional["Replicator"] = None

    def __init__(self) -> None:
        self._q: "queue.Queue[Optional[tuple]]" = queue.Queue()
        self._replicas: Dict[str, socket.socket] = {}
        self._replicas_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="replicator")
        self._thread.start()

    @classmethod
    def instance(cls) -> "Replicator":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def publish(self, op: tuple) -> None:
        self._q.put(op)

    def shutdown(self) -> None:
        self._q.put(None)
        self._thread.join()

    def _send_all(self, line: bytes) -> None:
        with self._replicas_lock:
            targets = list(self._replicas.items())
        for addr, sock in targets:
            try:
                sock.sendall(line)
            except OSError as exc:
                log.warning("dropping replica %s: %s", addr, exc)
                with self._replicas_lock:
                    if self._replicas.get(addr) is sock:
                        del self._replicas[addr]

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if item[0] == "__sync__":
                _, addr, sock, snapshot = item
                try:
                    sock.sendall((json.dumps(["SNAPSHOT", snapshot]) + "\n").encode())
                except OSError as exc:
                    log.warning("initial sync to %s failed: %s", addr, exc)
                    continue
                with self._replicas_lock:
                    self._replicas[addr] = sock
                continue
            self._send_all((json.dumps(list(item)) + "\n").encode())


def _apply_locked(op: tuple) -> Tuple[Any, Optional[tuple]]:
    """Apply *op* to the store; caller holds _store_lock.

    Returns (result, op-to-replicate).  Replicated ops are idempotent so that a
    replica may safely see an op that is also part of its snapshot.
    """
    kind = op[0]
    if kind == "set":
        _, key, value, ttl = op
        _store[key] = value
        if ttl:
            _expiry[key] = time.time() + ttl
        else:
            _expiry.pop(key, None)
        return "OK", ("set", key, value, _expiry.get(key))
    if kind == "del":
        key = op[1]
        existed = key in _store
        if existed:
            del _store[key]
            _expiry.pop(key, None)
        return int(existed), ("del", key)
    if kind == "incr":
        _, key, by = op
        current = _store.get(key, 0)
        if not isinstance(current, int):
            raise TypeError(f"value at {key!r} is not an integer")
        _store[key] = current + by
        return current + by, ("set", key, current + by, _expiry.get(key))
    if kind == "expire":
        _, key, deadline = op
        if _expiry.get(key) == deadline:
            del _store[key]
            del _expiry[key]
            return 1, ("del", key)
        return 0, None
    raise ValueError(f"unknown op {kind!r}")


def _apply_write(op: tuple) -> Any:
    origin = _tls.peer
    repl = Replicator.instance()
    with _store_lock:
        result, replicated = _apply_locked(op)
        if replicated is not None:
            repl.publish(replicated)
    log.debug("%s %s -> %r", origin, op[0], result)
    return result


def _get_live(key: str) -> Any:
    with _store_lock:
        deadline = _expiry.get(key)
        if deadline is not None and deadline <= time.time():
            return None
        return _store.get(key)


def _queue_or_apply(op: tuple) -> Any:
    if _tls.txn is not None:
        _tls.txn.append(op)
        return "QUEUED"
    return _apply_write(op)


def cmd_get(key: str) -> Any:
    return _get_live(key)


def cmd_set(key: str, value: Any, ttl: Optional[float] = None) -> Any:
    return _queue_or_apply(("set", key, value, ttl))


def cmd_setnx(key: str, value: Any, ttl: Optional[float] = None) -> int:
    if _get_live(key) is None:
        cmd_set(key, value, ttl)
        return 1
    return 0


def cmd_del(key: str) -> Any:
    return _queue_or_apply(("del", key))


def cmd_incr(key: str, by: int = 1) -> Any:
    return _queue_or_apply(("incr", key, int(by)))


def cmd_keys(pattern: str = "*") -> List[str]:
    return sorted(k for k in _store if fnmatch.fnmatchcase(k, pattern))


def cmd_multi() -> str:
    _tls.txn = []
    return "OK"


def cmd_discard() -> str:
    _tls.txn = None
    return "OK"


def cmd_exec() -> List[Any]:
    ops, _tls.txn = _tls.txn, None
    if ops is None:
        raise ValueError("EXEC without MULTI")
    repl = Replicator.instance()
    results = []
    with _store_lock:
        for op in ops:
            try:
                result, replicated = _apply_locked(op)
            except (TypeError, ValueError) as exc:
                results.append({"err": str(exc)})
                continue
            if replicated is not None:
                repl.publish(replicated)
            results.append(result)
    return results


def _write_snapshot(path: str) -> None:
    with _store_lock:
        data = json.dumps({"store": _store, "expiry": _expiry})
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _reap(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        log.error("background save (pid %d) failed", pid)


def cmd_bgsave() -> Dict[str, int]:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            _write_snapshot(SNAPSHOT_PATH)
            code = 0
        finally:
            os._exit(code)
    threading.Thread(target=_reap, args=(pid,), name=f"reap-{pid}", daemon=True).start()
    return {"pid": pid}


COMMANDS = {
    "GET": cmd_get, "SET": cmd_set, "SETNX": cmd_setnx, "DEL": cmd_del,
    "INCR": cmd_incr, "KEYS": cmd_keys, "MULTI": cmd_multi, "EXEC": cmd_exec,
    "DISCARD": cmd_discard, "BGSAVE": cmd_bgsave,
}


class KVHandler(socketserver.StreamRequestHandler):
    def _reply(self, obj: Dict[str, Any]) -> None:
        self.wfile.write(json.dumps(obj).encode() + b"\n")

    def _sync(self) -> None:
        addr = "%s:%d" % self.client_address[:2]
        repl = Replicator.instance()
        with _store_lock:
            snapshot = {"store": dict(_store), "expiry": dict(_expiry)}
            repl.publish(("__sync__", addr, self.connection, snapshot))
        for _ack in self.rfile:
            pass

    def handle(self) -> None:
        _tls.txn = None
        _tls.peer = "%s:%d" % self.client_address[:2]
        for raw in self.rfile:
            try:
                cmd, *args = json.loads(raw)
                name = str(cmd).upper()
                if name == "SYNC":
                    self._sync()
                    return
                reply = {"ok": COMMANDS[name](*args)}
            except KeyError:
                reply = {"err": f"unknown command {raw[:40]!r}"}
            except (TypeError, ValueError) as exc:
                reply = {"err": str(exc)}
            self._reply(reply)


class KVServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def _sweep_expired(stop: threading.Event, interval: float = 1.0) -> None:
    while not stop.wait(interval):
        now = time.time()
        with _store_lock:
            due = [(k, t) for k, t in _expiry.items() if t <= now]
        for key, deadline in due:
            _apply_write(("expire", key, deadline))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7379
    stop = threading.Event()
    sweeper = threading.Thread(target=_sweep_expired, args=(stop,), name="expiry")
    sweeper.start()
    server = KVServer(("0.0.0.0", port), KVHandler)
    log.info("listening on %d", port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        stop.set()
        sweeper.join()
        Replicator.instance().shutdown()
        _write_snapshot(SNAPSHOT_PATH)


if __name__ == "__main__":
    main()
