"""A work queue joined with `Queue.join()`: every `get` is matched by `task_done`, also
when the handler fails, and failures are collected instead of killing the worker."""

import queue
import threading


def worker(jobs, errors, errors_lock):
    while True:
        job = jobs.get()
        try:
            if job is None:
                return
            job()
        except Exception as exc:
            with errors_lock:
                errors.append(exc)
        finally:
            jobs.task_done()


def run_jobs(job_list, workers=4):
    jobs = queue.Queue()
    errors = []
    errors_lock = threading.Lock()
    threads = [threading.Thread(target=worker, args=(jobs, errors, errors_lock)) for _ in range(workers)]
    for t in threads:
        t.start()
    for job in job_list:
        jobs.put(job)
    jobs.join()
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    return errors


if __name__ == "__main__":
    print(run_jobs([lambda: None, lambda: 1 / 0]))
