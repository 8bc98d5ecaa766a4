"""Counting events from many threads: the increment and the read share one lock."""

import threading


class Counter:
    def __init__(self):
        self._value = 0
        self._lock = threading.Lock()

    def increment(self, n=1):
        with self._lock:
            self._value += n
            return self._value

    @property
    def value(self):
        with self._lock:
            return self._value


def hammer(counter, times):
    for _ in range(times):
        counter.increment()


def main():
    counter = Counter()
    threads = [threading.Thread(target=hammer, args=(counter, 10_000)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.value == 40_000
    print(counter.value)


if __name__ == "__main__":
    main()
