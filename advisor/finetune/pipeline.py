"""Threaded data pipeline: stages as threads joined by bounded queues.

A ``Source`` produces items, each ``Map`` stage transforms items in one or more worker
threads, a ``Fold`` stage (one thread) sees its input back in source order and may emit any
number of items (batching). Every item travels as ``(seq, label, payload)``: sequence numbers
restore the source order after multi-threaded stages, so the output depends on the seed and
never on the thread count; the label names the item in errors.

The first exception in any stage sets a shared stop event; every thread notices it within
``POLL`` seconds, the consumer gets a ``PipelineError`` naming the stage and the item, and
``close()`` joins every thread. End of input travels downstream as a sentinel. Use the
pipeline as a context manager (``with Pipeline(...) as pipe: for x in pipe: ...``) so that
an early ``break`` or a KeyboardInterrupt in the consumer also stops and joins the threads.

``build_corpus_pipeline`` wires the stages for fine-tuning: read files -> parse/validate ->
render prompts -> tokenize -> pack/pad batches -> prefetch (tensors).
"""

from __future__ import annotations

import hashlib
import heapq
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

POLL = 0.05
"""Seconds between checks of the stop event while blocked on a queue."""

SKIP = object()
"""Returned by a Map function to drop an item (it still advances the sequence)."""

_END = object()


class PipelineError(RuntimeError):
    """A stage failed: ``stage`` and ``item`` (the item's label) name where; ``__cause__``
    is the original exception."""

    def __init__(self, stage: str, item: str, cause: BaseException) -> None:
        super().__init__(f"pipeline stage {stage!r} failed on {item}: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.item = item
        self.cause = cause


@dataclass
class Source:
    """``fn()`` yields ``(label, payload)`` pairs; runs in one thread."""

    name: str
    fn: Callable[[], Iterable[tuple[str, Any]]]


@dataclass
class Map:
    """``fn(payload) -> payload | SKIP`` in ``workers`` threads. ``fn`` must not depend on
    the order in which items arrive."""

    name: str
    fn: Callable[[Any], Any]
    workers: int = 1


@dataclass
class Fold:
    """``fn(pairs) -> pairs``: consumes ``(label, payload)`` in source order, yields
    ``(label, payload)``; runs in one thread."""

    name: str
    fn: Callable[[Iterator[tuple[str, Any]]], Iterable[tuple[str, Any]]]


@dataclass
class StageStats:
    name: str
    workers: int
    items: int = 0
    produced: int = 0
    busy: float = 0.0
    first: float | None = None
    last: float | None = None

    def to_dict(self) -> dict:
        wall = (self.last - self.first) if self.first is not None and self.last is not None else 0.0
        return {
            "stage": self.name,
            "workers": self.workers,
            "items": self.items,
            "produced": self.produced,
            "busy_s": round(self.busy, 4),
            "items_per_s": round(self.items / wall, 1) if wall > 0 else None,
            "items_per_busy_s": round(self.items / self.busy, 1) if self.busy > 0 else None,
        }


@dataclass
class QueueStats:
    name: str
    maxsize: int
    samples: int = 0
    total: int = 0
    peak: int = 0

    def sample(self, n: int) -> None:
        self.samples += 1
        self.total += n
        self.peak = max(self.peak, n)

    def to_dict(self) -> dict:
        mean = self.total / self.samples if self.samples else 0.0
        return {"queue": self.name, "maxsize": self.maxsize, "mean": round(mean, 2), "peak": self.peak,
                "mean_fill": round(mean / self.maxsize, 3) if self.maxsize else None}


class Pipeline:
    """Run ``source`` through ``stages``; iterate to get the last stage's payloads in order."""

    def __init__(self, source: Source, stages: list[Map | Fold], queue_size: int = 8, name: str = "pipeline") -> None:
        self.source = source
        self.stages = list(stages)
        self.name = name
        self.stop = threading.Event()
        self.error: PipelineError | None = None
        self.counters: Counter = Counter()
        self.wait_seconds = 0.0
        self.delivered = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._closed = False
        all_stages = [source, *self.stages]
        self.stats = [StageStats(s.name, getattr(s, "workers", 1)) for s in all_stages]
        self._queues = [queue.Queue(maxsize=max(1, queue_size)) for _ in all_stages]
        self.queue_stats = [QueueStats(f"{s.name}->{nxt}", max(1, queue_size))
                            for s, nxt in zip(all_stages, [x.name for x in self.stages] + ["consumer"])]
        self._done_workers = [0] * len(all_stages)
        self._consumer_iter: Iterator | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> "Pipeline":
        if self._started:
            return self
        self._started = True
        self._spawn(self._run_source, 0, 0)
        for i, stage in enumerate(self.stages, 1):
            if isinstance(stage, Map):
                for w in range(max(1, stage.workers)):
                    self._spawn(self._run_map, i, w)
            else:
                self._spawn(self._run_fold, i, 0)
        return self

    def _spawn(self, target, index: int, worker: int) -> None:
        name = [self.source, *self.stages][index].name
        t = threading.Thread(target=target, args=(index,), name=f"{self.name}:{name}:{worker}", daemon=True)
        self._threads.append(t)
        t.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop every stage and join its threads (idempotent)."""
        self._closed = True
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def alive(self) -> list[str]:
        return [t.name for t in self._threads if t.is_alive()]

    def __enter__(self) -> "Pipeline":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- queues ---------------------------------------------------------------------------

    def _get(self, index: int):
        """Next envelope from queue ``index`` (None once stopped)."""
        q = self._queues[index]
        self.queue_stats[index].sample(q.qsize())
        while not self.stop.is_set():
            try:
                return q.get(timeout=POLL)
            except queue.Empty:
                continue
        return None

    def _put(self, index: int, item) -> bool:
        q = self._queues[index]
        while not self.stop.is_set():
            try:
                q.put(item, timeout=POLL)
                return True
            except queue.Full:
                continue
        return False

    def _consumers(self, index: int) -> int:
        """How many threads read queue ``index`` (the output of stage ``index``)."""
        if index + 1 > len(self.stages):
            return 1
        nxt = self.stages[index]
        return max(1, nxt.workers) if isinstance(nxt, Map) else 1

    def _finish(self, index: int) -> None:
        with self._lock:
            self._done_workers[index] += 1
            last = self._done_workers[index] == self.stats[index].workers
        if last:
            for _ in range(self._consumers(index)):
                if not self._put(index, _END):
                    return

    def _fail(self, index: int, label: str, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                stage = [self.source, *self.stages][index].name
                err = PipelineError(stage, label, exc)
                err.__cause__ = exc
                self.error = err
        self.stop.set()

    def _ordered(self, index: int, current: list) -> Iterator[tuple[int, str, Any]]:
        """Envelopes of queue ``index - 1`` in sequence order (SKIPs dropped); ends at the
        END sentinel (sent after every item); returns early when stopped."""
        heap: list = []
        expected = 0
        while True:
            env = self._get(index - 1)
            if env is None:
                return
            if env is _END:
                break
            heapq.heappush(heap, (env[0], id(env), env))
            while heap and heap[0][0] == expected:
                _, _, (seq, label, payload) = heapq.heappop(heap)
                expected += 1
                if payload is SKIP:
                    continue
                current[0] = label
                yield seq, label, payload
        while heap:
            _, _, (seq, label, payload) = heapq.heappop(heap)
            if payload is not SKIP:
                current[0] = label
                yield seq, label, payload

    # -- stage loops ---------------------------------------------------------------------

    def _run_source(self, index: int) -> None:
        st = self.stats[0]
        label = "<start>"
        try:
            seq = 0
            it = iter(self.source.fn())
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    label, payload = next(it)
                except StopIteration:
                    break
                t1 = time.perf_counter()
                st.busy += t1 - t0
                st.first = t0 if st.first is None else st.first
                st.last = t1
                st.items += 1
                st.produced += 1
                if not self._put(0, (seq, label, payload)):
                    return
                seq += 1
        except BaseException as exc:
            self._fail(0, f"{label} (after)" if st.items else label, exc)
            return
        if not self.stop.is_set():
            self._finish(0)

    def _run_map(self, index: int) -> None:
        stage: Map = self.stages[index - 1]
        st = self.stats[index]
        while True:
            env = self._get(index - 1)
            if env is None:
                return
            if env is _END:
                break
            seq, label, payload = env
            if payload is SKIP:
                if not self._put(index, env):
                    return
                continue
            t0 = time.perf_counter()
            try:
                out = stage.fn(payload)
            except BaseException as exc:
                self._fail(index, label, exc)
                return
            t1 = time.perf_counter()
            with self._lock:
                st.busy += t1 - t0
                st.first = t0 if st.first is None else min(st.first, t0)
                st.last = t1 if st.last is None else max(st.last, t1)
                st.items += 1
                st.produced += out is not SKIP
            if not self._put(index, (seq, label, out)):
                return
        self._finish(index)

    def _run_fold(self, index: int) -> None:
        stage: Fold = self.stages[index - 1]
        st = self.stats[index]
        current = ["<start>"]
        waited = [0.0]

        def pairs():
            ordered = self._ordered(index, current)
            while True:
                t0 = time.perf_counter()
                try:
                    _, label, payload = next(ordered)
                except StopIteration:
                    return
                finally:
                    waited[0] += time.perf_counter() - t0
                st.items += 1
                yield label, payload

        seq = 0
        try:
            it = iter(stage.fn(pairs()))
            while True:
                t0 = time.perf_counter()
                waited[0] = 0.0
                try:
                    label, payload = next(it)
                except StopIteration:
                    break
                t1 = time.perf_counter()
                st.busy += t1 - t0 - waited[0]
                st.first = t0 if st.first is None else st.first
                st.last = t1
                st.produced += 1
                if not self._put(index, (seq, label, payload)):
                    return
                seq += 1
        except BaseException as exc:
            self._fail(index, current[0], exc)
            return
        if not self.stop.is_set():
            self._finish(index)

    # -- consumer -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        if self._consumer_iter is None:
            self._consumer_iter = self._consume()
        return self._consumer_iter

    def _consume(self) -> Iterator[Any]:
        self.start()
        gen = self._ordered(len(self.stages) + 1, [None])
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    _, _, payload = next(gen)
                except StopIteration:
                    break
                finally:
                    self.wait_seconds += time.perf_counter() - t0
                self.delivered += 1
                yield payload
        finally:
            gen.close()
            self.close()
        if self.error is not None:
            raise self.error

    def report(self) -> dict:
        return {
            "stages": [s.to_dict() for s in self.stats],
            "queues": [q.to_dict() for q in self.queue_stats],
            "counters": dict(self.counters),
            "delivered": self.delivered,
            "consumer_wait_s": round(self.wait_seconds, 4),
        }

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n


# -- the corpus pipeline ------------------------------------------------------------------


class CorpusLineError(ValueError):
    """A corrupt corpus line; the message starts with ``file:line``."""


def split_of(example_id: str, holdout: float) -> str:
    """``"eval"`` or ``"train"``, decided by a hash of the id (stable across runs/machines).
    An augmented example (``<id>~<seed>.<k>``) goes where its original goes, so no rewrite of
    a held-out example is trained on."""
    base = example_id.split("~", 1)[0]
    h = int.from_bytes(hashlib.sha256(base.encode("utf-8")).digest()[:8], "big")
    return "eval" if (h % 10_000) < round(holdout * 10_000) else "train"


@dataclass
class Encoded:
    """One tokenized training example. ``labels`` is -100 on the prompt (no loss)."""

    id: str
    input_ids: list[int]
    labels: list[int]


@dataclass
class DataConfig:
    files: list[str]
    batch_size: int = 4
    max_len: int = 1024
    seed: int = 0
    epoch: int = 0
    split: str | None = "train"
    holdout: float = 0.15
    skip_invalid: bool = False
    rank: int = 0
    world: int = 1
    workers: int = 2
    queue_size: int = 8
    programs: list[str] = field(default_factory=list)


def end_of_turn_id(tokenizer) -> int:
    tid = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid is not None:
        return tid
    return tokenizer.eos_token_id


def read_items(cfg: DataConfig) -> Iterator[tuple[str, Any]]:
    """Every non-blank line of the JSONL files (and each program file) in a seeded order,
    this rank's share only."""
    items: list[tuple[str, Any]] = []
    for path in cfg.files:
        with open(path, encoding="utf-8") as fh:
            for lineno, text in enumerate(fh.read().splitlines(), 1):
                if text.strip():
                    items.append((f"{path}:{lineno}", ("example", path, lineno, text)))
    for path in cfg.programs:
        items.append((path, ("program", path, 0, Path(path).read_text(encoding="utf-8"))))
    random.Random(f"{cfg.seed}:{cfg.epoch}").shuffle(items)
    for i, item in enumerate(items):
        if i % cfg.world == cfg.rank:
            yield item


def build_corpus_pipeline(cfg: DataConfig, tokenizer, to_tensors: Callable | None = None,
                          counters: Counter | None = None) -> Pipeline:
    """The fine-tuning pipeline over ``cfg.files``; yields batches (dicts of lists, or what
    ``to_tensors`` makes of them)."""
    from ..corpus.examples import parse_line
    from ..engine import check_source
    from ..llm.prompts import training_pair
    from ..rules import all_rules

    all_rules()
    backend = tokenizer.backend_tokenizer
    eot = end_of_turn_id(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot
    pipe: Pipeline

    def parse(payload):
        kind, path, lineno, text = payload
        if kind == "program":
            return payload
        try:
            ex = parse_line(text, path, lineno)
        except ValueError as exc:
            if cfg.skip_invalid:
                pipe.count("invalid_lines")
                return SKIP
            raise CorpusLineError(f"{path}:{lineno}: {exc}") from None
        if cfg.split is not None and split_of(ex.id, cfg.holdout) != cfg.split:
            return SKIP
        if cfg.split == "eval" and "~" in ex.id:
            return SKIP  # rewrites of held-out examples are neither trained on nor scored
        return ex

    def render(ex):
        if isinstance(ex, tuple):
            return (Path(ex[1]).stem, None, ex[3])
        finding = example_finding(ex, check_source)
        if finding is None:
            pipe.count("no_finding")
            return SKIP
        prompt, answer = training_pair(tokenizer, finding, ex.code, ex.explanation, ex.fixed)
        return (ex.id, prompt, answer)

    def tokenize(item):
        ident, prompt, answer = item
        if prompt is None:
            ids = backend.encode(answer, add_special_tokens=False).ids[: cfg.max_len]
            return Encoded(ident, ids, list(ids))
        p = backend.encode(prompt, add_special_tokens=False).ids
        a = backend.encode(answer, add_special_tokens=False).ids + [eot]
        if len(p) + len(a) > cfg.max_len:
            pipe.count("too_long")
            return SKIP
        return Encoded(ident, p + a, [-100] * len(p) + a)

    def pack(pairs):
        batch: list[Encoded] = []
        labels: list[str] = []
        n = 0
        for label, enc in pairs:
            batch.append(enc)
            labels.append(label)
            if len(batch) == cfg.batch_size:
                yield f"batch {n} ({labels[0]}..{labels[-1]})", pad_batch(batch, pad)
                n += 1
                batch, labels = [], []
        if batch:
            yield f"batch {n} ({labels[0]}..{labels[-1]})", pad_batch(batch, pad)

    stages: list[Map | Fold] = [
        Map("parse", parse, cfg.workers),
        Map("render", render, cfg.workers),
        Map("tokenize", tokenize, cfg.workers),
        Fold("pack", pack),
    ]
    if to_tensors is not None:
        stages.append(Map("prefetch", to_tensors, 1))
    pipe = Pipeline(Source("read", lambda: read_items(cfg)), stages, queue_size=cfg.queue_size, name="data")
    return pipe


def example_finding(ex, check_source=None):
    """The analyzer's finding for ``ex.rule`` in ``ex.code`` (None if it does not fire)."""
    if check_source is None:
        from ..engine import check_source
    result = check_source(ex.code, f"{ex.id}.py")
    return next((f for f in result.findings if f.code == ex.rule), None)


def pad_batch(batch: list[Encoded], pad_id: int) -> dict:
    """Right-padded lists: ``input_ids``, ``attention_mask``, ``labels`` (-100 on padding)."""
    width = max(len(e.input_ids) for e in batch)
    return {
        "ids": [e.id for e in batch],
        "input_ids": [e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in batch],
        "attention_mask": [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in batch],
        "labels": [e.labels + [-100] * (width - len(e.labels)) for e in batch],
        "tokens": sum(len(e.input_ids) for e in batch),
    }


def tensor_batch(device: str = "cpu") -> Callable[[dict], dict]:
    """The prefetch stage's function: lists -> torch tensors (pinned and copied to a CUDA
    device ahead of use)."""
    import torch

    def convert(b: dict) -> dict:
        out = {k: torch.tensor(b[k], dtype=torch.long) for k in ("input_ids", "attention_mask", "labels")}
        if device != "cpu" and str(device).startswith("cuda"):
            out = {k: v.pin_memory().to(device, non_blocking=True) for k, v in out.items()}
        out["ids"] = b["ids"]
        out["tokens"] = b["tokens"]
        return out

    return convert
