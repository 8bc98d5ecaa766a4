from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import Call, FunctionInfo, ModuleModel, Primitive
from ._race import names_in
from ._threadctx import ancestry, function_label
from .base import Edit, Finding, Fix, Rule, RuleContext


class SemaphoreOverRelease(Rule):
    """
    ## What it does
    Flags `release()` calls on a plain `threading.Semaphore` that can run more often than the
    matching `acquire()`: a release inside `with sem:` (released twice), a release in a `try`
    body or `except` handler that a `finally` (or the code after the `try`) releases again, a
    release inside a loop that acquired once before the loop, and a release after a
    non-blocking or timed `acquire()` whose result was ignored, or tested (`if not
    sem.acquire(timeout=t): return`) inside a `try` whose `finally` releases anyway.

    ## Why is this bad?
    A `Semaphore` has no upper bound: every extra `release()` silently raises its counter, so a
    pool meant to allow 4 concurrent downloads allows 5, then 6... The bug never raises; it
    shows up later as overload. `BoundedSemaphore` raises `ValueError` on the extra release.

    ## Example
    ```python
    slots = threading.Semaphore(4)

    def fetch(url):
        slots.acquire()
        try:
            data = download(url)
            slots.release()
            return data
        finally:
            slots.release()
    ```

    ## Use instead
    ```python
    slots = threading.BoundedSemaphore(4)

    def fetch(url):
        with slots:
            return download(url)
    ```
    """

    code = "THR018"
    name = "semaphore-over-release"
    summary = "`Semaphore.release()` can run more often than `acquire()`, silently raising the limit"
    help = "release exactly once per acquire (`with sem:`), and use `BoundedSemaphore` so an extra release raises"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        sems = {ref: p for ref, p in model.primitives.items() if p.kind == "Semaphore"}
        if not sems:
            return
        for fn in model.functions.values():
            releases = [c for c in fn.calls if c.attr == "release" and c.receiver in sems and not c.node.args]
            if not releases:
                continue
            for call, reason in _over_releases(fn, releases):
                prim = sems[call.receiver]  # type: ignore[index]
                yield self.finding(
                    ctx,
                    call.node,
                    f"`{ctx.code(call.node)}` {reason}; a plain Semaphore silently grows past its limit",
                    fix=_bounded_fix(ctx, model, prim),
                    function=function_label(fn.qualname),
                )


def _over_releases(fn: FunctionInfo, releases: list[Call]) -> Iterable[tuple[Call, str]]:
    refs = {c.receiver for c in releases}
    acquire_calls = [c for c in fn.calls if c.attr == "acquire" and c.receiver in refs]
    with_items = [a.node for a in fn.acquires if a.via == "with" and a.ref in refs]
    chains = ancestry(fn.node, [c.node for c in releases] + [c.node for c in acquire_calls] + with_items)
    acquires_by_ref: dict[str, list[cst.CSTNode]] = {}
    for c in acquire_calls:
        acquires_by_ref.setdefault(c.receiver, []).append(c.node)  # type: ignore[arg-type]
    for a in fn.acquires:
        if a.via == "with" and a.ref in refs:
            acquires_by_ref.setdefault(a.ref, []).append(a.node)

    def inside(node: cst.CSTNode, block: cst.CSTNode) -> bool:
        return any(n is block for n in chains.get(id(node), ()))

    def releases_in(ref: str, block: cst.CSTNode) -> list[Call]:
        return [r for r in releases if r.receiver == ref and inside(r.node, block)]

    for call in releases:
        ref = call.receiver
        assert ref is not None
        chain = chains.get(id(call.node), ())
        acquires = acquires_by_ref.get(ref, [])
        reason = None
        for i, node in enumerate(chain):
            if isinstance(node, cst.With) and any(n is node.body for n in chain[i:]):
                if any(_same_ref(fn, item.item, ref) for item in node.items) and not any(
                    inside(a, node.body) for a in acquires if isinstance(a, cst.Call)
                ):
                    reason = "runs inside `with` on the same semaphore, which releases it again on exit"
            elif isinstance(node, cst.Try) and node.finalbody is not None:
                in_try = any(n is node.body for n in chain[i:]) or any(
                    n is h for n in chain[i:] for h in node.handlers
                )
                final = node.finalbody.body
                again = any(r.statement is not None and r.statement in final.body for r in releases_in(ref, final))
                if in_try and again and not any(
                    inside(a, node.body) or any(inside(a, h) for h in node.handlers) for a in acquires
                ):
                    reason = "is followed by another release in `finally`"
            elif isinstance(node, cst.ExceptHandler) and i > 1 and isinstance(chain[i - 1], cst.Try):
                if not _terminates(node.body) and _released_after(chain[i - 2], chain[i - 1], ref, releases, inside):
                    reason = "runs in an `except` handler that falls through to another release after the `try`"
            if reason:
                break
        if reason is None and call.loop_depth > 0 and acquires:
            loops = [n for n in chain if isinstance(n, (cst.For, cst.While))]
            if loops and not any(inside(a, loops[-1]) for a in acquires) and not _leaves_after(chain, call):
                reason = "runs once per loop iteration but the semaphore was acquired once, before the loop"
        if reason is None and _unchecked_try_acquire(fn, ref):
            reason = "runs even when the non-blocking/timed `acquire()` before it failed (its result is ignored)"
        if reason is None:
            name = _finally_without_check(fn, ref, chain, chains)
            if name:
                reason = f"runs in `finally` even when the timed/non-blocking `acquire()` failed (`{name}` is false)"
        if reason is None and _tested_acquire_in_try(fn, ref, chain, chains):
            reason = "runs in `finally` even when the timed/non-blocking `acquire()` tested inside the `try` failed"
        if reason:
            yield call, reason


def _leaves_after(chain: tuple[cst.CSTNode, ...], call: Call) -> bool:
    """True when the statement after the release leaves the loop (``break``/``return``/``raise``)."""
    blocks = [n for n in chain if isinstance(n, cst.IndentedBlock)]
    if not blocks or call.statement is None:
        return False
    body = list(blocks[-1].body)
    if call.statement not in body:
        return False
    for stmt in body[body.index(call.statement) + 1:]:
        if isinstance(stmt, cst.SimpleStatementLine) and any(
            isinstance(s, (cst.Break, cst.Return, cst.Raise)) for s in stmt.body
        ):
            return True
    return False


def _same_ref(fn: FunctionInfo, expr: cst.BaseExpression, ref: str) -> bool:
    return any(a.node is expr and a.ref == ref for a in fn.acquires)


def _terminates(block: cst.BaseSuite) -> bool:
    if not isinstance(block, cst.IndentedBlock) or not block.body:
        return False
    last = block.body[-1]
    if isinstance(last, cst.SimpleStatementLine):
        return any(isinstance(s, (cst.Raise, cst.Return, cst.Break, cst.Continue)) for s in last.body)
    return False


def _released_after(parent: cst.CSTNode, try_node: cst.CSTNode, ref: str, releases: list[Call], inside) -> bool:
    body = getattr(parent, "body", None)
    if not isinstance(body, (list, tuple)):
        return False
    after = False
    for stmt in body:
        if stmt is try_node:
            after = True
            continue
        if after and isinstance(stmt, cst.SimpleStatementLine):
            if any(r.receiver == ref and r.statement is stmt for r in releases):
                return True
    return False


def _finally_without_check(fn: FunctionInfo, ref: str, chain: tuple[cst.CSTNode, ...], chains: dict) -> str | None:
    """``ok = sem.acquire(timeout=...)``, then a ``try`` whose ``finally`` releases without
    testing ``ok`` (an ``if not ok: return`` inside the ``try`` still runs the ``finally``).
    Returns the result's name. Quiet when the release sits under an ``if`` on it, or an ``if``
    on it leaves the function before the ``try`` starts."""
    tries = [
        (i, node) for i, node in enumerate(chain)
        if isinstance(node, cst.Try) and node.finalbody is not None and any(n is node.finalbody for n in chain[i + 1:])
    ]
    if not tries:
        return None
    for acq in fn.acquires:
        if acq.ref != ref or acq.via != "acquire" or acq.blocking:
            continue
        name = _result_name(acq.node, chains.get(id(acq.node), ()))
        if name is None:
            continue
        if any(isinstance(n, cst.If) and name in names_in(n.test) for n in chain):
            return None
        _, try_node = tries[-1]
        if _checked_before(fn.node, acq.node, try_node, name):
            return None
        return name
    return None


def _tested_acquire_in_try(fn: FunctionInfo, ref: str, chain: tuple[cst.CSTNode, ...], chains: dict) -> bool:
    """``try: if not sem.acquire(timeout=t): return ...`` with ``finally: sem.release()`` not
    under an ``if``: the ``finally`` runs after the failed attempt too."""
    for i, node in enumerate(chain):
        if not (isinstance(node, cst.Try) and node.finalbody is not None and any(n is node.finalbody for n in chain[i + 1:])):
            continue
        if any(isinstance(n, cst.If) for n in chain[i + 1:]):
            return False
        for acq in fn.acquires:
            if acq.ref != ref or acq.via != "acquire" or acq.blocking:
                continue
            up = chains.get(id(acq.node), ())
            if not any(n is node.body for n in up):
                continue
            test = next((n for n in reversed(up) if isinstance(n, (cst.If, cst.While))), None)
            if test is not None and (acq.node is test.test or any(n is test.test for n in up)):
                return True
    return False


def _result_name(acquire: cst.Call, ancestors: tuple[cst.CSTNode, ...]) -> str | None:
    """``name`` in ``name = sem.acquire(...)``."""
    parent = ancestors[-1] if ancestors else None
    if isinstance(parent, cst.Assign) and parent.value is acquire and len(parent.targets) == 1:
        target = parent.targets[0].target
        if isinstance(target, cst.Name):
            return target.value
    return None


def _checked_before(root: cst.CSTNode, acquire: cst.Call, try_node: cst.Try, name: str) -> bool:
    """An ``if`` testing ``name`` that ends in ``return``/``raise``/``continue``/``break``,
    between the acquire and ``try_node`` in source order and outside the ``try``."""
    state = {"after": False, "found": False}

    class V(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if node is try_node or state["found"]:
                return False
            if node is acquire:
                state["after"] = True
            if state["after"] and isinstance(node, cst.If) and name in names_in(node.test) and _terminates(node.body):
                state["found"] = True
            return True

    root.visit(V())
    return state["found"]


def _unchecked_try_acquire(fn: FunctionInfo, ref: str) -> bool:
    return any(
        a.ref == ref and a.via == "acquire" and not a.blocking and any(
            c.node is a.node and c.statement is not None for c in fn.calls
        )
        for a in fn.acquires
    )


def _bounded_fix(ctx: RuleContext, model: ModuleModel, prim: Primitive) -> Fix | None:
    node = prim.node
    if not isinstance(node, cst.Call) or prim.type_name != "threading.Semaphore":
        return None
    func = node.func
    message = "Use `BoundedSemaphore` so an extra release raises `ValueError` instead of raising the limit"
    if isinstance(func, cst.Attribute) and func.attr.value == "Semaphore":
        return Fix("unsafe", (Edit(ctx.span(func.attr), "BoundedSemaphore"),), message)
    if isinstance(func, cst.Name):
        local = func.value
        if model.imports.get("BoundedSemaphore") == "threading.BoundedSemaphore":
            return Fix("unsafe", (Edit(ctx.span(func), "BoundedSemaphore"),), message)
        alias = _import_alias(ctx.module, local)
        if alias is None:
            return None
        return Fix(
            "unsafe",
            (Edit(ctx.span(alias.name), "BoundedSemaphore, Semaphore"), Edit(ctx.span(func), "BoundedSemaphore")),
            message,
        )
    return None


def _import_alias(module: cst.Module, local: str) -> cst.ImportAlias | None:
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if (
                isinstance(small, cst.ImportFrom)
                and not small.relative
                and isinstance(small.module, cst.Name)
                and small.module.value == "threading"
                and not isinstance(small.names, cst.ImportStar)
            ):
                for alias in small.names:
                    if isinstance(alias.name, cst.Name) and alias.name.value == local == "Semaphore" and alias.asname is None:
                        return alias
    return None
