#!/usr/bin/env python3
"""Tiny leaderboard / counter service speaking a line protocol over TCP.

Commands (one per line):
    INCR <player> <delta>   add delta to the player's score, replies "OK <score>"
    TOP <k>                 replies "TOP name:score,name:score,..."
    SUB                     stream "LEADER <name> <score>" whenever the leader changes
    QUIT                    close the connection

Every accepted increment is appended to a journal so a restarted node can
replay it.  The demo in main() starts the server on an ephemeral local port
and drives it with a handful of concurrent clients.
"""
import os
import queue
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from threading import Lock as _Lock

HOST = "127.0.0.1"
SEED = {"ada": 5, "grace": 3, "linus": 1}

_scores = {}
_scores_lock = _Lock()
_leader = None
_version = 0

_subscribers = []
_subs_lock = _Lock()

_journal_q = queue.Queue()
_ranker = None


class Ranker:
    """Computes top-k views; keeps a small cache keyed by score version."""

    def __init__(self, max_entries=64):
        self._cache = {}
        self._cache_lock = _Lock()
        self.max_entries = max_entries

    def top(self, version, scores, k):
        key = (version, k)
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        with self._cache_lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = ranked
        return ranked


def get_ranker():
    global _ranker
    if _ranker is None:
        _ranker = Ranker()
    return _ranker


def _parse_delta(raw):
    delta = int(raw)
    if delta <= 0 or delta > 1000:
        raise ValueError(f"delta out of range: {raw}")
    return delta


def _send_line(conn, line):
    conn.sendall((line + "\n").encode())


def _broadcast(line):
    with _subs_lock:
        for conn in list(_subscribers):
            try:
                _send_line(conn, line)
            except OSError:
                _subscribers.remove(conn)


def apply_increment(player, raw_delta):
    global _leader, _version
    _scores_lock.acquire()
    score = _scores.get(player, 0) + _parse_delta(raw_delta)
    _scores[player] = score
    _version += 1
    _journal_q.put(f"{time.time():.6f} {player} {raw_delta}")
    leader = max(_scores.items(), key=lambda kv: (kv[1], kv[0]))
    if leader[0] != _leader:
        _leader = leader[0]
        _broadcast(f"LEADER {leader[0]} {leader[1]}")
    _scores_lock.release()
    return score


def snapshot():
    with _scores_lock:
        return _version, dict(_scores)


def add_subscriber(conn):
    with _subs_lock:
        _subscribers.append(conn)
        with _scores_lock:
            current = _leader, _scores.get(_leader, 0)
    if current[0] is not None:
        _send_line(conn, f"LEADER {current[0]} {current[1]}")


def preload_scores(seed):
    for player, score in seed.items():
        apply_increment(player, str(score))


def journal_writer(path):
    with open(path, "a", buffering=64 * 1024) as fh:
        while True:
            entry = _journal_q.get()
            fh.write(entry + "\n")


def handle_client(conn, addr):
    reader = conn.makefile("r", encoding="utf-8", newline="\n")
    subscribed = False
    try:
        for line in reader:
            parts = line.split()
            if not parts:
                continue
            cmd = parts[0].upper()
            if cmd == "INCR" and len(parts) == 3:
                try:
                    score = apply_increment(parts[1], parts[2])
                except ValueError as exc:
                    _send_line(conn, f"ERR {exc}")
                else:
                    _send_line(conn, f"OK {score}")
            elif cmd == "TOP":
                k = int(parts[1]) if len(parts) > 1 else 3
                version, scores = snapshot()
                ranked = get_ranker().top(version, scores, k)
                _send_line(conn, "TOP " + ",".join(f"{p}:{s}" for p, s in ranked))
            elif cmd == "SUB":
                add_subscriber(conn)
                subscribed = True
            elif cmd == "QUIT":
                break
            else:
                _send_line(conn, "ERR unknown command")
    except OSError:
        pass
    finally:
        if subscribed:
            with _subs_lock:
                if conn in _subscribers:
                    _subscribers.remove(conn)
        reader.close()
        conn.close()


def serve(listener, stop):
    handlers = []
    listener.settimeout(0.05)
    while not stop.is_set():
        try:
            conn, addr = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        t = threading.Thread(target=handle_client, args=(conn, addr), daemon=True)
        t.start()
        handlers.append(t)
    for t in handlers:
        t.join(timeout=1.0)


def client_session(port, player, rounds):
    with socket.create_connection((HOST, port), timeout=2.0) as sock:
        rf = sock.makefile("r", encoding="utf-8")
        last = None
        for i in range(rounds):
            _send_line(sock, f"INCR {player} {1 + i % 4}")
            last = rf.readline().strip()
        _send_line(sock, "TOP 3")
        top = rf.readline().strip()
        _send_line(sock, "QUIT")
        rf.close()
        return player, last, top


def watch_leaders(port, seen, ready):
    with socket.create_connection((HOST, port), timeout=2.0) as sock:
        _send_line(sock, "SUB")
        ready.set()
        rf = sock.makefile("r", encoding="utf-8")
        try:
            for line in rf:
                seen.append(line.strip())
        except (OSError, ValueError):
            pass
        finally:
            rf.close()


def main():
    journal_path = os.path.join(tempfile.mkdtemp(prefix="lb-"), "journal.log")
    threading.Thread(target=journal_writer, args=(journal_path,), daemon=True).start()
    threading.Thread(target=preload_scores(SEED), name="preload").start()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(32)
    port = listener.getsockname()[1]
    stop = threading.Event()
    server = threading.Thread(target=serve, args=(listener, stop), name="server")
    server.start()

    seen, ready = [], threading.Event()
    watcher = threading.Thread(target=watch_leaders, args=(port, seen, ready), daemon=True)
    watcher.start()
    ready.wait(2.0)
    time.sleep(0.05)

    players = ["ada", "grace", "linus", "barbara", "ken", "dennis"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(client_session, port, p, 20 + 3 * n)
                   for n, p in enumerate(players)]
        for fut in futures:
            player, last, top = fut.result()
            print(f"{player:8s} last={last:10s} {top}")

    with _subs_lock:
        subs = list(_subscribers)
    for conn in subs:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    watcher.join(timeout=1.0)

    stop.set()
    server.join()
    listener.close()
    print("final:", sorted(snapshot()[1].items(), key=lambda kv: -kv[1]))
    print("leader changes seen:", len(seen))
    print("journal:", journal_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
