"""Run the analyzer over every ``.py`` file under the given roots and count what happened.

Files are passed explicitly (so default excludes such as ``site-packages`` or ``.venv`` do not
apply), through the same runner ``advisor check`` uses: worker processes, no cache. Prints
files, lines, findings, errors by kind, and crashes (worker crashes, time-outs, internal errors),
which must be 0.

    python benchmarks/robust_check.py /usr/lib/python3.11 .venv/lib/python3.11/site-packages
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from advisor.config import Settings  # noqa: E402
from advisor.runner import RunStats, check_paths  # noqa: E402

CRASH = re.compile(r"crashed|timed out|internal error")


def kind(message: str) -> str:
    for prefix in ("syntax error", "too deeply nested", "cannot decode", "binary file", "permission denied",
                   "file too large", "not a regular file", "bad encoding", "unknown encoding", "no such file"):
        if message.lower().startswith(prefix) or prefix in message.lower():
            return prefix
    return message.split(":")[0][:60]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+")
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument("--skip-dir", action="append", default=["__pycache__"], help="directory names not to enter")
    parser.add_argument("--json")
    args = parser.parse_args()
    files: list[str] = []
    for root in args.roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in args.skip_dir)
            files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
    lines = 0
    for path in files:
        try:
            with open(path, "rb") as fh:
                lines += fh.read().count(b"\n")
        except OSError:
            pass
    stats = RunStats()
    started = time.perf_counter()
    results, errors = check_paths(files, Settings(root="/"), jobs=args.jobs or None, use_cache=False, stats=stats)
    seconds = time.perf_counter() - started
    all_errors = errors + [e for r in results for e in r.errors]
    kinds = Counter(kind(e.message) for e in all_errors)
    crashes = [e.to_dict() for e in all_errors if CRASH.search(e.message)]
    summary = {
        "roots": args.roots,
        "files": len(files),
        "lines": lines,
        "files_checked": len(results),
        "parsed": sum(r.parsed for r in results),
        "analysed_in_workers": stats.analysed,
        "skipped_by_prefilter": stats.skipped,
        "findings": sum(len(r.findings) for r in results),
        "errors": len(all_errors),
        "errors_by_kind": dict(kinds.most_common()),
        "crashes": len(crashes),
        "crash_entries": crashes[:20],
        "seconds": round(seconds, 1),
        "load_avg": os.getloadavg(),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
