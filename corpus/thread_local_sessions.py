"""One resource per worker thread: `threading.local` set lazily on the thread that uses it,
or created by the executor's initializer."""

from concurrent.futures import ThreadPoolExecutor
import sqlite3
import threading

_local = threading.local()


def connection(path):
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = sqlite3.connect(path)
    return conn


def row_count(path, table):
    return connection(path).execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def count_tables(path, tables):
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(tables, pool.map(lambda t: row_count(path, t), tables)))
