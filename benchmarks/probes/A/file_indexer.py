"""Build (and optionally keep up to date) an inverted index over a tree of
text files.

    python file_indexer.py build ~/notes -o notes.idx.json
    python file_indexer.py watch ~/notes -o notes.idx.json --interval 30

The index is a JSON object {"docs": {id: path}, "index": {term: {id: tf}}};
a sidecar ``<out>.idf`` holds inverse document frequencies for ranking.
"""

import argparse
import collections
import json
import math
import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,}")
STOPWORDS = frozenset("""the and for are but not you all any can had her was one
our out has have this that with from they will would there their what about
which when your said into than then them these some""".split())
DEFAULT_EXTS = (".txt", ".md", ".rst", ".py", ".org")


def tokenize(text):
    counts = collections.Counter()
    for tok in TOKEN_RE.findall(text):
        tok = tok.lower()
        if tok not in STOPWORDS:
            counts[tok] += 1
    return counts


class Indexer:
    def __init__(self, root, workers=8, exts=DEFAULT_EXTS):
        self.root = root
        self.workers = workers
        self.exts = tuple(exts)
        self.index = collections.defaultdict(dict)   # term -> {doc_id: tf}
        self.docs = {}                               # doc_id -> path
        self._doc_terms = {}                         # doc_id -> [term]
        self._ids = {}                               # path -> doc_id
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0
        self._stop_progress = threading.Event()
        self._stop_watch = threading.Event()
        self.errors = []

    def _walk(self):
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for fn in filenames:
                if fn.endswith(self.exts):
                    yield os.path.join(dirpath, fn)

    def _doc_id_for(self, path):
        # only called from the coordinating thread
        return self._ids.setdefault(path, len(self._ids))

    def _index_file(self, doc_id, path):
        with open(path, encoding="utf-8") as fh:
            counts = tokenize(fh.read())
        with self._lock:
            for term in self._doc_terms.pop(doc_id, ()):
                postings = self.index.get(term)
                if postings is not None:
                    postings.pop(doc_id, None)
                    if not postings:
                        del self.index[term]
            for term, tf in counts.items():
                self.index[term][doc_id] = tf
            self._doc_terms[doc_id] = list(counts)
            self.docs[doc_id] = path
            self._done += 1

    def _report_progress(self, interval):
        while not self._stop_progress.wait(interval):
            with self._lock:
                done = self._done
            print(f"\rindexed {done}/{self._total}", end="", file=sys.stderr)

    def build(self):
        paths = sorted(self._walk())
        self._total = len(paths)
        progress = threading.Thread(target=self._report_progress, args=(2.0), daemon=True)
        progress.start()
        with ThreadPoolExecutor(max_workers=self.workers,
                                thread_name_prefix="idx") as pool:
            for path in paths:
                pool.submit(self._index_file, self._doc_id_for(path), path)
        self._stop_progress.set()
        print(file=sys.stderr)
        return len(self.docs)

    @staticmethod
    def _compute_idf(index, n_docs, out):
        n = max(n_docs, 1)
        for term, postings in index.items():
            out[term] = math.log((n + 1) / (len(postings) + 0.5))

    def save(self, path):
        with self._lock:
            docs = dict(self.docs)
            index = {term: dict(p) for term, p in self.index.items()}
        idf = {}
        t = threading.Thread(target=self._compute_idf,
                             args=(index, len(docs), idf), name="idf")
        t.start()
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"docs": docs, "index": index}, fh)
        with open(path + ".idf", "w", encoding="utf-8") as fh:
            json.dump(idf, fh, sort_keys=True)
        os.replace(tmp, path)

    def snapshot_in_background(self, path):
        """Write the index from a child process so indexing can go on."""
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                self.save(path)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        return pid

    def watch(self, out_path, interval=30.0):
        mtimes = {}
        with ThreadPoolExecutor(max_workers=self.workers,
                                thread_name_prefix="idx-watch") as pool:
            while not self._stop_watch.is_set():
                batch = []
                for path in self._walk():
                    try:
                        mtime = os.stat(path).st_mtime
                    except OSError:
                        continue
                    if mtimes.get(path) != mtime:
                        mtimes[path] = mtime
                        batch.append(pool.submit(self._index_file,
                                                 self._doc_id_for(path), path))
                child = self.snapshot_in_background(out_path)
                for fut in batch:
                    try:
                        fut.result()
                    except (OSError, UnicodeDecodeError) as exc:
                        self.errors.append(str(exc))
                os.waitpid(child, 0)
                self._stop_watch.wait(interval)


def main(argv=None):
    ap = argparse.ArgumentParser(description="inverted index builder")
    ap.add_argument("mode", choices=("build", "watch"))
    ap.add_argument("root")
    ap.add_argument("-o", "--output", default="index.json")
    ap.add_argument("-j", "--workers", type=int, default=os.cpu_count() or 4)
    ap.add_argument("--interval", type=float, default=30.0)
    args = ap.parse_args(argv)

    ix = Indexer(args.root, workers=args.workers)
    if args.mode == "build":
        n = ix.build()
        ix.save(args.output)
        print(f"{n} documents, {len(ix.index)} terms -> {args.output}")
    else:
        try:
            ix.watch(args.output, interval=args.interval)
        except KeyboardInterrupt:
            pass
    for err in ix.errors:
        print("error:", err, file=sys.stderr)


if __name__ == "__main__":
    main()
