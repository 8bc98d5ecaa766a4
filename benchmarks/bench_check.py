"""Time ``advisor check --no-llm`` against ruff and pylint on the local standard library.

The tree is a copy of the standard library without test directories and site-packages
(so every tool sees the same files and keeps its cache outside the Python install). Cold
runs start without any cache; warm runs repeat an unchanged run. Each figure is the median
of several runs, with the load average around it: on a shared machine, read ratios rather
than absolute times. Peak memory is sampled from /proc for the whole process tree.

    python benchmarks/bench_check.py [--runs 5] [--pylint-runs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
PYLINT_CHECKS = "useless-with-lock,bad-thread-instantiation,consider-using-with,cell-var-from-loop,global-statement"
"""pylint's threading-relevant messages (pylint has no threading checker as such)."""


def copy_tree(src: Path, dst: Path) -> tuple[int, int]:
    files = lines = 0
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        if set(rel.parts[:-1]) & SKIP_DIRS:
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        target.write_bytes(data)
        files += 1
        lines += data.count(b"\n")
    return files, lines


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory(threading.Thread):
    """Samples the summed RSS of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self.peak_single_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            stack, total = [self.pid], 0
            while stack:
                pid = stack.pop()
                rss = _rss_kb(pid)
                total += rss
                self.peak_single_kb = max(self.peak_single_kb, rss)
                stack.extend(_children(pid))
            self.peak_kb = max(self.peak_kb, total)
            self.done.wait(self.interval)


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> dict:
    load = os.getloadavg()[0]
    start_usage = os.times()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    memory = TreeMemory(proc.pid)
    memory.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    memory.done.set()
    memory.join()
    end_usage = os.times()
    cpu = (end_usage.children_user - start_usage.children_user) + (end_usage.children_system - start_usage.children_system)
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "rc": proc.returncode,
        "peak_tree_mb": round(memory.peak_kb / 1024, 1),
        "peak_process_mb": round(memory.peak_single_kb / 1024, 1),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "stdout_bytes": len(out),
        "stderr_tail": err.decode(errors="replace")[-300:],
    }


def median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdlib", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pylint-runs", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=0, help="advisor --jobs (0: one per core)")
    parser.add_argument("--tools", default="advisor,ruff,pylint")
    parser.add_argument("--json", help="write all runs here")
    args = parser.parse_args()
    tools = set(args.tools.split(","))
    bindir = Path(sys.executable).parent

    work = Path(tempfile.mkdtemp(prefix="advisor-bench-"))
    try:
        tree = work / "stdlib"
        files, lines = copy_tree(Path(args.stdlib), tree)
        snapshot = work / "snapshot"
        shutil.copytree(ROOT / "advisor", snapshot / "advisor", ignore=shutil.ignore_patterns("__pycache__"))
        env = {**os.environ, "PYTHONPATH": str(snapshot)}
        advisor = [sys.executable, "-m", "advisor.cli.main", "check", "--no-llm", "--format", "json", "-j", str(args.jobs), str(tree)]
        ruff = [str(bindir / "ruff"), "check", "--select", "ALL", "--output-format", "concise", "--exit-zero", "--isolated", str(tree)]
        pylint = [str(bindir / "pylint"), "--disable=all", f"--enable={PYLINT_CHECKS}", "-j", str(args.jobs), "--exit-zero", "--recursive=y", str(tree)]
        results: dict[str, list[dict]] = {}

        def series(name: str, cmd: list[str], n: int, before=None, env=None) -> None:
            runs = []
            for _ in range(n):
                if before:
                    before()
                runs.append(run(cmd, work, env))
                print(f"  {name}: {runs[-1]['wall_s']:.2f} s wall, {runs[-1]['cpu_s']:.2f} s cpu, "
                      f"{runs[-1]['peak_tree_mb']} MB, load {runs[-1]['load_before']}", file=sys.stderr)
            if runs:
                results[name] = runs

        def clear_advisor_cache() -> None:
            shutil.rmtree(tree / ".advisor_cache", ignore_errors=True)

        if "advisor" in tools:
            run(advisor[:-1] + ["--no-cache", str(tree / "abc.py")], work, env)  # warm the page cache and imports
            series("advisor cold", advisor, args.runs, clear_advisor_cache, env)
            run(advisor, work, env)
            series("advisor warm", advisor, args.runs, None, env)
        if "ruff" in tools:
            series("ruff cold", ruff + ["--no-cache"], args.runs)
            run(ruff, work)
            series("ruff warm", ruff, args.runs)
        if "pylint" in tools:
            series("pylint", pylint, args.pylint_runs)

        summary = {
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "stdlib": args.stdlib,
            },
            "tree": {"files": files, "lines": lines},
            "medians": {
                name: {k: median(runs, k) for k in ("wall_s", "cpu_s", "peak_tree_mb", "peak_process_mb", "load_before")}
                for name, runs in results.items()
            },
            "runs": results,
        }
        med = summary["medians"]
        ratios = {}
        if "advisor cold" in med and "ruff cold" in med:
            ratios["advisor cold / ruff cold (wall)"] = round(med["advisor cold"]["wall_s"] / med["ruff cold"]["wall_s"], 2)
            ratios["advisor cold / ruff cold (cpu)"] = round(med["advisor cold"]["cpu_s"] / med["ruff cold"]["cpu_s"], 2)
        if "advisor cold" in med and "pylint" in med:
            ratios["pylint / advisor cold (wall)"] = round(med["pylint"]["wall_s"] / med["advisor cold"]["wall_s"], 2)
            ratios["pylint / advisor cold (cpu)"] = round(med["pylint"]["cpu_s"] / med["advisor cold"]["cpu_s"], 2)
        summary["ratios"] = ratios
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        print(f"tree: {files} files, {lines} lines; python {platform.python_version()}, {os.cpu_count()} cpus")
        print("| run | median wall s | median cpu s | peak MB (tree) | peak MB (one process) | load avg |")
        print("|---|---|---|---|---|---|")
        for name, m in med.items():
            print(f"| {name} | {m['wall_s']} | {m['cpu_s']} | {m['peak_tree_mb']} | {m['peak_process_mb']} | {m['load_before']} |")
        for name, value in ratios.items():
            print(f"- {name}: {value}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
