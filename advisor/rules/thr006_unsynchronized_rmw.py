from __future__ import annotations

import re
from typing import Iterable

import libcst as cst

from ..analysis.extract import dotted
from ..analysis.model import MODULE, Access, ModuleModel, Spawn, assigned_value
from .base import Finding, Rule, RuleContext
from .thr004_acquire_without_release import ancestors, parent_map
from .thr007_lock_order_inversion import transitive_takes

WRITES = frozenset({"write", "rmw", "item-write", "item-rmw", "mutate"})
SETUP = frozenset({MODULE, "__init__", "__new__", "__post_init__", "setUp", "setUpClass", "__enter__"})


class UnsynchronizedReadModifyWrite(Rule):
    """
    ## What it does
    Flags read-modify-writes (`x += 1`, `x = x + 1`, `d[k] = d.get(k, 0) + 1`) of shared
    state (module globals, attributes, closure variables) in code that runs on a thread,
    when no lock is held and the state really is shared: the same code runs on several
    threads at once, or another thread (the main thread included) also writes it. A slot of
    its own per thread (`hits[worker_id] += 1` with a different id passed to each thread)
    and an object a task builds for itself (`Parser(text).parse()` in each task) are not
    shared. A semaphore with several slots bounds how many threads run, it does not
    serialise them: holding one is not holding a lock (`Semaphore(1)` is).

    ## Why is this bad?
    A read-modify-write is several bytecode steps. Two threads can both read the old
    value, both compute, and both store: one update is lost. Counters come out low,
    balances drift, and the bug vanishes whenever you try to observe it.

    ## Example
    ```python
    hits = 0

    def worker(urls):
        global hits
        for url in urls:
            fetch(url)
            hits += 1
    ```

    ## Use instead
    ```python
    hits = 0
    hits_lock = threading.Lock()

    def worker(urls):
        global hits
        for url in urls:
            fetch(url)
            with hits_lock:
                hits += 1
    ```
    """

    code = "THR006"
    name = "unsynchronized-read-modify-write"
    summary = "read-modify-write of shared state on a thread without a lock (lost updates)"
    help = "hold one lock around every read-modify-write of this state (`with lock: ...`)"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        if not model.thread_entries or _monkey_patched(model):
            return
        writers: dict[str, list[Access]] = {}
        for access in model.accesses:
            if access.kind in WRITES:
                writers.setdefault(access.ref, []).append(access)
        maps: dict[str, dict] = {}
        for access in model.accesses:
            if access.kind not in ("rmw", "item-rmw") or not _candidate(model, access):
                continue
            entries = sorted(model.contexts_for(access.function, access.ref) - {"main"})
            if not entries:
                continue
            if model.exclusive_held(access.function, access.held) or model.through_fresh_local(access):
                continue
            reason = _sharing(ctx, model, access, entries, writers.get(access.ref, []))
            if reason is None or _guarded_by_call(model, access, maps):
                continue
            stmt = access.statement
            small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 else None
            text = ctx.code(small if small is not None else access.node).strip().splitlines()[0]
            yield self.finding(
                ctx,
                access.node,
                f"`{text}` reads and writes shared `{_display(access.ref)}` without a lock; {reason}",
                function=access.function if access.function != MODULE else None,
            )


GUARDISH = re.compile(r"(?i)lock|mutex|guard|synchron|critical|exclusive")


def _guarded_by_call(model: ModuleModel, access: Access, maps: dict[str, dict]) -> bool:
    """True inside ``with self._locked():`` / ``with store.lock_for(key):``: a context
    manager made by a call that names a lock or, in this module, takes one."""
    fn = model.functions[access.function]
    parents = maps.get(fn.qualname)
    if parents is None:
        parents = maps[fn.qualname] = parent_map(fn.node)
    takes = None
    for _, parent in ancestors(access.node, parents):
        if not isinstance(parent, cst.With):
            continue
        for item in parent.items:
            expr = item.item
            if not isinstance(expr, cst.Call):
                continue
            name = (dotted(expr.func) or "").rsplit(".", 1)[-1]
            if GUARDISH.search(name):
                return True
            call = next((c for c in fn.calls if c.node is expr), None)
            if call is not None and call.callees:
                takes = takes or transitive_takes(model)
                if any(takes.get(callee) for callee in call.callees):
                    return True
    return False


def _display(ref: str) -> str:
    body = ref.split(":", 1)[1]
    return body.replace(".<locals>.", ".")


MONKEY_PATCH = frozenset({"gevent.monkey.patch_all", "gevent.monkey.patch_thread", "eventlet.monkey_patch"})


def _monkey_patched(model: ModuleModel) -> bool:
    """After gevent's or eventlet's monkey patching, "threads" are greenlets: nothing switches
    between the read and the write of ``x += 1``."""
    return any(c.qualname in MONKEY_PATCH for c in model.calls if c.function == MODULE)


def _owner(ref: str) -> str:
    return ref[2:].rsplit(".", 1)[0]


def _candidate(model: ModuleModel, access: Access) -> bool:
    ref = access.ref
    fn = model.functions[access.function]
    if fn.name in SETUP or access.function == MODULE:
        return False
    if ref.startswith("l:"):
        owner = _owner(ref)
        return owner != access.function and owner in model.functions and access.function.startswith(owner + ".")
    if ref.startswith("a:"):
        cls, _, rest = ref[2:].partition(".")
        info = model.classes.get(cls)
        if info is not None and any(b in ("threading.local", "_threading_local.local") for b in info.bases):
            return False
        parts = rest.split(".")
        for i in range(1, len(parts)):
            prim = model.primitives.get(f"a:{cls}." + ".".join(parts[:i]))
            if prim is not None:
                return False
        return True
    if ref.startswith("g:"):
        head = ref[2:].split(".")[0]
        prim = model.primitives.get(f"g:{head}")
        return prim is None or "." not in ref[2:]
    return False


def _via_self(model: ModuleModel, access: Access) -> bool:
    """True when the access goes through the method's own instance (``self.x``)."""
    node = access.node
    if isinstance(node, cst.Subscript):
        node = node.value
    while isinstance(node, cst.Attribute) and isinstance(node.value, cst.Attribute):
        node = node.value
    fn = model.functions[access.function]
    while fn is not None and fn.self_name is None and fn.parent in model.functions and fn.parent != MODULE:
        fn = model.functions[fn.parent]
    self_name = fn.self_name if fn is not None else None
    return (
        isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and self_name is not None
        and node.value.value == self_name
    )


def _shares_instance(model: ModuleModel, spawn: Spawn) -> bool:
    """True when the spawned target runs on an instance other threads also use: a bound
    method of the spawner's own ``self`` or of a module global."""
    target = spawn.target
    if spawn.kind == "subclass" or not isinstance(target, cst.Attribute):
        return False
    value = target.value
    if not isinstance(value, cst.Name):
        return False
    spawner = model.functions.get(spawn.function)
    if spawner is None or spawner.self_name == value.value:
        return True
    return value.value not in _per_iteration_names(spawner)  # includes comprehension variables


def _per_iteration_names(fn) -> frozenset[str]:
    """Names a function binds afresh on each loop iteration (loop targets, and names
    assigned inside a loop body): each thread started in the loop gets its own object."""
    cached = fn.__dict__.get("_per_iteration")
    if cached is None:
        finder = _LoopBindings()
        fn.node.visit(finder)
        cached = frozenset(finder.names)
        fn.__dict__["_per_iteration"] = cached
    return cached


class _LoopBindings(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.depth = 0

    def _names(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.names.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._names(el.value)

    def visit_For(self, node: cst.For) -> None:
        self._names(node.target)
        self.depth += 1

    def leave_For(self, node: cst.For) -> None:
        self.depth -= 1

    def visit_While(self, node: cst.While) -> None:
        self.depth += 1

    def leave_While(self, node: cst.While) -> None:
        self.depth -= 1

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._names(node.target)

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        if self.depth:
            self._names(node.target)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._names(node.target)


def _index_name(access: Access) -> str | None:
    """``k`` for an access ``x[k]``."""
    node = access.node
    if not isinstance(node, cst.Subscript) or len(node.slice) != 1:
        return None
    index = node.slice[0].slice
    if isinstance(index, cst.Index) and isinstance(index.value, cst.Name):
        return index.value.value
    return None


def _slot_per_iteration(model: ModuleModel, access: Access) -> bool:
    """``x[k] = ...`` with ``k`` a loop variable of its function."""
    name = _index_name(access)
    return (
        name is not None and access.kind in ("item-write", "item-rmw")
        and name in _loop_targets(model.functions[access.function].node, access.node)
    )


def _keyed_by_thread(model: ModuleModel, access: Access, entries: list[str]) -> bool:
    return all(_per_thread_key(model, access, e, model.thread_entries.get(e, [])) for e in entries)


def _per_thread_key(model: ModuleModel, access: Access, entry: str, spawns: list[Spawn]) -> bool:
    """``x[k] += 1`` in a thread's own function where ``k`` is a parameter each start passes a
    different value: a loop variable of the spawning loop (``for wid, jobs in
    enumerate(batches): Thread(target=worker, args=(wid, jobs))``). Each thread has its own slot."""
    if access.kind != "item-rmw" or access.function != entry or not spawns:
        return False
    key = _index_name(access)
    fn = model.functions[entry]
    if key is None or key not in fn.params or _rebinds(fn, key):
        return False
    position = fn.params.index(key)
    for spawn in spawns:
        values = _passed(spawn)
        skip = 1 if fn.class_name is not None and isinstance(spawn.target, cst.Attribute) and fn.params[:1] == (fn.self_name,) else 0
        spawner = model.functions.get(spawn.function)
        if values is None or spawner is None or position - skip < 0 or position - skip >= len(values):
            return False
        value = values[position - skip]
        if not (isinstance(value, cst.Name) and value.value in _loop_targets(spawner.node, spawn.node)):
            return False
    return True


def _passed(spawn: Spawn) -> list[cst.BaseExpression] | None:
    """The positional values a spawn passes to its target, when they are spelled out."""
    node = spawn.node
    if spawn.kind in ("thread", "timer", "start_new_thread"):
        if spawn.args is None:
            return None
        value = spawn.args.value
        if isinstance(value, (cst.Tuple, cst.List)) and all(isinstance(e, cst.Element) for e in value.elements):
            return [e.value for e in value.elements]
        return None
    if spawn.kind == "submit":
        args = list(node.args)[1:]
        if any(a.keyword is not None or a.star for a in args):
            return None
        return [a.value for a in args]
    return None


def _rebinds(fn, name: str) -> bool:
    return any(a.kind == "write" and a.ref.endswith("." + name) and a.ref.startswith("l:") for a in fn.accesses)


def _loop_targets(root: cst.CSTNode, at: cst.CSTNode) -> frozenset[str]:
    """Names that take a different value on every pass of a ``for`` loop or comprehension in
    ``root`` that encloses ``at``: ``i`` in ``range(...)``, the index of ``enumerate(...)``,
    the keys of a dict (``d.keys()``, ``k`` of ``d.items()``). A loop over a list may repeat
    a value."""
    finder = _LoopTargets(at)
    root.visit(finder)
    return frozenset(finder.found)


class _LoopTargets(cst.CSTVisitor):
    def __init__(self, at: cst.CSTNode) -> None:
        self.at = at
        self.stack: list[set[str]] = []
        self.found: set[str] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        if node is self.at:
            self.found = set().union(*self.stack)
            return False
        if isinstance(node, cst.For):
            self.stack.append(_distinct(node.target, node.iter))
        elif isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            names: set[str] = set()
            comp = node.for_in
            while comp is not None:
                names |= _distinct(comp.target, comp.iter)
                comp = comp.inner_for_in
            self.stack.append(names)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if isinstance(original_node, (cst.For, cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            self.stack.pop()


def _distinct(target: cst.BaseExpression, iterable: cst.BaseExpression) -> set[str]:
    first = target
    if isinstance(target, (cst.Tuple, cst.List)) and target.elements:
        first = target.elements[0].value
    if not isinstance(first, cst.Name) or not isinstance(iterable, cst.Call):
        return set()
    func = iterable.func
    name = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) else ""
    whole = first is target
    if (name == "range" and whole) or (name == "enumerate" and not whole) or (
        isinstance(func, cst.Attribute) and ((name == "keys" and whole) or (name == "items" and not whole))
    ):
        return {first.value}
    return set()


def _concurrent_spawns(model: ModuleModel, access: Access, entry: str) -> list[Spawn]:
    """The spawns of ``entry`` whose threads share the state ``access`` touches."""
    spawns = model.thread_entries.get(entry, [])
    ref = access.ref
    if ref.startswith("l:"):
        owner = _owner(ref)
        return [s for s in spawns if s.function == owner or s.function.startswith(owner + ".<locals>.")]
    if ref.startswith("a:") and _via_self(model, access):
        entry_fn = model.functions[entry]
        if entry_fn.class_name is None:
            return spawns
        on_one = [s for s in spawns if _shares_instance(model, s)]
        if on_one:
            return on_one
        own = model.self_class(access.function)
        if own is not None and own != entry_fn.class_name:
            return spawns if _reached_through_shared(model, entry_fn.class_name, own) else []
        holder = _holder_attr(access.node)
        if own == entry_fn.class_name and holder is not None:
            # `self.farm.stats.n += 1` in a per-object thread: shared unless each builds its own
            return [] if _built_by_each(model, f"a:{own}.{holder}") else spawns
        return []
    return spawns


def _holder_attr(node: cst.CSTNode) -> str | None:
    """``farm`` for ``self.farm.stats.n`` (an object reached through an attribute of self)."""
    if isinstance(node, cst.Subscript):
        node = node.value
    chain = []
    while isinstance(node, cst.Attribute):
        chain.append(node.attr.value)
        node = node.value
    return chain[-1] if isinstance(node, cst.Name) and len(chain) >= 2 else None


def _built_by_each(model: ModuleModel, ref: str) -> bool:
    """Every assignment of ``ref`` builds a value there (a call or a display), none hands on an
    existing object (``self.farm = farm``)."""
    writes = [a for a in model.accesses if a.ref == ref and a.kind == "write"]
    return bool(writes) and all(
        (value := assigned_value(a)) is not None and not isinstance(value, (cst.Name, cst.Attribute, cst.Subscript))
        for a in writes
    )


def _reached_through_shared(model: ModuleModel, holder: str, cls: str) -> bool:
    """Threads that are ``holder`` objects call methods of a ``cls`` object: one they share,
    unless every attribute they call it through is one each ``holder`` builds for itself
    (``self.parser = Parser()``)."""
    receivers = {
        call.receiver
        for fn in model.functions.values() if model.self_class(fn.qualname) == holder
        for call in fn.calls
        if call.attr is not None and any(model.functions[c].class_name == cls for c in call.callees if c in model.functions)
    }
    if not receivers:
        return True
    return any(
        r is None or not r.startswith(f"a:{holder}.") or r not in model.constructed_refs for r in receivers
    )


def _multi(model: ModuleModel, entry: str, spawns: list[Spawn]) -> bool:
    """True when several threads may run ``entry`` at once. A thread re-armed from its own
    code (a repeating ``Timer``) and threads stored in one slot (``self._thread = ...`` in
    ``start`` and ``restart``) follow one another."""
    if any(s.in_loop or s.kind == "map" for s in spawns):
        return True
    reachable = model.reachable([entry])
    others = [s for s in spawns if s.function not in reachable]
    slots = {s.bound_to if s.bound_to and not s.bound_to.startswith("l:") else id(s) for s in others}
    return len(slots) > 1


def _blocking_map(model: ModuleModel, spawn: Spawn) -> bool:
    """``pool.map(...)`` / ``pool.starmap(...)`` on a ``multiprocessing`` thread pool: the call
    returns only when every task has finished."""
    return spawn.kind == "map" and model.primitive_kind(spawn.executor) == "ThreadPool"


def _sharing(ctx: RuleContext, model: ModuleModel, access: Access, entries: list[str], writers: list[Access]) -> str | None:
    """Why the state is shared between threads, or None when it may not be."""
    for entry in entries:
        spawns = _concurrent_spawns(model, access, entry)
        if _per_thread_key(model, access, entry, spawns):
            continue
        if _multi(model, entry, spawns) or (spawns and model.shared_by_object_threads(entry, access.ref)):
            line = ctx.span(spawns[0].node).line
            name = entry.split(".<locals>.")[-1]
            return f"`{name}` runs on several threads at once (started at line {line})"
    if access.ref.startswith("l:"):
        entries = [e for e in entries if _concurrent_spawns(model, access, e)]
    if not entries:
        return None
    if len(entries) > 1:
        names = ", ".join(f"`{e.split('.<locals>.')[-1]}`" for e in entries[:2])
        return f"it runs on the threads of {names}"
    spawners = {s.function for e in entries for s in model.thread_entries.get(e, [])}
    after_start = model.reachable(spawners)
    for other in writers:
        if other.function == access.function:
            continue
        fn = model.functions[other.function]
        if fn.name in SETUP or other.function == MODULE:
            continue
        if other.kind == "write" and other.function in spawners:
            continue
        theirs = model.contexts_for(other.function, other.ref)
        if not theirs or theirs & set(entries):
            continue  # the thread's own code, or code also reached from it
        if all(e != "main" and all(_blocking_map(model, s) and s.function == access.function
                                   for s in model.thread_entries.get(e, [])) for e in theirs):
            continue  # tasks of ``pool.map(...)`` called here: this code waits for them, never beside them
        if theirs == {"main"} and (other.kind == "write" or other.function not in after_start):
            continue  # a reset, or API code not shown to run while the thread does
        if other.function in spawners and _slot_per_iteration(model, other) and _keyed_by_thread(model, access, entries):
            continue  # the spawner fills each thread's own slot (``hits[wid] = 0`` before its start)
        where = "the main thread" if "main" in theirs else f"`{sorted(theirs - set(entries))[0].split('.<locals>.')[-1]}`"
        line = ctx.span(other.node).line
        return f"{where} also writes it (line {line})"
    return None
