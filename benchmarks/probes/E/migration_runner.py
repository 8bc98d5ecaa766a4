"""Parallel schema migration runner for a sharded SQLite fleet.

Each shard is a separate SQLite file in --shards-dir.  Migrations live in
--migrations-dir as NNNN_description.sql.  Pending migrations are applied to
every shard in parallel, one thread per shard, and the shards move in
lock-step: no shard starts migration N+1 until every shard has committed N, so
the application never sees the fleet more than one schema version apart.

A central ledger database records the version of every shard and takes a
periodic checkpoint of the whole fleet so an interrupted run can be audited.
"""
from __future__ import annotations

import argparse
import glob
import logging
import os
import re
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from threading import Barrier, BrokenBarrierError, Event, Lock as Mutex
from typing import Dict, List, Optional

log = logging.getLogger("migrate")

MIGRATION_RE = re.compile(r"^(\d{4})_([\w-]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass
class ShardState:
    name: str
    path: str
    version: int = 0
    error: Optional[str] = None
    applied: List[int] = field(default_factory=list)


def load_migrations(directory: str) -> List[Migration]:
    found = []
    for path in sorted(glob.glob(os.path.join(directory, "*.sql"))):
        m = MIGRATION_RE.match(os.path.basename(path))
        if not m:
            log.warning("ignoring %s", path)
            continue
        with open(path, encoding="utf-8") as fh:
            found.append(Migration(int(m.group(1)), m.group(2), fh.read()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise SystemExit("duplicate migration versions in " + directory)
    return found


class Ledger:
    def __init__(self, path: str) -> None:
        self._mu = Mutex()
        self._conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
        self._conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS shard_version (
                shard TEXT PRIMARY KEY, version INTEGER NOT NULL, updated REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS checkpoint (
                taken REAL NOT NULL, shard TEXT NOT NULL, version INTEGER NOT NULL);
            """
        )

    def version_of(self, shard: str) -> Optional[int]:
        with self._mu:
            row = self._conn.execute(
                "SELECT version FROM shard_version WHERE shard = ?", (shard,)).fetchone()
        return row[0] if row else None

    def record(self, shard: str, version: int) -> None:
        self._mu.acquire()
        self._conn.execute(
            "INSERT OR REPLACE INTO shard_version (shard, version, updated) VALUES (?, ?, ?)",
            (shard, version, time.time()))
        self._conn.commit()
        self._mu.release()

    def checkpoint(self, registry: "ShardRegistry") -> None:
        now = time.time()
        with self._mu, registry.lock:
            rows = [(now, s.name, s.version) for s in registry.shards()]
            self._conn.executemany("INSERT INTO checkpoint VALUES (?, ?, ?)", rows)
            self._conn.commit()

    def close(self) -> None:
        with self._mu:
            self._conn.close()


class ShardRegistry:
    def __init__(self, ledger: Ledger) -> None:
        self.lock = Mutex()
        self._shards: Dict[str, ShardState] = {}
        self._ledger = ledger

    def add(self, state: ShardState) -> None:
        with self.lock:
            self._shards[state.name] = state

    def get(self, name: str) -> ShardState:
        with self.lock:
            return self._shards[name]

    def shards(self) -> List[ShardState]:
        return list(self._shards.values())

    def mark_applied(self, name: str, version: int) -> None:
        with self.lock:
            state = self._shards[name]
            state.version = version
            state.applied.append(version)
            self._ledger.record(name, version)

    def versions(self) -> Dict[str, int]:
        with self.lock:
            return {s.name: s.version for s in self._shards.values()}


class MigrationRunner:
    def __init__(self, ledger_path: str, checkpoint_every: float = 5.0) -> None:
        self.ledger = Ledger(ledger_path)
        self.registry = ShardRegistry(self.ledger)
        self.checkpoint_every = checkpoint_every
        self._abort = Event()
        self._stop_checkpoints = Event()
        self._problems: Dict[str, str] = {}
        self._durations: Dict[int, float] = {}
        self._version_locks: Dict[int, Mutex] = {}
        self._pending: List[Migration] = []
        self._barrier: Optional[Barrier] = None

    def _verify_one(self, name: str, path: str) -> None:
        try:
            conn = sqlite3.connect(path, timeout=5)
            try:
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            self._problems[name] = f"cannot open: {exc}"
            return
        if check != "ok":
            self._problems[name] = f"quick_check: {check}"
            return
        expected = self.ledger.version_of(name)
        if expected is not None and expected != version:
            self._problems[name] = f"ledger says v{expected}, file says v{version}"
            return
        self.registry.add(ShardState(name, path, version=version))

    def verify(self, shard_paths: Dict[str, str]) -> None:
        for name, path in sorted(shard_paths.items()):
            threading.Thread(target=self._verify_one, args=(name, path),
                             name=f"verify-{name}").start()

    def _note_duration(self, version: int, seconds: float) -> None:
        with self._version_locks.get(version, Mutex()):
            self._durations[version] = self._durations.get(version, 0.0) + seconds

    def _migrate_shard(self, name: str) -> None:
        state = self.registry.get(name)
        conn = sqlite3.connect(state.path, timeout=30, isolation_level=None)
        try:
            for m in self._pending:
                if self._abort.is_set():
                    return
                started = time.monotonic()
                try:
                    conn.executescript(
                        f"BEGIN IMMEDIATE;\n{m.sql}\n;PRAGMA user_version = {m.version};\nCOMMIT;")
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    state.error = f"{m.version:04d}_{m.name}: {exc}"
                    log.error("%s: %s", name, state.error)
                    self._abort.set()
                    self._barrier.abort()
                    return
                self.registry.mark_applied(name, m.version)
                self._note_duration(m.version, time.monotonic() - started)
                try:
                    self._barrier.wait(timeout=3600)
                except BrokenBarrierError:
                    return
        finally:
            conn.close()

    def _checkpoint_loop(self) -> None:
        while not self._stop_checkpoints.wait(self.checkpoint_every):
            self.ledger.checkpoint(self.registry)

    def run(self, shard_paths: Dict[str, str], migrations: List[Migration]) -> int:
        self.verify(shard_paths)
        if self._problems:
            for name, problem in sorted(self._problems.items()):
                log.error("%s: %s", name, problem)
            return 2
        versions = set(self.registry.versions().values())
        if len(versions) > 1:
            log.error("shards disagree on schema version: %s", sorted(versions))
            return 2
        current = versions.pop() if versions else 0
        self._pending = [m for m in migrations if m.version > current]
        if not self._pending:
            log.info("fleet already at v%d", current)
            return 0

        names = sorted(self.registry.versions())
        self._barrier = Barrier(len(names))
        log.info("applying %d migration(s) to %d shard(s)", len(self._pending), len(names))
        ckpt = threading.Thread(target=self._checkpoint_loop, name="checkpoint")
        ckpt.start()
        workers = [threading.Thread(target=self._migrate_shard, args=(name), name=f"shard-{name}")
                   for name in names]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        self._stop_checkpoints.set()
        ckpt.join()
        self.ledger.checkpoint(self.registry)

        for version in sorted(self._durations):
            log.info("v%04d: %.2fs total shard time", version, self._durations[version])
        failed = [s for s in self.registry.shards() if s.error]
        for s in failed:
            log.error("%s failed: %s", s.name, s.error)
        return 1 if failed else 0


def discover_shards(directory: str) -> Dict[str, str]:
    shards = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.sqlite"))):
        shards[os.path.splitext(os.path.basename(path))[0]] = path
    return shards


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="apply SQL migrations across all shards")
    ap.add_argument("--shards-dir", required=True)
    ap.add_argument("--migrations-dir", required=True)
    ap.add_argument("--ledger", default="ledger.sqlite")
    ap.add_argument("--checkpoint-every", type=float, default=5.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)-12s %(message)s")

    shards = discover_shards(args.shards_dir)
    if not shards:
        log.error("no shards in %s", args.shards_dir)
        return 2
    runner = MigrationRunner(args.ledger, args.checkpoint_every)
    try:
        return runner.run(shards, load_migrations(args.migrations_dir))
    finally:
        runner.ledger.close()


if __name__ == "__main__":
    sys.exit(main())
