"""Lightweight CI job scheduler for a single build agent.

A pipeline is a DAG of shell jobs.  Jobs whose dependencies have succeeded are
dispatched onto a thread pool; a semaphore caps how many commands run at once
on this agent, a completion thread advances the DAG as jobs finish, and status
changes are pushed to the build dashboard asynchronously.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import queue
import shlex
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

MAX_RUNNERS = int(os.environ.get("CI_MAX_RUNNERS", "4"))
POOL_WORKERS = 8
NOTIFY_WORKERS = 2
JOB_TIMEOUT_S = 15 * 60
NOTIFY_TIMEOUT_S = 5
DASHBOARD_URL = os.environ.get("CI_DASHBOARD_URL", "http://127.0.0.1:8080/api/status")
WORKSPACE_ROOT = Path(os.environ.get("CI_WORKSPACE", "/tmp/ci-workspaces"))

log = logging.getLogger("ci.scheduler")


class JobState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


@dataclass
class Job:
    name: str
    command: str
    needs: List[str] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)
    state: JobState = JobState.PENDING
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    exit_code: Optional[int] = None
    revision: str = ""


@dataclass
class JobResult:
    exit_code: int
    duration: float
    log_path: Path


class JobScheduler:
    """Runs pipelines of dependent jobs with bounded concurrency."""

    def __init__(self, max_runners: int = MAX_RUNNERS,
                 dashboard_url: str = DASHBOARD_URL) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._slots = threading.Semaphore(max_runners)
        self._pool = ThreadPoolExecutor(POOL_WORKERS, thread_name_prefix="ci-job")
        self._notify_pool = ThreadPoolExecutor(NOTIFY_WORKERS, thread_name_prefix="ci-notify")
        self._completions: "queue.Queue[Optional[Tuple[str, Future]]]" = queue.Queue()
        self._jobs: Dict[str, Job] = {}
        self._futures: Dict[str, Future] = {}
        self._active = 0
        self._dashboard_url = dashboard_url
        self._dispatcher = threading.Thread(target=self._completion_loop,
                                            name="ci-completions")
        self._dispatcher.start()

    # ------------------------------------------------------------------ API

    def submit_pipeline(self, jobs: Iterable[Job], repo_dir: Path) -> None:
        """Register a pipeline and start every job with no pending dependencies."""
        jobs = list(jobs)
        names = {j.name for j in jobs}
        for job in jobs:
            missing = [n for n in job.needs if n not in names]
            if missing:
                raise ValueError(f"job {job.name} needs unknown jobs {missing}")
        with self._lock:
            for job in jobs:
                if job.name in self._jobs:
                    raise ValueError(f"duplicate job {job.name}")
                self._jobs[job.name] = job
            revision = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=repo_dir,
                capture_output=True, text=True, check=True,
            ).stdout.strip()
            for job in jobs:
                job.revision = revision
            log.info("pipeline of %d jobs at %s", len(jobs), revision[:12])
            self._dispatch_ready_locked()

    def cancel(self, name: str) -> bool:
        """Cancel a job that has not started yet.  Returns True on success."""
        job = self._jobs.get(name)
        if job is None:
            raise KeyError(name)
        if job.state is JobState.PENDING:
            with self._lock:
                job.state = JobState.CANCELLED
                job.finished_at = time.time()
                self._skip_dependents_locked(name)
            log.info("cancelled %s", name)
            return True
        return False

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until no job is running.  Returns False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._active:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def status(self) -> Dict[str, str]:
        with self._lock:
            return {name: job.state.value for name, job in self._jobs.items()}

    def shutdown(self) -> None:
        """Wait for running jobs, then stop all worker threads."""
        self.wait()
        self._completions.put(None)
        self._dispatcher.join()
        self._pool.shutdown(wait=True)
        self._notify_pool.shutdown(wait=True)

    # ------------------------------------------------------------ internals

    def _deps_satisfied(self, job: Job) -> bool:
        return all(self._jobs[n].state is JobState.SUCCEEDED for n in job.needs)

    def _dispatch_ready_locked(self) -> None:
        ready = [j for j in self._jobs.values()
                 if j.state is JobState.PENDING and self._deps_satisfied(j)]
        for job in ready:
            job.state = JobState.RUNNING
            job.started_at = time.time()
            self._active += 1
            fut = self._pool.submit(lambda: self._execute(job))
            fut.add_done_callback(lambda f, name=job.name: self._completions.put((name, f)))
            self._futures[job.name] = fut
            log.info("dispatched %s", job.name)

    def _skip_dependents_locked(self, failed: str) -> None:
        stack = [failed]
        while stack:
            current = stack.pop()
            for job in self._jobs.values():
                if current in job.needs and job.state is JobState.PENDING:
                    job.state = JobState.SKIPPED
                    stack.append(job.name)

    def _completion_loop(self) -> None:
        while True:
            item = self._completions.get()
            if item is None:
                break
            name, fut = item
            try:
                self._handle_completion(name, fut)
            except Exception:
                log.exception("error while completing %s", name)

    def _handle_completion(self, name: str, fut: Future) -> None:
        exc = fut.exception()
        with self._lock:
            job = self._jobs[name]
            job.finished_at = time.time()
            self._futures.pop(name, None)
            if exc is not None:
                log.error("job %s crashed: %r", name, exc)
                job.state = JobState.FAILED
            else:
                result: JobResult = fut.result()
                job.exit_code = result.exit_code
                job.state = JobState.SUCCEEDED if result.exit_code == 0 else JobState.FAILED
            if job.state is JobState.FAILED:
                self._skip_dependents_locked(name)
            self._active -= 1
            self._dispatch_ready_locked()
            if self._active == 0:
                self._idle.notify_all()
            snapshot = (job.name, job.state.value, job.exit_code, job.revision)
        self._notify_pool.submit(self._send_status, *snapshot)

    def _execute(self, job: Job) -> JobResult:
        self._slots.acquire()
        workspace = WORKSPACE_ROOT / job.name
        log_path = workspace / "job.log"
        started = time.monotonic()
        try:
            workspace.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, **job.env,
                   "CI_JOB_NAME": job.name, "CI_REVISION": job.revision}
            with open(log_path, "wb") as fh:
                proc = subprocess.run(shlex.split(job.command), cwd=workspace, env=env,
                                      stdout=fh, stderr=subprocess.STDOUT,
                                      timeout=JOB_TIMEOUT_S)
            return JobResult(proc.returncode, time.monotonic() - started, log_path)
        except subprocess.TimeoutExpired:
            log.warning("job %s timed out after %ss", job.name, JOB_TIMEOUT_S)
            self._slots.release()
            return JobResult(124, time.monotonic() - started, log_path)
        finally:
            self._slots.release()

    def _send_status(self, name: str, state: str, exit_code: Optional[int],
                     revision: str) -> None:
        body = json.dumps({
            "job": name, "state": state, "exit_code": exit_code,
            "revision": revision, "ts": time.time(),
        }).encode("utf-8")
        req = urllib.request.Request(self._dashboard_url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=NOTIFY_TIMEOUT_S) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"dashboard rejected update for {name}: {resp.status}")


def demo_pipeline() -> List[Job]:
    return [
        Job("checkout", "true"),
        Job("lint", "sh -c 'sleep 0.2; echo lint ok'", needs=["checkout"]),
        Job("unit", "sh -c 'sleep 0.5; echo 42 tests passed'", needs=["checkout"]),
        Job("build", "sh -c 'sleep 0.3; echo built'", needs=["checkout"]),
        Job("package", "sh -c 'echo packaging'", needs=["build", "unit", "lint"]),
    ]


def main() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    scheduler = JobScheduler()
    try:
        scheduler.submit_pipeline(demo_pipeline(), Path.cwd())
        scheduler.wait(timeout=60)
        for name, state in sorted(scheduler.status().items()):
            print(f"{name:10s} {state}")
    finally:
        scheduler.shutdown()


if __name__ == "__main__":
    main()
