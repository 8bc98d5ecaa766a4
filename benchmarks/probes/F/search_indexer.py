"""Full-text search indexer for a documentation tree.

Walks a directory, reads and tokenises every indexable file on a pool of
worker threads, builds an in-memory inverted index, precomputes TF-IDF
document norms and answers ranked queries.  While a long build is running a
snapshot thread periodically forks a child that writes the partial index to
disk, so a crash mid-build does not lose everything.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

INDEXABLE_SUFFIXES = {".txt", ".md", ".rst", ".html", ".py"}
READ_WORKERS = 8
NORM_WORKERS = os.cpu_count() or 4
SNAPSHOT_INTERVAL_S = 30.0
PROGRESS_INTERVAL_S = 2.0
MAX_FILE_BYTES = 4 * 1024 * 1024
STOPWORDS_PATH = Path(os.environ.get("INDEX_STOPWORDS", "/usr/share/dict/stopwords"))
SNAPSHOT_PATH = Path(os.environ.get("INDEX_SNAPSHOT", "/tmp/search-index.snapshot.json"))
DEFAULT_STOPWORDS = frozenset(
    "a an and are as at be by for from has in is it of on or that the to was were will with".split()
)

_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9_']+")

log = logging.getLogger("indexer")


class Tokenizer:
    """Lower-cases, splits and filters stop words; applies a tiny stemmer."""

    SUFFIXES = ("ing", "edly", "ed", "ies", "es", "s", "ly")

    def __init__(self, stopwords: Iterable[str] = DEFAULT_STOPWORDS) -> None:
        self.stopwords = frozenset(stopwords)

    def stem(self, word: str) -> str:
        for suffix in self.SUFFIXES:
            if len(word) > len(suffix) + 2 and word.endswith(suffix):
                return word[: -len(suffix)]
        return word

    def tokenize(self, text: str) -> List[str]:
        return [self.stem(w) for w in _TOKEN_RE.findall(text.lower())
                if w not in self.stopwords]


class InvertedIndex:
    """term -> {doc_id: term frequency}, plus per-document term counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._postings: Dict[str, Dict[str, int]] = defaultdict(dict)
        self._doc_terms: Dict[str, Dict[str, int]] = {}
        self._norms: Dict[str, float] = {}

    def add_document(self, doc_id: str, tokens: Sequence[str]) -> None:
        counts = Counter(tokens)
        with self._lock:
            self._doc_terms[doc_id] = dict(counts)
            for term, tf in counts.items():
                self._postings[term][doc_id] = tf

    def document_ids(self) -> List[str]:
        with self._lock:
            return list(self._doc_terms)

    def stats(self) -> Dict[str, int]:
        postings = 0
        for term, docs in self._postings.items():
            postings += len(docs)
        return {"documents": len(self._doc_terms), "terms": len(self._postings),
                "postings": postings}

    def idf(self, term: str) -> float:
        n_docs = len(self._doc_terms) or 1
        df = len(self._postings.get(term, ())) or 1
        return math.log(1 + n_docs / df)

    def norms_for(self, doc_ids: Sequence[str]) -> Dict[str, float]:
        """Euclidean norm of each document's TF-IDF vector."""
        out: Dict[str, float] = {}
        for doc_id in doc_ids:
            total = 0.0
            for term, tf in self._doc_terms[doc_id].items():
                weight = (1 + math.log(tf)) * self.idf(term)
                total += weight * weight
            out[doc_id] = math.sqrt(total) or 1.0
        return out

    def set_norms(self, norms: Dict[str, float]) -> None:
        with self._lock:
            self._norms = dict(norms)

    def search(self, terms: Sequence[str], limit: int = 10) -> List[Tuple[str, float]]:
        scores: Dict[str, float] = defaultdict(float)
        with self._lock:
            for term in set(terms):
                idf = self.idf(term)
                for doc_id, tf in self._postings.get(term, {}).items():
                    scores[doc_id] += (1 + math.log(tf)) * idf
            ranked = [(d, s / self._norms.get(d, 1.0)) for d, s in scores.items()]
        ranked.sort(key=lambda pair: pair[1], reverse=True)
        return ranked[:limit]

    def write_snapshot(self, path: Path) -> None:
        with self._lock:
            payload = {"documents": self._doc_terms, "norms": self._norms}
            data = json.dumps(payload)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)


class StopwordLoader(threading.Thread):
    """Loads the stop-word list in the background while the tree is walked."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="stopwords")
        self.path = path
        self.words: frozenset = DEFAULT_STOPWORDS

    def run(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            log.warning("using built-in stop words (%s)", exc)
            return
        self.words = frozenset(w.strip().lower() for w in text.splitlines() if w.strip())
        log.info("loaded %d stop words", len(self.words))


class SnapshotThread(threading.Thread):
    """Forks a child every few seconds to persist the partial index."""

    def __init__(self, index: InvertedIndex, path: Path,
                 interval: float = SNAPSHOT_INTERVAL_S) -> None:
        super().__init__(name="snapshot")
        self._index = index
        self._path = path
        self._interval = interval
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            pid = os.fork()
            if pid == 0:
                status = 0
                try:
                    self._index.write_snapshot(self._path)
                except BaseException:
                    status = 1
                finally:
                    os._exit(status)
            _, status = os.waitpid(pid, 0)
            if status:
                log.warning("snapshot child exited with status %d", status)
            else:
                log.info("snapshot written to %s", self._path)


def _index_worker(work: "queue.Queue[Optional[Path]]", index: InvertedIndex,
                  tokenizer: Tokenizer, errors: List[Tuple[Path, str]],
                  errors_lock: threading.Lock) -> None:
    while True:
        path = work.get()
        if path is None:
            work.task_done()
            break
        if path.suffix.lower() not in INDEXABLE_SUFFIXES:
            log.debug("skipping %s", path)
            continue
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise OSError("file too large")
            text = path.read_text(encoding="utf-8", errors="replace")
            index.add_document(str(path), tokenizer.tokenize(text))
        except OSError as exc:
            with errors_lock:
                errors.append((path, str(exc)))
        work.task_done()


class IndexBuilder:
    """Coordinates reading, indexing, snapshotting and norm computation."""

    def __init__(self, root: Path, stopwords_path: Path = STOPWORDS_PATH,
                 snapshot_path: Path = SNAPSHOT_PATH) -> None:
        self.root = root
        self.index = InvertedIndex()
        self.errors: List[Tuple[Path, str]] = []
        self._errors_lock = threading.Lock()
        self._stopwords_path = stopwords_path
        self._snapshot_path = snapshot_path

    def _discover(self) -> List[Path]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found.extend(Path(dirpath, f) for f in filenames)
        return found

    def _report_progress(self, done: threading.Event) -> None:
        while not done.wait(PROGRESS_INTERVAL_S):
            log.info("progress: %s", self.index.stats())

    def build(self) -> InvertedIndex:
        started = time.monotonic()
        loader = StopwordLoader(self._stopwords_path)
        loader.start()
        paths = self._discover()
        tokenizer = Tokenizer(loader.words)
        log.info("discovered %d files under %s", len(paths), self.root)

        work: "queue.Queue[Optional[Path]]" = queue.Queue()
        workers = [
            threading.Thread(target=_index_worker, name=f"index-{i}",
                             args=(work, self.index, tokenizer, self.errors, self._errors_lock))
            for i in range(READ_WORKERS)
        ]
        done = threading.Event()
        reporter = threading.Thread(target=self._report_progress, args=(done,), name="progress")
        snapshotter = SnapshotThread(self.index, self._snapshot_path)
        for t in workers:
            t.start()
        reporter.start()
        snapshotter.start()

        for path in paths:
            work.put(path)
        work.join()
        for _ in workers:
            work.put(None)
        for t in workers:
            t.join()
        loader.join()
        snapshotter.stop()
        snapshotter.join()
        done.set()
        reporter.join()

        self.compute_norms()
        log.info("indexed %s in %.1fs (%d errors)", self.index.stats(),
                 time.monotonic() - started, len(self.errors))
        return self.index

    def compute_norms(self) -> None:
        """Spread the TF-IDF norm computation over every core."""
        doc_ids = self.index.document_ids()
        chunks = [doc_ids[i::NORM_WORKERS] for i in range(NORM_WORKERS)]
        with ThreadPoolExecutor(max_workers=NORM_WORKERS, thread_name_prefix="norms") as pool:
            partials = list(pool.map(self.index.norms_for, chunks))
        merged: Dict[str, float] = {}
        for part in partials:
            merged.update(part)
        self.index.set_norms(merged)


def main(argv: Optional[Sequence[str]] = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("query", nargs="*")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    builder = IndexBuilder(args.root)
    index = builder.build()
    if args.query:
        terms = Tokenizer().tokenize(" ".join(args.query))
        for doc_id, score in index.search(terms):
            print(f"{score:8.3f}  {doc_id}")


if __name__ == "__main__":
    main()
