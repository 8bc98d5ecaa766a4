"""buildrun - run a task graph on a worker pool with an on-disk results cache.

A task runs once all of its dependencies succeeded; tasks whose input
fingerprint matches the cache are skipped.  Python-callable tasks run in a
forked child so a crash in one of them cannot take the runner down.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Callable, Dict, List, Optional, Tuple

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = 0xFFFFFFFFFFFFFFFF


@dataclass
class Task:
    name: str
    cmd: Optional[List[str]] = None
    func: Optional[Callable[[], int]] = None
    inputs: List[str] = field(default_factory=list)
    deps: List[str] = field(default_factory=list)
    priority: int = 0


@dataclass
class Result:
    name: str
    rc: int
    output: str
    cached: bool = False
    duration: float = 0.0


def fnv1a_file(path: str) -> int:
    """Portable 64-bit FNV-1a so fingerprints agree across machines and Pythons."""
    h = FNV_OFFSET
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 16)
            if not block:
                break
            for byte in block:
                h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


class ResultsCache:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: Dict[str, dict] = {}

    def load(self) -> None:
        try:
            with open(self.path) as fh:
                data = json.load(fh)
        except (FileNotFoundError, ValueError):
            return
        with self._lock:
            self._entries.update(data)

    def get(self, name: str, fingerprint: str) -> Optional[Result]:
        with self._lock:
            entry = self._entries.get(name)
        if entry is None or entry["fp"] != fingerprint:
            return None
        return Result(name, entry["rc"], entry["output"], cached=True)

    def put(self, name: str, fingerprint: str, result: Result) -> None:
        with self._lock:
            self._entries[name] = {"fp": fingerprint, "rc": result.rc, "output": result.output}

    def save(self) -> None:
        with self._lock:
            data = dict(self._entries)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


class BuildRunner:
    def __init__(self, tasks: List[Task], cache: ResultsCache, jobs: int = 4,
                 on_result: Optional[Callable[[Result], None]] = None) -> None:
        self.tasks = {t.name: t for t in tasks}
        self.cache = cache
        self.jobs = jobs
        self.on_result = on_result or (lambda result: None)
        self.results: Dict[str, Result] = {}
        self._lock = threading.Lock()
        self._waiting = {t.name: set(t.deps) for t in tasks}
        self._dependents: Dict[str, List[str]] = {t.name: [] for t in tasks}
        for t in tasks:
            for dep in t.deps:
                self._dependents[dep].append(t.name)
        self._queue: "queue.PriorityQueue[Tuple[float, int, Optional[str]]]" = queue.PriorityQueue()
        self._seq = 0
        self._hash_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 4, thread_name_prefix="hash")

    def _enqueue(self, name: Optional[str], priority: float) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
        self._queue.put((priority, seq, name))

    def _fingerprint(self, task: Task) -> str:
        """Hash all inputs in parallel; large targets have thousands of sources."""
        paths = sorted(task.inputs)
        digests = self._hash_pool.map(fnv1a_file, paths)
        parts = [" ".join(task.cmd or [task.name])]
        parts += [f"{p}:{d:016x}" for p, d in zip(paths, digests)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    @staticmethod
    def _pump(stream: IO[bytes], sink: List[bytes]) -> None:
        for line in iter(stream.readline, b""):
            sink.append(line)
        stream.close()

    def _run_command(self, cmd: List[str]) -> Tuple[int, str]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        chunks: List[bytes] = []
        reader = threading.Thread(target=self._pump, args=(proc.stdout, chunks), daemon=True)
        reader.start()
        rc = proc.wait()
        return rc, b"".join(chunks).decode(errors="replace")

    def _run_isolated(self, func: Callable[[], int]) -> Tuple[int, str]:
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            rc = 1
            try:
                rc = func() or 0
            except BaseException as exc:
                os.write(wfd, f"{type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(rc)
        os.close(wfd)
        with os.fdopen(rfd, "rb") as fh:
            out = fh.read()
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), out.decode(errors="replace")

    def _execute(self, task: Task) -> Result:
        fp = self._fingerprint(task)
        hit = self.cache.get(task.name, fp)
        if hit is not None:
            return hit
        start = time.monotonic()
        if task.func is not None:
            rc, out = self._run_isolated(task.func)
        else:
            rc, out = self._run_command(task.cmd or ["true"])
        result = Result(task.name, rc, out, duration=time.monotonic() - start)
        if rc == 0:
            self.cache.put(task.name, fp, result)
        return result

    def _worker(self) -> None:
        while True:
            _, _, name = self._queue.get()
            if name is None:
                return
            task = self.tasks[name]
            try:
                result = self._execute(task)
            except OSError as exc:
                result = Result(name, 127, f"{type(exc).__name__}: {exc}")
            self._complete(task, result)

    def _complete(self, task: Task, result: Result) -> None:
        ready: List[Task] = []
        with self._lock:
            self.results[task.name] = result
            if result.rc == 0:
                for child in self._dependents[task.name]:
                    waiting = self._waiting[child]
                    waiting.discard(task.name)
                    if not waiting:
                        ready.append(self.tasks[child])
        self.on_result(result)
        for child_task in ready:
            self._enqueue(child_task.name, -child_task.priority)

    def run(self) -> Dict[str, Result]:
        self.cache.load()
        workers = [threading.Thread(target=self._worker, name=f"build-{i}") for i in range(self.jobs)]
        for w in workers:
            w.start()
        for task in self.tasks.values():
            if not task.deps:
                self._enqueue(task.name, -task.priority)
        self._queue.join()
        for _ in workers:
            self._enqueue(None, float("inf"))
        for w in workers:
            w.join()
        self._hash_pool.shutdown()
        self.cache.save()
        return dict(self.results)


def load_build_file(path: str) -> List[Task]:
    with open(path) as fh:
        spec = json.load(fh)
    return [Task(name, cmd=body.get("cmd"), inputs=body.get("inputs", []),
                 deps=body.get("deps", []), priority=body.get("priority", 0))
            for name, body in spec["tasks"].items()]


def main(argv: List[str]) -> int:
    build_file = argv[1] if len(argv) > 1 else "BUILD.json"
    jobs = int(argv[2]) if len(argv) > 2 else (os.cpu_count() or 4)
    tasks = load_build_file(build_file)
    tasks.append(Task("selfcheck", func=lambda: 0 if os.path.exists(build_file) else 3, priority=10))
    print_lock = threading.Lock()

    def report(result: Result) -> None:
        tag = "cached" if result.cached else f"{result.duration:6.2f}s"
        with print_lock:
            print(f"[{'ok' if result.rc == 0 else 'FAIL':4}] {result.name:30} {tag}")
            if result.rc != 0 and result.output:
                print(result.output.rstrip())

    runner = BuildRunner(tasks, ResultsCache(".buildrun-cache.json"), jobs=jobs, on_result=report)
    results = runner.run()
    failed = sorted(r.name for r in results.values() if r.rc != 0)
    skipped = sorted(name for name in runner.tasks if name not in results)
    if failed:
        print(f"{len(failed)} failed: {', '.join(failed)}")
    if skipped:
        print(f"{len(skipped)} not run (failed dependency): {', '.join(skipped)}")
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
