"""Lobby and matchmaking server for a small multiplayer game.

Clients connect over TCP and speak newline-delimited JSON:

    {"op": "hello", "name": "alice", "rating": 1540}
    {"op": "create", "lobby": "friday-night", "capacity": 4}
    {"op": "join", "lobby": "friday-night"}
    {"op": "leave"}
    {"op": "kick", "player": "bob"}          lobby owner only
    {"op": "start"}                          lobby owner only
    {"op": "queue"}                          ranked 1v1 matchmaking

When a lobby starts (or two ranked tickets are paired) a game server is
allocated from the fleet allocator and its address is pushed to the players.
"""
import argparse
import json
import logging
import queue
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

log = logging.getLogger("matchmaker")

ALLOCATOR = ("127.0.0.1", 7700)


class Session:
    def __init__(self, name: str, rating: int, wfile) -> None:
        self.name = name
        self.rating = rating
        self.lobby: Optional["Lobby"] = None
        self.alive = True
        self.last_seen = time.monotonic()
        self._wfile = wfile
        self._send_lock = threading.Lock()

    def send(self, msg: dict) -> None:
        data = (json.dumps(msg) + "\n").encode()
        with self._send_lock:
            try:
                self._wfile.write(data)
                self._wfile.flush()
            except OSError:
                self.alive = False


class Lobby:
    def __init__(self, name: str, owner: Session, capacity: int) -> None:
        self.name = name
        self.owner = owner
        self.capacity = capacity
        self.started = False
        self.members: List[Session] = [owner]
        self.mu = threading.Lock()

    def add(self, session: Session) -> None:
        with self.mu:
            self.members.append(session)
        session.lobby = self
        self.announce({"event": "joined", "lobby": self.name, "player": session.name})

    def remove(self, session: Session) -> bool:
        with self.mu:
            if session not in self.members:
                return False
            self.members.remove(session)
            if session is self.owner and self.members:
                self.owner = self.members[0]
        session.lobby = None
        self.announce({"event": "left", "lobby": self.name, "player": session.name})
        return True

    def kick(self, target_name: str) -> bool:
        with self.mu:
            victim = next((s for s in self.members if s.name == target_name), None)
            if victim is None or victim is self.owner:
                return False
            self.members.remove(victim)
            victim.lobby = None
            self.announce({"event": "left", "lobby": self.name, "player": target_name})
        victim.send({"event": "kicked", "lobby": self.name})
        return True

    def announce(self, msg: dict) -> None:
        with self.mu:
            members = list(self.members)
        for s in members:
            s.send(msg)

    def roster(self) -> List[str]:
        with self.mu:
            return [m.name for m in self.members]


@dataclass
class Ticket:
    rating: int
    session: Session = field(compare=False)
    queued_at: float = field(default_factory=time.monotonic, compare=False)


class Matchmaker:
    def __init__(self, matchers: int = 2, pair_wait: float = 5.0) -> None:
        self._lock = threading.Lock()
        self._sessions: Dict[str, Session] = {}
        self._lobbies: Dict[str, Lobby] = {}
        self._tickets: "queue.Queue[Ticket]" = queue.Queue()
        self._draining = threading.Event()
        self.pair_wait = pair_wait
        self._matchers = [threading.Thread(target=self._match_loop, name=f"matcher-{i}")
                          for i in range(matchers)]

    def start(self) -> None:
        for t in self._matchers:
            t.start()
        threading.Thread(target=self._report_loop, name="report", daemon=True).start()

    def register(self, session: Session) -> bool:
        with self._lock:
            if session.name in self._sessions:
                return False
            self._sessions[session.name] = session
            return True

    def unregister(self, session: Session) -> None:
        session.alive = False
        lob = session.lobby
        if lob is not None:
            lob.remove(session)
        with self._lock:
            self._sessions.pop(session.name, None)
            for name in [n for n, lob in self._lobbies.items() if not lob.members]:
                del self._lobbies[name]

    def lobby(self, name: str) -> Optional[Lobby]:
        with self._lock:
            return self._lobbies.get(name)

    def create_lobby(self, name: str, owner: Session, capacity: int) -> bool:
        with self._lock:
            if name in self._lobbies:
                return False
            lob = Lobby(name, owner, capacity)
            self._lobbies[name] = lob
        owner.lobby = lob
        return True

    def start_lobby(self, lob: Lobby) -> dict:
        with self._lock:
            if lob.started:
                return {"ok": False, "error": "already started"}
            lob.started = True
            self._lobbies.pop(lob.name, None)
            server = self._allocate_server(lob.name, len(lob.members))
        lob.announce({"event": "match", "server": server})
        return {"ok": True, "server": server}

    def _allocate_server(self, label: str, players: int) -> str:
        with socket.create_connection(ALLOCATOR, timeout=10) as sock:
            sock.sendall(json.dumps({"label": label, "players": players}).encode() + b"\n")
            reply = json.loads(sock.makefile("r").readline())
        return reply["address"]

    def enqueue(self, session: Session) -> None:
        self._tickets.put(Ticket(session.rating, session))

    def _match_loop(self) -> None:
        while True:
            first = self._tickets.get()
            if first is None:
                self._tickets.task_done()
                return
            if not first.session.alive:
                self._tickets.task_done()
                continue
            try:
                second = self._tickets.get(timeout=self.pair_wait)
            except queue.Empty:
                if self._draining.is_set():
                    first.session.send({"event": "queue_closed"})
                else:
                    self._tickets.put(first)
                self._tickets.task_done()
                continue
            try:
                label = f"ranked-{first.session.name}-{second.session.name}"
                server = self._allocate_server(label, 2)
                for t in (first, second):
                    t.session.send({"event": "match", "server": server})
            except (OSError, ValueError, KeyError) as exc:
                log.error("allocation failed: %s", exc)
            finally:
                self._tickets.task_done()

    def _report_loop(self) -> None:
        while not self._draining.wait(30.0):
            idle = 0
            now = time.monotonic()
            for s in self._sessions.values():
                if s.lobby is None and now - s.last_seen > 300:
                    idle += 1
            log.info("%d session(s), %d idle, %d ticket(s) queued",
                     len(self._sessions), idle, self._tickets.qsize())

    def drain(self) -> None:
        self._draining.set()
        self._tickets.join()
        for _ in self._matchers:
            self._tickets.put(None)
        for t in self._matchers:
            t.join()


def cmd_create(mm: Matchmaker, s: Session, msg: dict) -> dict:
    if s.lobby is not None:
        return {"ok": False, "error": "already in a lobby"}
    cap = max(2, min(int(msg.get("capacity", 4)), 16))
    return {"ok": mm.create_lobby(msg["lobby"], s, cap)}


def cmd_join(mm: Matchmaker, s: Session, msg: dict) -> dict:
    lob = mm.lobby(msg["lobby"])
    if lob is None or lob.started:
        return {"ok": False, "error": "no such lobby"}
    if s.lobby is not None:
        return {"ok": False, "error": "already in a lobby"}
    if len(lob.members) >= lob.capacity:
        return {"ok": False, "error": "lobby full"}
    lob.add(s)
    return {"ok": True, "players": lob.roster()}


def cmd_leave(mm: Matchmaker, s: Session, msg: dict) -> dict:
    lob = s.lobby
    return {"ok": lob is not None and lob.remove(s)}


def cmd_kick(mm: Matchmaker, s: Session, msg: dict) -> dict:
    lob = s.lobby
    if lob is None or lob.owner is not s:
        return {"ok": False, "error": "not the lobby owner"}
    return {"ok": lob.kick(msg["player"])}


def cmd_start(mm: Matchmaker, s: Session, msg: dict) -> dict:
    lob = s.lobby
    if lob is None or lob.owner is not s:
        return {"ok": False, "error": "not the lobby owner"}
    return mm.start_lobby(lob)


def cmd_queue(mm: Matchmaker, s: Session, msg: dict) -> dict:
    mm.enqueue(s)
    return {"ok": True}


HANDLERS: Dict[str, Callable[[Matchmaker, Session, dict], dict]] = {
    "create": cmd_create, "join": cmd_join, "leave": cmd_leave,
    "kick": cmd_kick, "start": cmd_start, "queue": cmd_queue,
}


class LobbyHandler(socketserver.StreamRequestHandler):
    server: "LobbyServer"

    def handle(self) -> None:
        mm = self.server.matchmaker
        hello = json.loads(self.rfile.readline() or b"{}")
        if hello.get("op") != "hello" or not hello.get("name"):
            return
        session = Session(str(hello["name"]), int(hello.get("rating", 1500)), self.wfile)
        if not mm.register(session):
            session.send({"ok": False, "error": "name taken"})
            return
        session.send({"ok": True})
        try:
            for line in self.rfile:
                session.last_seen = time.monotonic()
                try:
                    msg = json.loads(line)
                    handler = HANDLERS[msg["op"]]
                    session.send(handler(mm, session, msg))
                except (ValueError, KeyError, TypeError) as exc:
                    session.send({"ok": False, "error": f"bad request: {exc}"})
        finally:
            mm.unregister(session)


class LobbyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, matchmaker: Matchmaker) -> None:
        super().__init__(addr, LobbyHandler)
        self.matchmaker = matchmaker


def main() -> None:
    ap = argparse.ArgumentParser(description="lobby and matchmaking server")
    ap.add_argument("--port", type=int, default=7600)
    ap.add_argument("--matchers", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    mm = Matchmaker(args.matchers)
    mm.start()
    with LobbyServer(("0.0.0.0", args.port), mm) as srv:
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            log.info("shutting down; draining ranked queue")
    mm.drain()


if __name__ == "__main__":
    main()
