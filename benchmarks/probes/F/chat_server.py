"""Line-oriented multi-room chat server.

Clients connect over TCP (e.g. with ``nc``) and speak a tiny protocol::

    /nick NAME      choose a display name
    /join ROOM      enter a room (created on demand)
    /leave          leave the current room
    /topic TEXT     set the room topic
    /who            list members of the current room
    /rooms          list open rooms
    /quit           disconnect

Anything else is posted to the current room.  Each connection is served on
its own thread by ``socketserver.ThreadingTCPServer``; a reaper thread closes
rooms that have been idle for too long.
"""

from __future__ import annotations

import itertools
import logging
import os
import socketserver
import threading
import time
from collections import deque
from typing import Deque, Dict, List, Optional, Tuple

HOST = os.environ.get("CHAT_HOST", "127.0.0.1")
PORT = int(os.environ.get("CHAT_PORT", "7070"))
HISTORY_SIZE = 200
HISTORY_REPLAY = 20
ROOM_IDLE_TIMEOUT_S = 30 * 60
REAPER_INTERVAL_S = 60
MAX_LINE = 2048

log = logging.getLogger("chat")


class ClientSession:
    """One connected client; owns the socket's write side."""

    _ids = itertools.count(1)

    def __init__(self, wfile, address: Tuple[str, int]) -> None:
        self.session_id = next(ClientSession._ids)
        self.address = address
        self.nick = f"guest{self.session_id}"
        self.alive = True
        self._wfile = wfile

    def send_line(self, text: str) -> None:
        if not self.alive:
            return
        data = (text[:MAX_LINE] + "\r\n").encode("utf-8", "replace")
        with threading.Lock():
            try:
                self._wfile.write(data)
                self._wfile.flush()
            except OSError as exc:
                log.info("dropping %s: %s", self.address, exc)
                self.alive = False


class ChatRoom:
    """A named room with members, a topic and a bounded message history."""

    def __init__(self, name: str, registry: "RoomRegistry") -> None:
        self.name = name
        self.topic = ""
        self.last_activity = time.monotonic()
        self.closed = False
        self._registry = registry
        self._lock = threading.Lock()
        self._members: Dict[int, ClientSession] = {}
        self._history: Deque[Tuple[float, str, str]] = deque(maxlen=HISTORY_SIZE)

    def join(self, session: ClientSession) -> bool:
        """Add a member.  Returns False if the room was closed in the meantime."""
        with self._lock:
            if self.closed:
                return False
            self._members[session.session_id] = session
            self.last_activity = time.monotonic()
            backlog = list(self._history)[-HISTORY_REPLAY:]
            announced = False
            if self.topic:
                self._post_system(f"{session.nick} joined - topic: {self.topic}")
                announced = True
        for ts, nick, text in backlog:
            session.send_line(f"[{time.strftime('%H:%M', time.localtime(ts))}] <{nick}> {text}")
        if not announced:
            self.broadcast(f"* {session.nick} joined {self.name}")
        return True

    def leave(self, session: ClientSession) -> None:
        with self._lock:
            removed = self._members.pop(session.session_id, None)
            now_empty = not self._members
            if removed is not None and now_empty:
                self.closed = True
                self._registry.discard(self.name, self)
        if removed is not None and not now_empty:
            self.broadcast(f"* {session.nick} left {self.name}")

    def post(self, session: ClientSession, text: str) -> bool:
        with self._lock:
            if session.session_id not in self._members:
                return False
            self._history.append((time.time(), session.nick, text))
            self.last_activity = time.monotonic()
        self.broadcast(f"<{session.nick}> {text}")
        return True

    def set_topic(self, session: ClientSession, topic: str) -> None:
        with self._lock:
            self.topic = topic.strip()[:200]
        self._post_system(f"{session.nick} set the topic to {topic!r}")

    def _post_system(self, text: str) -> None:
        with self._lock:
            self._history.append((time.time(), "*", text))
        self.broadcast(f"* {text}")

    def broadcast(self, line: str) -> None:
        for session_id, session in self._members.items():
            session.send_line(line)

    def who(self) -> List[str]:
        with self._lock:
            return sorted(s.nick for s in self._members.values())

    def close_if_idle(self, idle_timeout: float) -> Optional[List[ClientSession]]:
        """Close the room if nobody has posted recently; returns evicted members."""
        with self._lock:
            if time.monotonic() - self.last_activity < idle_timeout:
                return None
            self.closed = True
            evicted = list(self._members.values())
            self._members.clear()
            return evicted


class RoomRegistry:
    """All rooms on this server, by name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rooms: Dict[str, ChatRoom] = {}

    def get_or_create(self, name: str) -> ChatRoom:
        with self._lock:
            room = self._rooms.get(name)
            if room is None:
                room = ChatRoom(name, self)
                self._rooms[name] = room
                log.info("created room %s", name)
            return room

    def discard(self, name: str, room: ChatRoom) -> None:
        with self._lock:
            if self._rooms.get(name) is room:
                del self._rooms[name]
                log.info("room %s is empty, removed", name)

    def close_idle(self, idle_timeout: float) -> int:
        closed: List[Tuple[ChatRoom, List[ClientSession]]] = []
        with self._lock:
            for name, room in list(self._rooms.items()):
                evicted = room.close_if_idle(idle_timeout)
                if evicted is not None:
                    del self._rooms[name]
                    closed.append((room, evicted))
        for room, evicted in closed:
            log.info("closed idle room %s (%d members)", room.name, len(evicted))
            for s in evicted:
                s.send_line(f"* room {room.name} closed after inactivity")
        return len(closed)

    def names(self) -> List[str]:
        with self._lock:
            return sorted(self._rooms)


_registry: Optional[RoomRegistry] = None


def get_registry() -> RoomRegistry:
    """Process-wide room registry, created on first use."""
    global _registry
    if _registry is None:
        _registry = RoomRegistry()
    return _registry


class ChatHandler(socketserver.StreamRequestHandler):
    """Serves one client connection for its whole lifetime."""

    def setup(self) -> None:
        super().setup()
        self.session = ClientSession(self.wfile, self.client_address)
        self.room: Optional[ChatRoom] = None

    def handle(self) -> None:
        registry = get_registry()
        log.info("connect %s as %s", self.client_address, self.session.nick)
        self.session.send_line("welcome! commands: /nick /join /leave /topic /who /quit")
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            if line.startswith("/"):
                if not self._command(registry, line):
                    break
            elif self.room is None:
                self.session.send_line("* join a room first: /join ROOM")
            elif not self.room.post(self.session, line):
                self.room = None
                self.session.send_line("* you are no longer in a room")

    def _command(self, registry: RoomRegistry, line: str) -> bool:
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        if cmd == "/quit":
            return False
        if cmd == "/nick" and arg:
            self.session.nick = arg[:32]
            self.session.send_line(f"* you are now {self.session.nick}")
        elif cmd == "/join" and arg:
            if self.room is not None:
                self.room.leave(self.session)
            room = registry.get_or_create(arg[:64])
            while not room.join(self.session):
                room = registry.get_or_create(arg[:64])
            self.room = room
        elif cmd == "/leave" and self.room is not None:
            self.room.leave(self.session)
            self.room = None
        elif cmd == "/topic" and self.room is not None:
            self.room.set_topic(self.session, arg)
        elif cmd == "/rooms":
            self.session.send_line("* rooms: " + ", ".join(registry.names()))
        elif cmd == "/who" and self.room is not None:
            self.session.send_line("* " + ", ".join(self.room.who()))
        else:
            self.session.send_line(f"* unknown or incomplete command: {cmd}")
        return True

    def finish(self) -> None:
        if self.room is not None:
            self.room.leave(self.session)
        self.session.alive = False
        log.info("disconnect %s", self.client_address)
        super().finish()


class RoomReaper(threading.Thread):
    """Periodically closes rooms nobody has used for a while."""

    def __init__(self, idle_timeout: float = ROOM_IDLE_TIMEOUT_S,
                 interval: float = REAPER_INTERVAL_S) -> None:
        super().__init__(name="room-reaper")
        self._idle_timeout = idle_timeout
        self._interval = interval
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        registry = get_registry()
        while not self._stopped.wait(self._interval):
            closed = registry.close_idle(self._idle_timeout)
            if closed:
                log.info("reaper closed %d idle rooms", closed)


class ChatServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(host: str = HOST, port: int = PORT) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    reaper = RoomReaper()
    server = ChatServer((host, port), ChatHandler)
    acceptor = threading.Thread(target=server.serve_forever, name="chat-accept")
    reaper.start()
    acceptor.start()
    log.info("chat server listening on %s:%d", host, port)
    try:
        while acceptor.is_alive():
            acceptor.join(timeout=1.0)
    except KeyboardInterrupt:
        log.info("shutting down")
    finally:
        server.shutdown()
        server.server_close()
        acceptor.join()
        reaper.stop()
        reaper.join()


if __name__ == "__main__":
    serve()
