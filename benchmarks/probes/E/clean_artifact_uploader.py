"""Upload CI build artifacts to a content-addressed artifact store.

Hashes every file under the build's output directory, asks the store which
digests it already has, uploads the rest in parallel and finally publishes a
manifest that maps paths to digests.  While this runs, a heartbeat keeps the
job's lease with the CI coordinator alive, and a watchdog logs a warning when
no bytes have moved for a while.

    python artifact_uploader.py build-4711 ./dist --store store.ci:8081
"""
import argparse
import hashlib
import http.client
import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Dict, List, Tuple

log = logging.getLogger("artifacts")


@dataclass(frozen=True)
class Artifact:
    rel: str
    path: str
    size: int
    digest: str


class TransferStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = 0
        self._files = 0
        self._last_progress = time.monotonic()

    def add(self, nbytes: int) -> None:
        with self._lock:
            self._bytes += nbytes
            self._last_progress = time.monotonic()

    def file_done(self) -> None:
        with self._lock:
            self._files += 1

    def read(self) -> Tuple[int, int, float]:
        with self._lock:
            return self._bytes, self._files, self._last_progress


class StoreClient:
    def __init__(self, host: str, port: int, max_parallel: int) -> None:
        self.host, self.port = host, port
        self._slots = threading.Semaphore(max_parallel)

    def _conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def missing(self, digests: List[str]) -> List[str]:
        conn = self._conn()
        try:
            conn.request("POST", "/v1/missing", json.dumps(digests),
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"missing query failed: {resp.status}")
            return json.loads(resp.read())["missing"]
        finally:
            conn.close()

    def upload(self, art: Artifact, stats: TransferStats) -> str:
        with self._slots:
            conn = self._conn()
            try:
                conn.putrequest("PUT", f"/v1/blobs/{art.digest}")
                conn.putheader("Content-Length", str(art.size))
                conn.endheaders()
                with open(art.path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(256 * 1024), b""):
                        conn.send(chunk)
                        stats.add(len(chunk))
                resp = conn.getresponse()
                resp.read()
                if resp.status not in (200, 201):
                    raise RuntimeError(f"{art.rel}: upload failed with {resp.status}")
            finally:
                conn.close()
        stats.file_done()
        return art.rel

    def publish(self, build_id: str, manifest: Dict[str, str]) -> None:
        conn = self._conn()
        try:
            conn.request("PUT", f"/v1/builds/{build_id}/manifest", json.dumps(manifest),
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status not in (200, 201):
                raise RuntimeError(f"publish failed: {resp.status}")
        finally:
            conn.close()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_tree(root: str, threads: int) -> List[Artifact]:
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)
    found: List[Artifact] = []
    errors: List[str] = []

    def worker(chunk: List[str]) -> None:
        for p in chunk:
            try:
                found.append(Artifact(os.path.relpath(p, root), p, os.path.getsize(p),
                                      sha256_file(p)))
            except OSError as exc:
                errors.append(f"{p}: {exc}")

    workers = [threading.Thread(target=worker, args=(paths[i::threads],), name=f"hash-{i}")
               for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    if errors:
        raise OSError("could not hash: " + "; ".join(errors))
    return sorted(found, key=lambda a: a.rel)


def heartbeat(coordinator: str, build_id: str, stop: threading.Event, every: float) -> None:
    host, _, port = coordinator.partition(":")
    while not stop.wait(every):
        conn = http.client.HTTPConnection(host, int(port or 80), timeout=10)
        try:
            conn.request("POST", f"/jobs/{build_id}/heartbeat", b"")
            conn.getresponse().read()
        except (OSError, http.client.HTTPException) as exc:
            log.warning("heartbeat failed: %s", exc)
        finally:
            conn.close()


def stall_watchdog(stats: TransferStats, limit: float) -> None:
    while True:
        time.sleep(limit / 4)
        nbytes, nfiles, last = stats.read()
        idle = time.monotonic() - last
        if idle > limit:
            log.warning("no upload progress for %.0fs (%d files, %d bytes so far)",
                        idle, nfiles, nbytes)


def run(build_id: str, root: str, store: StoreClient, coordinator: str, parallel: int) -> int:
    artifacts = hash_tree(root, threads=4)
    by_digest = {a.digest: a for a in artifacts}
    missing = set(store.missing(sorted(by_digest)))
    todo = [by_digest[d] for d in sorted(missing)]
    log.info("%d artifact(s), %d new blob(s)", len(artifacts), len(todo))

    stats = TransferStats()
    stop = threading.Event()
    beat = threading.Thread(target=heartbeat, args=(coordinator, build_id, stop, 15.0),
                            name="heartbeat")
    beat.start()
    threading.Thread(target=stall_watchdog, args=(stats, 120.0), name="watchdog",
                     daemon=True).start()
    failures = 0
    try:
        with ThreadPoolExecutor(max_workers=parallel * 2, thread_name_prefix="upload") as pool:
            futures = {pool.submit(store.upload, art, stats): art for art in todo}
            for fut in as_completed(futures):
                try:
                    log.debug("uploaded %s", fut.result())
                except (OSError, RuntimeError, http.client.HTTPException) as exc:
                    failures += 1
                    log.error("%s: %s", futures[fut].rel, exc)
        if failures == 0:
            store.publish(build_id, {a.rel: a.digest for a in artifacts})
    finally:
        stop.set()
        beat.join()
    nbytes, nfiles, _ = stats.read()
    log.info("uploaded %d file(s), %.1f MiB, %d failure(s)", nfiles, nbytes / 2**20, failures)
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description="upload CI artifacts")
    ap.add_argument("build_id")
    ap.add_argument("root")
    ap.add_argument("--store", default="127.0.0.1:8081")
    ap.add_argument("--coordinator", default="127.0.0.1:8082")
    ap.add_argument("--parallel", type=int, default=4)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    host, _, port = args.store.partition(":")
    store = StoreClient(host, int(port or 80), args.parallel)
    return run(args.build_id, args.root, store, args.coordinator, args.parallel)


if __name__ == "__main__":
    sys.exit(main())
