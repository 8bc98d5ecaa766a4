"""Multiplayer game lobby server.

Players connect over a local stream socket (socketpair stands in for a TCP
accept loop), announce themselves with JOIN, ask for a game with QUEUE and
keep their session alive with HB heartbeats.  A matchmaking thread pairs
queued players of similar rating, sends both a MATCH notice and starts a
short countdown before the game begins.  A repeating timer sweeps sessions
whose heartbeats stopped.
"""
import itertools
import random
import socket
import threading
import time
from dataclasses import dataclass, field

HEARTBEAT_TIMEOUT = 0.12
SWEEP_INTERVAL = 0.04
COUNTDOWN = 0.05


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._counters = {}
        self.created = time.monotonic()

    def incr(self, key, n=1):
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + n

    def snapshot(self):
        with self._lock:
            return dict(sorted(self._counters.items()))


_metrics = None


def get_metrics():
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


@dataclass
class PlayerSession:
    name: str
    conn: socket.socket
    rating: int
    state: str = "lobby"
    last_seen: float = field(default_factory=time.monotonic)
    match_id: int = 0


def _send(conn, text):
    try:
        conn.sendall((text + "\n").encode("utf-8"))
        return True
    except OSError:
        return False


class LobbyServer:
    def __init__(self):
        self._lock = threading.Lock()
        self.sessions = {}
        self.matches = {}
        self.history = []
        self._match_ids = itertools.count(1)
        self._stop = threading.Event()
        self._handlers = []
        self._countdowns = []
        self._sweeper = None
        self._matchmaker = threading.Thread(target=self._matchmaking_loop,
                                            name="matchmaker")

    # -- lifecycle -------------------------------------------------------
    def start(self):
        self._matchmaker.start()
        self._schedule_sweep()

    def shutdown(self):
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._matchmaker.join()
        for t in self._handlers:
            t.join()
        for t in self._countdowns:
            t.join()

    def connect(self):
        """Accept a new client; returns the client's end of the socket."""
        server_end, client_end = socket.socketpair()
        t = threading.Thread(target=self._serve_connection, args=(server_end,),
                             name=f"conn-{len(self._handlers)}")
        self._handlers.append(t)
        t.start()
        return client_end

    # -- per-connection handling -----------------------------------------
    def _register(self, name, conn, rating):
        if name in self.sessions:
            _send(conn, "ERR name-taken")
            return None
        sess = PlayerSession(name, conn, rating)
        with self._lock:
            self.sessions[name] = sess
        get_metrics().incr("joined")
        _send(conn, f"WELCOME {name}")
        return sess

    def _drop(self, name, reason):
        with self._lock:
            sess = self.sessions.pop(name, None)
        if sess is not None:
            get_metrics().incr(f"dropped_{reason}")
            _send(sess.conn, f"BYE {reason}")

    def _serve_connection(self, conn):
        reader = conn.makefile("r", encoding="utf-8", newline="\n")
        sess = None
        try:
            for line in reader:
                cmd, _, arg = line.strip().partition(" ")
                if cmd == "JOIN" and sess is None:
                    name, rating = arg.split()
                    sess = self._register(name, conn, int(rating))
                elif cmd == "HB" and sess is not None:
                    sess.last_seen = time.monotonic()
                elif cmd == "QUEUE" and sess is not None:
                    with self._lock:
                        if sess.state == "lobby":
                            sess.state = "queued"
                elif cmd == "LEAVE":
                    break
        except (OSError, ValueError):
            get_metrics().incr("protocol_errors")
        finally:
            if sess is not None:
                self._drop(sess.name, "left")
            reader.close()
            conn.close()

    # -- heartbeats ------------------------------------------------------
    def _schedule_sweep(self):
        if self._stop.is_set():
            return
        self._sweeper = threading.Timer(SWEEP_INTERVAL, self._sweep)
        self._sweeper.daemon = True
        self._sweeper.start()

    def _sweep(self):
        now = time.monotonic()
        stale = []
        for name, sess in self.sessions.items():
            if now - sess.last_seen > HEARTBEAT_TIMEOUT:
                stale.append(name)
        for name in stale:
            self._drop(name, "timeout")
        self._schedule_sweep()

    # -- matchmaking -----------------------------------------------------
    def broadcast(self, text):
        with self._lock:
            for sess in self.sessions.values():
                _send(sess.conn, text)

    def _pair_queued(self):
        with self._lock:
            waiting = sorted((s for s in self.sessions.values()
                              if s.state == "queued"),
                             key=lambda s: s.rating)
            pairs = []
            while len(waiting) >= 2:
                a, b = waiting.pop(0), waiting.pop(0)
                a.state = b.state = "matched"
                pairs.append((a, b))
        return pairs

    def _matchmaking_loop(self):
        while not self._stop.wait(0.02):
            pairs = self._pair_queued()
            for a, b in pairs:
                match_id = next(self._match_ids)
                a.match_id = b.match_id = match_id
                _send(a.conn, f"MATCH {match_id} vs {b.name}")
                _send(b.conn, f"MATCH {match_id} vs {a.name}")
                countdown = threading.Timer(
                    COUNTDOWN, lambda: self._start_match(match_id, a, b))
                countdown.daemon = True
                self._countdowns.append(countdown)
                countdown.start()
            if pairs:
                self.broadcast(f"LOBBY matches={len(self.matches) + len(pairs)}")

    def _start_match(self, match_id, a, b):
        with self._lock:
            if match_id in self.matches:
                return
            self.matches[match_id] = (a.name, b.name)
            a.state = b.state = "playing"
        for p in (a, b):
            _send(p.conn, f"START {match_id}")
        threading.Thread(target=self._record_match(match_id, a, b),
                         name=f"recorder-{match_id}").start()

    def _record_match(self, match_id, a, b):
        time.sleep(0.005)  # simulated write to the match history store
        with self._lock:
            self.history.append((match_id, a.name, b.name, abs(a.rating - b.rating)))
        get_metrics().incr("matches_started")


def _read_all(sock, timeout=0.3):
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            chunks.append(data)
    except (socket.timeout, OSError):
        pass
    return b"".join(chunks).decode("utf-8").splitlines()


def play_session(server, name, rating, heartbeats, lag, results):
    sock = server.connect()
    try:
        sock.sendall(f"JOIN {name} {rating}\n".encode())
        sock.sendall(b"QUEUE\n")
        for i in range(heartbeats):
            time.sleep(lag if i == heartbeats // 2 else 0.015)
            sock.sendall(b"HB\n")
        sock.sendall(b"LEAVE\n")
    except OSError:
        pass
    results[name] = _read_all(sock)
    sock.close()


def main():
    rng = random.Random(3)
    server = LobbyServer()
    server.start()
    roster = [(f"player{i:02d}", rng.randint(900, 2100)) for i in range(10)]
    roster.append(("player03", 1500))  # reconnecting client reusing a name
    results = {}
    clients = []
    for idx, (name, rating) in enumerate(roster):
        lag = 0.2 if idx == 7 else 0.015
        key = f"{name}#{idx}"
        t = threading.Thread(target=play_session,
                             args=(server, name, rating, 12, lag, results),
                             name=key)
        clients.append(t)
        t.start()
    for t in clients:
        t.join()
    server.shutdown()

    started = sum(1 for lines in results.values()
                  if any(l.startswith("START") for l in lines))
    print(f"clients={len(roster)} saw_start={started} "
          f"matches={len(server.matches)} history={len(server.history)}")
    print("metrics:", get_metrics().snapshot())


if __name__ == "__main__":
    main()
