"""The block of code a suggestion replaces: the enclosing function, or a statement block.

Pure functions over source text (``ast`` only: nothing here executes analysed code).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from itertools import pairwise

MAX_BLOCK_LINES = 60
"""Functions longer than this are narrowed to the statement around the finding."""


@dataclass(frozen=True)
class Block:
    """Lines ``start``..``end`` (1-based, inclusive) of a file; ``text`` is dedented by
    ``indent``. ``kind`` is ``"function"`` or ``"statements"``."""

    start: int
    end: int
    indent: str
    text: str
    kind: str
    name: str

    def numbered(self) -> str:
        """The block with its file line numbers, as shown in prompts."""
        lines = self.text.splitlines()
        width = len(str(self.end))
        return "\n".join(f"{n:>{width}} | {line}".rstrip() for n, line in zip(range(self.start, self.end + 1), lines))


_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decorators])


def _chain(body: list[ast.stmt], line: int, end_line: int, parents: list) -> list:
    """Statements containing lines ``line..end_line``, outermost first, with their sibling lists."""
    for stmt in body:
        if _first_line(stmt) <= line and (stmt.end_lineno or stmt.lineno) >= end_line:
            parents.append((stmt, body))
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list) and inner:
                    if field in ("handlers", "cases"):
                        for h in inner:
                            first = getattr(h, "lineno", None) or h.pattern.lineno
                            if first <= line and h.body[-1].end_lineno >= end_line:
                                _chain(h.body, line, end_line, parents)
                                break
                    elif isinstance(inner[0], ast.stmt):
                        before = len(parents)
                        _chain(inner, line, end_line, parents)
                        if len(parents) > before:
                            break
            return parents
    return parents


def _qualname(chain: list, upto: int) -> str:
    parts = [s.name for s, _ in chain[: upto + 1] if isinstance(s, (*_FUNCS, ast.ClassDef))]
    return ".".join(parts)


def _make(lines: list[str], start: int, end: int, kind: str, name: str) -> Block:
    chunk = lines[start - 1 : end]
    first = chunk[0]
    indent = first[: len(first) - len(first.lstrip())]
    text = "\n".join(line[len(indent):] if line.startswith(indent) else line.lstrip() for line in chunk)
    return Block(start, end, indent, text, kind, name)


def enclosing_block(source: str, line: int, end_line: int | None = None) -> Block | None:
    """The innermost function around ``line..end_line``, or, at module level or in a very
    long function, the statement(s) around it. None when the source does not parse."""
    end_line = end_line or line
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    lines = source.splitlines()
    chain = _chain(tree.body, line, end_line, [])
    if not chain:
        return None
    func_idx = max((i for i, (s, _) in enumerate(chain) if isinstance(s, _FUNCS)), default=None)
    if func_idx is not None:
        node = chain[func_idx][0]
        start, end = _first_line(node), node.end_lineno
        if end - start + 1 <= MAX_BLOCK_LINES:
            return _make(lines, start, end, "function", _qualname(chain, func_idx))
        inner = chain[func_idx + 1 :]
    else:
        inner = chain
    if not inner:
        node = chain[func_idx][0]
        return _make(lines, _first_line(node), node.end_lineno, "function", _qualname(chain, func_idx))
    # widest statement that still fits, else the innermost one
    pick = inner[-1]
    for stmt, siblings in inner:
        if stmt.end_lineno - _first_line(stmt) + 1 <= MAX_BLOCK_LINES:
            pick = (stmt, siblings)
            break
    stmt, siblings = pick
    start, end = _first_line(stmt), stmt.end_lineno
    if not isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try, *_FUNCS, ast.ClassDef)):
        # a simple statement: widen to the run of adjacent simple statements
        idx = next(i for i, s in enumerate(siblings) if s is stmt)
        lo = hi = idx
        while lo > 0 and _simple(siblings[lo - 1]) and end - _first_line(siblings[lo - 1]) < MAX_BLOCK_LINES // 2:
            lo -= 1
        while hi + 1 < len(siblings) and _simple(siblings[hi + 1]) and siblings[hi + 1].end_lineno - start < MAX_BLOCK_LINES // 2:
            hi += 1
        start, end = _first_line(siblings[lo]), siblings[hi].end_lineno
    name = _qualname(chain, len(chain) - 1) or "<module>"
    return _make(lines, start, end, "statements", name)


def _simple(stmt: ast.stmt) -> bool:
    return not hasattr(stmt, "body")


def splice(source: str, block: Block, code: str) -> str:
    """``source`` with ``block``'s lines replaced by ``code`` re-indented to the block."""
    lines = source.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    body = _dedent(code).splitlines()
    new = [(block.indent + line if line.strip() else "") + newline for line in body]
    tail = lines[block.end :]
    if block.end == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
        new[-1] = new[-1].rstrip("\r\n") if new else ""
    return "".join(lines[: block.start - 1] + new + tail)


def _dedent(code: str) -> str:
    lines = code.expandtabs(4).splitlines() if "\t" in code else code.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return ""
    first = lines[0]
    indent = first[: len(first) - len(first.lstrip())]
    return "\n".join(line[len(indent):] if line.startswith(indent) else line.lstrip() for line in lines)


def defined_names(code: str) -> set[str] | None:
    """Names a block binds in its own scope (defs, classes, assignments, imports, loop and
    ``with`` targets), plus ``name(param)`` for each parameter of a top-level def.
    None when it does not parse."""
    try:
        tree = ast.parse(_dedent(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    names: set[str] = set()
    for stmt in tree.body:
        _bind(stmt, names, top=True)
    return names


SYNC_API = frozenset(
    {
        "acquire", "release", "locked", "run", "start", "join", "is_alive", "daemon", "setDaemon", "wait", "wait_for",
        "notify", "notify_all", "set", "is_set", "clear", "submit", "map", "result", "exception", "done", "cancel",
        "shutdown", "add_done_callback", "get", "put", "get_nowait", "put_nowait", "task_done", "empty", "full",
        "qsize", "sleep", "time", "monotonic", "copy", "items", "keys", "values", "setdefault", "pop", "append",
        "Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore", "Event", "Barrier", "Thread", "Timer",
        "ThreadPoolExecutor", "ProcessPoolExecutor", "Pool", "fork", "_exit", "waitpid", "set_start_method", "close",
        "call_soon", "call_soon_threadsafe", "create_task", "ensure_future", "run_coroutine_threadsafe", "set_result",
    }
)
"""Attribute names a threading fix may legitimately stop using (``acquire``/``release`` become
``with``, ``run`` becomes ``start``, polling with ``sleep`` becomes ``Event.wait``...)."""


def read_names(code: str) -> set[str]:
    """What a block works with: every bare name it reads, and ``.attr`` for each attribute it
    touches outside ``SYNC_API``; empty if it does not parse."""
    try:
        tree = ast.parse(_dedent(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            out.add(n.id)
        elif isinstance(n, ast.Attribute) and n.attr not in SYNC_API:
            out.add("." + n.attr)
    return out


@dataclass(frozen=True)
class Shape:
    """What a block does, coarsely: a fix keeps all of it."""

    returns_value: bool
    """Some ``return`` in its own functions gives a value."""
    hand_offs: int
    """Calls that hand work to another thread or process (``Thread(...)``, ``submit``...)."""
    work_loops: int
    """``while`` loops that do more than wait (sleep, pass, break/continue/return checks)."""
    runs: int = 0
    """Calls that set work running: ``start()``, ``submit``, ``map``... (a thread built but
    never started does nothing)."""
    sleeping_loops: int = 0
    """Work loops that sleep or wait (``sleep``, ``wait``, ``wait_for``) in their body."""
    blocking_loops: int = 0
    """Work loops that block anywhere in their body: those, a blocking ``get``/``join``/
    ``recv``..., or any call given a ``timeout``. A fix may trade a sleep for either; a loop
    that slept and now does neither spins."""
    bound_read: frozenset = frozenset()
    """Parameters and ``for`` targets the block reads."""
    bound: frozenset = frozenset()
    """All parameters and ``for`` targets of the block."""


HAND_OFFS = frozenset({"Thread", "Timer", "Process", "submit", "map", "apply_async", "map_async", "start_new_thread",
                       "to_thread", "run_in_executor", "ThreadPoolExecutor", "ProcessPoolExecutor", "Pool"})
RUNS = frozenset({"start", "submit", "map", "apply_async", "map_async", "start_new_thread", "to_thread",
                  "run_in_executor", "imap", "imap_unordered", "starmap", "run"})


def shape(code: str) -> Shape | None:
    """The block's ``Shape`` (None when it does not parse)."""
    try:
        tree = ast.parse(_dedent(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    returns = hand_offs = loops = runs = sleeping = blocking = 0
    bound: set[str] = set()
    loads: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Return) and n.value is not None and not (
            isinstance(n.value, ast.Constant) and n.value.value is None
        ):
            returns += 1
        elif isinstance(n, ast.Call):
            name = _call_name(n.func)
            hand_offs += name in HAND_OFFS
            runs += name in RUNS
        elif isinstance(n, ast.While) and not all(_waits(stmt) for stmt in n.body):
            loops += 1
            sleeping += _blocks(n, SLEEPS)
            blocking += _blocks(n, PACING)
        elif isinstance(n, (ast.For, ast.AsyncFor, ast.comprehension)):
            _targets(n.target, bound)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            loads.add(n.id)
    return Shape(bool(returns), hand_offs, loops, runs, sleeping, blocking, frozenset(bound & loads), frozenset(bound))


SLEEPS = frozenset({"sleep", "wait", "wait_for"})
PACING = SLEEPS | {"get", "join", "acquire", "recv", "recvfrom", "recv_into", "accept", "select", "poll", "readline",
                   "result"}


def _blocks(loop: ast.While, names: frozenset) -> bool:
    """Some call in the loop (its test included) is named in ``names`` or given a ``timeout``
    (a method of a literal, such as ``" ".join(...)``, does not count)."""
    for n in ast.walk(loop):
        if not isinstance(n, ast.Call):
            continue
        if isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Constant):
            continue
        if _call_name(n.func) in names or any(k.arg == "timeout" for k in n.keywords):
            return True
    return False


def _call_name(func: ast.expr) -> str:
    """``f`` for ``f(...)`` and ``x.f(...)``; empty for other callees."""
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _waits(stmt: ast.stmt) -> bool:
    """A statement of a polling loop: sleep, pass, break, continue, or an ``if`` that only leaves."""
    if isinstance(stmt, (ast.Pass, ast.Break, ast.Continue)):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        return _call_name(stmt.value.func) in ("sleep", "wait")
    if isinstance(stmt, ast.If):
        return all(isinstance(s, (ast.Break, ast.Continue, ast.Return)) for s in stmt.body) and all(
            _waits(s) for s in stmt.orelse
        )
    return False


def signatures(code: str) -> dict[str, str]:
    """``{name: parameter list}`` of the top-level functions of a block (``{}`` when it does
    not parse); annotations are left out, defaults kept."""
    try:
        tree = ast.parse(_dedent(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    out = {}
    for stmt in tree.body:
        if isinstance(stmt, _FUNCS):
            args = stmt.args
            for a in args.posonlyargs + args.args + args.kwonlyargs + [x for x in (args.vararg, args.kwarg) if x]:
                a.annotation = None
            out[stmt.name] = ast.unparse(args)
    return out


def _targets(node: ast.AST, names: set[str]) -> None:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.add(sub.id)
        elif isinstance(sub, ast.Starred) and isinstance(sub.value, ast.Name):
            names.add(sub.value.id)


def _bind(stmt: ast.AST, names: set[str], top: bool = False) -> None:
    if isinstance(stmt, (*_FUNCS, ast.ClassDef)):
        names.add(stmt.name)
        if top and isinstance(stmt, _FUNCS):
            a = stmt.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
                names.add(f"{stmt.name}({arg.arg})")
        return
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        for alias in stmt.names:
            names.add(alias.asname or alias.name.split(".")[0])
        return
    if isinstance(stmt, (ast.Global, ast.Nonlocal)):
        return
    for field, value in ast.iter_fields(stmt):
        if field in ("targets", "target", "optional_vars"):
            for t in value if isinstance(value, list) else [value]:
                if t is not None:
                    _targets(t, names)
        elif field == "name" and isinstance(value, str) and isinstance(stmt, ast.ExceptHandler):
            names.add(value)
        elif isinstance(value, list):
            for v in value:
                if isinstance(v, (ast.stmt, ast.withitem, ast.ExceptHandler, ast.match_case)):
                    _bind(v, names)
        elif isinstance(value, ast.expr):
            for sub in ast.walk(value):
                if isinstance(sub, ast.NamedExpr):
                    _targets(sub.target, names)


def corresponding_block(fixed_source: str, block: Block) -> str:
    """The part of ``fixed_source`` that replaces ``block`` (dedented): the function with
    the same qualified name when ``block`` is a function and one exists, else all of it.
    Training uses this to turn a corpus example's fixed code into an answer target."""
    if block.kind == "function":
        try:
            tree = ast.parse(fixed_source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            tree = None
        if tree is not None:
            node = _find_qualname(tree.body, block.name.split("."))
            if node is not None:
                lines = fixed_source.splitlines()
                return _make(lines, _first_line(node), node.end_lineno, "function", block.name).text
    return _dedent(fixed_source)


def _find_qualname(body: list[ast.stmt], parts: list[str]):
    for stmt in body:
        if isinstance(stmt, (*_FUNCS, ast.ClassDef)) and stmt.name == parts[0]:
            if len(parts) == 1:
                return stmt if isinstance(stmt, _FUNCS) else None
            found = _find_qualname(stmt.body, parts[1:])
            if found is not None:
                return found
        elif hasattr(stmt, "body") and not isinstance(stmt, (*_FUNCS, ast.ClassDef)):
            found = _find_qualname(stmt.body, parts)
            if found is not None:
                return found
    return None


_EXITS = (ast.Return, ast.Raise, ast.Continue, ast.Break)


def faults(original: str, code: str) -> str | None:
    """Mistakes a fix does not make, found in ``code`` alone (with ``original`` for context):
    statements after a ``return``/``raise``/``continue``/``break`` in the same block, an
    ``if``/``while`` that tests a method the original called (a bound method is always true),
    and an assignment repeated right after itself that the original did not repeat (the update
    done twice)."""
    try:
        tree = ast.parse(_dedent(code))
        before = ast.parse(_dedent(original))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    called = {n.func.attr for n in ast.walk(before) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    repeated_before = {ast.dump(a) for a, b in _neighbours(before) if _same_assignment(a, b)}
    for stmt, following in _neighbours(tree):
        if isinstance(stmt, _EXITS):
            return f"has unreachable code after `{type(stmt).__name__.lower()}`"
        if _same_assignment(stmt, following) and ast.dump(stmt) not in repeated_before:
            return f"repeats `{ast.unparse(stmt)}`"
    for n in ast.walk(tree):
        if isinstance(n, (ast.If, ast.While, ast.IfExp)):
            for part in ast.walk(n.test):
                if isinstance(part, ast.Attribute) and part.attr in called and not _is_called(part, n.test):
                    return f"tests the method `{part.attr}` without calling it"
    return None


def _neighbours(tree: ast.AST):
    """Each statement with the one after it in the same body."""
    for n in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            stmts = getattr(n, field, None)
            if isinstance(stmts, list):
                yield from ((a, b) for a, b in pairwise(stmts) if isinstance(b, ast.stmt))


def _same_assignment(a: ast.AST, b: ast.AST) -> bool:
    return isinstance(a, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and ast.dump(a) == ast.dump(b)


def _is_called(attr: ast.Attribute, within: ast.AST) -> bool:
    return any(isinstance(c, ast.Call) and c.func is attr for c in ast.walk(within))


def unknown_self_attributes(new_source: str, block: Block, code: str) -> list[str]:
    """``self.x`` that ``code`` (spliced into ``new_source`` at ``block.start``) reads but its
    class never sets, defines or inherits: only for classes without base classes, and only
    attributes the original block did not read already."""
    try:
        tree = ast.parse(new_source)
        proposal = ast.parse(_dedent(code))
        original = ast.parse(_dedent(block.text))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    owner = None
    for n in ast.walk(tree):
        if isinstance(n, ast.ClassDef) and n.lineno <= block.start <= (n.end_lineno or n.lineno):
            if owner is None or n.lineno > owner.lineno:
                owner = n
    if owner is None or any(not (isinstance(b, ast.Name) and b.id == "object") for b in owner.bases) or owner.keywords:
        return []
    known = set()
    for n in ast.walk(owner):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            known.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            known.add(n.id)
        elif _self_attr(n) and isinstance(n.ctx, (ast.Store, ast.Del)):
            known.add(n.attr)
    read_before = {n.attr for n in ast.walk(original) if _self_attr(n)}
    wanted = {n.attr for n in ast.walk(proposal) if _self_attr(n) and isinstance(n.ctx, ast.Load)}
    return sorted(a for a in wanted - known - read_before if not a.startswith("__"))


def _self_attr(n: ast.AST) -> bool:
    return isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
