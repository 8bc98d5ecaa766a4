"""Hospital bed allocation service.

Admission requests arrive on a queue from triage and are processed by a small
pool of admission clerks (threads).  Each ward has a fixed number of beds;
when a ward is full the patient goes on that ward's waitlist and is placed as
soon as a bed is discharged.  Discharge rounds run in a thread pool and a
census summarises occupancy at the end of the shift.
"""
from __future__ import annotations

import queue
import random
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from threading import Thread
from typing import Deque, Dict, List, Optional, Tuple

WARD_CAPACITY = {"ICU": 6, "CARDIO": 8, "GENERAL": 16, "PEDS": 6}

# Bed board: ward -> one slot per bed holding the patient id (or None).
_beds: Dict[str, List[Optional[str]]] = {
    ward: [None] * n for ward, n in WARD_CAPACITY.items()}
_beds_lock = threading.Lock()
_patient_location: Dict[str, Tuple[str, int]] = {}
_admitted_at: Dict[str, float] = {}
_waitlist: Dict[str, Deque[str]] = {ward: deque() for ward in WARD_CAPACITY}

_audit_log: List[str] = []
_audit_lock = threading.Lock()

_discharge_counts: Dict[str, int] = defaultdict(int)
_los_minutes: Dict[str, List[float]] = defaultdict(list)

_outcomes: List[str] = []
_outcomes_lock = threading.Lock()


class UnknownWardError(LookupError):
    pass


@dataclass
class AdmissionRequest:
    patient_id: str
    ward: str
    acuity: int  # 1 = most urgent


admissions: "queue.Queue[Optional[AdmissionRequest]]" = queue.Queue()


def _audit(event: str) -> None:
    with _audit_lock:
        _audit_log.append(f"{time.monotonic():.4f} {event}")


# ---------------------------------------------------------------- bed board
def free_beds(ward: str) -> int:
    if ward not in _beds:
        raise UnknownWardError(ward)
    with _beds_lock:
        return sum(1 for slot in _beds[ward] if slot is None)


def _take_first_free(ward: str, patient_id: str) -> Optional[int]:
    """Put the patient in the lowest-numbered free bed of the ward."""
    with _beds_lock:
        slots = _beds[ward]
        for idx, slot in enumerate(slots):
            if slot is None:
                slots[idx] = patient_id
                _patient_location[patient_id] = (ward, idx)
                _admitted_at[patient_id] = time.monotonic()
                return idx
    return None


def admit(req: AdmissionRequest) -> str:
    if free_beds(req.ward) > 0:
        bed = _take_first_free(req.ward, req.patient_id)
        _audit(f"admit {req.patient_id} -> {req.ward}/{bed}")
        return f"{req.patient_id}: {req.ward} bed {bed}"
    with _beds_lock:
        _waitlist[req.ward].append(req.patient_id)
    _audit(f"waitlist {req.patient_id} for {req.ward}")
    return f"{req.patient_id}: waitlisted for {req.ward}"


def transfer(patient_id: str, to_ward: str) -> bool:
    """Move a patient to another ward; keeps the old bed if none is free."""
    _beds_lock.acquire()
    ward, idx = _patient_location[patient_id]
    target = _beds[to_ward]
    if None not in target:
        _beds_lock.release()
        return False
    new_idx = target.index(None)
    target[new_idx] = patient_id
    _beds[ward][idx] = None
    _patient_location[patient_id] = (to_ward, new_idx)
    _beds_lock.release()
    _audit(f"transfer {patient_id} {ward}/{idx} -> {to_ward}/{new_idx}")
    return True


def record_discharge(ward: str, los_minutes: float) -> None:
    stats_lock = threading.Lock()
    with stats_lock:
        _discharge_counts[ward] += 1
        _los_minutes[ward].append(los_minutes)


def discharge(patient_id: str) -> Optional[str]:
    """Free the patient's bed and give it to the next waitlisted patient."""
    promoted = None
    with _beds_lock:
        loc = _patient_location.pop(patient_id, None)
        if loc is None:
            return None
        ward, idx = loc
        _beds[ward][idx] = None
        admitted = _admitted_at.pop(patient_id)
        if _waitlist[ward]:
            promoted = _waitlist[ward].popleft()
            _take_first_free(ward, promoted)
    # one simulated second of the demo counts as an hour on the ward
    record_discharge(ward, (time.monotonic() - admitted) * 60.0)
    _audit(f"discharge {patient_id} from {ward}/{idx}")
    return promoted


# ---------------------------------------------------------------- workers
def _clerk(name: str) -> None:
    while True:
        req = admissions.get()
        if req is None:
            admissions.task_done()
            return
        try:
            outcome = admit(req)
        except UnknownWardError as exc:
            _audit(f"{name}: rejected {req.patient_id}, unknown ward {exc}")
            continue
        with _outcomes_lock:
            _outcomes.append(outcome)
        admissions.task_done()


def triage_feed(count: int) -> None:
    """Emergency department triage pushing admission requests."""
    pattern = ["GENERAL", "CARDIO", "GENERAL", "ICU", "PEDS", "GENERAL"]
    rng = random.Random(42)
    for i in range(count):
        ward = pattern[i % len(pattern)]
        admissions.put(AdmissionRequest(f"P{i:04d}", ward, rng.randint(1, 5)))
        time.sleep(0.002)


def patients_in(ward: str) -> List[str]:
    with _beds_lock:
        return [pid for pid in _beds[ward] if pid is not None]


def nightly_census() -> Dict[str, int]:
    """Occupied beds per ward, with acuity scores pulled from the EHR."""
    report: Dict[str, int] = {}

    def count_ward(ward: str) -> None:
        with _beds_lock:
            occupied = sum(1 for slot in _beds[ward] if slot is not None)
        time.sleep(0.01)  # EHR lookup for the acuity mix
        report[ward] = occupied

    workers = [Thread(target=count_ward, args=(ward,), daemon=True)
               for ward in WARD_CAPACITY]
    for worker in workers:
        worker.start()
    return {ward: report.get(ward, 0) for ward in WARD_CAPACITY}


def run_shift(num_patients: int = 24, clerks: int = 3) -> None:
    clerk_threads = [Thread(target=_clerk, args=(f"clerk-{i}",),
                            name=f"clerk-{i}") for i in range(clerks)]
    for t in clerk_threads:
        t.start()

    feeder = Thread(target=triage_feed, args=(num_patients,), name="triage")
    feeder.start()
    feeder.join()
    admissions.join()  # every request has been handled by a clerk

    for _ in clerk_threads:
        admissions.put(None)
    for t in clerk_threads:
        t.join()

    time.sleep(0.05)
    for pid in patients_in("GENERAL")[:2]:
        moved = transfer(pid, "CARDIO")
        print(f"transfer {pid} to CARDIO: {'ok' if moved else 'no bed'}")

    to_discharge = []
    for ward in WARD_CAPACITY:
        to_discharge.extend(patients_in(ward)[::2])
    with ThreadPoolExecutor(max_workers=4,
                            thread_name_prefix="discharge") as pool:
        promoted = [p for p in pool.map(discharge, to_discharge) if p]

    census = nightly_census()
    print(f"admission outcomes: {len(_outcomes)}")
    print(f"discharged: {dict(_discharge_counts)} promoted: {promoted}")
    print(f"census: {census}")
    print(f"free beds: { {w: free_beds(w) for w in WARD_CAPACITY} }")
    print(f"audit entries: {len(_audit_log)}")


if __name__ == "__main__":
    run_shift()
