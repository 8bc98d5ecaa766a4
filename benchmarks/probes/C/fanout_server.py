"""Topic fan-out server: JSON frames over TCP, reader+writer thread per client."""
import asyncio
import json
import logging
import socket
import struct
import threading
import time
from collections import deque
from typing import BinaryIO, Deque, Dict, List, Optional, Set, Tuple

log = logging.getLogger("fanout")

HEARTBEAT_INTERVAL = 15.0
IDLE_TIMEOUT = 45.0
HANDSHAKE_TIMEOUT = 5.0
MAX_OUTBOX = 1000
MAX_FRAME = 1 << 20
_HDR = struct.Struct(">I")


def encode(msg: dict) -> bytes:
    body = json.dumps(msg, separators=(",", ":")).encode()
    return _HDR.pack(len(body)) + body


def read_frame(rfile: BinaryIO) -> Optional[dict]:
    hdr = rfile.read(_HDR.size)
    if len(hdr) < _HDR.size:
        return None
    (length,) = _HDR.unpack(hdr)
    if length > MAX_FRAME:
        raise ValueError(f"frame too large: {length}")
    body = rfile.read(length)
    return json.loads(body) if len(body) == length else None


class AuditSink:
    def __init__(self, path: str) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self._queue: Optional[asyncio.Queue] = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-loop")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._queue = asyncio.Queue()
        self._ready.set()
        self.loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            while True:
                event = await self._queue.get()
                if event is None:
                    break
                fh.write(json.dumps(event) + "\n")
                if self._queue.empty():
                    fh.flush()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()

    def emit(self, event: dict) -> None:
        self.loop.call_soon(self._queue.put_nowait, event)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._queue.put_nowait, None)
        self._thread.join()
        self.loop.close()


class Connection:
    def __init__(self, sock: socket.socket, addr: Tuple[str, int]) -> None:
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.addr = addr
        self.client_id = ""
        self.topics: Set[str] = set()
        self.last_seen = time.monotonic()
        self._outbox: Deque[bytes] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name=f"writer-{addr[1]}")

    def start_writer(self) -> None:
        self._writer.start()

    def send(self, msg: dict) -> None:
        frame = encode(msg)
        with self._cond:
            if self._closed:
                return
            if len(self._outbox) >= MAX_OUTBOX:
                self._outbox.popleft()
            self._outbox.append(frame)
            self._cond.notify()

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                if not self._outbox and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                frame = self._outbox.popleft()
            try:
                self.sock.sendall(frame)
            except OSError:
                self.close()
                return

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def join_writer(self) -> None:
        if self._writer.ident is not None:
            self._writer.join()


class FanoutServer:
    def __init__(self, host: str, port: int, audit: AuditSink) -> None:
        self.audit = audit
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.5)
        self._lock = threading.Lock()
        self._conns: Set[Connection] = set()
        self._topics: Dict[str, Set[Connection]] = {}
        self._handlers: List[threading.Thread] = []
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat")

    def _handshake(self, conn: Connection) -> bool:
        with self._lock:
            conn.sock.settimeout(HANDSHAKE_TIMEOUT)
            hello = read_frame(conn.rfile)
            if not hello or hello.get("type") != "hello" or not hello.get("client_id"):
                return False
            conn.client_id = str(hello["client_id"])
            conn.sock.settimeout(None)
            self._conns.add(conn)
        conn.send({"type": "welcome", "client_id": conn.client_id})
        return True

    def _unregister(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)
            for topic in conn.topics:
                subs = self._topics.get(topic, set())
                subs.discard(conn)
                if not subs:
                    self._topics.pop(topic, None)
            conn.topics.clear()

    def _dispatch(self, conn: Connection, msg: dict) -> None:
        kind, topic = msg.get("type"), str(msg.get("topic", ""))
        if kind == "subscribe":
            with self._lock:
                self._topics.setdefault(topic, set()).add(conn)
                conn.topics.add(topic)
        elif kind == "publish":
            with self._lock:
                subscribers = list(self._topics.get(topic, ()))
            out = {"type": "message", "topic": topic, "from": conn.client_id, "data": msg.get("data")}
            for sub in subscribers:
                sub.send(out)
            self.audit.emit({"ts": time.time(), "topic": topic, "fanout": len(subscribers)})

    def _serve_conn(self, conn: Connection) -> None:
        try:
            if not self._handshake(conn):
                return
            conn.start_writer()
            while not self._stop.is_set():
                msg = read_frame(conn.rfile)
                if msg is None:
                    break
                conn.last_seen = time.monotonic()
                self._dispatch(conn, msg)
        except (OSError, ValueError) as exc:
            log.info("%s: connection error: %s", conn.addr, exc)
        finally:
            self._unregister(conn)
            conn.close()
            conn.join_writer()

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            now = time.monotonic()
            with self._lock:
                conns = list(self._conns)
            for conn in conns:
                if now - conn.last_seen > IDLE_TIMEOUT:
                    conn.close()
                else:
                    conn.send({"type": "ping", "ts": time.time()})

    def serve_forever(self) -> None:
        self._heartbeat.start()
        while not self._stop.is_set():
            try:
                sock, addr = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn = Connection(sock, addr)
            handler = threading.Thread(target=self._serve_conn, args=(conn,), name=f"conn-{addr[1]}")
            with self._lock:
                self._handlers.append(handler)
            handler.run()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
            handlers = list(self._handlers)
        for conn in conns:
            conn.close()
        for h in handlers:
            h.join()
        self._heartbeat.join()


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    audit = AuditSink("fanout-audit.jsonl")
    audit.start()
    server = FanoutServer("0.0.0.0", 8765, audit)
    try:
        server.serve_forever()
    finally:
        server.stop()
        audit.close()


if __name__ == "__main__":
    main()
