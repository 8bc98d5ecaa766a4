"""Check the corpus against the analyzer: buggy code triggers its rule, fixed code does not."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from ..engine import check_source
from ..rules import all_rules
from .examples import Example, LoadResult, Problem, load_corpus


@dataclass
class Verdict:
    """What the analyzer says about one example."""

    ok: bool
    checked: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Report:
    examples: int = 0
    programs: int = 0
    valid: int = 0
    unchecked: Counter = field(default_factory=Counter)
    per_rule: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def known_rules() -> set[str]:
    return {r.code for r in all_rules()}


def _parse_error(source: str) -> str | None:
    try:
        cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        return f"line {exc.raw_line}: {str(exc.message).strip().splitlines()[0]}"
    except Exception as exc:  # libcst raises other errors on odd input
        return f"{type(exc).__name__}: {exc}"
    return None


def _codes(source: str, name: str) -> tuple[list[str], list[str]]:
    result = check_source(source, name)
    errors = [e.message for e in result.errors]
    return [f.code for f in result.findings], errors


def judge(code: str, fixed: str, rule: str, rules: set[str] | None = None) -> Verdict:
    """Validate one (code, fixed) pair for ``rule``."""
    rules = known_rules() if rules is None else rules
    verdict = Verdict(ok=True, checked=rule in rules)
    for label, source in (("code", code), ("fixed", fixed)):
        err = _parse_error(source)
        if err:
            verdict.problems.append(f"{label} does not parse: {err}")
    if verdict.problems:
        verdict.ok = False
        return verdict
    if code.strip() == fixed.strip():
        verdict.problems.append("fixed is identical to code")
    if verdict.checked:
        before, errs = _codes(code, "<code>")
        after, errs2 = _codes(fixed, "<fixed>")
        for e in errs + errs2:
            verdict.problems.append(f"analyzer error: {e}")
        if rule not in before:
            got = ", ".join(sorted(set(before))) or "nothing"
            verdict.problems.append(f"code does not trigger {rule} (analyzer reports {got})")
        if rule in after:
            verdict.problems.append(f"fixed code still triggers {rule}")
        others = sorted(set(after) - {rule})
        if others:
            verdict.warnings.append(f"fixed code triggers {', '.join(others)}")
    verdict.ok = not verdict.problems
    return verdict


def validate_examples(examples: list[Example], report: Report, rules: set[str]) -> None:
    for ex in examples:
        report.examples += 1
        verdict = judge(ex.code, ex.fixed, ex.rule, rules)
        if not verdict.checked:
            report.unchecked[ex.rule] += 1
        for msg in verdict.problems:
            report.problems.append(Problem(ex.path, ex.line, msg, ex.id))
        for msg in verdict.warnings:
            report.warnings.append(Problem(ex.path, ex.line, msg, ex.id))
        if verdict.ok:
            report.per_rule[ex.rule] += 1
            if verdict.checked:
                report.valid += 1


def validate_program(path: Path, report: Report) -> None:
    report.programs += 1
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(Problem(str(path), None, f"cannot read: {exc}"))
        return
    result = check_source(text, str(path))
    for err in result.errors:
        report.problems.append(Problem(str(path), err.line, err.message))
    for f in result.findings:
        report.problems.append(
            Problem(str(path), f.line, f"idiomatic program triggers {f.code} ({f.name}): {f.message}")
        )


def validate_corpus(root: str | Path, skip_invalid: bool = False) -> Report:
    """Load and validate everything under ``root``. Raises CorpusError for a missing/empty corpus."""
    loaded: LoadResult = load_corpus(root, skip_invalid)
    report = Report(skipped=loaded.skipped)
    report.problems.extend(loaded.problems)
    bad_lines = {(p.path, p.line) for p in loaded.problems if p.example}
    examples = [ex for ex in loaded.examples if (ex.path, ex.line) not in bad_lines]
    validate_examples(examples, report, known_rules())
    for path in loaded.programs:
        validate_program(path, report)
    return report
