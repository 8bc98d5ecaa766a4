from _build import ex, write

E = [
ex("thr021-01", '''
from concurrent.futures import ThreadPoolExecutor


def count_primes(lo, hi):
    count = 0
    for n in range(max(lo, 2), hi):
        if all(n % d for d in range(2, int(n ** 0.5) + 1)):
            count += 1
    return count


def total_primes(limit, workers=8):
    step = limit // workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(count_primes, range(0, limit, step), range(step, limit + step, step))
        return sum(parts)
''', """`count_primes` is pure-Python arithmetic; under the GIL only one of the eight threads runs
bytecode at a time, so this is no faster than a plain loop (usually slower). Use a
`ProcessPoolExecutor` to run the chunks on separate cores.""",
fix=[("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ProcessPoolExecutor"), ("with ThreadPoolExecutor(max_workers=workers) as pool:", "with ProcessPoolExecutor(max_workers=workers) as pool:")]),

ex("thr021-02", '''
import threading


def mandelbrot_rows(rows, width, height, out):
    for y in rows:
        row = []
        for x in range(width):
            c = complex(3.0 * x / width - 2.0, 2.0 * y / height - 1.0)
            z, n = 0j, 0
            while abs(z) <= 2 and n < 100:
                z = z * z + c
                n += 1
            row.append(n)
        out[y] = row


def render(width, height, workers=4):
    out = [None] * height
    threads = [threading.Thread(target=mandelbrot_rows, args=(range(i, height, workers), width, height, out))
               for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
''', """The Mandelbrot inner loop is pure Python arithmetic, so four threads take turns on the GIL and the
render is no faster than one thread. Compute rows in worker processes (or vectorise with NumPy).""",
fixed='''
from concurrent.futures import ProcessPoolExecutor


def mandelbrot_row(y, width, height):
    row = []
    for x in range(width):
        c = complex(3.0 * x / width - 2.0, 2.0 * y / height - 1.0)
        z, n = 0j, 0
        while abs(z) <= 2 and n < 100:
            z = z * z + c
            n += 1
        row.append(n)
    return row


def render(width, height, workers=4):
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(mandelbrot_row, range(height), [width] * height, [height] * height))
'''),

ex("thr021-03", '''
from concurrent.futures import ThreadPoolExecutor


def collatz_length(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def longest_chain(limit):
    with ThreadPoolExecutor() as pool:
        lengths = list(pool.map(collatz_length, range(1, limit)))
    return max(range(1, limit), key=lambda n: lengths[n - 1])
''', """Each Collatz computation is a tight pure-Python loop; the thread pool adds scheduling overhead
but no parallelism because of the GIL. A `ProcessPoolExecutor` (with a `chunksize`) runs the work
on all cores.""",
fix=[("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ProcessPoolExecutor"), ("""    with ThreadPoolExecutor() as pool:
        lengths = list(pool.map(collatz_length, range(1, limit)))""", """    with ProcessPoolExecutor() as pool:
        lengths = list(pool.map(collatz_length, range(1, limit), chunksize=1000))""")]),

ex("thr021-04", '''
import threading


def monte_carlo_pi(samples, results, seed):
    import random
    rng = random.Random(seed)
    inside = 0
    for _ in range(samples):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            inside += 1
    results.append(inside)


def estimate_pi(samples, workers=4):
    results = []
    per = samples // workers
    threads = [threading.Thread(target=monte_carlo_pi, args=(per, results, i)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 4.0 * sum(results) / (per * workers)
''', """Sampling is pure-Python arithmetic, so the four threads serialise on the GIL and the estimate
takes as long as with one thread. Run the samplers in processes and sum their counts.""",
fixed='''
from concurrent.futures import ProcessPoolExecutor


def monte_carlo_pi(samples, seed):
    import random
    rng = random.Random(seed)
    inside = 0
    for _ in range(samples):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            inside += 1
    return inside


def estimate_pi(samples, workers=4):
    per = samples // workers
    with ProcessPoolExecutor(max_workers=workers) as pool:
        inside = sum(pool.map(monte_carlo_pi, [per] * workers, range(workers)))
    return 4.0 * inside / (per * workers)
''',
notes="analyzer miss: the loop calls random.Random methods (not recognised as pure)", missed=True),

ex("thr021-05", '''
from concurrent.futures import ThreadPoolExecutor


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def digits_of_fibs(ns):
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(fib, n) for n in ns]
        return [len(str(f.result())) for f in futures]
''', """`fib` is a CPU-bound Python loop (big-integer additions), and submitting it to a thread pool gives
no speed-up under the GIL. Use a process pool, or compute serially.""",
fix=[("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ProcessPoolExecutor"), ("with ThreadPoolExecutor(max_workers=4) as pool:", "with ProcessPoolExecutor(max_workers=4) as pool:")],
notes="not reported since the rule requires multiplicative or nested-loop arithmetic (additive big-int loop)", missed=True),

ex("thr021-06", '''
import threading


class Histogram:
    def __init__(self, bins):
        self.bins = bins

    def count(self, values, out, index):
        counts = [0] * self.bins
        for v in values:
            counts[min(int(v * self.bins), self.bins - 1)] += 1
        out[index] = counts

    def build(self, values, workers=4):
        out = [None] * workers
        chunk = len(values) // workers + 1
        threads = [threading.Thread(target=self.count, args=(values[i * chunk:(i + 1) * chunk], out, i))
                   for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [sum(c) for c in zip(*out)]
''', """Binning is a pure-Python loop, so splitting it over four threads only adds overhead: the GIL lets
one thread count at a time. Count in one pass (or in processes for very large inputs).""",
fixed='''
class Histogram:
    def __init__(self, bins):
        self.bins = bins

    def build(self, values):
        counts = [0] * self.bins
        for v in values:
            counts[min(int(v * self.bins), self.bins - 1)] += 1
        return counts
'''),

ex("thr021-07", '''
from concurrent.futures import ThreadPoolExecutor
import math


def integrate(f_coeffs, a, b, steps):
    h = (b - a) / steps
    total = 0.0
    for i in range(steps):
        x = a + (i + 0.5) * h
        total += sum(c * x ** k for k, c in enumerate(f_coeffs)) * h
    return total


def integrate_parallel(coeffs, a, b, parts=8, steps=100_000):
    width = (b - a) / parts
    with ThreadPoolExecutor(max_workers=parts) as pool:
        pieces = pool.map(lambda i: integrate(coeffs, a + i * width, a + (i + 1) * width, steps), range(parts))
        return math.fsum(pieces)
''', """The midpoint rule here is all Python arithmetic; eight threads cannot evaluate it in parallel
under the GIL. Use `ProcessPoolExecutor` (with a module-level function instead of the lambda, so it
can be pickled).""",
fixed='''
from concurrent.futures import ProcessPoolExecutor
import math


def integrate(f_coeffs, a, b, steps):
    h = (b - a) / steps
    total = 0.0
    for i in range(steps):
        x = a + (i + 0.5) * h
        total += sum(c * x ** k for k, c in enumerate(f_coeffs)) * h
    return total


def integrate_parallel(coeffs, a, b, parts=8, steps=100_000):
    width = (b - a) / parts
    starts = [a + i * width for i in range(parts)]
    with ProcessPoolExecutor(max_workers=parts) as pool:
        pieces = pool.map(integrate, [coeffs] * parts, starts, [s + width for s in starts], [steps] * parts)
        return math.fsum(pieces)
''',
notes="analyzer miss: the pool maps a lambda", missed=True),

ex("thr021-08", '''
import threading


def sum_of_squares(lo, hi, out, i):
    total = 0
    for n in range(lo, hi):
        total += n * n
    out[i] = total


def parallel_sum(n, workers=4):
    out = [0] * workers
    step = n // workers
    threads = []
    for i in range(workers):
        t = threading.Thread(target=sum_of_squares, args=(i * step, (i + 1) * step, out, i))
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    return sum(out)
''', """Summing squares in a Python loop is CPU-bound; the four threads just take turns holding the GIL.
Here a closed formula is best, and for general CPU work a process pool is the way to use several
cores.""",
fixed='''
def parallel_sum(n, workers=4):
    step = n // workers
    m = step * workers
    return (m - 1) * m * (2 * m - 1) // 6
''', notes="sum of n*n for n in range(m) is (m-1)m(2m-1)/6"),

ex("thr021-09", '''
from concurrent.futures import ThreadPoolExecutor


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def closest(word, vocabulary):
    with ThreadPoolExecutor(max_workers=8) as pool:
        distances = list(pool.map(lambda w: levenshtein(word, w), vocabulary))
    return vocabulary[distances.index(min(distances))]
''', """Edit distance is a pure-Python dynamic-programming loop; spreading it over eight threads gives no
speed-up with the GIL. Use a process pool with a chunksize (or a C implementation).""",
fixed='''
from concurrent.futures import ProcessPoolExecutor
from functools import partial


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def closest(word, vocabulary):
    with ProcessPoolExecutor() as pool:
        distances = list(pool.map(partial(levenshtein, word), vocabulary, chunksize=256))
    return vocabulary[distances.index(min(distances))]
''',
notes="analyzer miss: the pool maps a lambda", missed=True),

ex("thr021-10", '''
import threading


def checksum_block(data, out, i):
    h = 0
    for byte in data:
        h = (h * 31 + byte) & 0xFFFFFFFF
    out[i] = h


def checksum(blob, parts=4):
    size = len(blob) // parts + 1
    out = [0] * parts
    threads = [threading.Thread(target=checksum_block, args=(blob[i * size:(i + 1) * size], out, i))
               for i in range(parts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
''', """The rolling hash loops over bytes in Python, holding the GIL the whole time, so four threads do
not run concurrently. Use a C-implemented hash (`zlib.crc32`, `hashlib`), which is faster and
releases the GIL for large buffers.""",
fixed='''
import zlib


def checksum(blob, parts=4):
    size = len(blob) // parts + 1
    return [zlib.crc32(blob[i * size:(i + 1) * size]) for i in range(parts)]
''', notes="crc32 is a different hash than the original rolling hash; the point is moving the work to C"),

ex("thr021-11", '''
from concurrent.futures import ThreadPoolExecutor


def matmul_row(row, b):
    return [sum(x * y for x, y in zip(row, col)) for col in zip(*b)]


def matmul(a, b):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda row: matmul_row(row, b), a))
''', """Each row product is computed in pure Python, so four threads cannot multiply rows at the same
time under the GIL. Use NumPy (which runs in C and can use several cores) or a process pool.""",
fixed='''
import numpy as np


def matmul(a, b):
    return (np.asarray(a) @ np.asarray(b)).tolist()
''',
notes="analyzer miss: the pool maps a lambda", missed=True),

ex("thr021-12", '''
import threading


def find_nonce(prefix, start, step, found):
    import hashlib
    n = start
    while not found:
        digest = hashlib.sha256(f"{prefix}{n}".encode()).hexdigest()
        if digest.startswith("0000"):
            found.append(n)
        n += step


def mine(prefix, workers=4):
    found = []
    threads = [threading.Thread(target=find_nonce, args=(prefix, i, workers, found)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return found[0]
''', """Each hash of such a short string is too quick to release the GIL, so the loop is effectively
pure Python and the four threads mostly take turns. Search nonce ranges in separate processes.""",
fixed='''
import hashlib
from concurrent.futures import ProcessPoolExecutor


def search_range(prefix, lo, hi):
    for n in range(lo, hi):
        if hashlib.sha256(f"{prefix}{n}".encode()).hexdigest().startswith("0000"):
            return n
    return None


def mine(prefix, workers=4, span=50_000):
    lo = 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        while True:
            starts = [lo + i * span for i in range(workers)]
            hits = [h for h in pool.map(search_range, [prefix] * workers, starts, [s + span for s in starts]) if h is not None]
            if hits:
                return min(hits)
            lo += workers * span
''',
notes="not reported by design: the loop calls hashlib, which the rule treats as possibly releasing the GIL", missed=True),

ex("thr021-13", '''
from concurrent.futures import ThreadPoolExecutor


def count_words(text):
    counts = {}
    word = []
    for ch in text:
        if ch.isalpha():
            word.append(ch.lower())
        elif word:
            w = "".join(word)
            counts[w] = counts.get(w, 0) + 1
            word = []
    return counts


def count_corpus(texts):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(count_words, texts))
''', """The character-by-character tokenizer is pure-Python CPU work, so the thread pool cannot process
texts in parallel. A process pool runs one text per core.""",
fix=[("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ProcessPoolExecutor"), ("with ThreadPoolExecutor(max_workers=4) as pool:", "with ProcessPoolExecutor(max_workers=4) as pool:")],
notes="analyzer miss: loop over the characters of a string calling str methods", missed=True),

ex("thr021-14", '''
import threading


class Simulation:
    def __init__(self, particles):
        self.particles = particles

    def step_range(self, lo, hi, dt):
        for i in range(lo, hi):
            x, v = self.particles[i]
            v -= 9.81 * dt
            x += v * dt
            self.particles[i] = (x, v)

    def step(self, dt, workers=4):
        n = len(self.particles)
        chunk = n // workers + 1
        threads = [threading.Thread(target=self.step_range, args=(i * chunk, min(n, (i + 1) * chunk), dt))
                   for i in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
''', """Updating particles is a pure-Python arithmetic loop; four threads take turns on the GIL, so each
step costs the same plus thread overhead. Vectorise the update with NumPy arrays instead.""",
fixed='''
import numpy as np


class Simulation:
    def __init__(self, particles):
        arr = np.asarray(particles, dtype=float)
        self.x, self.v = arr[:, 0].copy(), arr[:, 1].copy()

    def step(self, dt):
        self.v -= 9.81 * dt
        self.x += self.v * dt
'''),

ex("thr021-15", '''
from concurrent.futures import ThreadPoolExecutor


def is_perfect(n):
    return n > 1 and sum(d for d in range(1, n) if n % d == 0) == n


def perfect_numbers(limit):
    with ThreadPoolExecutor(max_workers=6) as pool:
        flags = list(pool.map(is_perfect, range(limit)))
    return [n for n, ok in enumerate(flags) if ok]
''', """Testing divisors is pure Python arithmetic: six threads give no speed-up under the GIL and add
per-task overhead for each of `limit` tiny tasks. Use processes with a large chunksize.""",
fix=[("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ProcessPoolExecutor"), ("""    with ThreadPoolExecutor(max_workers=6) as pool:
        flags = list(pool.map(is_perfect, range(limit)))""", """    with ProcessPoolExecutor(max_workers=6) as pool:
        flags = list(pool.map(is_perfect, range(limit), chunksize=2000))""")]),
ex("thr021-16", """
import threading


def dot_range(a, b, lo, hi, out, i):
    total = 0.0
    for k in range(lo, hi):
        total += a[k] * b[k]
    out[i] = total


def dot(a, b, workers=4):
    n = len(a)
    step = n // workers + 1
    out = [0.0] * workers
    threads = [threading.Thread(target=dot_range, args=(a, b, i * step, min(n, (i + 1) * step), out, i))
               for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(out)
""", """A dot product in a Python loop is CPU-bound: the GIL runs one thread's bytecode at a time, so the
four slices take as long as one loop. Use `math.sumprod`/NumPy, or processes for huge vectors.""",
fixed="""
import numpy as np


def dot(a, b):
    return float(np.dot(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))
"""),

ex("thr021-17", """
from concurrent.futures import ThreadPoolExecutor


def digit_sum_upto(n):
    total = 0
    for i in range(n):
        x = i
        while x:
            total += x % 10
            x //= 10
    return total


def digit_sums(limits):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(limits, pool.map(digit_sum_upto, limits)))
""", """`digit_sum_upto` is nested integer arithmetic in Python; four pool threads serialise on the GIL.
Swap in a `ProcessPoolExecutor` to use four cores.""",
fix=[("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ProcessPoolExecutor"), ("with ThreadPoolExecutor(max_workers=4) as pool:", "with ProcessPoolExecutor(max_workers=4) as pool:")]),

ex("thr021-18", """
import threading


class PrimeSieve:
    def __init__(self, limit):
        self.limit = limit
        self.counts = {}

    def count_block(self, lo, hi):
        found = 0
        for n in range(max(lo, 2), hi):
            d = 2
            while d * d <= n and n % d:
                d += 1
            if d * d > n:
                found += 1
        self.counts[lo] = found

    def run(self, blocks=4):
        size = self.limit // blocks
        threads = [threading.Thread(target=self.count_block, args=(i * size, (i + 1) * size)) for i in range(blocks)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(self.counts.values())
""", """Trial division is pure-Python arithmetic, so the block threads do not run in parallel under the
GIL and `run` is no faster than a single loop. Count the blocks in a process pool.""",
fixed="""
from concurrent.futures import ProcessPoolExecutor


def count_block(lo, hi):
    found = 0
    for n in range(max(lo, 2), hi):
        d = 2
        while d * d <= n and n % d:
            d += 1
        if d * d > n:
            found += 1
    return found


class PrimeSieve:
    def __init__(self, limit):
        self.limit = limit

    def run(self, blocks=4):
        size = self.limit // blocks
        with ProcessPoolExecutor(max_workers=blocks) as pool:
            return sum(pool.map(count_block, [i * size for i in range(blocks)], [(i + 1) * size for i in range(blocks)]))
"""),

ex("thr021-19", """
import threading


def factorial_digits(n, out):
    result = 1
    for k in range(2, n + 1):
        result *= k
    out[n] = len(str(result))


def digits_for(ns):
    out = {}
    threads = [threading.Thread(target=factorial_digits, args=(n, out)) for n in ns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out
""", """Computing factorials is a CPU-bound multiply loop; one thread per `n` only adds contention for the
GIL. Use processes, or `math.factorial`, which runs in C.""",
fixed="""
import math


def digits_for(ns):
    return {n: len(str(math.factorial(n))) for n in ns}
"""),

ex("thr021-20", """
from concurrent.futures import ThreadPoolExecutor


def gcd_table_row(a, size):
    row = []
    for b in range(size):
        x, y = a, b
        while y:
            x, y = y, x % y
        row.append(x)
    return row


def gcd_table(size):
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(gcd_table_row, range(size), [size] * size))
""", """Each row is a pure-Python Euclid loop; eight threads cannot compute rows at the same time under
the GIL. A process pool (with a chunksize) uses all cores.""",
fix=[("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ProcessPoolExecutor"), ("""    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(gcd_table_row, range(size), [size] * size))""", """    with ProcessPoolExecutor(max_workers=8) as pool:
        return list(pool.map(gcd_table_row, range(size), [size] * size, chunksize=64))""")]),

ex("thr021-21", """
import threading


def simulate_walks(steps, walks, seed, results):
    state = seed
    finals = []
    for _ in range(walks):
        pos = 0
        for _ in range(steps):
            state = (1103515245 * state + 12345) % 2147483648
            pos += 1 if state & 1 else -1
        finals.append(pos)
    results.append(sum(finals) / walks)


def average_walk(steps, walks, workers=4):
    results = []
    threads = [threading.Thread(target=simulate_walks, args=(steps, walks // workers, i + 1, results))
               for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results) / workers
""", """The random walks are pure integer arithmetic in Python; the four threads take turns holding the
GIL and finish no sooner than one thread would. Run the walkers in processes and return their
averages.""",
fixed="""
from concurrent.futures import ProcessPoolExecutor


def simulate_walks(steps, walks, seed):
    state = seed
    finals = []
    for _ in range(walks):
        pos = 0
        for _ in range(steps):
            state = (1103515245 * state + 12345) % 2147483648
            pos += 1 if state & 1 else -1
        finals.append(pos)
    return sum(finals) / walks


def average_walk(steps, walks, workers=4):
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(simulate_walks, [steps] * workers, [walks // workers] * workers, range(1, workers + 1)))
    return sum(results) / workers
"""),

ex("thr021-22", """
from concurrent.futures import ThreadPoolExecutor


def triangle_count(n):
    count = 0
    for a in range(1, n):
        for b in range(a, n):
            c2 = a * a + b * b
            c = int(c2 ** 0.5)
            if c < n and c * c == c2:
                count += 1
    return count


def triangles(limits):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return [f.result() for f in [pool.submit(triangle_count, n) for n in limits]]
""", """Counting Pythagorean triples is a nested pure-Python loop; submitting each limit to a thread pool
gives no parallel speed-up under the GIL. Submit to a `ProcessPoolExecutor` instead.""",
fix=[("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ProcessPoolExecutor"), ("with ThreadPoolExecutor(max_workers=4) as pool:", "with ProcessPoolExecutor(max_workers=4) as pool:")]),
ex("thr021-23", """
import threading


def harmonic_partial(lo, hi, out, key):
    total = 0.0
    for k in range(lo, hi):
        total += 1.0 / k
    out[key] = total


def harmonic(n, workers=4):
    out = {}
    step = n // workers
    threads = []
    for i in range(workers):
        lo, hi = 1 + i * step, 1 + (i + 1) * step
        threads.append(threading.Thread(target=harmonic_partial, args=(lo, hi, out, i)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(out.values())
""", """The partial harmonic sums are pure float arithmetic in Python; the threads cannot add in
parallel under the GIL, so `harmonic` is as slow as one loop plus thread overhead. Compute the
parts in a process pool.""",
fixed="""
from concurrent.futures import ProcessPoolExecutor


def harmonic_partial(lo, hi):
    total = 0.0
    for k in range(lo, hi):
        total += 1.0 / k
    return total


def harmonic(n, workers=4):
    step = n // workers
    los = [1 + i * step for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(harmonic_partial, los, [lo + step for lo in los]))
"""),
ex("thr021-24", """
from concurrent.futures import ThreadPoolExecutor


def power_mod_table(base, mod, n):
    table = []
    value = 1
    for _ in range(n):
        value = (value * base) % mod
        table.append(value)
    return table


def tables(bases, mod=1_000_003, n=200_000):
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(power_mod_table, b, mod, n) for b in bases]
        return [f.result() for f in futures]
""", """Building each table is a pure-Python multiply-and-modulo loop, so the four pool threads run one at
a time under the GIL and the pool only adds overhead. Submit the same function to a
`ProcessPoolExecutor` to use four cores.""",
fix=[("from concurrent.futures import ThreadPoolExecutor", "from concurrent.futures import ProcessPoolExecutor"), ("with ThreadPoolExecutor(max_workers=4) as pool:", "with ProcessPoolExecutor(max_workers=4) as pool:")]),
]

write("THR021", "cpu-bound-threads", E)
