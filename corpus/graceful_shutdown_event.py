"""Background workers that poll on an Event with a timeout, so a shutdown request is
noticed at once and every worker is joined before the program exits."""

import threading


class Poller:
    def __init__(self, check, interval=5.0):
        self._check = check
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poller")

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self._check()
            self._stop.wait(self._interval)

    def stop(self):
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    with Poller(lambda: print("checking"), interval=0.2):
        threading.Event().wait(1.0)
