from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import ModuleModel, Spawn
from ._race import chain, function_label, names_in
from .base import Edit, Finding, Fix, Rule, RuleContext

COLLECT = ("append", "add", "extend", "insert", "appendleft", "put", "put_nowait")
SPAWN_KINDS = ("thread", "timer", "submit", "start_new_thread", "run_in_executor", "to_thread")


class LateBindingLoopVariable(Rule):
    """
    ## What it does
    Flags a lambda or nested function that reads a loop variable and is handed to a
    thread, `Timer` or executor inside that loop (`Thread(target=lambda: work(i))`), or a
    lambda handed to a `Thread` subclass's constructor as a callback its `run()` calls
    (`Grabber(cam, on_frame=lambda f: sink(cam_id, f))`) or to `future.add_done_callback`.

    ## Why is this bad?
    Closures look variables up when they *run*, not when they are created. By the time
    the new thread calls the lambda the loop has usually moved on, so several threads
    see the same (often the last) value and some values are never processed.

    ## Example
    ```python
    for url in urls:
        pool.submit(lambda: fetch(url))
    ```

    ## Use instead
    ```python
    for url in urls:
        pool.submit(fetch, url)          # or: lambda url=url: fetch(url)
    ```
    """

    code = "THR012"
    name = "late-binding-loop-variable"
    summary = "thread target closes over a loop variable that changes before the thread runs"
    help = "pass the value as an argument (`args=(i,)`, `submit(f, i)`) or bind it with a default: `lambda i=i: ...`"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        for spawn, closure in _handed(model):
            node, params, free = closure
            root = model.functions[spawn.function].node
            enclosing = chain(model, root, spawn.node)
            if _consumed_at_once(enclosing, spawn.node):
                continue
            def_chain = None if isinstance(node, cst.Lambda) else chain(model, root, node)
            loops: list[tuple[cst.CSTNode, set[str]]] = []
            for parent, child in zip(enclosing, [spawn.node, *enclosing]):
                bound = _loop_bound(parent, child)
                if bound and (def_chain is None or parent in def_chain):
                    loops.append((parent, bound))
            loop_names = set().union(*(b for _, b in loops)) if loops else set()
            captured = [n for n in _ordered(free, node) if n in loop_names]
            loop_node = next((lp for lp, b in loops if b & set(captured)), None)
            if not captured or _waited_in_loop(model, spawn, loop_node):
                continue
            names = ", ".join(f"`{n}`" for n in captured)
            what = "lambda" if isinstance(node, cst.Lambda) else f"`{node.name.value}`"
            yield self.finding(
                ctx,
                spawn.target if spawn.target is not None else node,
                f"{what} handed to another thread reads loop variable {names} when it runs, "
                "not when it is created; the thread may see a later iteration's value",
                fix=_fix(ctx, node, params, captured),
                function=function_label(spawn.function),
            )


def _handed(model: ModuleModel):
    """(spawn, closure) for each thread target that is a closure, and for each lambda handed
    to a ``Thread`` subclass's constructor (a callback its ``run()`` calls: ``on_frame=lambda
    seq, data: self._ingest(cam_id, seq, data)``) or to ``future.add_done_callback``."""
    for spawn in model.spawns:
        if spawn.kind in SPAWN_KINDS and spawn.target is not None:
            closure = _closure(model, spawn)
            if closure is not None:
                yield spawn, closure
        if spawn.kind == "subclass" and isinstance(spawn.node, cst.Call):
            for arg in spawn.node.args:
                if isinstance(arg.value, cst.Lambda) and arg.value is not spawn.target:
                    yield spawn, _lambda_closure(arg.value)
    for call in model.calls:
        if (call.attr == "add_done_callback" and call.node.args and isinstance(call.node.args[0].value, cst.Lambda)
                and not model.functions[call.function].is_async):  # a coroutine's tasks call back on the loop
            callback = call.node.args[0].value  # runs on the worker thread when the task ends
            yield Spawn("callback", call.node, call.function, callback, (), None, call.loop_depth > 0), _lambda_closure(callback)


def _closure(model: ModuleModel, spawn: Spawn) -> tuple[cst.CSTNode, cst.Parameters, set[str]] | None:
    target = spawn.target
    if isinstance(target, cst.Lambda):
        return _lambda_closure(target)
    if not isinstance(target, cst.Name) or not spawn.targets:
        return None
    info = model.functions.get(spawn.targets[0])
    if info is None or info.parent != spawn.function or not isinstance(info.node, cst.FunctionDef):
        return None
    free = names_in(info.node.body) - set(info.local_names) - set(info.params)
    return info.node, info.node.params, free


def _lambda_closure(lam: cst.Lambda) -> tuple[cst.CSTNode, cst.Parameters, set[str]]:
    """A lambda, its parameters and the free names its body reads."""
    return lam, lam.params, names_in(lam.body) - _param_names(lam.params) - _comp_names(lam.body)


def _param_names(params: cst.Parameters) -> set[str]:
    out = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    if isinstance(params.star_arg, cst.Param):
        out.add(params.star_arg.name.value)
    if params.star_kwarg is not None:
        out.add(params.star_kwarg.name.value)
    return out


class _CompTargets(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self.names |= names_in(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.names |= names_in(node.target)


def _comp_names(node: cst.CSTNode) -> set[str]:
    finder = _CompTargets()
    node.visit(finder)
    return finder.names


def _ordered(names: set[str], node: cst.CSTNode) -> list[str]:
    order: list[str] = []

    class V(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            if n.value in names and n.value not in order:
                order.append(n.value)

    node.visit(V())
    return order


class _Bound(cst.CSTVisitor):
    """Names (re)bound by the statements of a loop body, outside nested scopes."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def _bind(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.names.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._bind(el.value)
        elif isinstance(target, cst.StarredElement):
            self._bind(target.value)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._bind(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._bind(node.name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind(node.target)


def _loop_bound(parent: cst.CSTNode, child: cst.CSTNode) -> set[str]:
    """Names that take a new value on each iteration of ``parent`` when ``child`` is its body."""
    if isinstance(parent, cst.For) and child is parent.body:
        finder = _Bound()
        finder._bind(parent.target)
        parent.body.visit(finder)
        return finder.names
    if isinstance(parent, cst.While) and child is parent.body:
        finder = _Bound()
        parent.body.visit(finder)
        return finder.names
    if isinstance(parent, (cst.ListComp, cst.SetComp, cst.GeneratorExp)) and child is parent.elt:
        return _comp_for_names(parent.for_in)
    if isinstance(parent, cst.DictComp) and child in (parent.key, parent.value):
        return _comp_for_names(parent.for_in)
    return set()


def _comp_for_names(comp: cst.CompFor | None) -> set[str]:
    out: set[str] = set()
    while comp is not None:
        out |= names_in(comp.target)
        comp = comp.inner_for_in
    return out


def _consumed_at_once(enclosing: list[cst.CSTNode], node: cst.CSTNode) -> bool:
    """``pool.submit(lambda: ...).result()`` or ``await loop.run_in_executor(None, f)``: the
    closure runs before the loop moves on."""
    if enclosing and isinstance(enclosing[0], cst.Await):
        return True
    if len(enclosing) >= 2:
        attr, call = enclosing[0], enclosing[1]
        if isinstance(attr, cst.Attribute) and attr.value is node and isinstance(call, cst.Call) and call.func is attr:
            return attr.attr.value in ("result", "join", "exception")
    return False


def _waited_in_loop(model: ModuleModel, spawn: Spawn, loop: cst.CSTNode | None) -> bool:
    """The thread/future is joined, its result taken, or handed to a helper in the same iteration."""
    if spawn.bound_to is None or loop is None:
        return False
    root = model.functions[spawn.function].node
    name = spawn.bound_to.rsplit(".", 1)[-1]
    for call in model.functions[spawn.function].calls:
        waits = call.attr in ("join", "result", "exception") and (
            call.receiver == spawn.bound_to or model.thread_vars.get(call.receiver or "") is spawn
        )
        passes = call.attr not in COLLECT and any(
            isinstance(a.value, cst.Name) and a.value.value == name for a in call.node.args
        )
        if (waits or passes) and loop in chain(model, root, call.node):
            return True
    return False


def _fix(ctx: RuleContext, node: cst.CSTNode, params: cst.Parameters, names: list[str]) -> Fix:
    eq = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
    extra = [cst.Param(cst.Name(n), default=cst.Name(n), equal=eq) for n in names]
    if params.star_arg is not cst.MaybeSentinel.DEFAULT and params.star_arg is not None:
        new = params.with_changes(kwonly_params=[*params.kwonly_params, *extra])
    elif params.star_arg is cst.MaybeSentinel.DEFAULT and params.kwonly_params:
        new = params.with_changes(kwonly_params=[*params.kwonly_params, *extra])
    else:
        new = params.with_changes(params=[*params.params, *extra])
    content = ctx.module.code_for_node(new)
    empty = not (params.posonly_params or params.params or params.kwonly_params or params.star_kwarg) and params.star_arg in (None, cst.MaybeSentinel.DEFAULT)
    ws = node.whitespace_after_lambda if isinstance(node, cst.Lambda) else None
    if isinstance(node, cst.Lambda) and empty and not (isinstance(ws, cst.SimpleWhitespace) and ws.value):
        content = " " + content
    binding = ", ".join(f"{n}={n}" for n in names)
    return Fix("unsafe", (Edit(ctx.span(params), content),), f"Bind the current value with a default argument ({binding})")
