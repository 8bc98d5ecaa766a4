"""A bounded buffer built on one lock and two conditions; every wait re-checks its
predicate in a loop."""

import collections
import threading


class BoundedBuffer:
    def __init__(self, capacity):
        self._items = collections.deque()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def put(self, item):
        with self._not_full:
            while len(self._items) >= self._capacity:
                self._not_full.wait()
            self._items.append(item)
            self._not_empty.notify()

    def get(self):
        with self._not_empty:
            while not self._items:
                self._not_empty.wait()
            item = self._items.popleft()
            self._not_full.notify()
            return item


def main():
    buf = BoundedBuffer(4)
    received = []

    def consumer():
        while (item := buf.get()) is not None:
            received.append(item)

    t = threading.Thread(target=consumer)
    t.start()
    for i in range(20):
        buf.put(i)
    buf.put(None)
    t.join()
    print(received)


if __name__ == "__main__":
    main()
