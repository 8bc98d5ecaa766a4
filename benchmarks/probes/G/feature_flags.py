"""
Feature-flag service with hot reload.

Flags live in a JSON document on disk::

    {"flags": [{"name": "new-checkout", "enabled": true, "rollout": 25,
                "tenants": ["acme"]}]}

A watcher thread polls the file's mtime and reloads it when it changes.
Request handlers evaluate flags for the current request's user and tenant,
which are kept in a thread-local request context.  Every flag change is
appended to an audit log by a background writer so that operators can see
who flipped what, and when.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, List, Optional

log = logging.getLogger("flags")

FLAGS_PATH = os.environ.get("FLAGS_PATH", "flags.json")
AUDIT_LOG_PATH = os.environ.get("FLAGS_AUDIT_LOG", "flag_audit.log")
POLL_INTERVAL_S = 2.0
AUDIT_FLUSH_INTERVAL_S = 5.0
AUDIT_BATCH_SIZE = 100
LOAD_TIMEOUT_S = 30.0

_request_ctx = threading.local()


def set_request_context(user_id: str, tenant: str) -> None:
    _request_ctx.user_id = user_id
    _request_ctx.tenant = tenant


def clear_request_context() -> None:
    for attr in ("user_id", "tenant"):
        if hasattr(_request_ctx, attr):
            delattr(_request_ctx, attr)


def _bucket(flag_name: str, user_id: str) -> int:
    """Stable 0..99 bucket for percentage rollouts."""
    digest = hashlib.sha1(f"{flag_name}:{user_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:2], "big") % 100


@dataclass(frozen=True)
class Flag:
    name: str
    enabled: bool
    rollout: int = 100
    tenants: FrozenSet[str] = frozenset()

    @classmethod
    def from_dict(cls, raw: dict) -> "Flag":
        rollout = int(raw.get("rollout", 100))
        if not 0 <= rollout <= 100:
            raise ValueError(f"flag {raw.get('name')!r}: rollout {rollout} out of range")
        return cls(
            name=str(raw["name"]),
            enabled=bool(raw.get("enabled", False)),
            rollout=rollout,
            tenants=frozenset(raw.get("tenants", ())),
        )

    def applies_to(self, user_id: str, tenant: str) -> bool:
        if not self.enabled:
            return False
        if self.tenants and tenant not in self.tenants:
            return False
        return _bucket(self.name, user_id) < self.rollout


class AuditWriter:
    """Batches audit records and appends them to a JSON-lines file."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._queue: "queue.Queue[dict]" = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="flag-audit", daemon=True)
        self._thread.start()

    def record(self, event: dict) -> None:
        self._queue.put(event)

    def _flush(self, batch: List[dict]) -> None:
        with open(self._path, "a", encoding="utf-8") as fh:
            for event in batch:
                fh.write(json.dumps(event, sort_keys=True) + "\n")

    def _run(self) -> None:
        batch: List[dict] = []
        last_flush = time.monotonic()
        while True:
            try:
                batch.append(self._queue.get(timeout=0.5))
            except queue.Empty:
                pass
            due = time.monotonic() - last_flush >= AUDIT_FLUSH_INTERVAL_S
            if batch and (len(batch) >= AUDIT_BATCH_SIZE or due):
                try:
                    self._flush(batch)
                except OSError:
                    log.exception("could not append to audit log %s", self._path)
                batch = []
                last_flush = time.monotonic()


class FlagService:
    """Holds the current flag set and hot-reloads it from disk."""

    def __init__(self, path: str, audit: AuditWriter, poll_interval: float = POLL_INTERVAL_S) -> None:
        self._path = path
        self._audit = audit
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._flags: Dict[str, Flag] = {}
        self._version = 0
        self._mtime = 0.0
        self._loaded = False
        self._stop = threading.Event()
        self._watcher: Optional[threading.Thread] = None
        self._subscribers: List[Callable[[int], None]] = []

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def subscribe(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(version)`` after every reload that changed flags."""
        with self._lock:
            self._subscribers.append(callback)

    def set_flag(self, flag: Flag) -> None:
        """Insert or replace a single flag (admin override)."""
        with self._lock:
            self._flags[flag.name] = flag
            self._version += 1

    def get(self, name: str) -> Optional[Flag]:
        with self._lock:
            return self._flags.get(name)

    def is_enabled(self, name: str, default: bool = False) -> bool:
        flag = self.get(name)
        if flag is None:
            return default
        user_id = getattr(_request_ctx, "user_id", "anonymous")
        tenant = getattr(_request_ctx, "tenant", "")
        return flag.applies_to(user_id, tenant)

    def reload(self, force: bool = False) -> bool:
        """Re-read the flag file if it changed; return True when any flag changed."""
        try:
            mtime = os.stat(self._path).st_mtime
        except FileNotFoundError:
            log.warning("flag file %s missing; keeping current flags", self._path)
            return False
        with open(self._path, encoding="utf-8") as fh:
            document = json.load(fh)
        parsed = {flag.name: flag for flag in (Flag.from_dict(raw) for raw in document.get("flags", []))}
        with self._lock:
            if not force and mtime <= self._mtime:
                return False
            changed = sorted(
                name for name in set(self._flags) | set(parsed)
                if self._flags.get(name) != parsed.get(name)
            )
            for name in set(self._flags) - set(parsed):
                del self._flags[name]
            for flag in parsed.values():
                if self._flags.get(flag.name) != flag:
                    self.set_flag(flag)
            self._mtime = mtime
            self._loaded = True
            version = self._version
            subscribers = list(self._subscribers)
        if changed:
            log.info("flags reloaded (version %d): %s", version, ", ".join(changed))
            self._audit_changes(changed, version)
            for callback in subscribers:
                try:
                    callback(version)
                except Exception:
                    log.exception("flag subscriber failed")
        return bool(changed)

    def _audit_changes(self, changed: List[str], version: int) -> None:
        actor = _request_ctx.user_id
        for name in changed:
            self._audit.record({
                "ts": time.time(),
                "flag": name,
                "version": version,
                "actor": actor,
                "source": self._path,
            })

    def wait_until_loaded(self, timeout: float = LOAD_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self._loaded:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"flags not loaded from {self._path} within {timeout}s")
            time.sleep(0.05)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.reload()
            except (OSError, ValueError, KeyError) as exc:
                log.error("flag reload failed: %s", exc)
            self._stop.wait(self._poll_interval)

    def start(self) -> None:
        if self._watcher is not None:
            return
        self._watcher = threading.Thread(target=self._watch, name="flag-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5.0)


_service: Optional[FlagService] = None


def get_flag_service() -> FlagService:
    """Return the process-wide flag service, starting it on first use."""
    global _service
    if _service is None:
        service = FlagService(FLAGS_PATH, AuditWriter(AUDIT_LOG_PATH))
        service.start()
        _service = service
    return _service


# -- request handlers ------------------------------------------------------

def handle_checkout(user_id: str, tenant: str) -> str:
    set_request_context(user_id, tenant)
    try:
        flags = get_flag_service()
        flags.wait_until_loaded()
        if flags.is_enabled("new-checkout"):
            return "checkout-v2"
        return "checkout-v1"
    finally:
        clear_request_context()


def handle_admin_reload(admin_id: str) -> int:
    """POST /admin/flags/reload: force a re-read and return the new version."""
    set_request_context(admin_id, "admin")
    try:
        service = get_flag_service()
        service.reload(force=True)
        return service.version
    finally:
        clear_request_context()


def handle_admin_override(admin_id: str, name: str, enabled: bool) -> int:
    """POST /admin/flags/<name>: flip a flag in memory until the next reload."""
    set_request_context(admin_id, "admin")
    try:
        service = get_flag_service()
        current = service.get(name)
        rollout = current.rollout if current else 100
        tenants = current.tenants if current else frozenset()
        service.set_flag(Flag(name, enabled, rollout, tenants))
        return service.version
    finally:
        clear_request_context()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="http") as pool:
        futures = {
            pool.submit(handle_checkout, f"user-{i}", "acme" if i % 2 else "globex"): i
            for i in range(32)
        }
        variants: Dict[str, int] = {}
        for future in as_completed(futures):
            variant = future.result()
            variants[variant] = variants.get(variant, 0) + 1
    log.info("variants served: %s", variants)
    log.info("override -> version %d", handle_admin_override("ops-alice", "new-checkout", False))
    get_flag_service().stop()


if __name__ == "__main__":
    main()
