#!/usr/bin/env python3
"""Sharded key-value replication agent.

The agent owns the primary copy of a few shards.  Client threads call put()
and delete(); every accepted mutation is shipped synchronously to the replica
peers over a line-oriented TCP protocol (one JSON object per line, the peer
answers "ok").  Mutations forwarded by a sibling agent are merged with
last-writer-wins on a hybrid (microsecond) version.  A background
anti-entropy task keeps per-shard digests that operators compare against the
replicas' digests.
"""

import hashlib
import json
import logging
import random
import socket
import threading
import time
from threading import Lock as _Lock, Thread

log = logging.getLogger("kvrep")

NUM_SHARDS = 4

_store = {}          # shard -> {key: (value, version)}
_versions = {}       # shard -> highest version assigned/applied
_replicated = {}     # shard -> highest version acknowledged by all peers
_store_lock = _Lock()

_peers = {}          # peer name -> connected socket
_peers_lock = _Lock()

_metrics = None


class Metrics:
    def __init__(self):
        self._lock = _Lock()
        self._counts = {}

    def incr(self, name, n=1):
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def snapshot(self):
        with self._lock:
            return dict(self._counts)


def get_metrics():
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def shard_for(key):
    digest = hashlib.blake2b(key.encode(), digest_size=2).digest()
    return int.from_bytes(digest, "big") % NUM_SHARDS


def _ensure_shard(shard):
    if shard not in _store:
        _store[shard] = {}
        _versions[shard] = 0
    return _store[shard]


def _next_version(shard):
    """Hybrid logical clock per shard; caller holds _store_lock."""
    version = max(_versions[shard] + 1, time.time_ns() // 1000)
    _versions[shard] = version
    return version


# --------------------------------------------------------------------------
# replication
# --------------------------------------------------------------------------
def _send_and_ack(conn, msg):
    conn.sendall((json.dumps(msg) + "\n").encode())
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = conn.recv(64)
        if not chunk:
            raise ConnectionError("peer closed connection")
        reply += chunk
    return reply.strip() == b"ok"


def _replicate(msg):
    failed = []
    with _peers_lock:
        for name, conn in _peers.items():
            try:
                ok = _send_and_ack(conn, msg)
            except OSError as exc:
                log.warning("replication to %s failed: %s", name, exc)
                ok = False
            if not ok:
                failed.append(name)
        if not failed:
            with _store_lock:
                shard = msg["shard"]
                _replicated[shard] = max(_replicated.get(shard, 0), msg["version"])
    if failed:
        get_metrics().incr("replication_failures", len(failed))
    return not failed


def add_peer(name, address):
    conn = socket.create_connection(address, timeout=2.0)
    with _peers_lock:
        old = _peers.pop(name, None)
        _peers[name] = conn
    if old is not None:
        old.close()


def close_peers():
    with _peers_lock:
        conns = list(_peers.values())
        _peers.clear()
    for conn in conns:
        conn.close()


def replication_status():
    with _store_lock:
        pending = {s: _versions[s] > _replicated.get(s, 0) for s in _versions}
        with _peers_lock:
            peers = sorted(_peers)
    return {"peers": peers, "pending": pending}


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------
def put(key, value):
    shard = shard_for(key)
    table = _ensure_shard(shard)
    with _store_lock:
        version = _next_version(shard)
        table[key] = (value, version)
    get_metrics().incr("puts")
    _replicate({"op": "put", "shard": shard, "key": key, "value": value, "version": version})
    return version


def delete(key):
    shard = shard_for(key)
    table = _ensure_shard(shard)
    with _store_lock:
        if key not in table:
            return False
        version = _next_version(shard)
        del table[key]
    get_metrics().incr("deletes")
    _replicate({"op": "del", "shard": shard, "key": key, "version": version})
    return True


def get(key):
    shard = shard_for(key)
    with _store_lock:
        entry = _store.get(shard, {}).get(key)
    return None if entry is None else entry[0]


def apply_remote(msg):
    """Merge a mutation forwarded by a sibling agent (last writer wins)."""
    shard = msg["shard"]
    key = msg["key"]
    table = _ensure_shard(shard)
    _store_lock.acquire()
    current = table.get(key)
    if current is not None and current[1] >= msg["version"]:
        _store_lock.release()
        return False
    if msg["op"] == "del":
        table.pop(key, None)
    else:
        table[key] = (msg["value"], msg["version"])
    _versions[shard] = max(_versions[shard], msg["version"])
    _store_lock.release()
    get_metrics().incr("remote_applied")
    return True


def shard_digest(shard):
    table = _store.get(shard)
    if not table:
        return "empty"
    h = hashlib.sha256()
    count = 0
    for key, (value, version) in table.items():
        h.update(f"{key}={value};".encode())
        count += 1
    return f"{count}:{h.hexdigest()[:12]}"


def anti_entropy_loop(stop, interval, digests):
    while not stop.wait(interval):
        for shard in range(NUM_SHARDS):
            digests[shard] = shard_digest(shard)


# --------------------------------------------------------------------------
# simulated replica peers and clients
# --------------------------------------------------------------------------
class ReplicaPeer(Thread):
    def __init__(self, name, latency=0.0003):
        super().__init__(name=f"replica-{name}")
        self.peer_name = name
        self.latency = latency
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.address = self._srv.getsockname()
        self.data = {}
        self.applied = 0

    def run(self):
        conn, _ = self._srv.accept()
        self._srv.close()
        with conn, conn.makefile("rb") as rfile:
            for line in rfile:
                msg = json.loads(line)
                time.sleep(self.latency)
                current = self.data.get(msg["key"])
                if current is None or current[1] < msg["version"]:
                    value = msg.get("value") if msg["op"] == "put" else None
                    self.data[msg["key"]] = (value, msg["version"])
                self.applied += 1
                conn.sendall(b"ok\n")


def client_writer(worker_id, n_ops, seed, done_counts):
    rng = random.Random(seed)
    for i in range(n_ops):
        key = f"user:{rng.randrange(60)}"
        if rng.random() < 0.15:
            delete(key)
        else:
            put(key, f"w{worker_id}-{i}")
    done_counts[worker_id] = n_ops


def forward_from_sibling(n_msgs, seed):
    rng = random.Random(seed)
    for i in range(n_msgs):
        key = f"user:{rng.randrange(60)}"
        apply_remote({"op": "put", "shard": shard_for(key), "key": key,
                      "value": f"sibling-{i}", "version": time.time_ns() // 1000})
        time.sleep(0.002)


def main():
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    peers = [ReplicaPeer("east"), ReplicaPeer("west")]
    for p in peers:
        p.start()
    for p in peers:
        add_peer(p.peer_name, p.address)

    stop = threading.Event()
    digests = {}
    ae = Thread(target=anti_entropy_loop, args=(stop, 0.02, digests),
                name="anti-entropy", daemon=True)
    ae.start()

    done_counts = {}
    workers = [Thread(target=client_writer, args=(w, 80, w * 7 + 1, done_counts),
                      name=f"client-{w}") for w in range(4)]
    workers.append(Thread(target=forward_from_sibling, args=(30, 99), name="sibling"))
    for t in workers:
        t.start()
    for t in workers:
        t.join()

    stop.set()
    ae.join()
    status = replication_status()
    close_peers()
    for p in peers:
        p.join()

    print("client ops:", sum(done_counts.values()))
    print("metrics:", get_metrics().snapshot())
    print("status:", status)
    print("last digests:", {s: digests.get(s) for s in range(NUM_SHARDS)})
    with _store_lock:
        live = {k: v[0] for t in _store.values() for k, v in t.items()}
    for p in peers:
        replica_live = {k: v[0] for k, v in p.data.items() if v[0] is not None}
        diverged = sum(1 for k in set(live) | set(replica_live)
                       if live.get(k) != replica_live.get(k))
        print(f"replica {p.peer_name}: applied={p.applied} keys={len(replica_live)} "
              f"diverged={diverged}")


if __name__ == "__main__":
    main()
