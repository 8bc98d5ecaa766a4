from __future__ import annotations

import re
from typing import Iterable

import libcst as cst

from ..analysis.model import ModuleModel, Spawn
from ._race import call_at, chain, function_label, is_broad_handler
from .base import Finding, Rule, RuleContext

EXECUTOR_NAME = re.compile(r"executor|(^|_)(pool|tpe|exe|ex)$", re.I)
WAIT = ("concurrent.futures.wait",)


class FutureExceptionLost(Rule):
    """
    ## What it does
    Flags `executor.submit(...)` whose future is thrown away or never looked at (no
    `result()`, `exception()`, `as_completed`, `wait` followed by a check, or
    `add_done_callback`; not returned, stored or passed on), and `executor.map(...)`
    whose result iterator is discarded. A task that catches every exception itself (or
    only calls functions that do) loses nothing and is not reported.

    ## Why is this bad?
    An exception raised by the submitted function is stored in its future and re-raised
    only when someone asks for the result. A discarded future swallows the error: the
    work silently did not happen and nothing is logged.

    ## Example
    ```python
    with ThreadPoolExecutor() as pool:
        for path in paths:
            pool.submit(upload, path)
    ```

    ## Use instead
    ```python
    with ThreadPoolExecutor() as pool:
        futures = [pool.submit(upload, path) for path in paths]
        for future in as_completed(futures):
            future.result()
    ```
    """

    code = "THR013"
    name = "future-exception-lost"
    summary = "executor future discarded or never inspected: exceptions in the task are silently lost"
    help = "keep the future and call `result()` (or use `as_completed`, or `add_done_callback` that checks `exception()`)"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        for spawn in model.spawns:
            if spawn.kind not in ("submit", "map") or not _is_thread_executor(model, spawn):
                continue
            if _swallows(model, spawn):
                continue
            fn = model.functions[spawn.function]
            enclosing = chain(model, fn.node, spawn.node)
            verdict = _fate(model, fn.node, spawn, enclosing)
            if verdict is None:
                continue
            target = _target_text(ctx, spawn)
            if spawn.kind == "map":
                message = (
                    f"the iterator returned by `{_receiver(ctx, spawn)}.map(...)` is discarded; "
                    f"an exception raised by {target} is never re-raised"
                )
            else:
                message = f"the future of `{_receiver(ctx, spawn)}.submit(...)` {verdict}; an exception raised by {target} is silently lost"
            yield self.finding(ctx, spawn.node, message, function=function_label(spawn.function))


def _receiver(ctx: RuleContext, spawn: Spawn) -> str:
    func = spawn.node.func
    return ctx.code(func.value) if isinstance(func, cst.Attribute) else "executor"


def _target_text(ctx: RuleContext, spawn: Spawn) -> str:
    if spawn.target is None:
        return "the task"
    text = ctx.code(spawn.target)
    return f"`{text}`" if len(text) <= 40 and "\n" not in text else "the task"


def _is_thread_executor(model: ModuleModel, spawn: Spawn) -> bool:
    func = spawn.node.func
    if not isinstance(func, cst.Attribute):
        return False
    if spawn.certain:
        return model.primitive_kind(spawn.executor) == "ThreadPoolExecutor"
    if not any(v == "concurrent.futures" or v.startswith("concurrent.futures.") for v in model.imports.values()):
        return False
    name = func.value.attr.value if isinstance(func.value, cst.Attribute) else getattr(func.value, "value", "")
    if spawn.kind == "map":
        return "executor" in str(name).lower()
    return bool(EXECUTOR_NAME.search(str(name)))


def _fate(model: ModuleModel, root: cst.CSTNode, spawn: Spawn, enclosing: list[cst.CSTNode]) -> str | None:
    """Why the future is lost, or None when it is (or may be) inspected."""
    if not enclosing:
        return None
    parent = enclosing[0]
    if isinstance(parent, cst.Expr):
        return "is discarded"
    if spawn.kind == "map":
        return None
    if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
        name = parent.targets[0].target.value
        return _name_fate(model, root, name, skip=parent.targets[0].target, single=True)
    if isinstance(parent, cst.Arg) and len(enclosing) >= 3:
        call, stmt = enclosing[1], enclosing[2]
        if (
            isinstance(call, cst.Call)
            and isinstance(stmt, cst.Expr)
            and isinstance(call.func, cst.Attribute)
            and call.func.attr.value == "append"
            and isinstance(call.func.value, cst.Name)
        ):
            return _name_fate(model, root, call.func.value.value, skip=None, single=False)
    if isinstance(parent, (cst.ListComp,)) and len(enclosing) >= 3:
        assign = enclosing[1] if isinstance(enclosing[1], cst.Assign) else None
        if assign and len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name):
            return _name_fate(model, root, assign.targets[0].target.value, skip=assign.targets[0].target, single=False)
    return None


def _name_fate(model: ModuleModel, root: cst.CSTNode, name: str, skip, single: bool) -> str | None:
    """Classify every other use of local ``name`` (the future, or a list of futures)."""
    finder = _Uses(name)
    root.visit(finder)
    waited = False
    for node in finder.uses:
        if node is skip:
            continue
        up = chain(model, root, node)
        if not up:
            return None
        parent = up[0]
        if isinstance(parent, cst.AssignTarget) or (isinstance(parent, cst.AugAssign) and parent.target is node):
            continue
        if not single and isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value == "append":
            continue
        if not single and isinstance(parent, cst.Arg) and len(up) >= 3:
            call = up[1]
            info = call_at(model, call)
            if info is not None and info.qualname in WAIT and isinstance(up[2], cst.Expr):
                waited = True
                continue
        return None
    if waited:
        return "is only waited for, never checked"
    return "is never inspected" if single else "is collected but never inspected"


class _Uses(cst.CSTVisitor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.uses: list[cst.Name] = []

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name:
            self.uses.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False


def _swallows(model: ModuleModel, spawn: Spawn) -> bool:
    """The submitted function catches every exception itself."""
    return any(_catches_all(model, target) for target in spawn.targets)


def _catches_all(model: ModuleModel, function: str, depth: int = 2) -> bool:
    """``function``'s body catches every exception, or is one call to functions that do
    (``def _run(): self.dispatch(msg)`` where ``dispatch`` is all ``try: ... except Exception``)."""
    info = model.functions.get(function)
    if info is None or not isinstance(info.node, cst.FunctionDef) or not isinstance(info.node.body, cst.IndentedBlock):
        return False
    body = info.node.body.body
    if _guarded(body):
        return True
    if depth == 0 or len(body) != 1 or not isinstance(body[0], cst.SimpleStatementLine) or len(body[0].body) != 1:
        return False
    small = body[0].body[0]
    value = small.value if isinstance(small, (cst.Expr, cst.Return)) else None
    if not isinstance(value, cst.Call) or any(_has_call(a.value) for a in value.args):
        return False
    call = call_at(model, value)
    return call is not None and bool(call.callees) and all(_catches_all(model, c, depth - 1) for c in call.callees)


def _guarded(stmts) -> bool:
    tries = 0
    for stmt in stmts:
        if isinstance(stmt, cst.Try) and any(is_broad_handler(h) for h in stmt.handlers):
            tries += 1
        elif isinstance(stmt, (cst.While, cst.For)) and isinstance(stmt.body, cst.IndentedBlock):
            if not _guarded(stmt.body.body):
                return False
            tries += 1
        elif isinstance(stmt, cst.SimpleStatementLine) and all(
            isinstance(s, (cst.Expr, cst.Assign, cst.AnnAssign, cst.Pass, cst.Return)) and (not _has_call(s) or _log_call(s))
            for s in stmt.body
        ):
            continue
        else:
            return False
    return tries > 0


LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})


def _log_call(stmt: cst.BaseSmallStatement) -> bool:
    """``logger.debug(f"...")`` as a statement: logging does not raise into the caller."""
    if not (isinstance(stmt, cst.Expr) and isinstance(stmt.value, cst.Call)):
        return False
    func = stmt.value.func
    return isinstance(func, cst.Attribute) and func.attr.value in LOG_METHODS and not any(
        _has_call(a.value) for a in stmt.value.args
    )


def _has_call(node: cst.CSTNode) -> bool:
    found = []

    class V(cst.CSTVisitor):
        def visit_Call(self, n: cst.Call) -> bool:
            found.append(n)
            return False

    node.visit(V())
    return bool(found)
