"""Mechanical verification of a proposed fix: splice, parse, compile, re-analyse.

Nothing is executed: the spliced file is only parsed, compiled to bytecode (never run) and
analysed. Comments are removed before analysis, so neither a suppression comment nor any
other text in the proposal can make it pass.
"""

from __future__ import annotations

import builtins
import io
import re
import symtable
import tokenize
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from ..engine import check_source
from .blocks import Block, defined_names, faults, read_names, shape, signatures, splice, unknown_self_attributes


VERIFY_VERSION = 7
"""Bump when verification gets stricter or looser: cached verdicts are keyed by it."""


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str
    """``"ok"`` or why the proposal was rejected."""
    new_source: str | None = None
    diff: str = ""


def strip_comments(source: str) -> str:
    """``source`` with every comment token blanked (strings untouched). Returns ``source``
    unchanged if it does not tokenize."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return source
    lines = source.splitlines(keepends=True)
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            line = lines[row - 1]
            end = tok.end[1]
            lines[row - 1] = line[:col] + line[end:]
    return "".join(lines)


def _key(finding) -> tuple[str, str]:
    return finding.code, re.sub(r"\d+", "N", finding.message)


def findings_of(source: str, path: str, settings=None):
    """Findings and errors of ``source`` analysed with comments removed (no suppressions)."""
    result = check_source(strip_comments(source), path, settings)
    return result.findings, result.errors


def _compiles(source: str, path: str) -> str | None:
    try:
        compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
        return f"does not compile: {type(exc).__name__}: {getattr(exc, 'msg', exc)}"
    return None


_MODULE_DUNDERS = frozenset(
    {"__name__", "__file__", "__doc__", "__spec__", "__loader__", "__package__", "__builtins__", "__path__",
     "__annotations__", "__dict__", "__class__"}
)


@lru_cache(maxsize=16)
def _module_facts(source: str) -> tuple[frozenset[str], frozenset[str] | None]:
    """One symbol-table pass over ``source``: the names the module itself defines at top level
    (functions, classes, assignments; not imports), and the global names it reads that nothing
    binds (None when that cannot be known: a star import). Both empty/None when it does not
    compile."""
    try:
        top = symtable.symtable(source, "<advisor>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset(), None
    own = frozenset(
        s.get_name() for s in top.get_symbols() if (s.is_assigned() or s.is_namespace()) and not s.is_imported()
    )
    bound = set(dir(builtins)) | _MODULE_DUNDERS
    reads: set[str] = set()
    tables = [top]
    while tables:
        table = tables.pop()
        tables.extend(table.get_children())
        for sym in table.get_symbols():
            name = sym.get_name()
            if name == "*":
                return own, None
            if table is top:
                if sym.is_assigned() or sym.is_imported() or sym.is_namespace():
                    bound.add(name)
                elif sym.is_referenced():
                    reads.add(name)
            elif sym.is_global():
                if sym.is_declared_global() and sym.is_assigned():
                    bound.add(name)
                elif sym.is_referenced():
                    reads.add(name)
    return own, frozenset(reads - bound)


def undefined_names(source: str) -> set[str] | None:
    """Names ``source`` reads as globals that nothing binds: not assigned, imported or
    defined at module level (or through ``global`` in a function), not builtins. None when it
    cannot be known (a star import, or the source does not compile)."""
    unknown = _module_facts(source)[1]
    return None if unknown is None else set(unknown)


def module_names(source: str) -> set[str]:
    """Names the module itself defines at top level (functions, classes, assignments), not
    imports; empty when it does not compile."""
    return set(_module_facts(source)[0])


def verify_source(source: str, new_source: str, path: str, finding, settings=None, baseline=None) -> Verdict:
    """Is ``new_source`` an acceptable fix of ``finding`` in ``source``? It must compile,
    read no global name that nothing defines (unless ``source`` already read it), analyse
    without errors, no longer report ``finding`` and report nothing new.
    ``baseline``: ``findings_of(source, ...)`` if already computed."""
    from ..fixes import unified_diff

    diff = unified_diff(path, source, new_source)
    if new_source == source:
        return Verdict(False, "the proposal changes nothing", new_source, diff)
    problem = _compiles(new_source, path)
    if problem:
        return Verdict(False, problem, new_source, diff)
    unknown = undefined_names(new_source)
    if unknown:
        unknown -= undefined_names(source) or set()
        if unknown:
            return Verdict(False, f"uses undefined name(s) {', '.join(sorted(unknown))}", new_source, diff)
    before, _ = baseline if baseline is not None else findings_of(source, path, settings)
    after, errors = findings_of(new_source, path, settings)
    if errors:
        return Verdict(False, f"cannot be analysed: {errors[0].message}", new_source, diff)
    old, new = Counter(map(_key, before)), Counter(map(_key, after))
    target = _key(finding)
    if old[target] and new[target] >= old[target]:
        return Verdict(False, f"{finding.code} is still reported", new_source, diff)
    added = new - old
    if added:
        code, message = next(iter(added))
        return Verdict(False, f"introduces {code}: {message}", new_source, diff)
    return Verdict(True, "ok", new_source, diff)


def _lost_behaviour(before, after) -> str | None:
    if before is None or after is None:
        return None
    if before.returns_value and not after.returns_value:
        return "no longer returns a value"
    if before.hand_offs and not after.hand_offs:
        return "no longer hands work to another thread or process"
    if after.work_loops < before.work_loops:
        return "drops a loop that does work"
    if before.runs and not after.runs:
        return "no longer starts the work it sets up"
    if after.blocking_loops < before.sleeping_loops:
        return "a loop that slept or waited now spins"
    unread = sorted((before.bound_read & after.bound) - after.bound_read)
    if unread:
        return f"no longer reads {', '.join(unread)}"
    return None


def verify_block(source: str, path: str, finding, block: Block, code: str, settings=None, baseline=None) -> Verdict:
    """Verify replacing ``block`` with ``code``: as ``verify_source``, and every name the
    block defined (and each parameter of a function it defined) is still defined, with the
    same parameter list, and every function, class or global of the module, and every attribute
    outside ``blocks.SYNC_API``, that the block used is still used; a block that returned a
    value still returns one, one that handed work to a thread or process still does, and no
    loop that does work is dropped (a proposal that deletes the work is not a fix)."""
    if not code or not code.strip():
        return Verdict(False, "no code in the answer")
    wanted = defined_names(block.text)
    got = defined_names(code)
    if got is None:
        return Verdict(False, "the proposed code does not parse")
    lost = sorted((wanted or set()) - got)
    if lost:
        return Verdict(False, f"no longer defines {', '.join(lost)}")
    before, after = signatures(block.text), signatures(code)
    changed = sorted(name for name in before if name in after and after[name] != before[name])
    if changed:
        return Verdict(False, f"changes the signature of {', '.join(changed)}")
    own = module_names(source) - (wanted or set())
    used = read_names(block.text)
    dropped = sorted(((used & own) | {n for n in used if n.startswith(".")}) - read_names(code))
    if dropped:
        return Verdict(False, f"no longer uses {', '.join(dropped)}")
    problem = _lost_behaviour(shape(block.text), shape(code)) or faults(block.text, code)
    if problem:
        return Verdict(False, problem)
    new_source = splice(source, block, code)
    unknown = unknown_self_attributes(new_source, block, code)
    if unknown:
        return Verdict(False, f"uses {', '.join('self.' + a for a in unknown)}, which the class never sets")
    return verify_source(source, new_source, path, finding, settings, baseline)
