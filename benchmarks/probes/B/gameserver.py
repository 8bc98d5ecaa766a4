"""Authoritative arena-server core.

A fixed-rate tick thread owns the simulation; player input arrives on
per-connection threads (bots here) and is queued for the next tick.  The
asyncio admin console runs its own loop in a separate thread, pulls data via
run_in_executor and receives a live feed of game events.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

TICK_HZ = 20
ARENA = 100
MOVES = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}

log = logging.getLogger("arena")


@dataclass
class Player:
    pid: int
    name: str
    x: int = 0
    y: int = 0
    hp: int = 100
    score: int = 0


def _generate_chunk(cx: int, cy: int) -> bytes:
    h = hashlib.blake2b(f"{cx}:{cy}".encode(), digest_size=32)
    out = bytearray()
    for _ in range(256):
        out += h.digest()
        h.update(out[-32:])
    return bytes(out)


class World:
    def __init__(self, emit: Callable[[dict], None]) -> None:
        self._lock = threading.RLock()
        self._emit = emit
        self.players: dict[int, Player] = {}
        self.tick = 0
        self.applied = 0
        self.total_inputs = 0
        self.inputs: "queue.Queue[tuple[int, str]]" = queue.Queue()
        self._chunks: dict[tuple[int, int], bytes] = {}

    def join(self, pid: int, name: str) -> None:
        with self._lock:
            self.players[pid] = Player(pid, name, random.randrange(ARENA), random.randrange(ARENA))
        self._emit({"type": "join", "pid": pid, "name": name})

    def kick(self, pid: int) -> bool:
        with self._lock:
            p = self.players.pop(pid, None)
        if p is not None:
            self._emit({"type": "kick", "pid": pid})
        return p is not None

    def submit_input(self, pid: int, cmd: str) -> None:
        self.inputs.put((pid, cmd))
        self.total_inputs += 1

    def prefetch_chunks(self, centers: list[tuple[int, int]]) -> None:
        for cx, cy in centers:
            key = (cx // 16, cy // 16)
            blob = _generate_chunk(*key)
            with self._lock:
                self._chunks.setdefault(key, blob)

    def _fire(self, shooter: Player) -> None:
        # re-entrant: called from _apply (lock held) and from the admin 'smite' path
        with self._lock:
            for other in self.players.values():
                near = abs(other.x - shooter.x) + abs(other.y - shooter.y) <= 3
                if other is not shooter and other.hp > 0 and near:
                    other.hp -= 25
                    if other.hp <= 0:
                        shooter.score += 1
                        self._emit({"type": "frag", "by": shooter.pid, "victim": other.pid})

    def _apply(self, pid: int, cmd: str) -> None:
        # caller holds self._lock
        p = self.players.get(pid)
        if p is None or p.hp <= 0:
            return
        if cmd in MOVES:
            dx, dy = MOVES[cmd]
            p.x = max(0, min(ARENA - 1, p.x + dx))
            p.y = max(0, min(ARENA - 1, p.y + dy))
        elif cmd == "fire":
            self._fire(p)
        self.applied += 1

    def step(self) -> None:
        batch = []
        while True:
            try:
                batch.append(self.inputs.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            for pid, cmd in batch:
                self._apply(pid, cmd)
            self.tick += 1
            if self.tick % (TICK_HZ * 3) == 0:
                for p in self.players.values():
                    if p.hp <= 0:
                        p.hp = 100

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"tick": self.tick, "applied": self.applied, "inputs": self.total_inputs,
                    "players": [vars(p).copy() for p in self.players.values()]}


def tick_loop(world: World, stop: threading.Event, on_overrun: Callable[[float], None]) -> None:
    period = 1.0 / TICK_HZ
    next_at = time.monotonic()
    while not stop.is_set():
        world.step()
        next_at += period
        delay = next_at - time.monotonic()
        if delay < 0:
            on_overrun(-delay)
            next_at = time.monotonic()
        else:
            stop.wait(delay)


class AdminConsole:
    def __init__(self, host: str = "127.0.0.1", port: int = 7001) -> None:
        self.host, self.port = host, port
        self.world: Optional[World] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.events: Optional[asyncio.Queue] = None
        self._shutdown: Optional[asyncio.Event] = None
        self._clients: set[asyncio.StreamWriter] = set()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="admin-console")

    def start(self) -> None:
        self._thread.start()
        self.ready.wait(5.0)

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._shutdown.set)
        self._thread.join()

    def post_event(self, evt: dict) -> None:
        """Feed a game event to connected operators (called from game threads)."""
        if self.loop is None:
            return
        self.loop.call_soon(self.events.put_nowait, evt)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.events = asyncio.Queue()
        self._shutdown = asyncio.Event()
        server = await asyncio.start_server(self._handle, self.host, self.port)
        pump = asyncio.create_task(self._pump())
        self.ready.set()
        async with server:
            await self._shutdown.wait()
        pump.cancel()

    async def _pump(self) -> None:
        while True:
            evt = await self.events.get()
            line = (json.dumps(evt) + "\n").encode()
            for w in list(self._clients):
                w.write(line)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        loop = asyncio.get_running_loop()
        try:
            while line := await reader.readline():
                cmd, *args = line.decode().split() or ["?"]
                if cmd == "status":
                    snap = await loop.run_in_executor(None, self.world.snapshot)
                    writer.write((json.dumps(snap) + "\n").encode())
                elif cmd == "kick" and args and args[0].isdigit():
                    ok = await loop.run_in_executor(None, self.world.kick, int(args[0]))
                    writer.write(b"ok\n" if ok else b"no such player\n")
                else:
                    writer.write(b"commands: status | kick <pid>\n")
                await writer.drain()
        finally:
            self._clients.discard(writer)
            writer.close()


class Bot:
    ACTIONS = ("up", "down", "left", "right", "fire")

    def __init__(self, pid: int, world: World, stop: threading.Event, rate_hz: float = 15.0) -> None:
        self.pid = pid
        self.world = world
        self.stop = stop
        self.period = 1.0 / rate_hz
        self.sent = 0
        self.rng = random.Random(pid)
        self.thread = threading.Thread(target=self.play, name=f"bot-{pid}")

    def play(self) -> None:
        self.world.join(self.pid, f"bot{self.pid}")
        while not self.stop.wait(self.period * self.rng.uniform(0.5, 1.5)):
            self.world.submit_input(self.pid, self.rng.choice(self.ACTIONS))
            self.sent += 1


def main(duration: float = 10.0, bots: int = 8) -> None:
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    stop = threading.Event()
    console = AdminConsole()
    world = World(console.post_event)
    console.world = world
    console.start()
    spawn_points = [(random.randrange(ARENA), random.randrange(ARENA)) for _ in range(bots)]
    prefetch = threading.Thread(target=world.prefetch_chunks, args=(spawn_points,), name="prefetch")
    prefetch.run()

    def overrun(lag: float) -> None:
        console.post_event({"type": "overrun", "lag_ms": round(lag * 1000, 1)})
    ticker = threading.Thread(target=tick_loop, args=(world, stop, overrun), name="tick")
    ticker.start()
    players = [Bot(i, world, stop) for i in range(1, bots + 1)]
    for b in players:
        b.thread.start()
    try:
        time.sleep(duration)
    finally:
        stop.set()
        ticker.join()
        console.stop()

    snap = world.snapshot()
    print(f"ticks={snap['tick']} applied={snap['applied']} inputs={snap['inputs']}")
    for b in players:
        print(f"  bot{b.pid}: sent {b.sent}")


if __name__ == "__main__":
    main()
