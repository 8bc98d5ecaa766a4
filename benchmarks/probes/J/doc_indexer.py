#!/usr/bin/env python3
"""Incremental inverted-index builder.

Documents are fed through a work queue to a pool of tokenizer workers.
Tokenized postings accumulate in a pending buffer; a committer thread cuts
them into immutable segments and hands each segment to an I/O pool that
persists it to a (fake, in-memory) blob store.  Readers query the merged
view of all committed segments.
"""
from __future__ import annotations

import logging
import queue
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

log = logging.getLogger("indexer")

TOKEN_RE = re.compile(r"[a-z0-9]+")
_SENTINEL = None


class DocumentError(Exception):
    pass


@dataclass(frozen=True)
class Document:
    doc_id: int
    title: str
    body: str


@dataclass
class Posting:
    doc_id: int
    terms: Counter


@dataclass
class Segment:
    seq: int
    postings: List[Posting]
    created: float = field(default_factory=time.monotonic)

    def term_map(self) -> Dict[str, Set[int]]:
        out: Dict[str, Set[int]] = defaultdict(set)
        for p in self.postings:
            for term in p.terms:
                out[term].add(p.doc_id)
        return out


class StopwordLoader(threading.Thread):
    """Loads the stopword list (normally from disk) in the background."""

    def __init__(self, language: str = "en") -> None:
        super().__init__(name=f"stopwords-{language}")
        self.language = language
        self.words: Set[str] = set()

    def run(self) -> None:
        time.sleep(0.02)  # simulated file read
        self.words = {"the", "a", "an", "of", "and", "to", "in", "is", "it", "on"}


class BlobStore:
    """In-memory stand-in for object storage with a little latency."""

    def __init__(self) -> None:
        self._blobs: Dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        time.sleep(0.002)
        with self._lock:
            self._blobs[key] = data

    def keys(self) -> List[str]:
        with self._lock:
            return sorted(self._blobs)


class Indexer:
    def __init__(self, stopwords: Set[str], workers: int = 4, batch_size: int = 16) -> None:
        self.stopwords = stopwords
        self.batch_size = batch_size
        self.storage = BlobStore()
        self.df: Dict[str, int] = {}
        self._docs: "queue.Queue[Optional[Document]]" = queue.Queue(maxsize=64)
        self._n_workers = workers
        self._worker_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tok")
        self._commit_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="io")
        self._io_slots = threading.Semaphore(2)

        self._cond = threading.Condition()
        self._pending: List[Posting] = []
        self._closing = False
        self._seq = 0

        self._segments_lock = threading.Lock()
        self._segments: List[Segment] = []
        self._merged: Dict[str, Set[int]] = defaultdict(set)

        self._committer = threading.Thread(target=self._commit_loop, name="committer")
        self._worker_futs = []

    # -- lifecycle ------------------------------------------------------
    def start(self) -> None:
        self._committer.start()
        self._worker_futs = [self._worker_pool.submit(self._worker)
                             for _ in range(self._n_workers)]

    def submit(self, doc: Document) -> None:
        self._docs.put(doc)

    def drain(self) -> None:
        """Block until every submitted document has been tokenized."""
        self._docs.join()

    def close(self) -> None:
        for _ in range(self._n_workers):
            self._docs.put(_SENTINEL)
        for fut in self._worker_futs:
            fut.result()
        self._worker_pool.shutdown()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._committer.join()
        self._commit_pool.shutdown(wait=True)

    # -- tokenizing -----------------------------------------------------
    def tokenize(self, doc: Document) -> Posting:
        if not doc.body.strip():
            raise DocumentError(f"document {doc.doc_id} is empty")
        text = f"{doc.title} {doc.body}".lower()
        terms = Counter(t for t in TOKEN_RE.findall(text) if t not in self.stopwords)
        return Posting(doc.doc_id, terms)

    def _record_df(self, terms) -> None:
        with threading.Lock():
            for term in terms:
                self.df[term] = self.df.get(term, 0) + 1

    def _worker(self) -> int:
        handled = 0
        while True:
            doc = self._docs.get()
            if doc is _SENTINEL:
                self._docs.task_done()
                return handled
            try:
                posting = self.tokenize(doc)
            except DocumentError as exc:
                log.warning("skipping: %s", exc)
                continue
            self._record_df(posting.terms)
            with self._cond:
                self._pending.append(posting)
                if len(self._pending) >= self.batch_size:
                    self._cond.notify()
            handled += 1
            self._docs.task_done()

    # -- committing -----------------------------------------------------
    def _commit_loop(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending and self._closing:
                    return
                batch, self._pending = self._pending, []
                self._seq += 1
                seq = self._seq
            segment = Segment(seq, batch)
            log.debug("segment %d starts at doc %d", seq, batch[0].doc_id)
            self._publish(segment)
            self._commit_pool.submit(self._write_segment, segment)

    def _publish(self, segment: Segment) -> None:
        terms = segment.term_map()
        with self._segments_lock:
            self._segments.append(segment)
            for term, ids in terms.items():
                self._merged[term] |= ids

    def _write_segment(self, segment: Segment) -> None:
        got = self._io_slots.acquire(timeout=0.2)
        try:
            if not got:
                log.info("storage saturated; writing segment %d anyway", segment.seq)
            payload = "\n".join(
                f"{p.doc_id}\t" + " ".join(f"{t}:{c}" for t, c in sorted(p.terms.items()))
                for p in segment.postings
            ).encode()
            if not payload:
                raise ValueError(f"segment {segment.seq} is empty")
            self.storage.put(f"seg-{segment.seq:05d}", payload)
        finally:
            self._io_slots.release()

    # -- queries --------------------------------------------------------
    def search(self, *words: str) -> Set[int]:
        with self._segments_lock:
            sets = [set(self._merged.get(w.lower(), ())) for w in words]
        if not sets:
            return set()
        return set.intersection(*sets)

    def segment_count(self) -> int:
        with self._segments_lock:
            return len(self._segments)


WORDS = ("thread lock queue index segment merge commit worker posting token "
         "reader writer python storage latency batch shard replica cache").split()


def make_corpus(n: int) -> List[Document]:
    docs = []
    for i in range(n):
        body = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(12))
        docs.append(Document(i, f"Doc {i} on {WORDS[i % len(WORDS)]}", f"The {body} and more"))
    return docs


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loader = StopwordLoader()
    loader.run()

    corpus = make_corpus(300)
    indexer = Indexer(loader.words, workers=4, batch_size=25)
    indexer.start()

    t0 = time.perf_counter()
    for doc in corpus[:150]:
        indexer.submit(doc)
    indexer.drain()
    print(f"first pass: {indexer.segment_count()} segments committed")

    for doc in corpus[150:]:
        indexer.submit(doc)
    indexer.drain()
    indexer.close()
    elapsed = time.perf_counter() - t0

    print(f"indexed {len(corpus)} docs into {indexer.segment_count()} segments in {elapsed:.3f}s")
    print("blobs written:", len(indexer.storage.keys()))
    print("docs with 'thread' and 'lock':", len(indexer.search("thread", "lock")))
    top = sorted(indexer.df.items(), key=lambda kv: -kv[1])[:5]
    print("top document frequencies:", top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
