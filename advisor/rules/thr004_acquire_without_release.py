from __future__ import annotations

import re
from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE, Span
from .base import Edit, Finding, Fix, Rule, RuleContext


class AcquireWithoutReleaseGuarantee(Rule):
    """
    ## What it does
    Flags `lock.acquire()` whose matching `lock.release()` in the same function is not
    in a `finally` block (nor in an `except` catching everything), so an exception
    raised between the two skips the release. The lock may also be one of a container of
    locks (`drawer = self._drawers[drug]`, or a method that returns one).

    Functions that only acquire (such as `__enter__`, or helpers that return holding the
    lock) are left alone: the release belongs to the caller. So are functions that release
    only in `except` blocks: they keep the hold when they succeed (a permit handed on).

    ## Why is this bad?
    If anything between `acquire()` and `release()` raises, the lock stays held for
    ever. Every other thread that needs it then blocks: the program hangs, usually long
    after the exception was logged and forgotten.

    ## Example
    ```python
    lock.acquire()
    balance[account] -= amount
    ledger.append((account, amount))
    lock.release()
    ```

    ## Use instead
    ```python
    with lock:
        balance[account] -= amount
        ledger.append((account, amount))
    ```
    """

    code = "THR004"
    name = "acquire-without-release-guarantee"
    summary = "`acquire()` without `with` or a `try/finally` release: an exception leaks the lock"
    help = "use `with lock:` or put the code after `acquire()` in `try:` with `release()` in `finally:`"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        signals: set[str] | None = None
        lists: frozenset[str] | None = None
        for fn in ctx.model.functions.values():
            acquires = [a for a in fn.acquires if a.via == "acquire"]
            if not acquires:
                continue
            keys = {id(a.node): _key(a.node) for a in acquires}
            if not any(c.attr == "release" and _key(c.node) in keys.values() for c in fn.calls):
                continue
            parents = parent_map(fn.node)
            for acq in acquires:
                key = keys[id(acq.node)]
                if key is None:
                    continue
                if fn.is_async or isinstance(parents.get(id(acq.node)), cst.Await):
                    continue  # an asyncio primitive
                tested = _tested_acquire(acq.node, parents)
                if not tested and (not acq.blocking or not isinstance(parents.get(id(acq.node)), cst.Expr)):
                    continue  # the result is a value under test, or a try-lock used otherwise
                release = _next_release(fn.node, acq.node, key)
                if release is None or _guaranteed(acq.node, key, parents):
                    continue
                if _only_on_error(fn, key, parents):
                    continue
                if lists is None:
                    lists = _lists(ctx.module)
                region = _region(fn.node, acq.node, release, key, lists)
                if not region.raises or _gate(fn.node, key, region.passed):
                    continue
                if signals is None:
                    signals = _signal_keys(ctx.model)
                if key in signals or _private_lock(fn, key):
                    continue
                fix = _with_fix(ctx, acq, release, key, parents) if acq.blocking else None
                line = ctx.span(release).line
                yield self.finding(
                    ctx,
                    acq.node,
                    f"`{key}.acquire()` is released at line {line} but not in a `finally`: "
                    "an exception in between leaves the lock held",
                    fix=fix,
                    function=fn.qualname if fn.qualname != MODULE else None,
                )


def _only_on_error(fn, key: str, parents: dict[int, cst.CSTNode]) -> bool:
    """True when every ``release()`` of the lock in the function is in an ``except`` block:
    on success the function keeps the hold on purpose (a permit handed on to whoever ends the
    work), and the releases are error clean-up."""
    releases = [c.node for c in fn.calls if c.attr == "release" and _key(c.node) == key]
    return bool(releases) and all(_in_handler(r, parents) for r in releases)


def _in_handler(node: cst.CSTNode, parents: dict[int, cst.CSTNode]) -> bool:
    while id(node) in parents:
        node = parents[id(node)]
        if isinstance(node, (cst.ExceptHandler, cst.ExceptStarHandler)):
            return True
        if isinstance(node, (cst.FunctionDef, cst.Lambda)):
            return False
    return False


_PAIRING = frozenset({"__enter__", "__exit__", "__aenter__", "__aexit__", "acquire", "release", "lock", "unlock"})


def _signal_keys(model) -> set[str]:
    """Locks used as signals between threads: some thread releases one it did not take,
    or takes one it never releases (waiting for another thread to release it)."""
    out: set[str] = set()
    for fn in model.functions.values():
        if fn.name in _PAIRING or not (model.contexts.get(fn.qualname, frozenset()) - {"main"}):
            continue
        taken = {_key(a.node) for a in fn.acquires if a.via == "acquire"}
        released = {_key(c.node) for c in fn.calls if c.attr == "release"}
        out.update(k for k in taken ^ released if k)
    return out


def _private_lock(fn, key: str) -> bool:
    """True for a lock created by a call in this function and never shared: not used in a
    nested function and not passed to a call, so a leaked hold cannot block anyone."""
    if "." in key or not isinstance(fn.node, cst.FunctionDef):
        return False
    finder = _Escapes(key)
    fn.node.body.visit(finder)
    return finder.created and not finder.escapes


_INSPECTORS = frozenset({"repr", "str", "print", "len", "id", "type", "isinstance", "hash", "format", "bool"})


class _Escapes(cst.CSTVisitor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.created = False
        self.escapes = False
        self.depth = 0

    def visit_Assign(self, node: cst.Assign) -> None:
        if self.depth == 0 and _creates_lock(node.value) and any(
            isinstance(t.target, cst.Name) and t.target.value == self.name for t in node.targets
        ):
            self.created = True
        if _mentions(node.value, self.name):
            self.escapes = True

    def _enter(self, node: cst.CSTNode) -> None:
        self.depth += 1

    def _leave(self, node: cst.CSTNode) -> None:
        self.depth -= 1

    visit_FunctionDef = _enter  # type: ignore[assignment]
    leave_FunctionDef = _leave  # type: ignore[assignment]
    visit_Lambda = _enter  # type: ignore[assignment]
    leave_Lambda = _leave  # type: ignore[assignment]

    def visit_Name(self, node: cst.Name) -> None:
        if self.depth and node.value == self.name:
            self.escapes = True

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value in _INSPECTORS:
            return
        if any(_mentions(arg.value, self.name) for arg in node.args):
            self.escapes = True

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None and _mentions(node.value, self.name):
            self.escapes = True

    visit_Yield = visit_Return  # type: ignore[assignment]


def _creates_lock(expr: cst.BaseExpression) -> bool:
    """``threading.Lock()``, ``self.locktype()``, ``Condition()``: a call that makes a new
    primitive (not one that fetches a shared one, like ``locks.get(key)``)."""
    from ..analysis.extract import dotted

    if not isinstance(expr, cst.Call):
        return False
    name = (dotted(expr.func) or "").rsplit(".", 1)[-1]
    return bool(name) and (name[0].isupper() or bool(_FACTORY.search(name)))


_FACTORY = re.compile(r"(?i)lock|cond|sem|allocate")


def _mentions(expr: cst.CSTNode, name: str) -> bool:
    if isinstance(expr, cst.Name):
        return expr.value == name
    if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
        return any(_mentions(e.value, name) for e in expr.elements)
    return False


def _key(call: cst.Call) -> str | None:
    from ..analysis.extract import dotted

    func = call.func
    if isinstance(func, cst.Attribute):
        return dotted(func.value)
    return None


def _is_method_call(node: cst.CSTNode, key: str, attr: str) -> bool:
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == attr
        and _key(node) == key
    )


def parent_map(root: cst.CSTNode) -> dict[int, cst.CSTNode]:
    """id(child) -> parent for every node under ``root``."""
    parents: dict[int, cst.CSTNode] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            parents[id(child)] = node
            stack.append(child)
    return parents


def ancestors(node: cst.CSTNode, parents: dict[int, cst.CSTNode]) -> Iterable[tuple[cst.CSTNode, cst.CSTNode]]:
    """(child, parent) pairs walking up from ``node``."""
    while id(node) in parents:
        parent = parents[id(node)]
        yield node, parent
        node = parent


def _releases(node: cst.CSTNode, key: str) -> bool:
    finder = _CallFinder(key, "release")
    node.visit(finder)
    return bool(finder.found)


class _CallFinder(cst.CSTVisitor):
    def __init__(self, key: str, attr: str) -> None:
        self.key = key
        self.attr = attr
        self.found: list[cst.Call] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if _is_method_call(node, self.key, self.attr):
            self.found.append(node)


def _catches(handler: cst.ExceptHandler, names: tuple[str, ...]) -> bool:
    from ..analysis.extract import dotted

    return handler.type is None or dotted(handler.type) in names


def _try_releases(stmt: cst.CSTNode, key: str, hand_back: bool = False) -> bool:
    """True when ``stmt`` is a ``try`` releasing the lock in ``finally`` or in a handler
    catching everything; ``except Exception`` also counts when the lock is otherwise
    handed back to the caller (``hand_back``): a set-up step that cleans up on failure."""
    if not isinstance(stmt, cst.Try):
        return False
    if stmt.finalbody is not None and _releases(stmt.finalbody, key):
        return True
    names = ("BaseException", "Exception") if hand_back else ("BaseException",)
    return any(_catches(h, names) and _releases(h, key) for h in stmt.handlers)


def _block_body(node: cst.CSTNode) -> tuple | None:
    if isinstance(node, (cst.IndentedBlock, cst.Module)):
        return tuple(node.body)
    return None


def _guaranteed(call: cst.Call, key: str, parents: dict[int, cst.CSTNode]) -> bool:
    """True when some ``try`` releases the lock on every path out of the code after ``call``."""
    for child, parent in ancestors(call, parents):
        if isinstance(parent, cst.Try) and child is parent.body and _try_releases(parent, key):
            return True
        if isinstance(parent, cst.Finally):
            return True  # re-acquired in a finally: restoring the caller's hold
        if isinstance(parent, cst.With) and any(_key_of_expr(i.item) == key for i in parent.items):
            return True  # temporarily released and re-taken inside `with lock:`
        if isinstance(parent, (cst.If, cst.While)) and _is_test(child, parent):
            branches = [parent.body]
            if isinstance(parent.orelse, cst.Else):
                branches.append(parent.orelse.body)
            if any(_try_releases(s, key) for b in branches for s in _block_body(b) or ()):
                return True
        body = _block_body(parent)
        if body is not None:
            index = next(i for i, s in enumerate(body) if s is child)
            rest = body[index + 1:]
            for k, stmt in enumerate(rest):
                if _try_releases(stmt, key, hand_back=not any(_releases(r, key) for r in rest[k + 1:])):
                    return True
        if isinstance(parent, (cst.FunctionDef, cst.Lambda)):
            break
    return False


def _is_test(child: cst.CSTNode, parent: cst.CSTNode) -> bool:
    return child is getattr(parent, "test", None)


def _tested_acquire(call: cst.Call, parents: dict[int, cst.CSTNode]) -> bool:
    """True for `if lock.acquire(False):` and `if not lock.acquire(False):`."""
    node: cst.CSTNode = call
    parent = parents.get(id(node))
    if isinstance(parent, cst.UnaryOperation) and isinstance(parent.operator, cst.Not):
        node, parent = parent, parents.get(id(parent))
    return isinstance(parent, cst.If) and parent.test is node


def _key_of_expr(expr: cst.BaseExpression) -> str | None:
    from ..analysis.extract import dotted

    return dotted(expr)


_QUIET_METHODS = frozenset({"acquire", "release", "notify", "notify_all", "notifyAll", "set", "clear", "is_set", "locked"})
"""Synchronisation calls that do not raise when used correctly."""
_QUIET_ADDS = frozenset({"append", "appendleft"})
"""``list.append(x)`` / ``deque.appendleft(x)``: one argument, nothing to raise."""
_QUIET_FUNCTIONS = frozenset(
    {"len", "id", "time.monotonic", "time.time", "time.perf_counter", "monotonic", "perf_counter", "time.sleep"}
)


def _quiet_call(node: cst.Call, key: str, lists: frozenset[str]) -> bool:
    """Calls that cannot raise in practice: synchronisation calls, ``append`` of one value to
    a list or deque the module creates (``lists``), clock reads, ``len``, and ``wait()`` on
    the held lock's own condition."""
    from ..analysis.extract import dotted

    func = node.func
    if isinstance(func, cst.Attribute):
        attr = func.attr.value
        if attr in _QUIET_METHODS:
            return True
        if attr in _QUIET_ADDS and len(node.args) == 1 and not node.args[0].keyword and not node.args[0].star:
            return dotted(func.value) in lists
        if attr == "wait" and key and _is_method_call(node, key, "wait"):
            return True
    return dotted(func) in _QUIET_FUNCTIONS


class _Order(cst.CSTVisitor):
    """Walks a function in source order, noting the first release after an acquire and
    whether anything between them can raise."""

    def __init__(
        self, key: str, acquire: cst.Call, release: cst.Call | None = None, lists: frozenset[str] = frozenset()
    ) -> None:
        self.key = key
        self.lists = lists
        self._failure_branch: cst.BaseSuite | None = None
        self.acquire = acquire
        self.release = release
        self.state = "before"
        self.found: cst.Call | None = None
        self.raises = False
        self.stores: set[int] = set()
        self.passed: set[str] = set()
        """Names passed as arguments between acquire and release."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_If(self, node: cst.If) -> bool:
        """``if not lock.acquire(False): raise ...``: that branch runs without the lock."""
        test = node.test
        if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not) and test.expression is self.acquire:
            self._failure_branch = node.body
        return True

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> bool:
        return node is not self._failure_branch

    def leave_Call(self, node: cst.Call) -> None:
        if node is self.acquire:
            self.state = "between"

    def visit_Call(self, node: cst.Call) -> bool:
        if self.state != "between":
            return True
        if self.release is None and _is_method_call(node, self.key, "release"):
            self.found = node
            self.state = "after"
            return False
        if self.release is None and _is_method_call(node, self.key, "acquire"):
            self.state = "after"
            return False
        if node is self.release:
            self.state = "after"
            return False
        if not _quiet_call(node, self.key, self.lists):
            self.raises = True
        return True

    def visit_Arg(self, node: cst.Arg) -> None:
        if self.state == "between" and isinstance(node.value, cst.Name):
            self.passed.add(node.value.value)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self.stores.add(id(node.target))

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if self.state == "between" and id(node) not in self.stores:
            self.raises = True

    def visit_Raise(self, node: cst.Raise) -> None:
        if self.state == "between":
            self.raises = True

    visit_Assert = visit_Raise  # type: ignore[assignment]
    visit_Await = visit_Raise  # type: ignore[assignment]
    visit_Yield = visit_Raise  # type: ignore[assignment]


def _lists(module: cst.Module) -> frozenset[str]:
    """Names and attributes (``self._queue``) the module binds to a list or deque."""
    from ..analysis.extract import dotted

    out: set[str] = set()

    def fresh(value: cst.BaseExpression | None) -> bool:
        if isinstance(value, cst.Call):
            return (dotted(value.func) or "").rsplit(".", 1)[-1] in ("list", "deque")
        return isinstance(value, (cst.List, cst.ListComp))

    class V(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if fresh(node.value):
                out.update(filter(None, (dotted(t.target) for t in node.targets)))

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            if fresh(node.value) and dotted(node.target):
                out.add(dotted(node.target))

    module.visit(V())
    return frozenset(out)


def _next_release(fn_node: cst.CSTNode, acquire: cst.Call, key: str) -> cst.Call | None:
    order = _Order(key, acquire)
    _walk_body(fn_node, order)
    return order.found


def _region(fn_node: cst.CSTNode, acquire: cst.Call, release: cst.Call, key: str, lists: frozenset[str]) -> _Order:
    order = _Order(key, acquire, release, lists)
    _walk_body(fn_node, order)
    return order


def _gate(fn_node: cst.CSTNode, key: str, passed: set[str]) -> bool:
    """True when a nested function that uses the lock is handed to a call while the lock
    is held: threads are started behind a closed gate, on purpose."""
    if not passed or not isinstance(fn_node, cst.FunctionDef):
        return False
    for stmt in fn_node.body.body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value in passed:
            if _uses(stmt, key):
                return True
    return False


def _uses(node: cst.CSTNode, key: str) -> bool:
    finder = _Mentions(key)
    node.visit(finder)
    return finder.found


class _Mentions(cst.CSTVisitor):
    def __init__(self, key: str) -> None:
        self.key = key
        self.found = False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        from ..analysis.extract import dotted

        if dotted(node) == self.key:
            self.found = True
        return not self.found

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.key:
            self.found = True


def _walk_body(fn_node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    if isinstance(fn_node, (cst.FunctionDef, cst.Lambda)):
        fn_node.body.visit(visitor)
    else:
        fn_node.visit(visitor)


class _Exits(cst.CSTVisitor):
    def __init__(self, key: str) -> None:
        self.key = key
        self.found = False

    def _hit(self, node: cst.CSTNode) -> None:
        self.found = True

    visit_Return = _hit  # type: ignore[assignment]
    visit_Break = _hit  # type: ignore[assignment]
    visit_Continue = _hit  # type: ignore[assignment]
    visit_Yield = _hit  # type: ignore[assignment]
    visit_Await = _hit  # type: ignore[assignment]
    visit_Global = _hit  # type: ignore[assignment]
    visit_Nonlocal = _hit  # type: ignore[assignment]

    def visit_Call(self, node: cst.Call) -> None:
        if _is_method_call(node, self.key, "acquire") or _is_method_call(node, self.key, "release"):
            self.found = True


def _with_fix(ctx: RuleContext, acq, release: cst.Call, key: str, parents) -> Fix | None:
    """`acquire(); body; release()` in one block -> `with lock: body`, when equivalent."""
    if acq.node.args:
        return None
    start = _whole_statement(acq.node, parents)
    end = _whole_statement(release, parents)
    if start is None or end is None:
        return None
    block = parents.get(id(start))
    if block is None or block is not parents.get(id(end)):
        return None
    body = list(_block_body(block) or ())
    if not body:
        return None
    i = next(k for k, s in enumerate(body) if s is start)
    j = next(k for k, s in enumerate(body) if s is end)
    region = body[i + 1:j]
    if not region:
        return None
    exits = _Exits(key)
    for stmt in region:
        stmt.visit(exits)
    if exits.found:
        return None
    func = acq.node.func
    assert isinstance(func, cst.Attribute)
    with_stmt = cst.With(
        items=[cst.WithItem(func.value)],
        body=cst.IndentedBlock(body=region, header=start.trailing_whitespace),
    )
    first, last = ctx.span(start), ctx.span(end)
    indent = ctx.line(first.line)[: first.column]
    if indent.strip():
        return None
    # `with` needs __enter__/__exit__: certain for threading's primitives, not for an object of
    # unknown type that merely has acquire()/release() (a cache backend's mutex)
    known = acq.kind in ("Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore")
    return Fix(
        "safe" if known else "unsafe",
        (Edit(Span(first.line, 0, last.end_line + 1, 0), _statement_code(ctx.module, with_stmt, indent)),),
        f"Replace the `acquire()`/`release()` pair with `with {key}:`",
    )


def _statement_code(module: cst.Module, stmt: cst.BaseStatement, indent: str) -> str:
    """The code of ``stmt`` as the module would print it at indentation ``indent`` (string
    literals and comments inside it untouched). Only the statement is generated: printing the
    whole module after replacing it costs time in proportion to the file, for every fix."""
    from libcst._nodes.internal import CodegenState

    state = CodegenState(default_indent=module.default_indent, default_newline=module.default_newline)
    if indent:
        state.increase_indent(indent)
    stmt._codegen(state)
    return "".join(state.tokens)


def _whole_statement(call: cst.Call, parents) -> cst.SimpleStatementLine | None:
    expr = parents.get(id(call))
    line = parents.get(id(expr)) if isinstance(expr, cst.Expr) else None
    if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
        return line
    return None
