"""Report page renderer.

Pages are rendered by a fixed pool of worker threads fed from a job queue,
handed to a collector through a bounded buffer, and finally checksummed per
report on an executor.  A timer prints progress while the run is going.
"""
import functools
import queue
import threading
from collections import deque
from concurrent.futures import ALL_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional

_SENTINEL = object()


@dataclass
class PageJob:
    report: str
    page: int
    rows: List[int] = field(default_factory=list)


@dataclass
class RenderStats:
    rendered: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, ok: bool) -> None:
        with self.lock:
            if ok:
                self.rendered += 1
            else:
                self.failed += 1


class BoundedBuffer:
    """Hand-off buffer between the renderers and the collector."""

    def __init__(self, capacity: int) -> None:
        self._items: Deque[str] = deque()
        self._capacity = capacity
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: str) -> None:
        with self._cond:
            while len(self._items) >= self._capacity and not self._closed:
                self._cond.wait(timeout=0.5)
            if self._closed:
                raise RuntimeError("buffer closed")
            self._items.append(item)
            self._cond.notify_all()

    def get(self) -> Optional[str]:
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def render_page(job: PageJob) -> str:
    if job.page < 0:
        raise ValueError(f"bad page number {job.page}")
    return f"{job.report}#{job.page}: {len(job.rows)} rows, total={sum(job.rows)}"


class Renderer:
    def __init__(self, out: BoundedBuffer, stats: RenderStats, workers: int = 4) -> None:
        self.jobs: "queue.Queue[object]" = queue.Queue()
        self.out = out
        self.stats = stats
        self._threads = [threading.Thread(target=self._work, args=(i,), name=f"render-{i}")
                         for i in range(workers)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def _work(self, worker_id: int) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is _SENTINEL:
                    return
                try:
                    self.out.put(render_page(job))
                except ValueError:
                    self.stats.record(False)
                else:
                    self.stats.record(True)
            finally:
                self.jobs.task_done()

    def finish(self) -> None:
        self.jobs.join()
        for _ in self._threads:
            self.jobs.put(_SENTINEL)
        for t in self._threads:
            t.join()


def collect(buf: BoundedBuffer, sink: List[str]) -> None:
    while True:
        item = buf.get()
        if item is None:
            return
        sink.append(item)


def print_progress(stats: RenderStats, total: int) -> None:
    stats.lock.acquire()
    try:
        done = stats.rendered + stats.failed
    finally:
        stats.lock.release()
    print(f"progress: {done}/{total}")


def checksum_reports(pages: List[str]) -> Dict[str, int]:
    by_report: Dict[str, List[str]] = {}
    for p in pages:
        by_report.setdefault(p.split("#", 1)[0], []).append(p)
    results: Dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="checksum") as pool:
        futures = {}
        for name, items in by_report.items():
            futures[pool.submit(lambda items=items: sum(len(s) for s in items))] = name
        done, _ = wait(futures, return_when=ALL_COMPLETED)
        for fut in done:
            results[futures[fut]] = fut.result()
    return results


def main() -> None:
    stats = RenderStats()
    buf = BoundedBuffer(capacity=8)
    pages: List[str] = []
    collector = threading.Thread(target=collect, args=(buf, pages), name="collector")
    collector.start()
    renderer = Renderer(buf, stats)
    renderer.start()
    jobs = [PageJob(r, page, list(range(page * 3))) for r in ("sales", "ops", "hr") for page in range(20)]
    jobs.append(PageJob("ops", -1))
    progress = threading.Timer(0.05, functools.partial(print_progress, stats, len(jobs)))
    progress.start()
    for job in jobs:
        renderer.jobs.put(job)
    renderer.finish()
    buf.close()
    collector.join()
    progress.cancel()
    progress.join()
    print(f"rendered={stats.rendered} failed={stats.failed} collected={len(pages)}")
    for name, total in sorted(checksum_reports(pages).items()):
        print(f"{name:6} {total}")


if __name__ == "__main__":
    main()
