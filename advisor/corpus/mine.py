"""Mine threading-heavy functions from a source tree as extra plain-text training data.

Files flow through the threaded data pipeline (``advisor.finetune.pipeline``): one thread
lists files, several parse and score them, and results come back in file order, so the
output does not depend on the number of workers."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from ..analysis.extract import build_model
from ..analysis.positions import Positions
from ..analysis.source import SourceError, read_source
from ..config import Settings
from ..engine import PREFILTER, discover
from ..rules import RuleContext, select_rules

THREADING_PREFIXES = ("threading.", "queue.", "concurrent.futures.", "_thread.", "multiprocessing.", "asyncio.run_coroutine_threadsafe")


@dataclass
class Mined:
    source: str
    function: str
    line: int
    code: str
    score: int
    findings: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "function": self.function,
            "line": self.line,
            "score": self.score,
            "findings": self.findings,
            "code": self.code,
        }


@dataclass
class MineReport:
    files: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    functions: list[Mined] = field(default_factory=list)


def score(model, fn) -> int:
    """How much threading a function does: spawns, lock acquisitions, calls on primitives
    and calls into threading modules."""
    n = sum(1 for s in model.spawns if s.function == fn.qualname)
    n += len(fn.acquires)
    for call in fn.calls:
        if call.receiver_kind or (call.qualname or "").startswith(THREADING_PREFIXES):
            n += 1
    return n


def mine_source(text: str, path: str, min_score: int = 3, min_lines: int = 4, max_lines: int = 60) -> list[Mined]:
    """The threading-heavy top-level functions and methods of one file, with the findings
    the rules report inside them."""
    if not PREFILTER.search(text):
        return []
    module = cst.parse_module(text)
    model = build_model(module, path)
    positions = Positions(module)
    picked = []
    for fn in model.functions.values():
        if not isinstance(fn.node, cst.FunctionDef) or "<locals>" in fn.qualname:
            continue
        s = score(model, fn)
        if s < min_score:
            continue
        span = positions.span(fn.node)
        if min_lines <= span.end_line - span.line + 1 <= max_lines:
            picked.append((fn, s, span))
    if not picked:
        return []
    findings = []
    ctx = RuleContext(path, text, model, positions)
    for rule in select_rules((), ()):
        try:
            findings.extend(rule.check(ctx))
        except RecursionError:
            break
    out: list[Mined] = []
    for fn, s, span in picked:
        code = module.code_for_node(fn.node).strip("\n")
        inside = [
            {"code": f.code, "line": f.span.line - span.line + 1, "message": f.message}
            for f in findings
            if span.line <= f.span.line <= span.end_line
        ]
        out.append(Mined(path, fn.qualname, span.line, _dedent(code) + "\n", s, inside))
    out.sort(key=lambda m: m.line)
    return out


def _dedent(code: str) -> str:
    import textwrap

    return textwrap.dedent(code)


def mine_paths(paths: list[str], workers: int = 2, min_score: int = 3, max_lines: int = 60) -> MineReport:
    """Mine every Python file under ``paths`` through the threaded pipeline."""
    from ..finetune.pipeline import SKIP, Map, Pipeline, Source

    report = MineReport()
    settings = Settings()
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no such file or directory")

    def files():
        for item in discover(paths, settings):
            if isinstance(item, str):
                yield item, item

    def mine(path):
        try:
            text = read_source(path).text
        except SourceError as exc:
            return ("error", f"{path}: {exc.message}")
        try:
            return ("ok", mine_source(text, path, min_score=min_score, max_lines=max_lines))
        except cst.ParserSyntaxError as exc:
            return ("error", f"{path}:{exc.raw_line}: syntax error")
        except RecursionError:
            return ("error", f"{path}: too deeply nested")
        except Exception as exc:  # one odd file must not stop the whole run
            return ("error", f"{path}: {type(exc).__name__}: {exc}")

    pipe = Pipeline(Source("files", files), [Map("mine", mine, workers=max(1, workers))], name="mine")
    with pipe:
        for status, value in pipe:
            report.files += 1
            if status == "error":
                report.skipped += 1
                report.errors.append(value)
            else:
                report.functions.extend(value)
    return report


def write_mined(report: MineReport, out_dir: str | Path) -> Path:
    """Write ``mined.jsonl`` (one function per line) atomically into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "mined.jsonl"
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".mined-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for m in report.functions:
                fh.write(json.dumps(m.to_dict(), ensure_ascii=False) + "\n")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target
