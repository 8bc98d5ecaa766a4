"""
Multi-camera frame grabber with a shared ring buffer.

One grabber thread per camera reads raw 8-bit greyscale frames at a fixed
rate and pushes them into a bounded ring buffer; when consumers fall behind,
the oldest frame is overwritten and counted as dropped.  Consumer threads
drain the ring in batches, produce compressed low-resolution previews and
write them to an output directory, and a stats thread logs capture rates.

Real deployments swap ``SyntheticCamera`` for a V4L2/GenICam reader.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

log = logging.getLogger("grabber")

FRAME_WIDTH = 320
FRAME_HEIGHT = 240
TARGET_FPS = 15
RING_CAPACITY = 64
BATCH_SIZE = 8
PREVIEW_FACTOR = 4
ENCODER_WORKERS = 4
CONSUMERS = 2
STATS_INTERVAL_S = 5.0
CALIBRATION_S = 0.5
OUTPUT_DIR = os.environ.get("GRABBER_OUT", "previews")

FrameCallback = Callable[[int, bytes], None]


@dataclass(frozen=True)
class Frame:
    camera_id: str
    seq: int
    captured_at: float
    data: bytes


class SyntheticCamera:
    """Stands in for a capture device: produces a scrolling gradient."""

    def __init__(self, camera_id: str, width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT) -> None:
        self.camera_id = camera_id
        self.width = width
        self.height = height
        self._tick = 0

    def read(self) -> bytes:
        self._tick += 1
        offset = self._tick % 256
        row = bytes((x + offset) % 256 for x in range(self.width))
        return row * self.height

    def close(self) -> None:
        log.debug("camera %s closed", self.camera_id)


class RingBuffer:
    """Fixed-capacity FIFO that overwrites its oldest entry when full."""

    def __init__(self, capacity: int = RING_CAPACITY) -> None:
        self._slots: List[Optional[Frame]] = [None] * capacity
        self._capacity = capacity
        self._head = 0
        self._count = 0
        self._dropped = 0
        self._closed = False
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._dropped

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def put(self, frame: Frame) -> None:
        with self._not_empty:
            if self._closed:
                raise RuntimeError("ring buffer is closed")
            if self._count == self._capacity:
                self._slots[self._head] = None
                self._head = (self._head + 1) % self._capacity
                self._count -= 1
                self._dropped += 1
            self._slots[(self._head + self._count) % self._capacity] = frame
            self._count += 1
            self._not_empty.notify()

    def _pop_locked(self) -> Optional[Frame]:
        frame = self._slots[self._head]
        self._slots[self._head] = None
        self._head = (self._head + 1) % self._capacity
        self._count -= 1
        return frame

    def get(self) -> Optional[Frame]:
        """Block until a frame is available; return None once closed and drained."""
        with self._not_empty:
            if self._count == 0:
                if self._closed:
                    return None
                self._not_empty.wait()
            return self._pop_locked()

    def get_batch(self, max_items: int) -> List[Frame]:
        first = self.get()
        if first is None:
            return []
        batch = [first]
        with self._lock:
            while self._count > 0 and len(batch) < max_items:
                frame = self._pop_locked()
                if frame is not None:
                    batch.append(frame)
        return batch

    def close(self) -> None:
        with self._not_empty:
            self._closed = True
            self._not_empty.notify_all()


class FrameGrabber(threading.Thread):
    """Reads one camera at a fixed frame rate and forwards every frame."""

    def __init__(self, camera: SyntheticCamera, on_frame: FrameCallback,
                 start_barrier: threading.Barrier, stop: threading.Event,
                 fps: int = TARGET_FPS) -> None:
        super().__init__(name=f"grab-{camera.camera_id}", daemon=True)
        self._camera = camera
        self._on_frame = on_frame
        self._start_barrier = start_barrier
        self._halt = stop
        self._fps = fps
        self.frames_read = 0

    def run(self) -> None:
        try:
            self._start_barrier.wait(timeout=10.0)
        except threading.BrokenBarrierError:
            log.error("%s: cameras did not arm together; giving up", self.name)
            return
        period = 1.0 / self._fps
        next_due = time.monotonic()
        try:
            while not self._halt.is_set():
                data = self._camera.read()
                self.frames_read += 1
                self._on_frame(self.frames_read, data)
                next_due += period
                delay = next_due - time.monotonic()
                if delay > 0:
                    self._halt.wait(delay)
                else:
                    next_due = time.monotonic()
        finally:
            self._camera.close()


def downscale(data: bytes, width: int, height: int, factor: int) -> bytes:
    """Box-filter downscale of an 8-bit greyscale image."""
    out_w, out_h = width // factor, height // factor
    out = bytearray(out_w * out_h)
    area = factor * factor
    for oy in range(out_h):
        for ox in range(out_w):
            total = 0
            for dy in range(factor):
                start = (oy * factor + dy) * width + ox * factor
                total += sum(data[start:start + factor])
            out[oy * out_w + ox] = total // area
    return bytes(out)


class PreviewEncoder:
    """Turns full frames into small compressed previews on disk."""

    def __init__(self, out_dir: str, workers: int = ENCODER_WORKERS) -> None:
        self._out_dir = out_dir
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="encode")
        os.makedirs(out_dir, exist_ok=True)

    @staticmethod
    def _encode(frame: Frame) -> bytes:
        small = downscale(frame.data, FRAME_WIDTH, FRAME_HEIGHT, PREVIEW_FACTOR)
        return zlib.compress(small, 6)

    def encode_batch(self, frames: List[Frame]) -> int:
        """Encode a batch of frames in parallel, then write the previews."""
        encoded = list(self._pool.map(self._encode, frames))
        for frame, blob in zip(frames, encoded):
            path = os.path.join(self._out_dir, f"{frame.camera_id}-{frame.seq:06d}.z")
            with open(path, "wb") as fh:
                fh.write(blob)
        return len(encoded)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class CapturePipeline:
    def __init__(self, camera_ids: List[str], out_dir: str = OUTPUT_DIR) -> None:
        self._camera_ids = list(camera_ids)
        self._ring = RingBuffer()
        self._encoder = PreviewEncoder(out_dir)
        self._stop = threading.Event()
        self._stats_lock = threading.Lock()
        self.total_frames = 0
        self.frames_written = 0
        self._grabbers: List[FrameGrabber] = []
        self._consumers = [
            threading.Thread(target=self._consume, name=f"consumer-{i}") for i in range(CONSUMERS)
        ]
        self._stats_thread = threading.Thread(target=self._report_stats, name="stats", daemon=True)

    def _ingest(self, camera_id: str, seq: int, data: bytes) -> None:
        self._ring.put(Frame(camera_id, seq, time.time(), data))
        self.total_frames += 1

    def _consume(self) -> None:
        while True:
            batch = self._ring.get_batch(BATCH_SIZE)
            if not batch:
                break
            try:
                written = self._encoder.encode_batch(batch)
            except OSError:
                log.exception("failed to write %d previews", len(batch))
                continue
            with self._stats_lock:
                self.frames_written += written

    def _report_stats(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(STATS_INTERVAL_S):
            now = time.monotonic()
            with self._stats_lock:
                captured, self.total_frames = self.total_frames, 0
                written = self.frames_written
            log.info("capture %.1f fps, %d previews written, %d dropped, ring depth %d",
                     captured / (now - last), written, self._ring.dropped, len(self._ring))
            last = now

    def start(self) -> None:
        barrier = threading.Barrier(len(self._camera_ids), action=lambda: log.info("all cameras armed"))
        for cam_id in self._camera_ids:
            grabber = FrameGrabber(
                SyntheticCamera(cam_id),
                on_frame=lambda seq, data: self._ingest(cam_id, seq, data),
                start_barrier=barrier,
                stop=self._stop,
            )
            self._grabbers.append(grabber)
        for grabber in self._grabbers:
            grabber.start()
        for consumer in self._consumers:
            consumer.start()
        self._stats_thread.start()

    def stop(self) -> None:
        self._stop.set()
        for grabber in self._grabbers:
            grabber.join(timeout=5.0)
        self._ring.close()
        for consumer in self._consumers:
            consumer.join()
        self._encoder.shutdown()
        log.info("stopped; %d previews written", self.frames_written)


def _measure_fps(camera: SyntheticCamera, seconds: float, results: Dict[str, float]) -> None:
    frames = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        camera.read()
        frames += 1
    results[camera.camera_id] = frames / seconds


def calibrate(camera_ids: List[str], seconds: float = CALIBRATION_S) -> Dict[str, float]:
    """Measure the raw read rate of every camera concurrently."""
    results: Dict[str, float] = {}
    for cam_id in camera_ids:
        threading.Thread(
            target=_measure_fps,
            args=(SyntheticCamera(cam_id), seconds, results),
            name=f"calibrate-{cam_id}",
            daemon=True,
        ).start()
    time.sleep(seconds)
    rates = {cam_id: results.get(cam_id, 0.0) for cam_id in camera_ids}
    for cam_id, fps in rates.items():
        if fps < TARGET_FPS:
            log.warning("camera %s only manages %.1f fps", cam_id, fps)
    return rates


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    cameras = ["cam-north", "cam-south", "cam-gate"]
    rates = calibrate(cameras)
    usable = [cam for cam in cameras if rates[cam] >= TARGET_FPS] or cameras
    pipeline = CapturePipeline(usable)
    pipeline.start()
    try:
        time.sleep(30)
    except KeyboardInterrupt:
        pass
    finally:
        pipeline.stop()


if __name__ == "__main__":
    main()
