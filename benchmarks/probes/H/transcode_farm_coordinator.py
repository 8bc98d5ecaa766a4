#!/usr/bin/env python3
"""Video transcoding farm coordinator (simulated encoders).

Sources are probed, split into fixed-length segments, and every segment is
encoded for each output profile on a shared encoder pool.  A couple of
segments at a time may run on the (simulated) hardware encoder; the others
fall back to the slower software path.  Finished renditions go to a collector
that builds the delivery manifest, and a poster thumbnail is published for
each rendition.
"""

import logging
import math
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

log = logging.getLogger("farm")

SEGMENT_SECONDS = 4.0
TIME_SCALE = 1 / 400          # simulated seconds -> real seconds
PROFILES: Dict[str, Tuple[int, int, int]] = {
    "1080p": (1920, 1080, 5000),
    "720p": (1280, 720, 2800),
    "480p": (854, 480, 1200),
}


class ProbeError(Exception):
    pass


@dataclass
class Source:
    name: str
    duration: float
    width: int
    height: int
    corrupt: bool = False


@dataclass
class Segment:
    source: str
    index: int
    start: float
    length: float


@dataclass
class Rendition:
    source: str
    profile: str
    segments: int
    kbytes: int
    hw_segments: int
    elapsed: float


@dataclass
class FarmStats:
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    segments: int = 0
    hw: int = 0
    sw: int = 0

    def add(self, used_hw: bool) -> None:
        with self.lock:
            self.segments += 1
            if used_hw:
                self.hw += 1
            else:
                self.sw += 1


_worker = threading.local()


def _init_encoder_thread() -> None:
    _worker.encoder_id = f"enc-{threading.get_ident() % 10000:04d}"
    _worker.rng = random.Random(threading.get_ident())


def probe(src: Source) -> List[Segment]:
    time.sleep(0.003)
    if src.corrupt or src.duration <= 0:
        raise ProbeError(f"{src.name}: unreadable container")
    count = math.ceil(src.duration / SEGMENT_SECONDS)
    return [
        Segment(src.name, i, i * SEGMENT_SECONDS,
                min(SEGMENT_SECONDS, src.duration - i * SEGMENT_SECONDS))
        for i in range(count)
    ]


class Coordinator:
    def __init__(self, name: str, dispatchers: int = 2, encoders: int = 6,
                 hw_slots: int = 2):
        self.name = name
        self._jobs: "queue.Queue[Source | None]" = queue.Queue()
        self._results: "queue.Queue[Rendition | None]" = queue.Queue()
        self._hw = threading.Semaphore(hw_slots)
        self._encoders = ThreadPoolExecutor(max_workers=encoders,
                                            thread_name_prefix="enc",
                                            initializer=_init_encoder_thread)
        self._publisher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="thumb")
        self.stats = FarmStats()
        self.manifest: Dict[str, Dict[str, Rendition]] = {}
        self.published: List[str] = []
        self._pub_lock = threading.Lock()
        self._drained = False
        self._dispatchers = [
            threading.Thread(target=self._dispatch_loop, name=f"dispatch-{i}")
            for i in range(dispatchers)
        ]
        self._collector = threading.Thread(target=self._collect_loop, name="collector")
        self._beat_stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, args=(self.name),
                                           name="heartbeat", daemon=True)
        self.beats = 0

    # -- background threads ----------------------------------------------
    def _beat(self, farm_name: str) -> None:
        while not self._beat_stop.wait(0.05):
            self.beats += 1
            log.debug("%s heartbeat #%d", farm_name, self.beats)

    def _dispatch_loop(self) -> None:
        while True:
            src = self._jobs.get()
            if src is None:
                self._jobs.task_done()
                return
            try:
                segments = probe(src)
            except ProbeError as exc:
                log.warning("skipping %s: %s", src.name, exc)
                continue
            for profile in PROFILES:
                self._results.put(self._encode_rendition(src, profile, segments))
            self._jobs.task_done()

    def _collect_loop(self) -> None:
        while True:
            item = self._results.get()
            if item is None:
                break
            self.manifest.setdefault(item.source, {})[item.profile] = item
            self._publisher.submit(self._publish_thumbnail, item)
        self._drained = True

    # -- work items --------------------------------------------------------
    def _encode_rendition(self, src: Source, profile: str,
                          segments: List[Segment]) -> Rendition:
        t0 = time.monotonic()
        futures = [self._encoders.submit(self._encode_segment, seg, profile)
                   for seg in segments]
        kbytes = hw = 0
        for fut in as_completed(futures):
            size, used_hw = fut.result()
            kbytes += size
            hw += int(used_hw)
        return Rendition(src.name, profile, len(segments), kbytes, hw,
                         time.monotonic() - t0)

    def _encode_segment(self, seg: Segment, profile: str) -> Tuple[int, bool]:
        _, _, kbps = PROFILES[profile]
        used_hw = self._hw.acquire(timeout=0.01)
        try:
            speed = 8.0 if used_hw else 2.0
            jitter = _worker.rng.uniform(0.9, 1.1)
            time.sleep(seg.length / speed * TIME_SCALE * jitter)
            size = int(kbps * seg.length / 8 * jitter)
        finally:
            self._hw.release()
        self.stats.add(used_hw)
        return size, used_hw

    def _publish_thumbnail(self, rendition: Rendition) -> None:
        time.sleep(0.002)
        encoder = _worker.encoder_id
        tag = f"{rendition.source}/{rendition.profile}/poster.jpg (encoded by {encoder})"
        with self._pub_lock:
            self.published.append(tag)

    # -- driver ------------------------------------------------------------
    def run(self, sources: List[Source]) -> Dict[str, Dict[str, Rendition]]:
        self._heartbeat.start()
        for t in self._dispatchers:
            t.start()
        self._collector.start()

        for src in sources:
            self._jobs.put(src)
        self._jobs.join()

        for _ in self._dispatchers:
            self._jobs.put(None)
        for t in self._dispatchers:
            t.join()

        self._results.put(None)
        while not self._drained:
            time.sleep(0.01)

        self._publisher.shutdown(wait=True)
        self._encoders.shutdown(wait=True)
        self._beat_stop.set()
        self._heartbeat.join()
        self._collector.join()
        return self.manifest


def make_sources(n: int, seed: int = 5) -> List[Source]:
    rng = random.Random(seed)
    return [Source(f"episode-{i:02d}.mov", rng.uniform(20, 90), 1920, 1080)
            for i in range(n)]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    coord = Coordinator("farm-east")
    t0 = time.monotonic()
    manifest = coord.run(make_sources(8))
    elapsed = time.monotonic() - t0

    total_kb = sum(r.kbytes for per_src in manifest.values() for r in per_src.values())
    print(f"renditions: {sum(len(v) for v in manifest.values())} "
          f"for {len(manifest)} sources in {elapsed:.2f}s")
    print(f"output size: {total_kb / 1024:.1f} MiB")
    print(f"segments: {coord.stats.segments} (hw={coord.stats.hw}, sw={coord.stats.sw})")
    print(f"thumbnails published: {len(coord.published)}")
    for src_name in sorted(manifest)[:3]:
        profiles = ", ".join(f"{p}:{r.kbytes}kB" for p, r in sorted(manifest[src_name].items()))
        print(f"  {src_name}: {profiles}")


if __name__ == "__main__":
    main()
