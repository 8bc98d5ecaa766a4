"""Email campaign sender.

Renders personalised messages for a recipient list and pushes them through a
(fake) SMTP relay with bounded concurrency and exponential-backoff retries.
Hard bounces are forwarded to the CRM so the address gets suppressed.
"""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from threading import Lock as _Lock
from typing import Dict, List, Optional


class TransientSMTPError(Exception):
    """4xx reply: the relay wants us to come back later."""


class PermanentSMTPError(Exception):
    """5xx reply: retrying will not help."""


@dataclass
class Recipient:
    email: str
    name: str
    locale: str = "en"


@dataclass
class Message:
    recipient: Recipient
    subject: str
    body: str
    attempts: int = 0
    last_error: Optional[str] = None


@dataclass
class CampaignStats:
    queued: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    bounces: List[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"queued={self.queued} sent={self.sent} failed={self.failed} "
                f"retried={self.retried} bounces={len(self.bounces)}")


class FakeRelay:
    """Stands in for an SMTP connection; fails some deliveries on purpose."""

    def __init__(self, seed: int = 7, transient_rate: float = 0.2):
        self._rng = random.Random(seed)
        self._rng_lock = _Lock()
        self.transient_rate = transient_rate
        self.delivered: List[str] = []
        self._delivered_lock = _Lock()

    def send(self, msg: Message) -> None:
        with self._rng_lock:
            roll = self._rng.random()
        time.sleep(0.005)  # network round trip
        if msg.recipient.email.endswith("@invalid.test"):
            raise PermanentSMTPError("550 mailbox unavailable")
        if roll < self.transient_rate:
            raise TransientSMTPError("421 service busy, try again later")
        with self._delivered_lock:
            self.delivered.append(msg.recipient.email)


_template_cache: Optional[Dict[str, str]] = None


def get_templates() -> Dict[str, str]:
    """Load body templates once and share them between all workers."""
    global _template_cache
    if _template_cache is None:
        loaded: Dict[str, str] = {}
        time.sleep(0.01)  # reading the template bundle from disk
        loaded["en"] = "Hello {name}, our spring sale starts today!"
        loaded["de"] = "Hallo {name}, unser Fruehjahrsverkauf beginnt heute!"
        loaded["fr"] = "Bonjour {name}, nos soldes de printemps commencent!"
        _template_cache = loaded
    return _template_cache


class CampaignSender:
    def __init__(self, relay: FakeRelay, max_in_flight: int = 4,
                 max_attempts: int = 4, base_backoff: float = 0.01):
        self.relay = relay
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.stats = CampaignStats()
        self.crm_events: List[str] = []
        self._stats_lock = threading.Lock()
        self._done_cv = threading.Condition(self._stats_lock)
        self._pending = 0
        self._in_flight = threading.Semaphore(max_in_flight)
        self._pool = ThreadPoolExecutor(max_workers=6,
                                        thread_name_prefix="mailer")
        self._deferred: List[Message] = []
        self._deferred_lock = _Lock()
        self._timers: List[threading.Timer] = []
        self._stop = threading.Event()
        self._scheduler = threading.Thread(target=self._retry_loop,
                                           name="retry-scheduler",
                                           daemon=True)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._scheduler.start()

    def close(self) -> None:
        self._stop.set()
        self._scheduler.join()
        with self._deferred_lock:
            timers = list(self._timers)
            self._timers.clear()
        for timer in timers:
            timer.cancel()
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------ rendering
    def render(self, recipient: Recipient) -> Message:
        templates = get_templates()
        body = templates[recipient.locale].format(name=recipient.name)
        return Message(recipient=recipient, subject="Spring sale", body=body)

    # ------------------------------------------------------------ sending
    def send_campaign(self, recipients: List[Recipient],
                      deadline: float = 2.0) -> CampaignStats:
        with self._stats_lock:
            self._pending += len(recipients)
            self.stats.queued += len(recipients)
        for recipient in recipients:
            self._pool.submit(self._deliver, recipient)
        end = time.monotonic() + deadline
        with self._done_cv:
            while self._pending > 0:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                self._done_cv.wait(remaining)
        return self.stats

    def _deliver(self, recipient: Recipient,
                 msg: Optional[Message] = None) -> None:
        if msg is None:
            msg = self.render(recipient)
        acquired = self._in_flight.acquire(timeout=0.5)
        try:
            if not acquired:
                msg.last_error = "throttled locally"
                self._defer(msg)
                return
            msg.attempts += 1
            self.relay.send(msg)
        except TransientSMTPError as exc:
            msg.last_error = str(exc)
            if msg.attempts >= self.max_attempts:
                self._finish(msg, ok=False)
            else:
                self._defer(msg)
        except PermanentSMTPError as exc:
            msg.last_error = str(exc)
            self._record_bounce(msg)
            self._finish(msg, ok=False)
        else:
            self._finish(msg, ok=True)
        finally:
            self._in_flight.release()

    def _finish(self, msg: Message, ok: bool) -> None:
        with self._done_cv:
            if ok:
                self.stats.sent += 1
            else:
                self.stats.failed += 1
            self._pending -= 1
            if self._pending <= 0:
                self._done_cv.notify_all()

    def _record_bounce(self, msg: Message) -> None:
        with self._stats_lock:
            self.stats.bounces.append(msg.recipient.email)
            self._notify_crm(msg.recipient.email, "hard_bounce")

    def _notify_crm(self, email: str, event: str) -> None:
        """Push a suppression event to the CRM webhook."""
        time.sleep(0.02)  # HTTP round trip to the CRM API
        self.crm_events.append(f"{event}:{email}")

    # ------------------------------------------------------------ retries
    def _defer(self, msg: Message) -> None:
        with self._deferred_lock:
            self._deferred.append(msg)
        self.stats.retried += 1

    def _retry_loop(self) -> None:
        while not self._stop.wait(0.02):
            self.flush_deferred()

    def flush_deferred(self) -> None:
        with self._deferred_lock:
            batch, self._deferred = self._deferred, []
        for msg in batch:
            delay = self.base_backoff * (2 ** msg.attempts)
            timer = threading.Timer(delay, lambda: self._resubmit(msg))
            timer.daemon = True
            with self._deferred_lock:
                self._timers.append(timer)
            timer.start()

    def _resubmit(self, msg: Message) -> None:
        if self._stop.is_set():
            return
        try:
            fut = self._pool.submit(self._deliver, msg.recipient, msg)
        except RuntimeError:
            return  # pool already shut down
        fut.add_done_callback(self._log_failure)

    @staticmethod
    def _log_failure(fut: Future) -> None:
        exc = fut.exception()
        if exc is not None:
            print(f"[mailer] delivery task crashed: {exc!r}")


def build_recipients(count: int) -> List[Recipient]:
    locales = ["en", "de", "fr"]
    out = []
    for i in range(count):
        domain = "invalid.test" if i % 17 == 5 else "example.com"
        out.append(Recipient(f"user{i}@{domain}", f"User {i}",
                             locales[i % len(locales)]))
    out.append(Recipient("cliente@example.es", "Lucia", "es"))
    return out


def main() -> None:
    relay = FakeRelay()
    sender = CampaignSender(relay)
    sender.start()
    started = time.monotonic()
    try:
        stats = sender.send_campaign(build_recipients(60), deadline=1.5)
    finally:
        sender.close()
    elapsed = time.monotonic() - started
    print(f"campaign finished in {elapsed:.2f}s: {stats.summary()}")
    print(f"relay accepted {len(relay.delivered)} messages, "
          f"{len(set(relay.delivered))} unique")
    print(f"crm events: {len(sender.crm_events)}")


if __name__ == "__main__":
    main()
