"""Lazy initialisation done once, under a lock, with the check repeated inside it."""

import threading

_client = None
_client_lock = threading.Lock()


def _connect():
    return object()


def get_client():
    global _client
    client = _client
    if client is not None:
        return client
    with _client_lock:
        if _client is None:
            _client = _connect()
        return _client


if __name__ == "__main__":
    results = []
    threads = [threading.Thread(target=lambda: results.append(get_client())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in results}) == 1
