"""Fetch a list of pages concurrently and cache what was fetched."""

import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

cache = {}
pages_fetched = 0
stats_lock = threading.Lock()


def fetch(url):
    global pages_fetched
    if url not in cache:
        with urllib.request.urlopen(url, timeout=10) as resp:
            cache[url] = resp.read()
    pages_fetched += 1
    return cache[url]


def report():
    with stats_lock:
        print(f"{pages_fetched} pages fetched")
        time.sleep(1)


def crawl(urls):
    with ThreadPoolExecutor(max_workers=8) as pool:
        for url in urls:
            pool.submit(fetch, url)
    for i, url in enumerate(urls):
        threading.Timer(0.5, lambda: print(i, url)).start()
    threading.Thread(target=report(), daemon=True).start()


if __name__ == "__main__":
    crawl(["https://example.com/a", "https://example.com/b"])
