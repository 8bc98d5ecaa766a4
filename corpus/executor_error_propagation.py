"""Fetch pages with a thread pool; every failure is collected and reported, none is lost."""

from concurrent.futures import ThreadPoolExecutor, as_completed
import urllib.request


def fetch(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def fetch_all(urls, workers=8):
    pages, errors = {}, {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fetch, url): url for url in urls}
        for future in as_completed(futures):
            url = futures[future]
            try:
                pages[url] = future.result()
            except Exception as exc:
                errors[url] = exc
    return pages, errors


if __name__ == "__main__":
    ok, failed = fetch_all(["https://example.com", "https://example.org"])
    for url, exc in failed.items():
        print(f"{url}: {exc}")
    print(f"{len(ok)} pages fetched")
