"""In-process publish/subscribe broker.

Producers publish to named topics; each subscription owns a bounded queue
and a delivery thread that invokes the subscriber's callback, so a slow
subscriber never blocks a publisher (messages to a full queue are dropped
and counted).  Topics are created on first use and dropped again when their
last subscriber leaves, unless they carry a retained message.
"""
from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from typing import Any, Callable, Optional

log = logging.getLogger("pubsub")

_STOP = object()


class Subscription:
    def __init__(self, sub_id: int, topic: str, callback: Callable[[str, Any], None],
                 maxsize: int = 256) -> None:
        self.id = sub_id
        self.topic = topic
        self._callback = callback
        self._q: queue.Queue = queue.Queue(maxsize)
        self._thread = threading.Thread(target=self._deliver_loop, name=f"sub-{topic}-{sub_id}")
        self.delivered = 0  # written only by the delivery thread, read after close()
        self.errors = 0

    def start(self) -> None:
        self._thread.start()

    def offer(self, msg: Any) -> bool:
        try:
            self._q.put_nowait(msg)
            return True
        except queue.Full:
            return False

    def close(self, timeout: float = 5.0) -> None:
        self._q.put(_STOP)
        self._thread.join(timeout)

    def _deliver_loop(self) -> None:
        while True:
            msg = self._q.get()
            if msg is _STOP:
                return
            try:
                self._callback(self.topic, msg)
                self.delivered += 1
            except Exception:
                self.errors += 1
                log.exception("subscriber %d on %s failed", self.id, self.topic)


class Topic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.subscribers: dict[int, Subscription] = {}
        self.retained: Optional[str] = None


class Broker:
    def __init__(self, max_concurrent_publishes: int = 8,
                 serializer: Callable[[Any], str] = json.dumps,
                 deserializer: Callable[[str], Any] = json.loads) -> None:
        self._topics: dict[str, Topic] = {}
        self._registry_lock = threading.Lock()
        self._next_id = 1
        self._fanout_slots = threading.Semaphore(max_concurrent_publishes)
        self._serializer = serializer
        self._deserializer = deserializer
        self._stats_lock = threading.Lock()
        self._stats = {"published": 0, "delivered": 0, "dropped": 0, "rejected": 0}

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self._stats[key] += n

    def _lookup(self, name: str) -> Optional[Topic]:
        with self._registry_lock:
            return self._topics.get(name)

    def subscribe(self, topic_name: str, callback: Callable[[str, Any], None],
                  maxsize: int = 256) -> Subscription:
        with self._registry_lock:
            topic = self._topics.get(topic_name)
            if topic is None:
                topic = self._topics[topic_name] = Topic(topic_name)
            sub = Subscription(self._next_id, topic_name, callback, maxsize)
            self._next_id += 1
            with topic.lock:
                topic.subscribers[sub.id] = sub
                retained = topic.retained
        sub.start()
        if retained is not None:
            sub.offer(self._deserializer(retained))
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        topic = self._lookup(sub.topic)
        if topic is not None:
            with topic.lock:
                topic.subscribers.pop(sub.id, None)
                if not topic.subscribers and topic.retained is None:
                    with self._registry_lock:
                        self._topics.pop(topic.name, None)
        sub.close()

    def publish(self, topic_name: str, payload: Any, timeout: float = 1.0) -> int:
        got_slot = self._fanout_slots.acquire(timeout=timeout)
        try:
            if not got_slot:
                self._count("rejected")
                return 0
            return self._fan_out(topic_name, payload)
        finally:
            self._fanout_slots.release()

    def _fan_out(self, topic_name: str, payload: Any) -> int:
        topic = self._lookup(topic_name)
        self._count("published")
        if topic is None:
            return 0
        delivered = 0
        for sub in topic.subscribers.values():
            if sub.offer(payload):
                delivered += 1
            else:
                self._count("dropped")
        self._count("delivered", delivered)
        return delivered

    def retain(self, topic_name: str, payload: Any) -> int:
        """Publish and keep the payload for subscribers that join later."""
        with self._registry_lock:
            topic = self._topics.get(topic_name)
            if topic is None:
                topic = self._topics[topic_name] = Topic(topic_name)
            topic.lock.acquire()
        topic.retained = self._serializer(payload)
        topic.lock.release()
        return self.publish(topic_name, payload)

    def stats(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self._stats)

    def close(self) -> list[Subscription]:
        with self._registry_lock:
            topics = list(self._topics.values())
            self._topics.clear()
        subs: list[Subscription] = []
        for topic in topics:
            with topic.lock:
                subs.extend(topic.subscribers.values())
                topic.subscribers.clear()
        for sub in subs:
            sub.close()
        return subs


class OrderBook:
    """Example subscriber: aggregates order volume per SKU."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.volume: dict[str, int] = {}

    def on_order(self, topic: str, msg: dict) -> None:
        with self._lock:
            self.volume[msg["sku"]] = self.volume.get(msg["sku"], 0) + msg["qty"]


def producer(broker: Broker, n: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(n):
        broker.publish("orders", {"sku": f"SKU-{rng.randrange(20):03d}", "qty": rng.randint(1, 5),
                                  "seq": i})
        if i % 50 == 0:
            broker.retain("config", {"price_table": seed, "rev": i})


def dashboard_churn(broker: Broker, rounds: int, stop: threading.Event) -> None:
    """Dashboards come and go while orders are flowing."""
    for _ in range(rounds):
        if stop.is_set():
            return
        sub = broker.subscribe("orders", lambda t, m: None, maxsize=16)
        time.sleep(random.uniform(0.001, 0.01))
        broker.unsubscribe(sub)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    broker = Broker(max_concurrent_publishes=4)
    book = OrderBook()
    broker.subscribe("orders", book.on_order)
    broker.subscribe("config", lambda t, m: log.info("config rev %s", m["rev"]))
    stop = threading.Event()
    producers = [threading.Thread(target=producer, args=(broker, 500, s), name=f"prod-{s}")
                 for s in range(4)]
    churners = [threading.Thread(target=dashboard_churn, args=(broker, 100, stop), name=f"dash-{i}")
                for i in range(2)]
    for t in producers + churners:
        t.start()
    for t in producers:
        t.join()
    stop.set()
    for t in churners:
        t.join()
    subs = broker.close()
    print("stats:", broker.stats())
    print("delivered per sub:", {s.id: s.delivered for s in subs})
    with book._lock:
        top = sorted(book.volume.items(), key=lambda kv: -kv[1])[:5]
    print("top SKUs:", top)


if __name__ == "__main__":
    main()
