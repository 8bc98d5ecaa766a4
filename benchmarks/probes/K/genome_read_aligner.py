"""Seed-and-extend short-read aligner.

Reads are split into chunks and aligned against a k-mer index of the
reference on a ThreadPoolExecutor.  Each chunk yields a partial result
(hits, unmapped reads, per-position coverage) which is merged into the
sample-level result as soon as the chunk finishes.  A reporter thread
samples progress, and a cancellation flag lets an operator abort a run.
"""
import functools
import itertools
import os
import random
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

K = 11
SEED_OFFSETS = (0, 30, 60)
MAX_MISMATCHES = 6
_COMPLEMENT = str.maketrans("ACGT", "TGCA")

_tls = threading.local()
_worker_ids = itertools.count(1)


def _init_worker():
    _tls.worker_id = next(_worker_ids)
    _tls.aligned = 0


@dataclass
class Read:
    read_id: str
    seq: str


@dataclass
class Hit:
    read_id: str
    pos: int | None
    strand: str
    mismatches: int


@dataclass
class PartialResult:
    chunk_no: int
    records: list = field(default_factory=list)
    coverage: Counter = field(default_factory=Counter)
    unmapped: int = 0
    cancelled: bool = False


def revcomp(seq):
    return seq.translate(_COMPLEMENT)[::-1]


def build_index(ref, k=K):
    index = defaultdict(list)
    for i in range(len(ref) - k + 1):
        index[ref[i:i + k]].append(i)
    return index


def _hamming(a, b, limit):
    mm = 0
    for x, y in zip(a, b):
        if x != y:
            mm += 1
            if mm > limit:
                break
    return mm


def align_read(read, ref, index):
    best = Hit(read.read_id, None, "*", MAX_MISMATCHES + 1)
    for strand, seq in (("+", read.seq), ("-", revcomp(read.seq))):
        tried = set()
        for off in SEED_OFFSETS:
            for p in index.get(seq[off:off + K], ()):
                start = p - off
                if start < 0 or start + len(seq) > len(ref) or start in tried:
                    continue
                tried.add(start)
                mm = _hamming(seq, ref[start:start + len(seq)], best.mismatches)
                if mm < best.mismatches:
                    best = Hit(read.read_id, start, strand, mm)
    return best


def align_chunk(chunk_no, reads, ref, index, cancel, progress):
    part = PartialResult(chunk_no)
    for read in reads:
        if cancel.is_set():
            part.cancelled = True
            break
        hit = align_read(read, ref, index)
        part.records.append(hit)
        if hit.pos is None:
            part.unmapped += 1
        else:
            part.coverage.update(range(hit.pos, hit.pos + len(read.seq)))
        _tls.aligned += 1
        progress.advance(1)
    return part


def write_sam_records(part, out, ref_name="chrT"):
    for hit in part.records:
        flag = 16 if hit.strand == "-" else 0
        out.append(f"{hit.read_id}\t{flag}\t{ref_name}\t{hit.pos + 1}\t"
                   f"NM:i:{hit.mismatches}")


class Progress:
    def __init__(self, total):
        self._lock = threading.Lock()
        self.total = total
        self.done = 0

    def advance(self, n):
        with self._lock:
            self.done += n

    def fraction(self):
        with self._lock:
            return self.done / self.total if self.total else 1.0


class ProgressReporter(threading.Thread):
    def __init__(self, progress, stop, interval=0.03):
        super().__init__(name="progress-reporter", daemon=True)
        self.progress = progress
        self.stop = stop
        self.interval = interval
        self.samples = []
        self.summary = None

    def run(self):
        t0 = time.monotonic()
        while not self.stop.wait(self.interval):
            self.samples.append((time.monotonic() - t0, self.progress.fraction()))
        elapsed = time.monotonic() - t0
        self.summary = (f"{len(self.samples)} samples, "
                        f"{self.progress.fraction():.0%} in {elapsed:.2f}s")


class Merger:
    def __init__(self):
        self.hits = 0
        self.unmapped = 0
        self.coverage = Counter()
        self.chunks = []

    def merge(self, part):
        with threading.Lock():
            self.hits += len(part.records) - part.unmapped
            self.unmapped += part.unmapped
            self.coverage.update(part.coverage)
            self.chunks.append(part.chunk_no)


def _on_chunk_done(fut, merger, log):
    if fut.cancelled() or fut.exception() is not None:
        log.append(f"chunk failed: {fut.exception() if not fut.cancelled() else 'cancelled'}")
        return
    part = fut.result()
    who = _tls.worker_id
    merger.merge(part)
    log.append(f"chunk {part.chunk_no} merged on worker {who}")


def chunked(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Aligner:
    """Aligns samples against one reference; reused across samples."""

    def __init__(self, ref, chunk_size=100, max_inflight=4):
        self.ref = ref
        self.index = build_index(ref)
        self.chunk_size = chunk_size
        # use every core for the alignment itself
        self.workers = os.cpu_count() or 4
        self.inflight = threading.Semaphore(max_inflight)

    def run(self, reads, cancel):
        progress = Progress(len(reads))
        stop = threading.Event()
        reporter = ProgressReporter(progress, stop)
        reporter.start()
        merger, log, sam = Merger(), [], []
        with ThreadPoolExecutor(max_workers=self.workers, initializer=_init_worker,
                                thread_name_prefix="align") as pool:
            futures = []
            for chunk_no, chunk in enumerate(chunked(reads, self.chunk_size)):
                if cancel.is_set():
                    self.inflight.release()
                    break
                self.inflight.acquire()
                fut = pool.submit(align_chunk, chunk_no, chunk, self.ref,
                                  self.index, cancel, progress)
                fut.add_done_callback(lambda f: self.inflight.release())
                fut.add_done_callback(functools.partial(_on_chunk_done,
                                                        merger=merger, log=log))
                futures.append(fut)
            wait(futures)
            for fut in futures:
                if not fut.cancelled() and fut.exception() is None:
                    pool.submit(write_sam_records, fut.result(), sam)
        return merger, log, sam, stop, reporter


def simulate(ref_len=60000, n_reads=8000, read_len=100, seed=5):
    rng = random.Random(seed)
    ref = "".join(rng.choice("ACGT") for _ in range(ref_len))
    reads = []
    for i in range(n_reads):
        start = rng.randrange(ref_len - read_len)
        seq = list(ref[start:start + read_len])
        for _ in range(rng.randint(0, 3)):
            j = rng.randrange(read_len)
            seq[j] = rng.choice("ACGT")
        s = "".join(seq)
        if rng.random() < 0.5:
            s = revcomp(s)
        if rng.random() < 0.03:
            s = "".join(rng.choice("ACGT") for _ in range(read_len))
        reads.append(Read(f"r{i:05d}", s))
    return ref, reads


def main():
    ref, reads = simulate()
    aligner = Aligner(ref)

    for sample, abort_after in (("S1", None), ("S2", 0.15)):
        cancel = threading.Event()
        if abort_after is not None:
            threading.Timer(abort_after, cancel.set).start()
        t0 = time.monotonic()
        merger, log, sam, stop, reporter = aligner.run(reads, cancel)
        stop.set()
        print(f"[{sample}] progress: {reporter.summary}")
        covered = sum(1 for c in merger.coverage.values() if c > 0)
        print(f"[{sample}] chunks={len(merger.chunks)} mapped={merger.hits} "
              f"unmapped={merger.unmapped} covered_bp={covered} "
              f"sam_lines={len(sam)} cancelled={cancel.is_set()} "
              f"elapsed={time.monotonic() - t0:.2f}s")
        failed = [line for line in log if line.startswith("chunk failed")]
        if failed:
            print(f"[{sample}] {len(failed)} chunk(s) failed")


if __name__ == "__main__":
    main()
