"""Authoritative game server simulation loop.

Player connections (simulated here by bot threads) push inputs onto a queue;
a single tick thread owns the world, applies inputs at a fixed rate, advances
physics and publishes an immutable snapshot.  Spectator fan-out runs on an
asyncio loop in a background thread.  Arena terrain is generated in worker
processes because it is CPU heavy.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import queue
import random
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

TICK_RATE_HZ = 30
MAX_PLAYERS = 8
ARENA_SIZE = 64
TERRAIN_WORKERS = 4
INPUT_QUEUE_DEPTH = 4096
SPECTATOR_TIMEOUT_S = 2.0

log = logging.getLogger("gameserver")


@dataclass(frozen=True)
class PlayerInput:
    player_id: str
    seq: int
    dx: float
    dy: float


@dataclass(frozen=True)
class PlayerState:
    player_id: str
    x: float = 0.0
    y: float = 0.0
    last_seq: int = -1


@dataclass(frozen=True)
class Snapshot:
    tick: int
    players: Tuple[PlayerState, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ServerConfig:
    tick_rate: int
    max_players: int
    arena_size: int


_config: Optional[ServerConfig] = None
_config_lock = threading.Lock()


def get_config() -> ServerConfig:
    """Lazily build the shared server configuration exactly once."""
    global _config
    cfg = _config
    if cfg is None:
        with _config_lock:
            if _config is None:
                _config = ServerConfig(TICK_RATE_HZ, MAX_PLAYERS, ARENA_SIZE)
            cfg = _config
    return cfg


def terrain_row(args: Tuple[int, int, int]) -> List[float]:
    """Height values for one arena row (pure CPU; runs in a worker process)."""
    seed, row, size = args
    rng = random.Random(seed * 100_003 + row)
    heights = []
    for col in range(size):
        h = 0.0
        for octave in range(1, 6):
            h += math.sin((row * octave + rng.random()) * 0.37) * math.cos(col * octave * 0.21) / octave
        heights.append(h)
    return heights


def generate_terrain(seed: int, size: int) -> List[List[float]]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(TERRAIN_WORKERS) as pool:
        return pool.map(terrain_row, [(seed, r, size) for r in range(size)])


class SpectatorHub:
    """Fans snapshots out to spectator queues on an asyncio loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._spectators: Dict[str, asyncio.Queue] = {}
        self._thread = threading.Thread(target=self._run, name="spectators")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def start(self) -> None:
        self._thread.start()

    def publish(self, snapshot: Snapshot) -> None:
        """Called from the tick thread."""
        self.loop.call_soon_threadsafe(self._fan_out, snapshot)

    def _fan_out(self, snapshot: Snapshot) -> None:
        for q in self._spectators.values():
            if q.full():
                q.get_nowait()
            q.put_nowait(snapshot)

    async def _subscribe(self, name: str) -> None:
        self._spectators[name] = asyncio.Queue(maxsize=8)

    async def _next_snapshot(self, name: str) -> Snapshot:
        return await self._spectators[name].get()

    def subscribe(self, name: str) -> None:
        asyncio.run_coroutine_threadsafe(self._subscribe(name), self.loop).result(SPECTATOR_TIMEOUT_S)

    def next_snapshot(self, name: str) -> Snapshot:
        fut = asyncio.run_coroutine_threadsafe(self._next_snapshot(name), self.loop)
        return fut.result(SPECTATOR_TIMEOUT_S)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


class GameServer:
    """Owns the world; only the tick thread mutates `_players` and `tick_count`."""

    def __init__(self, hub: SpectatorHub, ranked: bool = True) -> None:
        self.config = get_config()
        self.ranked = ranked
        self.tick_count = 0
        self._hub = hub
        self._inputs: "queue.Queue[PlayerInput]" = queue.Queue(INPUT_QUEUE_DEPTH)
        self._players: Dict[str, PlayerState] = {}
        self._slots = threading.BoundedSemaphore(self.config.max_players)
        self._roster_lock = threading.Lock()
        self._roster: set = set()
        self._published = threading.Condition()
        self._snapshot = Snapshot(0)
        self._stopped = threading.Event()
        self._handlers: Dict[str, Callable[[PlayerInput], None]] = {}
        for kind in ("move", "idle"):
            self._handlers[kind] = lambda inp, kind=kind: self._apply(inp, kind)
        self._ticker = threading.Thread(target=self._tick_loop, name="tick")

    # -------------------------------------------------- connection side API

    def join(self, player_id: str, timeout: float = 1.0) -> bool:
        if not self._slots.acquire(timeout=timeout):
            return False
        with self._roster_lock:
            if player_id in self._roster:
                self._slots.release()
                return False
            self._roster.add(player_id)
        return True

    def leave(self, player_id: str) -> None:
        with self._roster_lock:
            if player_id not in self._roster:
                return
            self._roster.remove(player_id)
        self._slots.release()

    def submit(self, inp: PlayerInput) -> None:
        self._inputs.put(inp, timeout=0.5)

    def latest(self) -> Snapshot:
        with self._published:
            return self._snapshot

    def wait_for_tick(self, tick: int, timeout: float = 1.0) -> Optional[Snapshot]:
        deadline = time.monotonic() + timeout
        with self._published:
            while self._snapshot.tick < tick:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._published.wait(remaining)
            return self._snapshot

    # ------------------------------------------------------ tick thread

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._stopped.set()
        self._ticker.join()

    def _apply(self, inp: PlayerInput, kind: str) -> None:
        state = self._players.get(inp.player_id, PlayerState(inp.player_id))
        if inp.seq <= state.last_seq:
            return
        speed = 0.0 if kind == "idle" else (1.5 if self.ranked else 2.0)
        half = self.config.arena_size / 2
        x = max(-half, min(half, state.x + inp.dx * speed))
        y = max(-half, min(half, state.y + inp.dy * speed))
        self._players[inp.player_id] = replace(state, x=x, y=y, last_seq=inp.seq)

    def _drain_inputs(self) -> None:
        while True:
            try:
                inp = self._inputs.get_nowait()
            except queue.Empty:
                return
            kind = "idle" if inp.dx == 0 and inp.dy == 0 else "move"
            self._handlers[kind](inp)

    def _tick_loop(self) -> None:
        period = 1.0 / self.config.tick_rate
        next_at = time.monotonic()
        while not self._stopped.is_set():
            self._drain_inputs()
            self.tick_count += 1
            snap = Snapshot(self.tick_count, tuple(sorted(self._players.values(),
                                                          key=lambda p: p.player_id)))
            with self._published:
                self._snapshot = snap
                self._published.notify_all()
            self._hub.publish(snap)
            next_at += period
            self._stopped.wait(max(0.0, next_at - time.monotonic()))


class Bot(threading.Thread):
    """Simulated client connection sending random inputs."""

    def __init__(self, server: GameServer, player_id: str, moves: int) -> None:
        super().__init__(name=f"bot-{player_id}")
        self._server = server
        self.player_id = player_id
        self._moves = moves
        self.accepted = False

    def run(self) -> None:
        self.accepted = self._server.join(self.player_id)
        if not self.accepted:
            return
        rng = random.Random(self.player_id)
        try:
            for seq in range(self._moves):
                self._server.submit(PlayerInput(self.player_id, seq,
                                                rng.choice((-1, 0, 1)), rng.choice((-1, 0, 1))))
                time.sleep(0.01)
        finally:
            self._server.leave(self.player_id)


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    terrain = generate_terrain(seed=42, size=ARENA_SIZE)
    log.info("terrain ready: %d rows, peak %.2f", len(terrain), max(map(max, terrain)))
    hub = SpectatorHub()
    hub.start()
    hub.subscribe("caster")
    server = GameServer(hub)
    server.start()
    bots = [Bot(server, f"p{i}", moves=100) for i in range(10)]
    for bot in bots:
        bot.start()
    for bot in bots:
        bot.join()
    final = server.wait_for_tick(server.latest().tick + 1)
    log.info("caster sees tick %d", hub.next_snapshot("caster").tick)
    server.stop()
    hub.stop()
    log.info("accepted %d of %d bots; final tick %s, players %d",
             sum(b.accepted for b in bots), len(bots),
             final.tick if final else "?", len(final.players) if final else 0)


if __name__ == "__main__":
    main()
