from __future__ import annotations

from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE, FunctionInfo, ModuleModel, Spawn
from ..analysis.syntax import all_names
from ._race import chain, function_label
from .base import Finding, Rule, RuleContext

HARMLESS = frozenset({"start", "daemon", "name", "setDaemon", "setName", "is_alive", "ident", "native_id"})
WRITES = ("write", "rmw", "mutate", "item-write", "item-rmw")


class ThreadNotJoined(Rule):
    """
    ## What it does
    Flags a thread started in a function that never joins it, although the function goes
    on to read (or return) what the thread fills in: a container passed in `args` or a
    variable the thread's closure writes. Also such a read, or a `Thread` subclass's result
    attribute (`loader.words`, set in `run()`), made after `start()` but before the `join()`
    (or with no `join()` at all), with no wait on something the thread signals in between. Daemon threads are reported
    only when kept by no one (or by a local or list that is only used to start them) and the
    function reads what they fill with nothing but a `sleep` in between. Timers,
    fire-and-forget threads with no result, and threads that are returned, stored on an
    object or handed elsewhere are not reported.

    ## Why is this bad?
    Nothing waits for the work to finish. Results the thread writes are read half-done
    (or empty), exceptions in the thread go unnoticed by the caller, and the program's
    order of events depends on scheduling.

    ## Example
    ```python
    def fetch_all(urls):
        results = {}
        for url in urls:
            t = threading.Thread(target=fetch, args=(url, results))
            t.start()
        return results
    ```

    ## Use instead
    ```python
    def fetch_all(urls):
        results = {}
        threads = [threading.Thread(target=fetch, args=(url, results)) for url in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results
    ```
    """

    code = "THR010"
    name = "thread-not-joined"
    summary = "thread's results read (or returned) by a function that never joins the thread"
    help = "keep the thread objects and `join()` them before using their results (or make the thread a daemon if it should outlive the caller)"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        for spawn in model.spawns:
            if spawn.kind not in ("thread", "subclass") or spawn.function == MODULE:
                continue
            fn = model.functions[spawn.function]
            if fn.is_lambda:
                continue
            if spawn.daemon or _daemon_class(model, spawn):
                verdict = _daemon_results(ctx, model, fn, spawn)
            else:
                verdict = _unjoined(ctx, model, fn, spawn) or _read_before_join(model, fn, spawn)
            if verdict is None:
                continue
            node, message = verdict
            yield self.finding(ctx, node, message, function=function_label(fn.qualname))


def _daemon_class(model: ModuleModel, spawn: Spawn) -> bool:
    if spawn.kind != "subclass":
        return False
    for target in spawn.targets:
        cls = model.functions[target].class_name if target in model.functions else None
        info = model.classes.get(cls or "")
        if info is None or "daemon" in model.module.code_for_node(info.node):
            return True
    return not spawn.targets


def _uses(root: cst.CSTNode, name: str) -> list[cst.Name]:
    found: list[cst.Name] = []

    class V(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            if node.value == name:
                found.append(node)

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Param(self, node: cst.Param) -> bool:
            if node.default is not None:
                node.default.visit(self)
            return False

    root.visit(V())
    return found


def _local(fn: FunctionInfo, ref: str | None) -> str | None:
    prefix = f"l:{fn.qualname}."
    if ref and ref.startswith(prefix) and "." not in ref[len(prefix):]:
        return ref[len(prefix):]
    return None


def _unjoined(ctx: RuleContext, model: ModuleModel, fn: FunctionInfo, spawn: Spawn,
              what: str = "thread is started but never joined"):
    root = fn.node
    up = chain(model, root, spawn.node)
    if not up:
        return None
    if isinstance(up[0], cst.Attribute) and up[0].value is spawn.node:
        if up[0].attr.value == "start" and len(up) > 2 and isinstance(up[2], cst.Expr):
            return _results_read(ctx, model, fn, spawn, up[1], what)
        return None
    name = _local(fn, spawn.bound_to)
    if name is None:
        return None
    is_list = spawn.bound_to not in model.thread_vars or model.thread_vars[spawn.bound_to] is not spawn
    holders = [name]
    start_call = None
    join_use = None
    for use in _uses(root, name):
        kind = _use_kind(model, root, use, spawn, is_list=is_list)
        if kind == "escape":
            return None
        if kind == "joined":
            parent = chain(model, root, use)[0]
            if is_list or join_use is not None or not (isinstance(parent, cst.Attribute) and parent.attr.value == "join"):
                return None
            join_use = use
            continue
        if isinstance(kind, tuple) and kind[0] == "collected":
            holders.append(kind[1])
        if isinstance(kind, tuple) and kind[0] == "start":
            start_call = start_call or kind[1]
    for holder in holders[1:]:
        for use in _uses(root, holder):
            kind = _use_kind(model, root, use, spawn, is_list=True)
            if kind in ("escape", "joined"):
                return None
    starts = [c for c in fn.calls if c.attr == "start" and model.thread_vars.get(c.receiver or "") is spawn]
    node = start_call or (starts[0].node if starts else None)
    if node is None:
        return None
    if join_use is not None:
        return _results_read(ctx, model, fn, spawn, node, what, until=join_use)
    if any(c.attr == "join" and model.thread_vars.get(c.receiver or "") is spawn for c in model.calls):
        return None
    return _results_read(ctx, model, fn, spawn, node, what)


def _use_kind(model: ModuleModel, root: cst.CSTNode, use: cst.Name, spawn: Spawn, is_list: bool = False):
    up = chain(model, root, use)
    if not up:
        return "escape"
    parent = up[0]
    if isinstance(parent, cst.AssignTarget) or (isinstance(parent, cst.Del)):
        return "neutral"
    if isinstance(parent, cst.For) and parent.target is use:
        return "neutral"
    if isinstance(parent, cst.For) and parent.iter is use and is_list:
        return "neutral"
    if isinstance(parent, cst.Attribute) and parent.value is use:
        attr = parent.attr.value
        call = up[1] if len(up) > 1 and isinstance(up[1], cst.Call) and up[1].func is parent else None
        if attr == "join" or attr in ("daemon", "setDaemon"):  # daemon threads are meant to outlive the caller
            return "joined"
        if attr == "start" and call is not None and not is_list:
            return ("start", call)
        if attr in HARMLESS:
            return "neutral"
        if is_list and attr in ("append", "extend", "insert") and call is not None:
            return "neutral"
        return "escape"
    if isinstance(parent, cst.Arg) and len(up) > 1 and isinstance(up[1], cst.Call):
        func = up[1].func
        if isinstance(func, cst.Name) and func.value in ("len", "print", "repr", "str", "bool"):
            return "neutral"
        if isinstance(func, cst.Attribute) and func.attr.value in ("append", "insert") and isinstance(func.value, cst.Name):
            owner = func.value.value
            fn = model.functions[spawn.function]
            if owner in fn.local_names and owner not in fn.params:
                return ("collected", owner)
    return "escape"


def _results_read(ctx: RuleContext, model: ModuleModel, fn: FunctionInfo, spawn: Spawn, start: cst.Call,
                  what: str = "thread is started but never joined", until: cst.Name | None = None):
    """The thread fills a local (``args=(..., results)`` or a closure) that the function reads
    after ``start``, with no wait on something handed to the thread (``ready.wait()``) first."""
    shared: list[str] = []
    containers = _containers(fn.node)
    handed: set[str] = set()
    if spawn.args is not None and isinstance(spawn.args.value, (cst.Tuple, cst.List)):
        for el in spawn.args.value.elements:
            if isinstance(el.value, cst.Name):
                handed.add(f"l:{fn.qualname}.{el.value.value}")
                if el.value.value in containers:
                    shared.append(el.value.value)
    if any(c.attr in SYNC - {"sleep", "get"} and c.receiver in handed for c in fn.calls):
        return None  # ``ready.wait()`` on an event the thread is given: it signals when done
    for name in model.reachable(spawn.targets):
        info = model.functions[name]
        if info is not fn:
            shared.extend(
                a.ref.rsplit(".", 1)[-1] for a in info.accesses if a.kind in WRITES and _local(fn, a.ref)
            )
    if not shared:
        return None
    root = fn.node
    order = {id(n): i for i, n in enumerate(all_names(root))}
    inside = {id(n) for n in all_names(spawn.node)}
    after = max((order[id(n)] for n in all_names(start) if id(n) in order), default=None)
    if after is None:
        return None
    end = order.get(id(until), -1) if until is not None else None
    touched = handed | {a.ref for f in model.reachable(spawn.targets) for a in model.functions[f].accesses}
    for name in dict.fromkeys(shared):
        later = [
            u for u in _uses(root, name)
            if order.get(id(u), -1) > after and id(u) not in inside and not _in_nested(model, root, u)
        ]
        if end is not None:
            later = [u for u in later if order.get(id(u), -1) < end and _reads(model, root, u)
                     and not any(isinstance(p, cst.While) for p in chain(model, root, u))]
            waits = [order[id(n)] for c in fn.calls if c.attr in SYNC - {"sleep"} and c.receiver in touched
                     for n in all_names(c.node.func) if id(n) in order]
            later = [u for u in later if not any(after < w < order[id(u)] for w in waits)]
            if later:
                return later[0], (
                    f"`{name}` is read before `{until.value}.join()` (line {ctx.span(until).line}): the thread "
                    f"that fills it may still be running, so the read sees partial or missing results"
                )
            continue
        if later:
            return start, (
                f"{what}, and `{name}` it fills is read later in `{fn.name}`; "
                "the read can see partial or missing results"
            )
    return None


CONTAINER_CALLS = frozenset({"dict", "list", "set", "defaultdict", "deque", "Counter", "OrderedDict"})


def _containers(root: cst.CSTNode) -> set[str]:
    """Locals bound to a fresh mutable container (``{}``, ``[]``, ``dict()``, ``deque()``...)."""
    out: set[str] = set()

    def fresh(value: cst.BaseExpression | None) -> bool:
        if isinstance(value, cst.Call):
            func = value.func
            name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
            return name in CONTAINER_CALLS
        return isinstance(value, (cst.Dict, cst.List, cst.Set, cst.DictComp, cst.ListComp, cst.SetComp))

    class V(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if fresh(node.value):
                for target in node.targets:
                    if isinstance(target.target, cst.Name):
                        out.add(target.target.value)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            if fresh(node.value) and isinstance(node.target, cst.Name):
                out.add(node.target.value)

    root.visit(V())
    return out


def _reads(model: ModuleModel, root: cst.CSTNode, use: cst.Name) -> bool:
    """``use`` reads the name: it is not the target of an assignment (``cont[0] = False``)."""
    up = chain(model, root, use)
    return not any(isinstance(p, (cst.AssignTarget, cst.AugAssign)) for p in up[:3])


def _in_nested(model: ModuleModel, root: cst.CSTNode, node: cst.CSTNode) -> bool:
    return any(isinstance(p, (cst.FunctionDef, cst.Lambda)) and p is not root for p in chain(model, root, node))


SETUP = frozenset({"__init__", "__new__", "__post_init__"})
SYNC = frozenset({"wait", "wait_for", "get", "result", "join", "acquire", "sleep", "barrier"})


def _read_before_join(model: ModuleModel, fn: FunctionInfo, spawn: Spawn):
    """``loader.start(); ...; use(loader.words); ...; loader.join()``: an attribute the
    thread's ``run()`` sets, read in straight-line code after the start and before the join
    (or with no join at all, the thread kept in a local nobody else gets)."""
    name = _local(fn, spawn.bound_to)
    if spawn.kind != "subclass" or name is None or not spawn.targets:
        return None
    cls = model.functions[spawn.targets[0]].class_name if spawn.targets[0] in model.functions else None
    if cls is None:
        return None
    prefix = f"a:{cls}."
    written = {
        a.ref[len(prefix):]
        for f in model.reachable(spawn.targets) if model.functions[f].name not in SETUP
        for a in model.functions[f].accesses if a.kind in WRITES and a.ref.startswith(prefix)
    }
    if not written:
        return None
    root = fn.node
    start = None
    joined = False
    reads: list[cst.Attribute] = []
    for use in _uses(root, name):
        up = chain(model, root, use)
        parent = up[0] if up else None
        if _in_nested(model, root, use):
            continue
        if not isinstance(parent, cst.Attribute) or parent.value is not use:
            if start is not None and not isinstance(parent, cst.AssignTarget):
                return None  # handed on: whoever gets it may wait for it
            continue
        attr = parent.attr.value
        if start is None:
            start = parent if attr == "start" else None
            continue
        if attr == "join":
            joined = True
            break
        called = len(up) > 1 and isinstance(up[1], cst.Call) and up[1].func is parent
        if attr in written and not called and not isinstance(up[1] if len(up) > 1 else None, cst.AssignTarget):
            if any(isinstance(p, (cst.While, cst.For)) for p in up):
                return None  # progress read while it runs
            reads.append(parent)
        elif called and attr not in HARMLESS or _waited_on(up):
            return None  # waits for it some other way (``loader.loaded.wait()``)
    if start is None or not reads:
        return None
    read = reads[0]
    order = {id(n): i for i, n in enumerate(all_names(root))}
    begin, end = order.get(id(start.value), -1), order.get(id(read.value), -1)
    touched = {a.ref for f in model.reachable(spawn.targets) for a in model.functions[f].accesses}
    touched.update(f"l:{fn.qualname}.{p}" for p in fn.params)  # handed in: it may be the thread's too
    for call in fn.calls:
        if call.attr in SYNC and (call.receiver is None or call.receiver in touched or call.attr == "sleep"):
            first = next(iter(all_names(call.node.func)), None)
            if first is not None and begin < order.get(id(first), -1) < end:
                return None  # waits for something the thread does first (worker_started.wait())
    when = f"before `{name}.join()`" if joined else f"while nothing joins `{name}`"
    return read, (
        f"`{name}.{read.attr.value}` is read {when}: the thread that sets it in "
        f"`{spawn.targets[0]}` may still be running, so the read sees the old value"
    )


def _waited_on(up: list[cst.CSTNode]) -> bool:
    """``thread.<attr>.wait()`` (``.get()``, ``.result()``...): something of the thread's is awaited."""
    return (
        len(up) > 2
        and isinstance(up[1], cst.Attribute)
        and up[1].attr.value in ("wait", "wait_for", "get", "result", "join", "acquire")
        and isinstance(up[2], cst.Call)
        and up[2].func is up[1]
    )


def _daemon_results(ctx: RuleContext, model: ModuleModel, fn: FunctionInfo, spawn: Spawn):
    """``Thread(target=measure, args=(cam, results), daemon=True).start()`` in a loop, then
    ``results`` read with nothing but a ``sleep`` in between: a daemon thread kept by no one
    fills what the function goes on to read. So does one kept in a local or a list that is only
    ever started (``workers = [Thread(..., daemon=True) ...]``). A daemon thread kept anywhere
    else, or a wait, is left alone: the caller may synchronise some other way."""
    up = chain(model, fn.node, spawn.node)
    direct = bool(up) and isinstance(up[0], cst.Attribute) and up[0].value is spawn.node and up[0].attr.value == "start"
    if not direct and not spawn.daemon:
        return None
    containers = _containers(fn.node)
    if any(c.attr in SYNC - {"sleep"} and not (c.attr == "get" and _local(fn, c.receiver) in containers) for c in fn.calls):
        return None  # ``results.get(key)`` on the filled dict is a read, not a wait
    if not direct:
        return _unjoined(ctx, model, fn, spawn, "daemon thread is started and never joined")
    if len(up) > 2 and isinstance(up[2], cst.Expr):
        return _results_read(ctx, model, fn, spawn, up[1], "daemon thread is started and never joined")
    return None
