#!/usr/bin/env python3
"""Wire-feed deduplicator for a newsroom.

Several agency feeds (simulated) are ingested concurrently.  Each story is
normalised and hashed; stories already seen from another agency are dropped,
new ones go to the editor queue ordered by priority.  The seen-hash set is
persisted periodically so a restart does not re-surface old copy, and every
decision is written to an audit log.
"""
import hashlib
import itertools
import json
import logging
import os
import queue
import random
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("wiredesk")

STATE_DIR = tempfile.mkdtemp(prefix="wiredesk-")
SEEN_PATH = os.path.join(STATE_DIR, "seen.json")
AUDIT_PATH = os.path.join(STATE_DIR, "audit.log")
PERSIST_EVERY = 0.05
EDITORS = 3

_seen_lock = threading.Lock()
_seen = set()

_stats_lock = threading.Lock()
_stats = {"ingested": 0, "dupes": 0, "queued": 0, "routed": 0}
_by_desk = {}
_started = time.monotonic()

_audit_q = queue.Queue()
_seq = itertools.count()


class EmbargoError(Exception):
    pass


@dataclass
class Story:
    agency: str
    slug: str
    headline: str
    body: str
    desk: str
    urgency: int = 3
    embargo_until: float = 0.0


@dataclass(order=True)
class EditorItem:
    priority: int
    seq: int
    story: Story = field(compare=False)


# -- helpers ----------------------------------------------------------------
_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


def fingerprint(story):
    text = _PUNCT.sub("", story.headline.lower())
    text = _WS.sub(" ", text).strip()
    return hashlib.sha1(text.encode()).hexdigest()


def _bump(key, n=1):
    with _stats_lock:
        _stats[key] += n


def _is_new(digest):
    with _seen_lock:
        return digest not in _seen


def _remember(digest):
    with _seen_lock:
        _seen.add(digest)


def audit(event, **fields):
    fields["event"] = event
    fields["ts"] = round(time.time(), 3)
    _audit_q.put(json.dumps(fields))


def snapshot_stats():
    _stats_lock.acquire()
    snap = dict(_stats)
    elapsed = time.monotonic() - _started
    snap["per_sec"] = round(snap["ingested"] / elapsed, 1)
    snap["dupe_ratio"] = round(snap["dupes"] / snap["ingested"], 3)
    _stats_lock.release()
    return snap


# -- background threads -----------------------------------------------------
def _audit_writer(path, batch_size=50):
    pending = []
    while True:
        pending.append(_audit_q.get())
        if len(pending) >= batch_size:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(pending) + "\n")
            pending.clear()


def _persist_seen(path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(sorted(_seen), fh)
    os.replace(tmp, path)


def persister(stop, path=SEEN_PATH, interval=PERSIST_EVERY):
    while not stop.wait(interval):
        _persist_seen(path)
    _persist_seen(path)


def load_seen(path=SEEN_PATH):
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as fh:
        digests = json.load(fh)
    with _seen_lock:
        _seen.update(digests)
    return len(digests)


# -- pipeline -----------------------------------------------------------------
def ingest(agency, stories, editor_q):
    for story in stories:
        _bump("ingested")
        digest = fingerprint(story)
        if not _is_new(digest):
            _bump("dupes")
            audit("dupe", agency=agency, slug=story.slug)
            continue
        _remember(digest)
        item = EditorItem(story.urgency, next(_seq), story)
        editor_q.put(item)
        _stats["queued"] += 1
        audit("queued", agency=agency, slug=story.slug, desk=story.desk)
        time.sleep(random.uniform(0, 0.002))


def route(story):
    if story.embargo_until > time.time():
        raise EmbargoError(f"embargoed until {story.embargo_until:.0f}")
    with _stats_lock:
        _by_desk[story.desk] = _by_desk.get(story.desk, 0) + 1
        _stats["routed"] += 1
    return story.desk


def editor(editor_q, name):
    while True:
        item = editor_q.get()
        if item.story is None:
            editor_q.task_done()
            return
        try:
            desk = route(item.story)
        except EmbargoError as exc:
            log.info("%s held %s: %s", name, item.story.slug, exc)
            continue
        audit("routed", editor=name, slug=item.story.slug, desk=desk)
        editor_q.task_done()


# -- fake feeds -------------------------------------------------------------
HEADLINES = [
    ("Central bank holds rates steady", "business"),
    ("Storm makes landfall on east coast", "national"),
    ("Striker signs record transfer deal", "sport"),
    ("Parliament passes budget bill", "politics"),
    ("Tech giant unveils new chip", "business"),
    ("Wildfire forces evacuations", "national"),
    ("Cup final goes to penalties", "sport"),
    ("Minister resigns over expenses", "politics"),
]


def make_feed(agency, rng, n=60):
    out = []
    for i in range(n):
        base, desk = rng.choice(HEADLINES)
        variant = rng.randint(0, 12)
        headline = f"{base} ({variant})"
        if rng.random() < 0.3:
            headline = headline.upper() + "!"
        out.append(Story(agency=agency, slug=f"{agency.lower()}-{i}",
                         headline=headline, body="...", desk=desk,
                         urgency=rng.randint(1, 5)))
    return out


def main():
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    restored = load_seen()
    log.info("restored %d fingerprints from %s", restored, SEEN_PATH)

    auditor = threading.Thread(target=_audit_writer, args=(AUDIT_PATH,), daemon=True)
    auditor.start()
    stop = threading.Event()
    saver = threading.Thread(target=persister, args=(stop,), name="persist")
    saver.start()

    editor_q = queue.PriorityQueue()
    editors = [threading.Thread(target=editor, args=(editor_q, f"ed{i}"),
                                name=f"editor-{i}") for i in range(EDITORS)]
    for t in editors:
        t.start()

    rng = random.Random(7)
    feeds = {a: make_feed(a, rng) for a in ("AP", "Reuters", "AFP", "DPA")}
    ingesters = [threading.Thread(target=ingest, args=(a, s, editor_q),
                                  name=f"ingest-{a}") for a, s in feeds.items()]
    for t in ingesters:
        t.start()
    for t in ingesters:
        t.join()

    editor_q.join()
    for _ in editors:
        editor_q.put(EditorItem(99, next(_seq), None))
    for t in editors:
        t.join()

    stop.set()
    saver.join()
    print("stats:", snapshot_stats())
    print("by desk:", dict(sorted(_by_desk.items())))
    print("seen:", len(_seen), "state in", STATE_DIR)


if __name__ == "__main__":
    main()
