#!/usr/bin/env python3
"""Lobby and matchmaking server for a small session-based game.

Clients speak a line protocol over local TCP (HELLO name rating, QUEUE mode,
READY, LEAVE, STATS).  The matchmaker groups queued players MATCH_SIZE at a
time (closest ratings first), runs a ready check on each group and tells the
players which match to join.  Running the module starts a server plus bots.
"""

import itertools
import logging
import random
import socket
import socketserver
import threading
import time
from collections import defaultdict, deque, namedtuple
from dataclasses import dataclass, field
from typing import Optional

log = logging.getLogger("lobby")

MATCH_SIZE = 2
READY_TIMEOUT = 0.4
TICKET_TTL = 30.0

_conn_ctx = threading.local()


@dataclass(eq=False)
class Player:
    name: str
    rating: int
    wfile: object
    mode: str = ""
    ticket_time: float = 0.0
    ready: bool = False
    pending: Optional[int] = None
    gone: bool = False
    _send_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, line):
        data = (line + "\n").encode()
        with self._send_lock:
            try:
                self.wfile.write(data)
            except (OSError, ValueError):
                log.debug("send to %s failed", self.name)


Match = namedtuple("Match", "match_id mode players")


class Lobby:
    def __init__(self):
        self._lock = threading.Lock()
        self._ready_cv = threading.Condition(self._lock)
        self._stats_lock = threading.Lock()
        self._wakeup = threading.Condition()
        self._dirty = self._closing = False
        self._queues = defaultdict(deque)
        self._queued = set()
        self._matches = {}
        self._pending = {}
        self._stats = {"queued": 0, "matches": 0, "aborted": 0, "left": 0}
        self._match_ids = itertools.count(1)
        self._checks = []
        self._mm_thread = threading.Thread(target=self._matchmaker_loop, name="matchmaker")

    def start(self):
        self._mm_thread.start()

    def close(self):
        with self._wakeup:
            self._closing = True
            self._wakeup.notify_all()
        self._mm_thread.join()
        for t in self._checks:
            t.join()

    def enqueue(self, player, mode):
        if player in self._queued:
            return False
        with self._lock:
            if player.gone:
                return False
            player.mode = mode
            player.ticket_time = time.monotonic()
            self._queued.add(player)
            self._queues[mode].append(player)
        with self._stats_lock:
            self._stats["queued"] += 1
        with self._wakeup:
            self._dirty = True
            self._wakeup.notify()
        return True

    def _remove_ticket_locked(self, player):
        if player not in self._queued:
            return False
        self._queues[player.mode].remove(player)
        self._queued.discard(player)
        return True

    def leave(self, player):
        with self._lock:
            removed = self._remove_ticket_locked(player)
            if removed:
                with self._stats_lock:
                    self._stats["left"] += 1
        if removed:
            self._drop_ticket(player, "left")
        return removed

    def disconnect(self, player):
        with self._lock:
            self._remove_ticket_locked(player)
            player.pending = None
            player.gone = True

    def expire_stale(self, ttl=TICKET_TTL):
        now = time.monotonic()
        expired = []
        with self._lock:
            for q in self._queues.values():
                for p in [p for p in q if now - p.ticket_time > ttl]:
                    q.remove(p)
                    self._queued.discard(p)
                    expired.append(p)
        for p in expired:
            self._drop_ticket(p, "expired")

    def _drop_ticket(self, player, reason):
        via = _conn_ctx.peer
        log.info("ticket dropped player=%s reason=%s via=%s", player.name, reason, via)
        player.send(f"DROPPED {reason}")

    def mark_ready(self, player):
        with self._ready_cv:
            match = self._pending.get(player.pending)
            if match is None:
                return False
            player.ready = True
            if all(p.ready for p in match.players):
                self._ready_cv.notify_all()
        return True

    def snapshot_stats(self):
        with self._stats_lock:
            stats = dict(self._stats)
            with self._lock:
                stats["waiting"] = sum(len(q) for q in self._queues.values())
                stats["live_matches"] = len(self._matches)
        return stats

    def _matchmaker_loop(self):
        while True:
            with self._wakeup:
                while not (self._dirty or self._closing):
                    self._wakeup.wait()
                if self._closing:
                    return
                self._dirty = False
            for match in self._form_matches():
                t = threading.Thread(target=self._ready_check, args=(match,), name=f"ready-{match.match_id}")
                self._checks.append(t)
                t.start()

    def _form_matches(self):
        matches = []
        with self._lock:
            for mode, q in self._queues.items():
                ranked = sorted(q, key=lambda p: p.rating)
                while len(ranked) >= MATCH_SIZE:
                    group, ranked = ranked[:MATCH_SIZE], ranked[MATCH_SIZE:]
                    match = Match(next(self._match_ids), mode, group)
                    for p in group:
                        q.remove(p)
                        self._queued.discard(p)
                        p.pending = match.match_id
                        p.ready = False
                    self._pending[match.match_id] = match
                    matches.append(match)
        return matches

    def _ready_check(self, match):
        for p in match.players:
            p.send(f"MATCH_FOUND {match.match_id} {match.mode}")
        with self._ready_cv:
            if not all(p.ready for p in match.players):
                self._ready_cv.wait(timeout=READY_TIMEOUT)
            accepted = [p for p in match.players if p.ready]
            missing = [p for p in match.players if not p.ready]
            del self._pending[match.match_id]
            for p in match.players:
                p.pending = None
                p.ready = False
        if missing:
            self._abort_match(match, accepted, missing)
        else:
            self._start_match(match)

    def _abort_match(self, match, accepted, missing):
        with self._stats_lock:
            self._stats["aborted"] += 1
        for p in missing:
            p.send(f"ABORTED {match.match_id}")
        for p in accepted:
            p.send(f"REQUEUED {match.match_id}")
            self.enqueue(p, match.mode)

    def _start_match(self, match):
        with self._lock:
            self._matches[match.match_id] = match
            for p in match.players:
                p.send(f"START {match.match_id}")
            with self._stats_lock:
                self._stats["matches"] += 1


class TicketReaper(threading.Thread):
    def __init__(self, lobby, interval=0.2):
        super().__init__(name="ticket-reaper")
        self.lobby, self.interval = lobby, interval
        self._stop_evt = threading.Event()

    def run(self):
        while not self._stop_evt.wait(self.interval):
            self.lobby.expire_stale()

    def stop(self):
        self._stop_evt.set()
        self.join()


class LobbyHandler(socketserver.StreamRequestHandler):
    def setup(self):
        super().setup()
        _conn_ctx.peer = "%s:%d" % self.client_address
        self.player = None

    def handle(self):
        lobby = self.server.lobby
        for raw in self.rfile:
            parts = raw.decode(errors="replace").split()
            if not parts:
                continue
            cmd, args = parts[0].upper(), parts[1:]
            if cmd == "HELLO" and len(args) == 2:
                self.player = Player(args[0], int(args[1]), self.wfile)
                self.player.send("WELCOME")
            elif self.player is None:
                self.wfile.write(b"ERR say HELLO first\n")
            elif cmd == "QUEUE":
                ok = lobby.enqueue(self.player, args[0] if args else "casual")
                self.player.send("QUEUED" if ok else "ERR already queued")
            elif cmd == "READY":
                lobby.mark_ready(self.player)
            elif cmd == "LEAVE":
                lobby.leave(self.player)
            elif cmd == "STATS":
                stats = lobby.snapshot_stats()
                self.player.send("STATS " + " ".join(f"{k}={v}" for k, v in sorted(stats.items())))
            else:
                self.player.send("ERR unknown command")

    def finish(self):
        if self.player is not None:
            self.server.lobby.disconnect(self.player)
        super().finish()


def serve(lobby, endpoint):
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), LobbyHandler)
    srv.lobby = lobby
    endpoint["server"] = srv
    endpoint["port"] = srv.server_address[1]
    srv.serve_forever(poll_interval=0.05)


def bot(name, rating, port, results, results_lock, max_attempts=3):
    outcome = "timeout"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
            rfile = sock.makefile("rb")
            send = lambda line: sock.sendall((line + "\n").encode())
            send(f"HELLO {name} {rating}")
            send("QUEUE ranked")
            attempts = 1
            for raw in rfile:
                msg = raw.decode().split()
                if msg[0] == "MATCH_FOUND":
                    time.sleep(random.uniform(0.0, 0.03))
                    send("READY")
                elif msg[0] == "START":
                    outcome = f"match-{msg[1]}"
                    break
                elif msg[0] == "ABORTED":
                    if attempts >= max_attempts:
                        outcome = "gave-up"
                        break
                    attempts += 1
                    send("QUEUE ranked")
    except socket.timeout:
        pass
    with results_lock:
        results[name] = outcome


def fetch_stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
        sock.sendall(b"HELLO admin 0\nSTATS\n")
        lines = sock.makefile("rb")
        return next(ln.decode().strip() for ln in lines if ln.startswith(b"STATS"))


def main():
    logging.basicConfig(level=logging.WARNING, format="%(threadName)s %(message)s")
    lobby = Lobby()
    lobby.start()
    reaper = TicketReaper(lobby)
    reaper.start()

    endpoint = {}
    server_thread = threading.Thread(target=serve, args=(lobby, endpoint), name="lobby-server")
    server_thread.start()
    while "port" not in endpoint:
        time.sleep(0.01)
    port = endpoint["port"]

    results, results_lock = {}, threading.Lock()
    bots = [threading.Thread(target=bot, args=(f"bot{i}", 1000 + 37 * i, port, results, results_lock))
            for i in range(6)]
    for b in bots:
        b.start()
    for b in bots:
        b.join()

    print(fetch_stats(port))
    print(", ".join(f"{name}={results[name]}" for name in sorted(results)))

    endpoint["server"].shutdown()
    server_thread.join()
    endpoint["server"].server_close()
    reaper.stop()
    lobby.close()


if __name__ == "__main__":
    main()
