"""CPU-bound work goes to processes (the GIL would serialise threads); I/O-bound work
stays on a thread pool."""

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
import urllib.request


def count_primes(bounds):
    lo, hi = bounds
    return sum(1 for n in range(max(lo, 2), hi) if all(n % d for d in range(2, int(n ** 0.5) + 1)))


def fetch_status(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status


def main():
    ranges = [(i, i + 50_000) for i in range(0, 200_000, 50_000)]
    with ProcessPoolExecutor() as procs:
        primes = sum(procs.map(count_primes, ranges))
    with ThreadPoolExecutor(max_workers=4) as threads:
        statuses = list(threads.map(fetch_status, ["https://example.com"]))
    print(primes, statuses)


if __name__ == "__main__":
    main()
