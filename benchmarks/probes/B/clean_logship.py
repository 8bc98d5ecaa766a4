"""Access-log summariser for the edge fleet.

Chunks of raw access-log lines are parsed on a small thread pool, the
per-chunk counters flow through a queue to an aggregator thread, and the
reporter waits on a condition until every chunk has been folded in.
"""
from __future__ import annotations

import collections
import queue
import random
import re
import threading
from concurrent.futures import ThreadPoolExecutor as Pool, as_completed

LINE_RE = r'^(\S+) \S+ \S+ \[[^\]]+\] "(\w+) (\S+) [^"]*" (\d{3}) (\d+)'

_tls = threading.local()


def _init_parser() -> None:
    # runs once in every pool thread before it executes any task
    _tls.pattern = re.compile(LINE_RE)
    _tls.parsed = 0


def parse_chunk(lines: list[str]) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for line in lines:
        m = _tls.pattern.match(line)
        if m is None:
            counts["malformed"] += 1
            continue
        _tls.parsed += 1
        counts[f"status:{m.group(4)}"] += 1
        counts[f"method:{m.group(2)}"] += 1
        counts["bytes"] += int(m.group(5))
    return counts


class Aggregator:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._totals: collections.Counter = collections.Counter()
        self._chunks_done = 0

    def fold(self, counts: collections.Counter) -> None:
        with self._cond:
            self._totals.update(counts)
            self._chunks_done += 1
            self._cond.notify_all()

    def wait_for_chunks(self, n: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._chunks_done >= n, timeout=timeout)

    def totals(self) -> dict[str, int]:
        with self._cond:
            return dict(self._totals)


def fold_worker(q: "queue.Queue[collections.Counter | None]", agg: Aggregator) -> None:
    while True:
        item = q.get()
        try:
            if item is None:
                return
            agg.fold(item)
        finally:
            q.task_done()


def synth_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if rng.random() < 0.01:
            out.append("garbage line")
            continue
        ip = ".".join(str(rng.randrange(256)) for _ in range(4))
        method = rng.choice(["GET", "GET", "GET", "POST", "PUT"])
        status = rng.choice([200, 200, 200, 304, 404, 500])
        out.append(f'{ip} - - [29/Nov/2024:18:00:{i % 60:02d} +0000] '
                   f'"{method} /api/v1/items/{i} HTTP/1.1" {status} {rng.randrange(100, 9000)}')
    return out


def main() -> None:
    lines = synth_lines(20_000, seed=42)
    chunks = [lines[i:i + 1000] for i in range(0, len(lines), 1000)]

    agg = Aggregator()
    fold_q: "queue.Queue[collections.Counter | None]" = queue.Queue(maxsize=8)
    folders = [threading.Thread(target=fold_worker, args=(fold_q, agg), name=f"fold-{i}")
               for i in range(2)]
    for t in folders:
        t.start()

    failures = 0
    with Pool(max_workers=4, initializer=_init_parser, thread_name_prefix="parse") as pool:
        futures = {pool.submit(parse_chunk, chunk): idx for idx, chunk in enumerate(chunks)}
        for fut in as_completed(futures):
            try:
                fold_q.put(fut.result())
            except Exception as exc:
                failures += 1
                print(f"chunk {futures[fut]} failed: {exc!r}")

    fold_q.join()
    if not agg.wait_for_chunks(len(chunks) - failures, timeout=10.0):
        raise SystemExit("aggregation stalled")
    for _ in folders:
        fold_q.put(None)
    for t in folders:
        t.join()

    totals = agg.totals()
    for key in sorted(k for k in totals if k.startswith("status:")):
        print(f"{key:>12} {totals[key]:>7}")
    print(f"{'malformed':>12} {totals.get('malformed', 0):>7}")
    print(f"{'bytes':>12} {totals['bytes']:>7}")


if __name__ == "__main__":
    main()
