#!/usr/bin/env python3
"""Presence tracker for chat rooms.

The hub records who is online in which room; a user drops out after
PRESENCE_TTL seconds without a heartbeat.  All room state lives on an
asyncio event loop running in its own thread, and connection threads only
use the thread-safe entry points.  User profiles come from a small TTL + LRU
cache shared by every thread, which also coalesces concurrent loads.
"""

import asyncio
import logging
import threading
import time
from collections import Counter, OrderedDict, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("presence")

PRESENCE_TTL = 0.3
_MISSING = object()


class _RequestContext(threading.local):
    user = "-"
    room = "-"


_req = _RequestContext()


def trace(msg, *args):
    log.debug("[%s@%s] " + msg, _req.user, _req.room, *args)


class TTLCache:
    def __init__(self, maxsize=128, ttl=5.0, clock=time.monotonic):
        self.maxsize, self.ttl, self._clock = maxsize, ttl, clock
        self._data = OrderedDict()  # key -> (expires_at, value)
        self._loading = {}          # key -> Future of an in-progress load
        self._lock = threading.Lock()
        self.hits = self.misses = self.loads = 0

    def _get_locked(self, key):
        item = self._data.get(key)
        if item is None:
            return _MISSING
        expires_at, value = item
        if expires_at <= self._clock():
            del self._data[key]
            return _MISSING
        self._data.move_to_end(key)
        return value

    def _set_locked(self, key, value):
        self._data[key] = (self._clock() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def get(self, key, default=None):
        with self._lock:
            value = self._get_locked(key)
            if value is _MISSING:
                self.misses += 1
                return default
            self.hits += 1
            return value

    def set(self, key, value):
        with self._lock:
            self._set_locked(key, value)

    def get_or_load(self, key, loader, timeout=2.0):
        with self._lock:
            value = self._get_locked(key)
            if value is not _MISSING:
                self.hits += 1
                return value
            self.misses += 1
            pending = self._loading.get(key)
            owner = pending is None
            if owner:
                pending = self._loading[key] = Future()
                self.loads += 1
        if not owner:
            return pending.result(timeout=timeout)
        try:
            value = loader(key)
        except BaseException as exc:
            with self._lock:
                del self._loading[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            self._set_locked(key, value)
            del self._loading[key]
        pending.set_result(value)
        return value

    def stats(self):
        with self._lock:
            return {"size": len(self._data), "hits": self.hits,
                    "misses": self.misses, "loads": self.loads}


def load_profile(user):
    time.sleep(0.01)
    return {"user": user, "display": user.title(), "avatar": f"/avatars/{user}.png"}


def render_card(profiles, user):
    p = profiles.get_or_load(user, load_profile)
    return f"{p['display']} <{p['avatar']}>"


def _transfer(src, dst):
    """Copy a finished concurrent future into an asyncio future (loop thread)."""
    if dst.cancelled():
        return
    exc = src.exception()
    if exc is not None:
        dst.set_exception(exc)
    else:
        dst.set_result(src.result())


class PresenceHub:
    def __init__(self, profiles, ttl=PRESENCE_TTL):
        self._profiles = profiles
        self._ttl = ttl
        self._loop = None
        self._stopping = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="presence-loop", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="profile")
        self._listeners = []
        self._listeners_lock = threading.Lock()
        # Only ever touched on the loop thread.
        self._rooms = defaultdict(dict)  # room -> {user: last_seen}
        self._expiry = {}                # (room, user) -> TimerHandle
        self._seq = 0

    # ---- thread-safe API -------------------------------------------------
    def start(self):
        self._thread.start()
        self._started.wait()

    def stop(self):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._pool.shutdown(wait=True)

    def add_listener(self, callback):
        with self._listeners_lock:
            self._listeners.append(callback)

    def join_room(self, user, room):
        fut = asyncio.run_coroutine_threadsafe(self._join(user, room), self._loop)
        return fut.result(timeout=2.0)

    def heartbeat(self, user, room):
        self._loop.call_soon_threadsafe(self._heartbeat, user, room)

    def leave_room(self, user, room):
        self._loop.call_soon_threadsafe(self._expire, room, user, "leave")

    def announce(self, room, text):
        self._loop.call_soon_threadsafe(self._emit, "notice", room, text)

    def who(self, room):
        return asyncio.run_coroutine_threadsafe(self._who(room), self._loop).result(timeout=2.0)

    # ---- loop thread -----------------------------------------------------
    def _run(self):
        asyncio.run(self._main())

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._started.set()
        await self._stopping.wait()
        for handle in self._expiry.values():
            handle.cancel()

    async def _join(self, user, room):
        await self._loop.run_in_executor(self._pool, self._profiles.get_or_load, user, load_profile)
        first = user not in self._rooms[room]
        self._touch(user, room)
        if first:
            self._emit("join", room, user)
        return sorted(self._rooms[room])

    def _touch(self, user, room):
        self._rooms[room][user] = self._loop.time()
        old = self._expiry.pop((room, user), None)
        if old is not None:
            old.cancel()
        self._expiry[(room, user)] = self._loop.call_later(self._ttl, self._expire, room, user, "timeout")

    def _heartbeat(self, user, room):
        if user in self._rooms.get(room, ()):
            self._touch(user, room)

    def _expire(self, room, user, reason):
        members = self._rooms.get(room)
        if not members or user not in members:
            return
        del members[user]
        handle = self._expiry.pop((room, user), None)
        if handle is not None:
            handle.cancel()
        self._emit(reason, room, user)

    def _emit(self, kind, room, subject):
        self._seq += 1
        event = (self._seq, kind, room, subject)
        trace("emit %s", event)
        with self._listeners_lock:
            listeners = list(self._listeners)
        for callback in listeners:
            self._loop.call_soon(callback, event)

    async def _who(self, room):
        members = sorted(self._rooms.get(room, {}))
        return await asyncio.gather(*(self._card(u) for u in members))

    async def _card(self, user):
        done = self._loop.create_future()
        cf = self._pool.submit(render_card, self._profiles, user)
        cf.add_done_callback(lambda f: self._loop.call_soon_threadsafe(_transfer, f, done))
        return await done


class PresenceBoard:
    """Mirror of who is online, fed by hub events; threads can wait on it."""

    def __init__(self):
        self._cv = threading.Condition()
        self._online = set()
        self._joins = 0

    def on_event(self, event):
        _, kind, room, who = event
        if kind not in ("join", "leave", "timeout"):
            return
        with self._cv:
            if kind == "join":
                self._online.add((room, who))
                self._joins += 1
            else:
                self._online.discard((room, who))
            self._cv.notify_all()

    def wait_joins(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._joins < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
            return True

    def wait_empty(self, timeout):
        with self._cv:
            return self._cv.wait_for(lambda: not self._online, timeout)


class ChatClient(threading.Thread):
    def __init__(self, hub, user, room, beats, stays):
        super().__init__(name=f"client-{user}")
        self.hub, self.user, self.room = hub, user, room
        self.beats, self.stays = beats, stays
        self.members_seen = None
        self.error = None

    def run(self):
        _req.user, _req.room = self.user, self.room
        trace("connecting")
        try:
            self.members_seen = self.hub.join_room(self.user, self.room)
            for _ in range(self.beats):
                time.sleep(0.05)
                self.hub.heartbeat(self.user, self.room)
            if not self.stays:
                self.hub.leave_room(self.user, self.room)
        except Exception as exc:
            self.error = exc


def main():
    logging.basicConfig(level=logging.WARNING)
    profiles = TTLCache(maxsize=16, ttl=2.0)
    hub = PresenceHub(profiles)
    board = PresenceBoard()
    hub.add_listener(board.on_event)
    per_room = Counter()
    for room in ("lobby", "dev"):
        hub.add_listener(lambda ev, room=room: per_room.update([room]) if ev[2] == room else None)

    announce = threading.Timer(0.1, hub.announce, args=("lobby", "welcome to the lobby"))
    clients = [ChatClient(hub, f"user{i}", ("lobby", "dev")[i % 2], beats=i % 4 + 1, stays=(i % 3 == 0))
               for i in range(8)]
    try:
        hub.start()
        announce.start()
        for c in clients:
            c.start()
        if board.wait_joins(len(clients), timeout=2.0):
            print("lobby cards:", hub.who("lobby"))
        for c in clients:
            c.join()
        announce.join()
        print("everyone gone:", board.wait_empty(timeout=2.0))
    finally:
        hub.stop()

    for c in clients:
        print(f"{c.user}: saw {c.members_seen} error={c.error!r}")
    print("events per room:", dict(per_room))
    print("profile cache:", profiles.stats())


if __name__ == "__main__":
    main()
