"""Check many files: cache look-ups in this process, analysis in worker processes.

Each file is analysed in a worker process, so a crash in native code (libcst's parser on
pathological input) or a file that takes too long costs that file only: it becomes an error
entry and a fresh worker takes over. Results come back in discovery order whatever the number
of workers, and are identical to checking the files one by one.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from .analysis.source import SourceError, read_source
from .cache import Cache, cache_root
from .config import Settings
from .engine import FileError, FileResult, check_source, discover

FILE_TIMEOUT = float(os.environ.get("ADVISOR_FILE_TIMEOUT", "300"))
"""Seconds one file may take before its worker is stopped and the file reported."""


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass
class RunStats:
    files: int = 0
    analysed: int = 0
    cache_hits: int = 0
    skipped: int = 0
    workers: int = 0
    seconds: float = 0.0
    crashed: list[str] = field(default_factory=list)


@dataclass
class _Task:
    index: int
    path: str
    text: str


def check_paths(
    paths: list[str] | tuple[str, ...],
    settings: Settings,
    *,
    jobs: int | None = None,
    use_cache: bool = True,
    timeout: float = FILE_TIMEOUT,
    stats: RunStats | None = None,
) -> tuple[list[FileResult], list[FileError]]:
    """Like :func:`advisor.engine.check_paths`, with the cache and ``jobs`` worker processes."""
    started = time.perf_counter()
    stats = stats if stats is not None else RunStats()
    cache = Cache(cache_root(settings.root), settings.fingerprint()) if use_cache else None
    results: list[FileResult | None] = []
    errors: list[FileError] = []
    tasks: list[_Task] = []
    for item in discover(paths, settings):
        if isinstance(item, FileError):
            errors.append(item)
            continue
        index = len(results)
        results.append(None)
        try:
            text = read_source(item).text
        except SourceError as exc:
            results[index] = FileResult(item, errors=[FileError(item, exc.line, exc.message)])
            continue
        cached = cache.get(item, text) if cache else None
        if cached is not None:
            try:
                results[index] = FileResult.from_dict(cached)
                stats.cache_hits += 1
                continue
            except (KeyError, TypeError, ValueError):
                pass
        tasks.append(_Task(index, item, text))
    stats.files = len(results)
    stats.analysed = len(tasks)
    for task, result in _analyse(tasks, settings, jobs or default_jobs(), timeout, stats):
        results[task.index] = result
        if cache is not None and task.path not in stats.crashed:
            cache.put(task.path, task.text, result.to_dict())
    stats.skipped = sum(1 for r in results if r is not None and not r.parsed and not r.errors)
    stats.seconds = time.perf_counter() - started
    return [r for r in results if r is not None], errors


def _analyse(tasks: list[_Task], settings: Settings, jobs: int, timeout: float, stats: RunStats):
    if not tasks:
        return
    order = deque(sorted(tasks, key=lambda t: -len(t.text)))
    workers = min(jobs, len(order))
    stats.workers = workers
    from multiprocessing.connection import wait

    _warm_up()
    pool = [_Worker(settings) for _ in range(workers)]
    busy: dict[_Worker, tuple[_Task, float]] = {}
    try:
        while order or busy:
            for worker in pool:
                if worker not in busy and order:
                    task = order.popleft()
                    if not worker.send(task):
                        worker.stop()
                        worker = pool[pool.index(worker)] = _Worker(settings)
                        if not worker.send(task):
                            raise RuntimeError("cannot start analysis worker processes")
                    busy[worker] = (task, time.monotonic())
            deadline = min(t0 for _, t0 in busy.values()) + timeout
            ready = wait([w.conn for w in busy], timeout=max(0.0, deadline - time.monotonic()))
            for worker in list(busy):
                task, t0 = busy[worker]
                if worker.conn in ready:
                    data = worker.receive()
                    if data is None:
                        reason = f"the analyser crashed on this file ({worker.exit_reason()})"
                    else:
                        del busy[worker]
                        yield task, FileResult.from_dict(data)
                        continue
                elif time.monotonic() - t0 > timeout:
                    reason = f"analysis timed out after {timeout:g} s"
                else:
                    continue
                del busy[worker]
                stats.crashed.append(task.path)
                yield task, FileResult(task.path, errors=[FileError(task.path, None, reason)])
                worker.stop()
                pool[pool.index(worker)] = _Worker(settings)
    finally:
        for worker in pool:
            worker.stop()


def _warm_up() -> None:
    """Import the analyzer once here so forked workers start with it loaded."""
    from .analysis import extract  # noqa: F401
    from .rules import all_rules

    all_rules()


def _context():
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods and sys.platform != "darwin" else "spawn")


class _Worker:
    def __init__(self, settings: Settings) -> None:
        ctx = _context()
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, settings), daemon=True)
        self.process.start()
        child.close()

    def send(self, task: _Task) -> bool:
        try:
            self.conn.send((task.path, task.text))
            return True
        except (OSError, ValueError):
            return False

    def receive(self) -> dict | None:
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def exit_reason(self) -> str:
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is None:
            return "no reply"
        if code < 0:
            return f"killed by signal {-code}"
        return f"exit status {code}"

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                pass
            self.process.join(timeout=1)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=5)
        self.conn.close()


def _serve(conn, settings: Settings) -> None:
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            path, text = message
            try:
                result = check_source(text, path, settings)
            except BaseException as exc:  # last line of defence: report, keep serving
                result = FileResult(path, errors=[FileError(path, None, f"internal error: {type(exc).__name__}: {exc}")])
            conn.send(result.to_dict())
    except KeyboardInterrupt:
        return
