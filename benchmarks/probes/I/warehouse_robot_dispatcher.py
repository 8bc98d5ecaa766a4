#!/usr/bin/env python3
"""Warehouse robot fleet dispatcher.

Simulates a small fleet of picking robots.  An order feed posts pick tasks to
a shared task board, dispatcher threads match each task with an idle robot
(preferring one that is already parked in the right zone), and each robot runs
in its own thread, driving between zones and picking items.  Every zone has a
traffic lock so that only one robot at a time passes the aisle crossing.
Robots go to one of the shared chargers when their battery gets low.
"""

import logging
import queue
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, Dict, List, Optional

log = logging.getLogger("dispatcher")

ZONES = ("A", "B", "C", "D")
NUM_ROBOTS = 5
NUM_DISPATCHERS = 2
NUM_ORDERS = 60
CHARGER_SLOTS = 2
LOW_BATTERY = 35.0
TRAVEL_SECONDS = 0.004
PICK_SECONDS = 0.003


@dataclass
class PickTask:
    task_id: int
    sku: str
    zone: str
    qty: int = 1
    attempts: int = 0


@dataclass
class RobotState:
    robot_id: str
    battery: float = 100.0
    zone: str = "dock"
    completed: int = 0
    busy: bool = False


class Zone:
    def __init__(self, name: str):
        self.name = name
        self.lock = threading.Lock()
        self.occupant: Optional[str] = None
        self.crossings = 0


class TaskBoard:
    """Pending pick tasks, handed out in FIFO order."""

    def __init__(self):
        self._cond = threading.Condition()
        self._tasks: Deque[PickTask] = deque()
        self._closed = False

    def post(self, task: PickTask) -> None:
        with self._cond:
            self._tasks.append(task)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self) -> Optional[PickTask]:
        """Block until a task is available; None once the board is closed."""
        with self._cond:
            if not self._tasks and not self._closed:
                self._cond.wait()
            if not self._tasks:
                return None
            return self._tasks.popleft()

    def pending(self) -> int:
        with self._cond:
            return len(self._tasks)


class Fleet:
    """Bookkeeping for every robot: position, battery and availability."""

    def __init__(self, zones: Dict[str, Zone]):
        self.zones = zones
        self._cond = threading.Condition()
        self._robots: Dict[str, RobotState] = {}
        self._idle: List[str] = []

    def register(self, robot_id: str) -> None:
        with self._cond:
            self._robots[robot_id] = RobotState(robot_id)
            self._idle.append(robot_id)
            self._cond.notify_all()

    def is_idle(self, robot_id: str) -> bool:
        with self._cond:
            return robot_id in self._idle

    def mark_busy(self, robot_id: str) -> None:
        with self._cond:
            if robot_id in self._idle:
                self._idle.remove(robot_id)
            self._robots[robot_id].busy = True

    def mark_idle(self, robot_id: str) -> None:
        with self._cond:
            self._robots[robot_id].busy = False
            if robot_id not in self._idle:
                self._idle.append(robot_id)
            self._cond.notify_all()

    def idle_robots(self, near_zone: Optional[str] = None) -> List[str]:
        with self._cond:
            ids = list(self._idle)
            if near_zone is not None:
                ids.sort(key=lambda r: self._robots[r].zone != near_zone)
            return ids

    def wait_for_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._idle), timeout)

    def enter_zone(self, robot_id: str, zone: Zone) -> None:
        with self._cond:
            self._robots[robot_id].zone = zone.name

    def drain(self, robot_id: str, amount: float) -> float:
        with self._cond:
            st = self._robots[robot_id]
            st.battery = max(0.0, st.battery - amount)
            return st.battery

    def recharge(self, robot_id: str, amount: float) -> None:
        with self._cond:
            st = self._robots[robot_id]
            st.battery = min(100.0, st.battery + amount)

    def record_completion(self, robot_id: str) -> None:
        with self._cond:
            self._robots[robot_id].completed += 1

    def snapshot(self) -> Dict[str, RobotState]:
        with self._cond:
            return {rid: RobotState(**vars(st)) for rid, st in self._robots.items()}

    def occupancy_report(self) -> Dict[str, tuple]:
        """Zone -> (robot currently in the crossing, robots parked in zone)."""
        with self._cond:
            report = {}
            for name, zone in self.zones.items():
                with zone.lock:
                    parked = [r for r, st in self._robots.items() if st.zone == name]
                    report[name] = (zone.occupant, parked, zone.crossings)
            return report


class Robot(threading.Thread):
    def __init__(self, robot_id: str, fleet: Fleet, chargers: threading.Semaphore,
                 on_result: Callable[[str, PickTask, bool], None], seed: int):
        super().__init__(name=f"robot-{robot_id}")
        self.robot_id = robot_id
        self.fleet = fleet
        self.chargers = chargers
        self.on_result = on_result
        self.inbox: "queue.Queue[Optional[PickTask]]" = queue.Queue()
        self._rng = random.Random(seed)

    def assign(self, task: PickTask) -> None:
        self.inbox.put(task)

    def shutdown(self) -> None:
        self.inbox.put(None)

    def run(self) -> None:
        while True:
            task = self.inbox.get()
            if task is None:
                break
            ok = self._execute(task)
            self.on_result(self.robot_id, task, ok)
            if ok:
                self.fleet.record_completion(self.robot_id)
            battery = self.fleet.drain(self.robot_id, self._rng.uniform(4.0, 9.0))
            if battery < LOW_BATTERY:
                self._charge()
            self.fleet.mark_idle(self.robot_id)

    def _cross(self, zone: Zone) -> None:
        with zone.lock:
            zone.occupant = self.robot_id
            zone.crossings += 1
            self.fleet.enter_zone(self.robot_id, zone)
            zone.occupant = None

    def _execute(self, task: PickTask) -> bool:
        self._cross(self.fleet.zones[task.zone])
        time.sleep(TRAVEL_SECONDS)
        time.sleep(PICK_SECONDS * task.qty)
        # Roughly one pick in ten finds an empty bin.
        return self._rng.random() > 0.1

    def _charge(self) -> None:
        got_slot = self.chargers.acquire(timeout=0.01)
        try:
            if not got_slot:
                log.info("%s: chargers busy, trickle charging", self.robot_id)
                self.fleet.recharge(self.robot_id, 15.0)
                return
            time.sleep(0.01)
            self.fleet.recharge(self.robot_id, 100.0)
        finally:
            self.chargers.release()


class Dispatcher:
    def __init__(self, board: TaskBoard, fleet: Fleet, robots: Dict[str, Robot]):
        self.board = board
        self.fleet = fleet
        self.robots = robots
        self._lock = threading.Lock()
        self._failed: List[PickTask] = []
        self.assigned = 0
        self.done = 0
        self.failures = 0

    def report(self, robot_id: str, task: PickTask, ok: bool) -> None:
        with self._lock:
            if ok:
                self.done += 1
            else:
                self.failures += 1
                task.attempts += 1
                if task.attempts < 3:
                    self._failed.append(task)
        log.debug("%s finished task %d ok=%s", robot_id, task.task_id, ok)

    def take_failed(self) -> List[PickTask]:
        with self._lock:
            failed, self._failed = self._failed, []
            return failed

    def _choose_robot(self, task: PickTask) -> Optional[str]:
        for rid in self.fleet.idle_robots(near_zone=task.zone):
            if self.fleet.is_idle(rid):
                self.fleet.mark_busy(rid)
                return rid
        return None

    def run_loop(self) -> None:
        while True:
            task = self.board.take()
            if task is None:
                return
            rid = self._choose_robot(task)
            while rid is None:
                self.fleet.wait_for_idle(timeout=0.05)
                rid = self._choose_robot(task)
            with self._lock:
                self.assigned += 1
            self.robots[rid].assign(task)


def feed_orders(board: TaskBoard, dispatcher: Dispatcher, orders: List[PickTask],
                rng: random.Random) -> None:
    for task in orders:
        board.post(task)
        time.sleep(rng.uniform(0.0, 0.003))

    # Let the fleet work through the backlog, then retry the empty-bin picks
    # once after a short delay (restocking usually catches up by then).
    time.sleep(0.15)
    retries = []
    for task in dispatcher.take_failed():
        timer = threading.Timer(0.02, lambda: board.post(task))
        timer.start()
        retries.append(timer)
    for timer in retries:
        timer.join()


def monitor(fleet: Fleet, stop: threading.Event, history: List[dict]) -> None:
    while not stop.wait(0.1):
        history.append(fleet.occupancy_report())


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(threadName)s %(message)s")
    rng = random.Random(7)
    zones = {name: Zone(name) for name in ZONES}
    fleet = Fleet(zones)
    chargers = threading.Semaphore(CHARGER_SLOTS)
    board = TaskBoard()

    robots: Dict[str, Robot] = {}
    dispatcher = Dispatcher(board, fleet, robots)
    for i in range(NUM_ROBOTS):
        rid = f"R{i + 1}"
        fleet.register(rid)
        robots[rid] = Robot(rid, fleet, chargers, dispatcher.report, seed=100 + i)

    orders = [PickTask(n, f"SKU-{rng.randint(1000, 9999)}", rng.choice(ZONES),
                       qty=rng.randint(1, 3)) for n in range(NUM_ORDERS)]

    stop, history = threading.Event(), []
    mon = threading.Thread(target=monitor, args=(fleet, stop, history), name="monitor")
    feeder = threading.Thread(target=feed_orders, args=(board, dispatcher, orders, rng))
    dispatch_threads = [threading.Thread(target=dispatcher.run_loop, name=f"dispatch-{i}")
                        for i in range(NUM_DISPATCHERS)]

    started = time.monotonic()
    for robot in robots.values():
        robot.start()
    mon.start()
    for t in dispatch_threads:
        t.start()
    feeder.start()

    feeder.join()
    board.close()
    for t in dispatch_threads:
        t.join()
    for robot in robots.values():
        robot.shutdown()
    for robot in robots.values():
        robot.join()
    stop.set()
    mon.join()

    print(f"orders={NUM_ORDERS} assigned={dispatcher.assigned} done={dispatcher.done} "
          f"failed={dispatcher.failures} left_on_board={board.pending()} "
          f"in {time.monotonic() - started:.2f}s")
    for rid, st in sorted(fleet.snapshot().items()):
        print(f"  {rid}: zone={st.zone} battery={st.battery:5.1f} completed={st.completed}")
    if history:
        print("  crossings:", {z: info[2] for z, info in history[-1].items()})


if __name__ == "__main__":
    main()
