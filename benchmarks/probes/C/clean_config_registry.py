"""Feature-flag registry and per-tenant quota buckets shared by request threads."""
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

_request_ctx = threading.local()
_db_slots = threading.BoundedSemaphore(3)


def set_request_id(rid: str) -> None:
    _request_ctx.request_id = rid


def current_request_id() -> str:
    return getattr(_request_ctx, "request_id", "-")


@dataclass(frozen=True)
class Flag:
    name: str
    enabled: bool
    rollout: int = 100


class FlagRegistry:
    _instance: Optional["FlagRegistry"] = None
    _instance_lock = threading.Lock()

    @classmethod
    def instance(cls) -> "FlagRegistry":
        inst = cls._instance
        if inst is None:
            with cls._instance_lock:
                inst = cls._instance
                if inst is None:
                    inst = cls()
                    cls._instance = inst
        return inst

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._flags: Dict[str, Flag] = {}
        self._listeners: List[Callable[[Flag], None]] = []
        self._reads = 0

    def set(self, flag: Flag) -> None:
        with self._lock:
            self._flags[flag.name] = flag
            listeners = list(self._listeners)
        for cb in listeners:
            cb(flag)

    def get(self, name: str) -> Optional[Flag]:
        with self._lock:
            self._reads += 1
            return self._flags.get(name)

    def is_enabled(self, name: str, bucket: int) -> bool:
        with self._lock:
            flag = self.get(name)
            return bool(flag and flag.enabled and bucket % 100 < flag.rollout)

    def ensure(self, name: str, default: bool) -> Flag:
        with self._lock:
            flag = self._flags.get(name)
            if flag is None:
                flag = Flag(name, default)
                self._flags[name] = flag
            return flag

    def get_or_load(self, name: str, loader: Callable[[str], Flag]) -> Flag:
        with self._lock:
            flag = self._flags.get(name)
        if flag is not None:
            return flag
        loaded = loader(name)
        with self._lock:
            flag = self._flags.setdefault(name, loaded)
            listeners = list(self._listeners) if flag is loaded else []
        for cb in listeners:
            cb(flag)
        return flag

    def subscribe(self, cb: Callable[[Flag], None]) -> None:
        with self._lock:
            self._listeners.append(cb)

    def snapshot(self) -> Dict[str, bool]:
        with self._lock:
            items = list(self._flags.items())
        return {name: flag.enabled for name, flag in items}


class QuotaBucket:
    def __init__(self, name: str, tokens: int) -> None:
        self.name = name
        self.tokens = tokens
        self.lock = threading.Lock()


def transfer(src: QuotaBucket, dst: QuotaBucket, n: int) -> bool:
    if src is dst:
        return True
    first, second = sorted((src, dst), key=lambda b: b.name)
    with first.lock:
        with second.lock:
            if src.tokens < n:
                return False
            src.tokens -= n
            dst.tokens += n
            return True


def load_from_db(name: str) -> Flag:
    with _db_slots:
        time.sleep(0.001)
    return Flag(name, enabled=hash(name) % 2 == 0, rollout=50)


def handle_request(rid: str, buckets: List[QuotaBucket], results: Dict[str, bool],
                   results_lock: threading.Lock) -> None:
    set_request_id(rid)
    registry = FlagRegistry.instance()
    flag = registry.ensure("new-checkout", default=False)
    registry.get_or_load("pricing-v2", load_from_db)
    i = int(rid.split("-")[1])
    moved = transfer(buckets[i % len(buckets)], buckets[(i + 1) % len(buckets)], 1)
    ok = registry.is_enabled(flag.name, i) or moved
    if not results_lock.acquire(timeout=5):
        raise TimeoutError(f"{current_request_id()}: results lock busy")
    try:
        results[current_request_id()] = ok
    finally:
        results_lock.release()


def main() -> None:
    buckets = [QuotaBucket(f"tenant-{c}", 100) for c in "abcd"]
    results: Dict[str, bool] = {}
    results_lock = threading.Lock()
    refresh = threading.Timer(10.0, lambda: FlagRegistry.instance().set(Flag("pricing-v2", True)))
    refresh.start()
    threads = [threading.Thread(target=handle_request, args=(f"req-{i}", buckets, results, results_lock))
               for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refresh.cancel()
    refresh.join()
    print(f"main request id: {current_request_id()}")
    print(f"{sum(results.values())}/{len(results)} requests enabled")
    print("flags:", FlagRegistry.instance().snapshot())
    print("tokens:", sum(b.tokens for b in buckets))


if __name__ == "__main__":
    main()
