"""Producer/consumer over a bounded queue, stopped with one sentinel per consumer."""

import queue
import threading

STOP = object()


def produce(q, lines, consumers):
    for line in lines:
        q.put(line)
    for _ in range(consumers):
        q.put(STOP)


def consume(q, results, results_lock):
    while True:
        item = q.get()
        if item is STOP:
            break
        words = len(item.split())
        with results_lock:
            results.append(words)


def count_words(lines, consumers=3):
    q = queue.Queue(maxsize=100)
    results = []
    results_lock = threading.Lock()
    threads = [
        threading.Thread(target=consume, args=(q, results, results_lock), name=f"consumer-{i}")
        for i in range(consumers)
    ]
    for t in threads:
        t.start()
    produce(q, lines, consumers)
    for t in threads:
        t.join()
    return sum(results)


if __name__ == "__main__":
    print(count_words(["a b c", "d e", "f"] * 1000))
