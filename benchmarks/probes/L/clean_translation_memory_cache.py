#!/usr/bin/env python3
"""Translation-memory cache service.

Segments from incoming documents are looked up in an LRU translation memory;
misses are sent to a (fake) machine-translation backend through a worker
pool.  An asyncio front end accepts document requests and hands segments to
the threaded pipeline; results are reported back to the event loop.
"""
import asyncio
import hashlib
import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from threading import Lock as _Lock

log = logging.getLogger("tm")

TM_CAPACITY = 256
MT_WORKERS = 4

_tm_lock = _Lock()
_tm = OrderedDict()
_tm_stats = {"hits": 0, "misses": 0, "evictions": 0}

_worker_ctx = threading.local()


def _key(src_lang, dst_lang, text):
    raw = f"{src_lang}>{dst_lang}:{text.strip().lower()}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def _evict_locked():
    """Drop least-recently-used entries.  Caller must hold _tm_lock."""
    while len(_tm) > TM_CAPACITY:
        _tm.popitem(last=False)
        _tm_stats["evictions"] += 1


def tm_lookup(key):
    _tm_lock.acquire()
    try:
        value = _tm.get(key)
        if value is None:
            _tm_stats["misses"] += 1
            return None
        _tm.move_to_end(key)
        _tm_stats["hits"] += 1
        return value
    finally:
        _tm_lock.release()


def tm_store(key, translation):
    with _tm_lock:
        if key in _tm:
            _tm.move_to_end(key)
            return _tm[key]
        _tm[key] = translation
        _evict_locked()
        return translation


def tm_stats():
    with _tm_lock:
        return dict(_tm_stats, size=len(_tm))


# -- fake MT backend -------------------------------------------------------
def _init_worker():
    _worker_ctx.session = f"mt-{threading.get_ident() % 10000}"
    _worker_ctx.calls = 0


def machine_translate(text, dst_lang):
    session = getattr(_worker_ctx, "session", None)
    if session is None:
        _init_worker()
    _worker_ctx.calls += 1
    time.sleep(random.uniform(0.001, 0.004))
    if "\x00" in text:
        raise ValueError("binary data in segment")
    return f"[{dst_lang}] " + text[::-1]


# -- threaded pipeline ------------------------------------------------------
def segment_worker(seg_q, mt_pool, results, results_lock, loop, on_done):
    while True:
        job = seg_q.get()
        try:
            if job is None:
                return
            doc_id, idx, src, dst, text = job
            key = _key(src, dst, text)
            hit = tm_lookup(key)
            if hit is None:
                fut = mt_pool.submit(machine_translate, text, dst)
                try:
                    translated = fut.result(timeout=2.0)
                except ValueError as exc:
                    log.warning("segment %s/%d rejected: %s", doc_id, idx, exc)
                    translated = text
                hit = tm_store(key, translated)
            with results_lock:
                doc = results.setdefault(doc_id, {})
                doc[idx] = hit
                complete = len(doc) == job_total(doc_id)
            if complete:
                loop.call_soon_threadsafe(on_done, doc_id)
        finally:
            seg_q.task_done()


_doc_sizes = {}
_doc_sizes_lock = _Lock()


def job_total(doc_id):
    with _doc_sizes_lock:
        return _doc_sizes[doc_id]


def register_doc(doc_id, n):
    with _doc_sizes_lock:
        _doc_sizes[doc_id] = n


# -- asyncio front end -------------------------------------------------------
async def serve(documents, seg_q, results, results_lock):
    loop = asyncio.get_running_loop()
    pending = {}

    def on_done(doc_id):
        fut = pending.get(doc_id)
        if fut is not None and not fut.done():
            fut.set_result(doc_id)

    for doc_id, (src, dst, segments) in documents.items():
        pending[doc_id] = loop.create_future()
        register_doc(doc_id, len(segments))

    workers = []
    for n in range(3):
        t = threading.Thread(target=segment_worker,
                             args=(seg_q, MT_POOL, results, results_lock,
                                   loop, on_done),
                             name=f"seg-{n}")
        t.start()
        workers.append(t)

    def feed():
        for doc_id, (src, dst, segments) in documents.items():
            for idx, text in enumerate(segments):
                seg_q.put((doc_id, idx, src, dst, text))

    await loop.run_in_executor(None, feed)
    finished = await asyncio.wait_for(asyncio.gather(*pending.values()), 5.0)

    await loop.run_in_executor(None, seg_q.join)
    for _ in workers:
        seg_q.put(None)
    await loop.run_in_executor(None, lambda: [t.join() for t in workers])
    return finished


async def heartbeat(label):
    await asyncio.sleep(0)
    return f"{label} alive"


def side_channel_ping(loop):
    """Called from a plain thread: ask the loop for a heartbeat."""
    fut = asyncio.run_coroutine_threadsafe(heartbeat("tm"), loop)
    return fut.result(timeout=1.0)


MT_POOL = ThreadPoolExecutor(max_workers=MT_WORKERS,
                             initializer=_init_worker,
                             thread_name_prefix="mt")

SAMPLE = [
    "The pump must be primed before use.",
    "Do not operate without the safety guard.",
    "Press the reset button for three seconds.",
    "Replace the filter every six months.",
    "Keep out of reach of children.",
    "Warranty void if seal is broken.",
]


def make_documents(n_docs=12, seed=3):
    rng = random.Random(seed)
    docs = {}
    for d in range(n_docs):
        dst = rng.choice(["de", "fr", "ja"])
        segs = [rng.choice(SAMPLE) for _ in range(rng.randint(3, 8))]
        if d == 5:
            segs.append("bad\x00segment")
        docs[f"doc-{d:02d}"] = ("en", dst, segs)
    return docs


async def amain():
    loop = asyncio.get_running_loop()
    seg_q = queue.Queue(maxsize=32)
    results = {}
    results_lock = threading.Lock()
    documents = make_documents()

    ping_box = []
    pinger = threading.Thread(target=lambda: ping_box.append(side_channel_ping(loop)),
                              name="pinger")
    pinger.start()
    finished = await serve(documents, seg_q, results, results_lock)
    await loop.run_in_executor(None, pinger.join)
    return finished, results, ping_box


def main():
    logging.basicConfig(level=logging.INFO, format="%(threadName)s %(message)s")
    try:
        finished, results, ping_box = asyncio.run(amain())
    finally:
        MT_POOL.shutdown(wait=True)
    segs = sum(len(v) for v in results.values())
    print(f"documents done: {len(finished)}, segments: {segs}")
    print("tm:", tm_stats())
    print("ping:", ping_box)


if __name__ == "__main__":
    main()
