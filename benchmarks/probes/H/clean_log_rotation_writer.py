"""Size-based rotating log writer.

Application threads (and an asyncio request handler) hand records to a
RotatingLogWriter.  A single writer thread owns the file handle, so file I/O
never happens under a lock; when the file grows past max_bytes it is renamed
and the rotated file is gzip-compressed in a small thread pool.
"""
import asyncio
import functools
import glob
import gzip
import os
import queue
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from threading import Lock as _Lock
from typing import Callable, Dict, List, Optional

_tls = threading.local()


def next_seq() -> int:
    """Per-thread record sequence number."""
    seq = getattr(_tls, "seq", 0) + 1
    _tls.seq = seq
    return seq


@dataclass
class _Flush:
    done: threading.Event = field(default_factory=threading.Event)


def _gzip_file(src: str) -> int:
    with open(src, "rb") as fin, gzip.open(src + ".gz", "wb") as fout:
        shutil.copyfileobj(fin, fout)
    size = os.path.getsize(src)
    os.remove(src)
    return size


class Pruner:
    """Keeps only the newest `keep` compressed files (not a thread)."""

    def __init__(self, pattern: str, keep: int) -> None:
        self.pattern, self.keep = pattern, keep

    def run(self) -> List[str]:
        files = sorted(glob.glob(self.pattern), key=os.path.getmtime)
        doomed = files[:-self.keep] if self.keep else files
        for path in doomed:
            os.remove(path)
        return doomed


class RotatingLogWriter:
    def __init__(self, directory: str, base: str = "app.log",
                 max_bytes: int = 8192, backups: int = 50,
                 max_backlog: int = 200) -> None:
        self.path = os.path.join(directory, base)
        self.max_bytes = max_bytes
        self.backups = backups
        self.max_backlog = max_backlog
        self._q: "queue.Queue[object]" = queue.Queue()
        self._backlog = 0
        self._closed = False
        self._backlog_cv = threading.Condition()
        self._stats_lock = _Lock()
        self._stats: Dict[str, int] = {"records": 0, "bytes": 0,
                                       "rotations": 0}
        self._listeners: List[Callable[[int], None]] = []
        self._compress_slots = threading.BoundedSemaphore(2)
        self._compressor = ThreadPoolExecutor(max_workers=2,
                                              thread_name_prefix="gzip")
        self._futures: List[Future] = []
        self._thread = threading.Thread(target=self._drain, name="log-writer",
                                        daemon=True)
        self._thread.start()

    # ---------------------------------------------------------- producers
    def write(self, message: str) -> None:
        line = (f"{time.time():.6f} {threading.current_thread().name} "
                f"#{next_seq()} {message}\n")
        with self._backlog_cv:
            while self._backlog >= self.max_backlog and not self._closed:
                self._backlog_cv.wait()
            if self._closed:
                raise RuntimeError("log writer is closed")
            self._backlog += 1
            self._q.put_nowait(line)  # unbounded queue: never blocks

    def flush(self, timeout: float = 1.0) -> bool:
        marker = _Flush()
        with self._backlog_cv:
            if self._closed:
                return True
            self._q.put_nowait(marker)
        return marker.done.wait(timeout)

    def wait_idle(self) -> None:
        """Block until every record queued so far has been written."""
        self._q.join()

    def add_rotation_listener(self, callback: Callable[[int], None]) -> None:
        with self._stats_lock:
            self._listeners.append(callback)

    def stats(self) -> Dict[str, int]:
        with self._backlog_cv:
            backlog = self._backlog
        with self._stats_lock:
            return dict(self._stats, backlog=backlog)

    # ---------------------------------------------------------- writer side
    def _drain(self) -> None:
        fh = open(self.path, "a", encoding="utf-8")
        size = fh.tell()
        try:
            while True:
                item = self._q.get()
                try:
                    if item is None:
                        return
                    if isinstance(item, _Flush):
                        fh.flush()
                        item.done.set()
                        continue
                    if size + len(item) > self.max_bytes:
                        fh.close()
                        self._rotate()
                        fh = open(self.path, "a", encoding="utf-8")
                        size = 0
                    fh.write(item)
                    size += len(item)
                    with self._stats_lock:
                        self._stats["records"] += 1
                        self._stats["bytes"] += len(item)
                    with self._backlog_cv:
                        self._backlog -= 1
                        self._backlog_cv.notify()
                finally:
                    self._q.task_done()
        finally:
            fh.close()

    def _rotate(self) -> None:
        with self._stats_lock:
            self._stats["rotations"] += 1
            number = self._stats["rotations"]
            listeners = list(self._listeners)
        rotated = f"{self.path}.{number:04d}"
        os.replace(self.path, rotated)
        self._schedule_compress(rotated)
        for callback in listeners:
            callback(number)

    def _schedule_compress(self, src: str) -> None:
        self._compress_slots.acquire()
        try:
            fut = self._compressor.submit(_gzip_file, src)
        except BaseException:
            self._compress_slots.release()
            raise
        fut.add_done_callback(lambda _f: self._compress_slots.release())
        self._futures.append(fut)  # only the writer thread touches this list

    # ---------------------------------------------------------- shutdown
    def close(self) -> int:
        """Drain, stop the writer, wait for compression; returns raw bytes."""
        with self._backlog_cv:
            if self._closed:
                return 0
            self._closed = True
            self._q.put_nowait(None)
            self._backlog_cv.notify_all()
        self._thread.join()
        self._compressor.shutdown(wait=True)
        compressed = sum(fut.result() for fut in self._futures)
        Pruner(self.path + ".*.gz", self.backups).run()
        return compressed


_default_writer: Optional[RotatingLogWriter] = None
_default_lock = threading.Lock()


def get_writer(directory: str) -> RotatingLogWriter:
    global _default_writer
    with _default_lock:
        if _default_writer is None:
            _default_writer = RotatingLogWriter(directory)
        return _default_writer


def make_producer(worker_no: int, count: int,
                  tally: Dict[str, int], tally_lock: threading.Lock):
    def produce() -> None:
        log = get_writer("")  # already created by main
        for i in range(count):
            log.write(f"worker={worker_no} job={i} status=ok")
        with tally_lock:
            tally[f"producer-{worker_no}"] = count
    return produce


async def handle_requests(log: RotatingLogWriter, count: int) -> int:
    loop = asyncio.get_running_loop()
    for i in range(count):
        await asyncio.sleep(0.0005)
        await loop.run_in_executor(None, log.write, f"GET /items/{i} 200")
    return count


class LoopThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="asyncio-loop", daemon=True)
        self.loop = asyncio.new_event_loop()
        self.rotations_seen: List[int] = []  # mutated on the loop only

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()

    def on_rotation(self, number: int) -> None:
        self.loop.call_soon_threadsafe(self.rotations_seen.append, number)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join()


def count_lines(directory: str) -> int:
    total = 0
    for path in glob.glob(os.path.join(directory, "app.log*")):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            total += sum(1 for _ in fh)
    return total


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = get_writer(tmp)
        loop_thread = LoopThread()
        loop_thread.start()
        log.add_rotation_listener(loop_thread.on_rotation)

        tally: Dict[str, int] = {}
        tally_lock = threading.Lock()
        producers = [threading.Thread(target=make_producer(n, 300, tally,
                                                           tally_lock),
                                      name=f"producer-{n}")
                     for n in range(4)]
        for t in producers:
            t.start()
        pending = asyncio.run_coroutine_threadsafe(
            handle_requests(log, 200), loop_thread.loop)
        flusher = threading.Timer(0.05, functools.partial(log.flush, 0.5))
        flusher.start()

        served = pending.result(timeout=5.0)
        for t in producers:
            t.join()
        flusher.join()
        log.wait_idle()
        stats = log.stats()
        compressed = log.close()
        loop_thread.stop()

        expected = sum(tally.values()) + served
        print(f"records written: {stats['records']} expected: {expected}")
        print(f"rotations: {stats['rotations']} "
              f"seen by loop: {len(loop_thread.rotations_seen)}")
        print(f"raw bytes compressed: {compressed}")
        print(f"lines on disk: {count_lines(tmp)}")


if __name__ == "__main__":
    main()
