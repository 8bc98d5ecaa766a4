from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE, Span
from .base import Edit, Finding, Fix, Rule, RuleContext


class AcquireWithoutReleaseGuarantee(Rule):
    """
    ## What it does
    Flags `lock.acquire()` whose matching `lock.release()` in the same function is not
    in a `finally` block (nor in an `except` that catches everything), so an exception
    raised between the two skips the release.

    Functions that only acquire (such as `__enter__`, or helpers that return holding the
    lock) are left alone: the release belongs to the caller.

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
                release = _next_release(fn.node, acq.node, key)
                if not acq.blocking and not _tested_acquire(acq.node, parents):
                    continue
                if release is None or _guaranteed(acq.node, key, parents):
                    continue
                if not _region_can_raise(fn.node, acq.node, release):
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


def module_edit(old: str, new: str) -> Edit:
    """One edit turning ``old`` into ``new``, spanning whole lines that differ."""
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    return Edit(Span(start + 1, 0, end_a + 1, 0), "".join(b[start:end_b]))


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


def _catches_all(handler: cst.ExceptHandler) -> bool:
    from ..analysis.extract import dotted

    return handler.type is None or dotted(handler.type) in ("BaseException", "builtins.BaseException")


def _try_releases(stmt: cst.CSTNode, key: str) -> bool:
    if not isinstance(stmt, cst.Try):
        return False
    if stmt.finalbody is not None and _releases(stmt.finalbody, key):
        return True
    return any(_catches_all(h) and _releases(h, key) for h in stmt.handlers)


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
            if any(_try_releases(s, key) for s in body[index + 1:]):
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


class _Order(cst.CSTVisitor):
    """Walks a function in source order, noting the first release after an acquire and
    whether anything between them can raise."""

    def __init__(self, key: str, acquire: cst.Call, release: cst.Call | None = None) -> None:
        self.key = key
        self.acquire = acquire
        self.release = release
        self.state = "before"
        self.found: cst.Call | None = None
        self.raises = False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

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
        self.raises = True
        return True

    def visit_Raise(self, node: cst.Raise) -> None:
        if self.state == "between":
            self.raises = True

    visit_Assert = visit_Raise  # type: ignore[assignment]
    visit_Subscript = visit_Raise  # type: ignore[assignment]
    visit_Await = visit_Raise  # type: ignore[assignment]
    visit_Yield = visit_Raise  # type: ignore[assignment]


def _next_release(fn_node: cst.CSTNode, acquire: cst.Call, key: str) -> cst.Call | None:
    order = _Order(key, acquire)
    _walk_body(fn_node, order)
    return order.found


def _region_can_raise(fn_node: cst.CSTNode, acquire: cst.Call, release: cst.Call) -> bool:
    order = _Order("", acquire, release)
    _walk_body(fn_node, order)
    return order.raises


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
        leading_lines=start.leading_lines,
    )
    new_body = body[:i] + [with_stmt] + body[j + 1:]
    if isinstance(block, cst.Module):
        new_module = block.with_changes(body=new_body)
    else:
        new_module = ctx.module.deep_replace(block, block.with_changes(body=new_body))
    assert isinstance(new_module, cst.Module)
    return Fix(
        "safe",
        (module_edit(ctx.module.code, new_module.code),),
        f"Replace the `acquire()`/`release()` pair with `with {key}:`",
    )


def _whole_statement(call: cst.Call, parents) -> cst.SimpleStatementLine | None:
    expr = parents.get(id(call))
    line = parents.get(id(expr)) if isinstance(expr, cst.Expr) else None
    if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
        return line
    return None
