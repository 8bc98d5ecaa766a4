"""Transcoding farm controller.

Accepts transcode jobs (a source file plus a rendition ladder), keeps them in a
priority queue and runs them on a fixed set of worker threads that shell out to
ffmpeg.  NVENC sessions are capped per card, so a worker reserves an encoder
slot before a hardware encode and falls back to libx264 when none is free.

Usage:
    python transcode_farm.py --workers 4 --nvenc-sessions 3 jobs.json

jobs.json is a list of objects:
    {"id": "ep101", "source": "/media/in/ep101.mov", "out": "/media/out/ep101",
     "priority": 5, "ladder": [{"name": "720p", "height": 720, "kbps": 3000}]}
"""
from __future__ import annotations

import argparse
import heapq
import itertools
import json
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

log = logging.getLogger("transcode_farm")

FFMPEG = os.environ.get("FFMPEG_BIN", "ffmpeg")
FFPROBE = os.environ.get("FFPROBE_BIN", "ffprobe")
MAX_ATTEMPTS = 3


@dataclass
class Rendition:
    name: str
    height: int
    bitrate_k: int
    codec: str = "h264"

    def encoder(self, hw: bool) -> str:
        if self.codec == "hevc":
            return "hevc_nvenc" if hw else "libx265"
        return "h264_nvenc" if hw else "libx264"

    def ffmpeg_args(self, hw: bool) -> List[str]:
        return [
            "-vf", f"scale=-2:{self.height}",
            "-c:v", self.encoder(hw),
            "-b:v", f"{self.bitrate_k}k",
            "-c:a", "aac", "-b:a", "128k",
            "-movflags", "+faststart",
        ]


@dataclass
class TranscodeJob:
    job_id: str
    source: str
    out_dir: str
    renditions: List[Rendition]
    priority: int = 0
    attempts: int = 0
    duration: float = 0.0
    state: str = "queued"
    outputs: Dict[str, str] = field(default_factory=dict)
    error: Optional[str] = None


@dataclass
class FarmStats:
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    encode_seconds: float = 0.0
    media_seconds: float = 0.0


class EncoderSlots:
    """Free NVENC sessions across the cards in this box."""

    def __init__(self, sessions: int) -> None:
        self._sem = threading.Semaphore(sessions)

    def try_reserve(self, timeout: float) -> bool:
        return self._sem.acquire(timeout=timeout)

    def release(self) -> None:
        self._sem.release()


def probe_duration(path: str) -> float:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "format=duration",
         "-of", "default=noprint_wrappers=1:nokey=1", path],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    return float(out or 0.0)


class TranscodeFarm:
    def __init__(self, workers: int, nvenc_sessions: int) -> None:
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._heap: List[Tuple[int, int, TranscodeJob]] = []
        self._seq = itertools.count()
        self._jobs: Dict[str, TranscodeJob] = {}
        self._closed = False
        self.stats = FarmStats()
        self.slots = EncoderSlots(nvenc_sessions)
        self._workers = [TranscodeWorker(self, i) for i in range(workers)]

    def start(self) -> None:
        for w in self._workers:
            w.start()

    def submit(self, job: TranscodeJob) -> None:
        with self._lock:
            if job.job_id in self._jobs:
                raise ValueError(f"duplicate job id {job.job_id}")
            job.duration = probe_duration(job.source)
            self._jobs[job.job_id] = job
            self.stats.submitted += 1
            heapq.heappush(self._heap, (-job.priority, next(self._seq), job))
            self._cv.notify()

    def requeue(self, job: TranscodeJob) -> None:
        with self._lock:
            job.state = "queued"
            heapq.heappush(self._heap, (-job.priority, next(self._seq), job))
            self._cv.notify()

    def next_job(self) -> Optional[TranscodeJob]:
        with self._cv:
            if not self._heap and not self._closed:
                self._cv.wait()
            if self._closed and not self._heap:
                return None
            _, _, job = heapq.heappop(self._heap)
            job.state = "running"
            return job

    def finish(self, job: TranscodeJob, ok: bool) -> None:
        with self._lock:
            if ok:
                job.state = "done"
                self.stats.completed += 1
                self.stats.media_seconds += job.duration
            else:
                job.state = "failed"
                self.stats.failed += 1

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for w in self._workers:
            w.join()

    def report(self) -> dict:
        with self._lock:
            jobs = {
                j.job_id: {"state": j.state, "outputs": dict(j.outputs), "error": j.error}
                for j in self._jobs.values()
            }
            s = self.stats
            totals = {
                "submitted": s.submitted, "completed": s.completed, "failed": s.failed,
                "encode_seconds": round(s.encode_seconds, 1),
                "speed": round(s.media_seconds / s.encode_seconds, 2) if s.encode_seconds else None,
            }
        return {"jobs": jobs, "totals": totals}


class TranscodeWorker(threading.Thread):
    def __init__(self, farm: TranscodeFarm, index: int) -> None:
        super().__init__(name=f"transcode-{index}")
        self.farm = farm

    def run(self) -> None:
        while True:
            job = self.farm.next_job()
            if job is None:
                return
            started = time.monotonic()
            ok = True
            try:
                for r in job.renditions:
                    job.outputs[r.name] = self._encode(job, r)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
                ok = False
                job.attempts += 1
                job.error = f"{type(exc).__name__}: {exc}"
                log.warning("%s attempt %d failed: %s", job.job_id, job.attempts, job.error)
            self.farm.stats.encode_seconds += time.monotonic() - started
            if ok:
                log.info("%s done in %.1fs", job.job_id, time.monotonic() - started)
                self.farm.finish(job, ok=True)
            elif job.attempts < MAX_ATTEMPTS:
                self._retry_later(job)
            else:
                self.farm.finish(job, ok=False)

    def _encode(self, job: TranscodeJob, r: Rendition) -> str:
        os.makedirs(job.out_dir, exist_ok=True)
        dest = os.path.join(job.out_dir, f"{job.job_id}_{r.name}.mp4")
        hw = self.farm.slots.try_reserve(timeout=2.0)
        try:
            try:
                self._ffmpeg(job, r, dest, hw)
            except subprocess.CalledProcessError:
                if not hw:
                    raise
                log.warning("%s/%s: nvenc failed, falling back to %s",
                            job.job_id, r.name, r.encoder(False))
                self.farm.slots.release()
                self._ffmpeg(job, r, dest, False)
        finally:
            if hw:
                self.farm.slots.release()
        return dest

    def _ffmpeg(self, job: TranscodeJob, r: Rendition, dest: str, hw: bool) -> None:
        cmd = [FFMPEG, "-nostdin", "-hide_banner", "-y"]
        if hw:
            cmd += ["-hwaccel", "cuda"]
        cmd += ["-i", job.source] + r.ffmpeg_args(hw) + [dest + ".part"]
        limit = max(600.0, job.duration * 4)
        subprocess.run(cmd, check=True, timeout=limit,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.replace(dest + ".part", dest)

    def _retry_later(self, job: TranscodeJob) -> None:
        delay = 5 * 2 ** (job.attempts - 1)
        log.info("%s: retrying in %ds", job.job_id, delay)

        def resubmit() -> None:
            time.sleep(delay)
            self.farm.requeue(job)

        t = threading.Thread(target=resubmit, name=f"retry-{job.job_id}", daemon=True)
        t.run()


def load_jobs(path: str) -> List[TranscodeJob]:
    with open(path) as fh:
        raw = json.load(fh)
    jobs = []
    for item in raw:
        ladder = [Rendition(x["name"], int(x["height"]), int(x["kbps"]), x.get("codec", "h264"))
                  for x in item["ladder"]]
        jobs.append(TranscodeJob(item["id"], item["source"], item["out"], ladder,
                                 priority=int(item.get("priority", 0))))
    return jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jobs")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--nvenc-sessions", type=int, default=3)
    ap.add_argument("--report", default="-")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")

    farm = TranscodeFarm(args.workers, args.nvenc_sessions)
    farm.start()
    for job in load_jobs(args.jobs):
        try:
            farm.submit(job)
        except (ValueError, subprocess.CalledProcessError, OSError) as exc:
            log.error("rejected %s: %s", job.job_id, exc)
    farm.close()

    report = json.dumps(farm.report(), indent=2)
    if args.report == "-":
        print(report)
    else:
        with open(args.report, "w") as fh:
            fh.write(report)


if __name__ == "__main__":
    main()
