"""Handing work from asyncio to threads and results back: `to_thread` for blocking calls,
`run_coroutine_threadsafe` when a thread must schedule a coroutine on the loop."""

import asyncio
import threading
import time


def blocking_io(n):
    time.sleep(0.01)
    return n * n


async def notify(results, value):
    results.append(value)


def thread_reporter(loop, results, values):
    for v in values:
        future = asyncio.run_coroutine_threadsafe(notify(results, v), loop)
        future.result(timeout=5)


async def main():
    squares = await asyncio.gather(*(asyncio.to_thread(blocking_io, n) for n in range(5)))
    loop = asyncio.get_running_loop()
    results = []
    reporter = threading.Thread(target=thread_reporter, args=(loop, results, squares))
    reporter.start()
    await asyncio.to_thread(reporter.join)
    print(results)


if __name__ == "__main__":
    asyncio.run(main())
