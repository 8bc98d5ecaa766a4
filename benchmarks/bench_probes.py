"""Recall and false positives on probe programs: realistic threaded programs with seeded bugs.

Each folder under ``benchmarks/probes/`` holds programs written to test advisor without looking
at its rules (a web crawler, a connection pool, a TTL cache, an order book, ...), a ``key.json``
listing every seeded bug (file, line, class, what), and ``clean_*.py`` programs that use the same
idioms correctly. A seeded bug counts as found when a finding lies within ``--slack`` lines of
its key line; any finding in a clean program is a false positive; findings elsewhere in a buggy
program are listed as "not in the key" to be read (a second symptom of a seeded bug, or an
unseeded problem, or a false positive).

    python benchmarks/bench_probes.py                # all folders
    python benchmarks/bench_probes.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from advisor.config import Settings  # noqa: E402
from advisor.runner import check_paths  # noqa: E402

PROBES = Path(__file__).resolve().parent / "probes"


def score(folder: Path, slack: int) -> dict:
    key = json.loads((folder / "key.json").read_text(encoding="utf-8"))
    results, errors = check_paths([str(folder)], Settings(), use_cache=False)
    findings = [(Path(r.path).name, f.span.line, f.code, f.message) for r in results for f in r.findings]
    used: set[int] = set()
    found, missed = [], []
    for bug in key:
        near = [i for i, f in enumerate(findings) if f[0] == bug["file"] and abs(f[1] - bug["line"]) <= slack]
        (found if near else missed).append({**bug, "codes": sorted({findings[i][2] for i in near})})
        used.update(near)
    clean = [f for f in findings if f[0].startswith("clean_")]
    other = [f for i, f in enumerate(findings) if i not in used and not f[0].startswith("clean_")]
    return {
        "folder": folder.name,
        "bugs": len(key),
        "found": found,
        "missed": missed,
        "false_positives_in_clean_files": [list(f) for f in clean],
        "not_in_key": [list(f) for f in other],
        "errors": [e.message for e in errors],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", help="probe folders (default: every folder in benchmarks/probes)")
    ap.add_argument("--slack", type=int, default=4, help="lines between a finding and the key line")
    ap.add_argument("--json", help="write the full report here")
    args = ap.parse_args()
    folders = [Path(f) for f in args.folders] or sorted(p for p in PROBES.iterdir() if (p / "key.json").exists())
    reports = [score(folder, args.slack) for folder in folders]
    total = found = fps = 0
    for r in reports:
        total += r["bugs"]
        found += len(r["found"])
        fps += len(r["false_positives_in_clean_files"])
        print(f"{r['folder']}: {len(r['found'])}/{r['bugs']} seeded bugs found, "
              f"{len(r['false_positives_in_clean_files'])} findings in clean programs, "
              f"{len(r['not_in_key'])} other findings")
        for bug in r["missed"]:
            print(f"  missed  {bug['file']}:{bug['line']}  {bug['class']}")
        for f in r["not_in_key"]:
            print(f"  other   {f[0]}:{f[1]}  {f[2]}  {f[3][:100]}")
        for f in r["false_positives_in_clean_files"]:
            print(f"  CLEAN   {f[0]}:{f[1]}  {f[2]}  {f[3][:100]}")
    print(f"total: {found}/{total} seeded bugs found ({found / max(total, 1):.0%}), {fps} findings in clean programs")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
