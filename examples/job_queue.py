"""A bounded job buffer shared by producers and consumers."""

import threading


class JobBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []
        self.cond = threading.Condition()
        self.lock = threading.Lock()
        self.processed = 0

    def put(self, job):
        with self.cond:
            if len(self.items) >= self.capacity:
                self.cond.wait()
            self.items.append(job)
            self.cond.notify_all()

    def get(self):
        with self.cond:
            while not self.items:
                self.cond.wait()
            job = self.items.pop(0)
            self.cond.notify_all()
            return job

    def mark_done(self):
        self.lock.acquire()
        self.processed += 1
        self.log_progress()
        self.lock.release()

    def log_progress(self):
        with self.lock:
            print("processed", self.processed)


def consumer(buf):
    while True:
        job = buf.get()
        if job is None:
            break
        job()
        buf.mark_done()


def main():
    buf = JobBuffer(capacity=4)
    workers = [threading.Thread(target=consumer, args=(buf)) for _ in range(3)]
    for w in workers:
        w.start()
    for n in range(20):
        buf.put(lambda n=n: print("job", n))
    for _ in workers:
        buf.put(None)
    for w in workers:
        w.join()


if __name__ == "__main__":
    main()
