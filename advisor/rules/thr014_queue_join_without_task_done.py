from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import Call, ModuleModel
from ._race import accesses_at, calls_in, chain, function_label, is_broad_handler
from .base import Finding, Rule, RuleContext

SAFE_CALLS = frozenset(
    {
        "print", "len", "isinstance", "str", "int", "float", "bool", "repr", "id", "type",
        "append", "appendleft", "add", "extend", "put", "put_nowait", "set", "notify", "notify_all",
        "debug", "info", "warning", "error", "exception", "critical", "log", "task_done", "get", "get_nowait",
    }
)


class QueueJoinWithoutTaskDone(Rule):
    """
    ## What it does
    Flags `q.join()` on a `queue.Queue` whose consumers never call `q.task_done()`, and
    consumers whose `task_done()` is skipped when processing an item raises (it is not
    in a `finally` block) or when a `continue` moves on to the next item first (in an
    `except` handler too).

    ## Why is this bad?
    `Queue.join()` returns only when `task_done()` has been called once for every item
    ever put. Without it, or when one item's processing raises and the call is skipped,
    the count never reaches zero and `join()` blocks forever: the program hangs at
    shutdown with no error.

    ## Example
    ```python
    def worker():
        while True:
            url = tasks.get()
            download(url)
            tasks.task_done()
    ```

    ## Use instead
    ```python
    def worker():
        while True:
            url = tasks.get()
            try:
                download(url)
            finally:
                tasks.task_done()
    ```
    """

    code = "THR014"
    name = "queue-join-without-task-done"
    summary = "`Queue.join()` with consumers that never call `task_done()` or skip it when processing fails"
    help = "call `q.task_done()` once per `q.get()`, in a `finally:` block so it also runs when processing raises"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        joins = [c for c in model.calls if c.attr == "join" and c.receiver_kind == "Queue" and not c.node.args]
        done_refs = {c.receiver for c in model.calls if c.attr == "task_done"}
        reported: set[int] = set()
        for join in joins:
            aliases = _aliases(model, join.receiver)
            gets = [c for c in model.calls if c.attr in ("get", "get_nowait") and c.receiver in aliases]
            dones = [c for c in model.calls if c.attr == "task_done" and c.receiver in aliases]
            name = ctx.code(join.node.func.value)
            line = ctx.span(join.node).line
            if not dones:
                if gets and done_refs <= _other_queues(model, aliases):
                    yield self.finding(
                        ctx,
                        join.node,
                        f"`{name}.join()` waits for `task_done()` on every item, but the consumers of `{name}` never call it; it blocks forever",
                        function=function_label(join.function),
                    )
                continue
            done_ids = {id(d.node) for d in dones}
            for get in gets:
                skip = _continue_without_done(model, get, done_ids)
                if skip is not None and id(skip) not in reported:
                    reported.add(id(skip))
                    yield self.finding(
                        ctx,
                        skip,
                        f"`continue` skips `task_done()` for the item taken from `{name}`; "
                        f"`{name}.join()` (line {line}) then waits forever",
                        function=function_label(get.function),
                    )
                done = _skippable(model, ctx, get, dones)
                if done is None or id(done.node) in reported:
                    continue
                reported.add(id(done.node))
                yield self.finding(
                    ctx,
                    done.node,
                    f"`task_done()` is skipped when processing the item raises; `{name}.join()` (line {line}) then waits forever",
                    function=function_label(done.function),
                )


def _aliases(model: ModuleModel, ref: str | None) -> set[str]:
    """``ref`` and the parameters of thread targets it is passed to positionally."""
    if ref is None:
        return set()
    out = {ref}
    for spawn in model.spawns:
        if spawn.args is None or not isinstance(spawn.args.value, (cst.Tuple, cst.List)) or not spawn.targets:
            continue
        target = model.functions.get(spawn.targets[0])
        if target is None:
            continue
        params = list(target.params)
        if target.class_name and params and "staticmethod" not in target.decorators:
            params = params[1:]
        for i, el in enumerate(spawn.args.value.elements):
            if i < len(params) and _arg_ref(model, spawn.function, el.value) == ref:
                out.add(f"l:{target.qualname}.{params[i]}")
    return out


def _arg_ref(model: ModuleModel, function: str, expr: cst.BaseExpression) -> str | None:
    for acc in accesses_at(model, expr):
        return acc.ref
    if isinstance(expr, cst.Name):
        fn = model.functions.get(function)
        if fn is not None and expr.value in fn.local_names:
            return f"l:{function}.{expr.value}"
        return f"g:{expr.value}"
    return None


def _other_queues(model: ModuleModel, aliases: set[str]) -> set[str]:
    """Refs known to denote other queues than ours (and their aliases)."""
    out: set[str] = set()
    for ref, prim in model.primitives.items():
        if prim.kind == "Queue" and ref not in aliases:
            out |= _aliases(model, ref)
    return out - aliases


def _statement(up: list[cst.CSTNode]) -> tuple[cst.CSTNode, cst.IndentedBlock] | None:
    for i, node in enumerate(up[:-1]):
        if isinstance(node, cst.SimpleStatementLine):
            parent = up[i + 1]
            if isinstance(parent, cst.IndentedBlock):
                return node, parent
            return None
    return None


def _skippable(model: ModuleModel, ctx: RuleContext, get: Call, dones: list[Call]) -> Call | None:
    """The ``task_done`` after ``get`` in the same block, when a risky statement sits between."""
    root = model.functions[get.function].node
    located = _statement(chain(model, root, get.node))
    if located is None:
        return None
    get_stmt, block = located
    for done in dones:
        if done.function != get.function:
            continue
        found = _statement(chain(model, root, done.node))
        if found is None or found[1] is not block:
            continue
        body = list(block.body)
        start, end = body.index(get_stmt), body.index(found[0])
        if end <= start:
            continue
        if any(_risky(stmt) for stmt in body[start + 1 : end]):
            return done
    return None


def _continue_without_done(model: ModuleModel, get: Call, done_ids: set[int]) -> cst.Continue | None:
    """A ``continue`` after ``item = q.get()`` in a consumer loop, on a path that has not
    called ``task_done()`` yet (and is not covered by a ``finally`` that does)."""
    root = model.functions[get.function].node
    located = _statement(chain(model, root, get.node))
    if located is None:
        return None
    get_stmt, block = located
    body = list(block.body)
    return _skip_in(body[body.index(get_stmt) + 1 :], done_ids)


def _skip_in(stmts, done_ids: set[int]) -> cst.Continue | None:
    for stmt in stmts:
        if isinstance(stmt, cst.SimpleStatementLine):
            if any(id(c) in done_ids for c in calls_in(stmt)):
                return None
            for small in stmt.body:
                if isinstance(small, cst.Continue):
                    return small
        elif isinstance(stmt, cst.If):
            branch, bodies = stmt, []
            while isinstance(branch, cst.If):
                bodies.append(branch.body)
                branch = branch.orelse
            if isinstance(branch, cst.Else):
                bodies.append(branch.body)
            for body in bodies:
                found = _skip_in(_stmts(body), done_ids)
                if found is not None:
                    return found
            if branch is None or not all(any(id(c) in done_ids for c in calls_in(b)) for b in bodies):
                continue  # some path goes on without task_done()
        elif isinstance(stmt, cst.Try):
            if stmt.finalbody is not None and any(id(c) in done_ids for c in calls_in(stmt.finalbody)):
                return None
            for part in (stmt.body, *(h.body for h in stmt.handlers)):
                found = _skip_in(_stmts(part), done_ids)
                if found is not None:
                    return found
        elif isinstance(stmt, cst.With):
            found = _skip_in(_stmts(stmt.body), done_ids)
            if found is not None:
                return found
        if any(id(c) in done_ids for c in calls_in(stmt)):
            return None
    return None


def _stmts(suite: cst.BaseSuite) -> list:
    return list(suite.body) if isinstance(suite, cst.IndentedBlock) else [cst.SimpleStatementLine(list(suite.body))]


def _risky(stmt: cst.CSTNode) -> bool:
    if isinstance(stmt, cst.Try) and any(is_broad_handler(h) for h in stmt.handlers):
        return False
    finder = _CallFinder()
    stmt.visit(finder)
    return finder.risky


class _CallFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.risky = False

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
        if name not in SAFE_CALLS:
            self.risky = True

    def visit_Try(self, node: cst.Try) -> bool:
        return not any(is_broad_handler(h) for h in node.handlers)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False
