"""Outbox sender for transactional mail.

The web application drops fully rendered messages into an outbox directory as
.eml files.  This process picks them up, groups them by recipient domain (so a
slow or throttling provider only delays its own mail) and relays them through
the smarthost with a pool of worker threads.  Each worker keeps its own SMTP
session open between messages.

  outbox/*.eml            waiting to be sent
  outbox/deferred/*.eml   got a 4xx or a network error; retried in the background
  outbox/failed/*.eml     got a 5xx; a bounce notice goes to the envelope sender
  outbox/journal.log      one line per delivery attempt
"""
import argparse
import email
import email.policy
import email.utils
import logging
import os
import queue
import shutil
import smtplib
import socket
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage

log = logging.getLogger("outbox")

SMARTHOST = os.environ.get("SMARTHOST", "localhost")
SMARTPORT = int(os.environ.get("SMARTPORT", "587"))
SMTP_USER = os.environ.get("SMTP_USER")
SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD")
BOUNCE_FROM = os.environ.get("BOUNCE_FROM", "mailer-daemon@localhost")
MESSAGES_PER_SESSION = 100

_tls = threading.local()
_stats_lock = threading.Lock()
_per_domain = {}
_failures = 0
_retry_q = queue.Queue()
_journal_q = queue.Queue()
_bounces = []
_pool = None


def _init_worker():
    _tls.conn = None
    _tls.sent_on_conn = 0


def _connection():
    conn = _tls.conn
    if conn is not None and _tls.sent_on_conn < MESSAGES_PER_SESSION:
        return conn
    if conn is not None:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
    conn = smtplib.SMTP(SMARTHOST, SMARTPORT, timeout=30)
    conn.starttls()
    if SMTP_USER:
        conn.login(SMTP_USER, SMTP_PASSWORD)
    _tls.conn = conn
    _tls.sent_on_conn = 0
    return conn


def _load(path):
    with open(path, "rb") as fh:
        return email.message_from_binary_file(fh, policy=email.policy.default)


def _domain_of(msg):
    addrs = email.utils.getaddresses(msg.get_all("To", []) + msg.get_all("Cc", []))
    if not addrs:
        return "_invalid"
    return addrs[0][1].rpartition("@")[2].lower() or "_invalid"


def _journal(status, path, detail=""):
    _journal_q.put(f"{time.time():.3f}\t{status}\t{os.path.basename(path)}\t{detail}\n")


def _record_sent(domain):
    _per_domain[domain] = _per_domain.get(domain, 0) + 1


def _record_failure():
    global _failures
    with _stats_lock:
        _failures += 1


def stats_snapshot():
    with _stats_lock:
        return dict(_per_domain), _failures


def _send_one(path):
    msg = _load(path)
    conn = _connection()
    try:
        refused = conn.send_message(msg)
    except (smtplib.SMTPServerDisconnected, socket.timeout, ConnectionError):
        _tls.conn = None
        raise
    _tls.sent_on_conn += 1
    _journal("sent", path, msg.get("Message-ID", ""))
    if refused:
        _journal("partial", path, ",".join(sorted(refused)))
    _record_sent(_domain_of(msg))
    os.unlink(path)


def _outbox_root(path):
    parent = os.path.dirname(path)
    if os.path.basename(parent) in ("deferred", "failed"):
        parent = os.path.dirname(parent)
    return parent


def _move_to(path, subdir):
    target_dir = os.path.join(_outbox_root(path), subdir)
    os.makedirs(target_dir, exist_ok=True)
    dest = os.path.join(target_dir, os.path.basename(path))
    if dest != path:
        shutil.move(path, dest)
    return dest


def _defer(path, delay):
    dest = _move_to(path, "deferred")
    _retry_q.put((time.monotonic() + delay, dest))


def _fail_permanently(path, reason):
    dest = _move_to(path, "failed")
    _record_failure()
    _journal("failed", dest, reason)
    with _stats_lock:
        _bounces.append((dest, reason))


def _deliver(path):
    try:
        _send_one(path)
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            _fail_permanently(path, f"{exc.smtp_code} {exc.smtp_error!r}")
        else:
            _defer(path, 300)
    except smtplib.SMTPRecipientsRefused as exc:
        _fail_permanently(path, "all recipients refused: " + ",".join(exc.recipients))
    except (smtplib.SMTPException, OSError) as exc:
        _journal("deferred", path, str(exc))
        _defer(path, 60)


def _send_bounce(failed_path, reason):
    original = _load(failed_path)
    sender = email.utils.parseaddr(original.get("Return-Path") or original.get("From", ""))[1]
    if not sender:
        return
    notice = EmailMessage()
    notice["From"] = BOUNCE_FROM
    notice["To"] = sender
    notice["Subject"] = "Undeliverable: " + original.get("Subject", "(no subject)")
    notice.set_content(f"Your message could not be delivered.\n\n{reason}\n")
    _connection().send_message(notice)


def _retry_loop(stop):
    while not stop.is_set():
        try:
            due, path = _retry_q.get(timeout=1.0)
        except queue.Empty:
            continue
        wait = due - time.monotonic()
        if wait > 0 and stop.wait(wait):
            break
        _deliver(path)


def _journal_writer(path):
    with open(path, "a", buffering=64 * 1024) as fh:
        while True:
            fh.write(_journal_q.get())


def flush_outbox(outbox):
    by_domain = defaultdict(list)
    for name in sorted(os.listdir(outbox)):
        if not name.endswith(".eml"):
            continue
        path = os.path.join(outbox, name)
        try:
            by_domain[_domain_of(_load(path))].append(path)
        except (OSError, ValueError) as exc:
            log.error("unreadable message %s: %s", name, exc)
    futures = []
    for domain, paths in by_domain.items():
        def send_domain():
            for p in paths:
                _deliver(p)
            log.info("flushed %d message(s) for %s", len(paths), domain)
        futures.append(_pool.submit(send_domain))
    for f in futures:
        f.result()
    return sum(len(p) for p in by_domain.values())


def send_bounces():
    with _stats_lock:
        pending = list(_bounces)
        _bounces.clear()
    for failed_path, reason in pending:
        _pool.submit(_send_bounce, failed_path, reason)
    return len(pending)


def main():
    global _pool
    ap = argparse.ArgumentParser(description="relay queued mail from an outbox directory")
    ap.add_argument("outbox")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--once", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")

    _pool = ThreadPoolExecutor(max_workers=args.workers, initializer=_init_worker,
                               thread_name_prefix="smtp")
    journal = threading.Thread(target=_journal_writer, name="journal", daemon=True,
                               args=(os.path.join(args.outbox, "journal.log"),))
    journal.start()
    stop = threading.Event()
    retry = threading.Thread(target=_retry_loop, args=(stop,), name="retry")
    retry.start()

    try:
        while True:
            n = flush_outbox(args.outbox)
            b = send_bounces()
            if n or b:
                log.info("pass complete: %d message(s), %d bounce(s)", n, b)
            if args.once or stop.wait(args.interval):
                break
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        stop.set()
        retry.join()
        _pool.shutdown(wait=True)
        per_domain, failures = stats_snapshot()
        log.info("sent %d message(s) to %d domain(s), %d permanent failure(s)",
                 sum(per_domain.values()), len(per_domain), failures)


if __name__ == "__main__":
    main()
