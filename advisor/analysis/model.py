"""The threading model of one module: plain data that rules query.

References ("refs") name a piece of state or a primitive independently of the
syntax used to reach it:

- ``g:name``          a module global (``g:obj.attr`` for an attribute of one)
- ``a:Class.attr``    an attribute of instances (or of the class) of ``Class``
- ``l:func.name``     a local of function ``func`` (qualname), e.g. captured by a closure
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:
    import libcst as cst

MODULE = "<module>"

LOCK_KINDS = frozenset({"Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore"})
"""Primitives that exclude other threads while held."""

NON_REENTRANT = frozenset({"Lock"})

PRIMITIVE_TYPES: dict[str, str] = {
    "threading.Lock": "Lock",
    "threading.RLock": "RLock",
    "threading.Condition": "Condition",
    "threading.Semaphore": "Semaphore",
    "threading.BoundedSemaphore": "BoundedSemaphore",
    "threading.Event": "Event",
    "threading.Barrier": "Barrier",
    "threading.local": "local",
    "threading._RLock": "RLock",
    "threading._CRLock": "RLock",
    "_thread.allocate_lock": "Lock",
    "_thread.allocate": "Lock",
    "_thread.LockType": "Lock",
    "_thread.RLock": "RLock",
    "_thread._local": "local",
    "queue.Queue": "Queue",
    "queue.LifoQueue": "Queue",
    "queue.PriorityQueue": "Queue",
    "queue.SimpleQueue": "SimpleQueue",
    "concurrent.futures.ThreadPoolExecutor": "ThreadPoolExecutor",
    "concurrent.futures.thread.ThreadPoolExecutor": "ThreadPoolExecutor",
    "concurrent.futures.ProcessPoolExecutor": "ProcessPoolExecutor",
    "concurrent.futures.process.ProcessPoolExecutor": "ProcessPoolExecutor",
    "multiprocessing.pool.ThreadPool": "ThreadPool",
    "multiprocessing.dummy.Pool": "ThreadPool",
}

EXECUTOR_KINDS = frozenset({"ThreadPoolExecutor", "ProcessPoolExecutor", "ThreadPool"})

THREAD_TYPES: dict[str, str] = {
    "threading.Thread": "thread",
    "threading.Timer": "timer",
}


@dataclass(frozen=True)
class Span:
    """1-based lines, 0-based columns, end exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(eq=False)
class Primitive:
    """A synchronisation primitive, executor, queue or thread-local created in the module."""

    ref: str
    kind: str
    type_name: str
    node: cst.CSTNode
    function: str


@dataclass(eq=False)
class HeldLock:
    """A lock held at some point: its ref, its kind if known, and how it was taken."""

    ref: str
    kind: str | None
    via: str  # "with" | "acquire"
    node: cst.CSTNode


@dataclass(eq=False)
class Call:
    """A call expression, with what the analyzer knows about its callee and context."""

    node: cst.Call
    function: str
    qualname: str | None
    """Dotted name of the callee through imports (``threading.Thread``), or a local
    function/method qualname (``Worker.run``) when it resolves to one."""
    attr: str | None
    """Method name for ``x.attr(...)`` calls."""
    receiver: str | None
    """Ref of ``x`` in ``x.attr(...)`` when it has one."""
    receiver_kind: str | None
    """Primitive kind (``Lock``, ``Queue``...) or ``Thread`` of the receiver, if known."""
    held: tuple[HeldLock, ...]
    loop_depth: int
    in_while: bool
    statement: cst.CSTNode | None
    """The simple statement holding the call, when the call is the whole statement."""
    callees: tuple[str, ...] = ()
    """Module functions this call may run (resolved qualnames)."""
    same_instance: bool = True
    """False when the callee is a method reached through another object than ``self``."""


@dataclass(eq=False)
class Access:
    """A read or write of (possibly) shared state."""

    ref: str
    kind: str  # "read" | "write" | "rmw" | "item-write" | "item-rmw" | "mutate"
    function: str
    held: tuple[HeldLock, ...]
    node: cst.CSTNode
    statement: cst.CSTNode | None = None


@dataclass(eq=False)
class LockAcquire:
    """A place where a lock is taken (``with`` or ``acquire()``)."""

    ref: str
    kind: str | None
    via: str  # "with" | "acquire"
    function: str
    held_before: tuple[HeldLock, ...]
    node: cst.CSTNode
    blocking: bool = True


@dataclass(eq=False)
class Spawn:
    """Code handed to another thread: Thread/Timer creation, executor submit/map, subclass."""

    kind: str  # "thread" | "timer" | "submit" | "map" | "subclass" | "start_new_thread" | "run_in_executor" | "to_thread"
    # | "handler" (a threading socketserver: its handler class's methods, one thread per request)
    node: cst.Call
    function: str
    target: cst.BaseExpression | None
    targets: tuple[str, ...]
    args: cst.Arg | None
    in_loop: bool
    bound_to: str | None = None
    daemon: bool | None = None
    certain: bool = True
    executor: str | None = None


@dataclass(eq=False)
class FunctionInfo:
    qualname: str
    name: str
    node: cst.CSTNode
    class_name: str | None = None
    parent: str | None = None
    params: tuple[str, ...] = ()
    is_lambda: bool = False
    is_async: bool = False
    decorators: tuple[str, ...] = ()
    calls: list[Call] = field(default_factory=list)
    accesses: list[Access] = field(default_factory=list)
    acquires: list[LockAcquire] = field(default_factory=list)
    loops: list[cst.While] = field(default_factory=list)
    local_names: frozenset[str] = frozenset()
    global_names: frozenset[str] = frozenset()

    @property
    def self_name(self) -> str | None:
        if self.class_name and self.params and "staticmethod" not in self.decorators:
            return self.params[0]
        return None


@dataclass(eq=False)
class ClassInfo:
    name: str
    node: cst.ClassDef
    bases: tuple[str, ...]
    methods: dict[str, str] = field(default_factory=dict)
    is_thread: bool = False


@dataclass(eq=False)
class ModuleModel:
    path: str
    module: cst.Module
    imports: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    primitives: dict[str, Primitive] = field(default_factory=dict)
    spawns: list[Spawn] = field(default_factory=list)
    lock_aliases: dict[str, str] = field(default_factory=dict)
    """``Condition(lock)``: holding the condition is holding that lock."""
    thread_vars: dict[str, Spawn] = field(default_factory=dict)
    """Refs bound to a Thread object (``t = Thread(...)``), including loop variables over lists of them."""
    types: dict[str, str] = field(default_factory=dict)
    """Refs known to hold an instance of a module class."""

    # -- flat views -------------------------------------------------------------------
    @property
    def calls(self) -> Iterator[Call]:
        for fn in self.functions.values():
            yield from fn.calls

    @property
    def accesses(self) -> Iterator[Access]:
        for fn in self.functions.values():
            yield from fn.accesses

    @property
    def acquires(self) -> Iterator[LockAcquire]:
        for fn in self.functions.values():
            yield from fn.acquires

    def primitive_kind(self, ref: str | None) -> str | None:
        if ref is None:
            return None
        prim = self.primitives.get(ref)
        return prim.kind if prim else None

    # -- call graph -------------------------------------------------------------------
    @cached_property
    def callgraph(self) -> dict[str, frozenset[str]]:
        graph: dict[str, set[str]] = {name: set() for name in self.functions}
        for fn in self.functions.values():
            for call in fn.calls:
                graph[fn.qualname].update(c for c in call.callees if c in self.functions)
            # nested functions and lambdas run in the thread that calls them; a lambda
            # defined inline is treated as called by its definer only when it is not a target.
        return {k: frozenset(v) for k, v in graph.items()}

    def reachable(self, roots: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        stack = [r for r in roots if r in self.functions]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(self.callgraph.get(name, ()))
        return seen

    @cached_property
    def thread_entries(self) -> dict[str, list[Spawn]]:
        """Function qualname -> the spawns that run it on another thread."""
        entries: dict[str, list[Spawn]] = {}
        for spawn in self.spawns:
            for target in spawn.targets:
                if target in self.functions:
                    entries.setdefault(target, []).append(spawn)
        return entries

    @cached_property
    def contexts(self) -> dict[str, frozenset[str]]:
        """Function qualname -> the thread entries it is reachable from ("main" for the rest).

        Every function that no thread entry reaches is assumed to run on the main thread
        (module code, public API); entries themselves run on their own thread.
        """
        ctx: dict[str, set[str]] = {name: set() for name in self.functions}
        for entry in self.thread_entries:
            for name in self.reachable([entry]):
                ctx[name].add(entry)
        main_roots = [n for n, c in ctx.items() if not c and not self.functions[n].is_lambda]
        for name in self.reachable(main_roots):
            ctx[name].add("main")
        return {k: frozenset(v) for k, v in ctx.items()}

    def thread_reachable(self) -> set[str]:
        return self.reachable(self.thread_entries)

    def own_state(self, entry: str, ref: str | None) -> bool:
        """``entry`` is the ``run`` of a ``Thread`` subclass (each object runs it once, on its
        own thread) and ``ref`` is an attribute of that object: every such thread has its own."""
        if ref is None or not ref.startswith("a:"):
            return False
        info = self.functions.get(entry)
        spawns = self.thread_entries.get(entry, [])
        if info is None or info.class_name is None or info.name != "run" or not spawns:
            return False
        return all(s.kind == "subclass" for s in spawns) and ref.startswith(f"a:{info.class_name}.")

    def is_multi_instance(self, entry: str) -> bool:
        """True when the entry may run on several threads at once."""
        spawns = self.thread_entries.get(entry, [])
        if any(s.in_loop or s.kind in ("map",) for s in spawns):
            return True
        if len(spawns) > 1 and not _restarts(spawns):
            return True
        return False

    @cached_property
    def constructions(self) -> dict[str, list[Call]]:
        """Class name -> the calls that build one (``C(...)`` resolved to ``C.__init__``, or
        named ``C``)."""
        out: dict[str, list[Call]] = {}
        for call in self.calls:
            classes = {c[: -len(".__init__")] for c in call.callees if c.endswith(".__init__")}
            if call.qualname:
                classes.add(call.qualname)
            for cls in classes:
                out.setdefault(cls, []).append(call)
        return out

    @cached_property
    def _per_object(self) -> dict[str, str | None]:
        return {entry: self._per_object_class(entry) for entry in self.thread_entries}

    def per_object_threads(self, entry: str) -> str | None:
        """The class ``C`` when ``entry`` is a method of ``C`` started as a thread by ``C``'s own
        code (``Thread(target=self._run)`` in ``__init__`` or ``start``) and ``C`` is built in a
        loop or at several places: one such thread per object, so several at once. Each has its
        own ``self``; what they share is everything else (an object passed to every ``C``)."""
        return self._per_object.get(entry)

    def _per_object_class(self, entry: str) -> str | None:
        spawns = self.thread_entries.get(entry, [])
        info = self.functions.get(entry)
        cls = info.class_name if info else None
        if cls is None or not spawns or any(self.functions[s.function].class_name != cls for s in spawns):
            return None
        sites = self.constructions.get(cls, [])
        if len(sites) > 1 or any(c.loop_depth > 0 for c in sites):
            return cls
        return None

    def shared_by_object_threads(self, entry: str, ref: str) -> bool:
        """``entry`` runs as one thread per object of its class ``C`` (``per_object_threads``)
        and ``ref`` is state those threads share: not ``C``'s own, not a local, and not an
        object each ``C`` builds for itself (``self.stats = Stats()``)."""
        cls = self.per_object_threads(entry)
        if cls is None or ref.startswith(("l:", f"a:{cls}.")):
            return False
        if ref.startswith("a:"):
            built = self.constructions.get(ref[2:].split(".", 1)[0], [])
            if built and all(self.functions[c.function].class_name == cls for c in built):
                return False
        return True

    # -- objects built per call ---------------------------------------------------------
    @cached_property
    def fresh_locals(self) -> frozenset[str]:
        """Locals every binding of which builds a new object of a module class in their own
        function (``tok = Tokenizer(text)``), and that no thread or task started there is
        handed (by name, as target, argument or in a closure)."""
        own = {ref for ref in self.constructed_refs if ref.startswith("l:") and self._bound_in_own_function(ref)}
        if not own:
            return frozenset()
        from .syntax import names_in

        handed: set[str] = set()
        for spawn in self.spawns:
            handed.update(f"l:{spawn.function}.{name}" for name in names_in(spawn.node))
        fresh = own - handed
        while True:
            more = self._fresh_params(fresh) - handed - fresh
            if not more:
                return frozenset(fresh)
            fresh |= more

    @cached_property
    def constructed_refs(self) -> frozenset[str]:
        """Refs every binding of which builds a new object of a module class there
        (``tok = Tokenizer(text)``, ``self.parser = Parser()``)."""
        built = self._built
        verdict: dict[str, bool] = {}
        for acc in self.accesses:
            if acc.kind != "write" or verdict.get(acc.ref) is False:
                continue
            value = assigned_value(acc)
            verdict[acc.ref] = value is not None and id(value) in built
        return frozenset(ref for ref, ok in verdict.items() if ok)

    @cached_property
    def _built(self) -> frozenset[int]:
        """Ids of the calls that build an object of a module class."""
        return frozenset(id(c.node) for cls, calls in self.constructions.items() if cls in self.classes for c in calls)

    def _bound_in_own_function(self, ref: str) -> bool:
        """A local ``l:f.name`` written only by ``f`` itself (not by a nested function)."""
        writers = self._writers.get(ref, ())
        return bool(writers) and all(ref.startswith(f"l:{w}.") and "." not in ref[len(w) + 3:] for w in writers)

    @cached_property
    def _writers(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for acc in self.accesses:
            if acc.kind == "write":
                out.setdefault(acc.ref, set()).add(acc.function)
        return out

    def _fresh_params(self, fresh: set[str]) -> set[str]:
        """Parameters every caller passes an object of its own (``fill(registry)`` right after
        ``registry = Registry()``, or ``fill(Registry())``); a function some thread starts
        directly is not one."""
        import libcst as cst

        passed: dict[str, bool] = {}
        for call in self.calls:
            for callee in call.callees:
                info = self.functions.get(callee)
                if info is None or callee in self.thread_entries:
                    continue
                skip = 1 if call.attr is not None and info.self_name is not None else 0
                starred = any(a.star for a in call.node.args)
                positional = [a for a in call.node.args if a.keyword is None and not a.star]
                for i, param in enumerate(info.params[skip:]):
                    ref = f"l:{callee}.{param}"
                    if passed.get(ref) is False:
                        continue
                    arg = positional[i] if i < len(positional) else next(
                        (a for a in call.node.args if a.keyword is not None and a.keyword.value == param), None
                    )
                    value = arg.value if arg is not None else None
                    passed[ref] = not starred and (
                        (isinstance(value, cst.Name) and f"l:{call.function}.{value.value}" in fresh)
                        or id(value) in self._built  # `deliver(Delivery(...))`
                    )
        return {ref for ref, ok in passed.items() if ok}

    def through_fresh_local(self, access: Access) -> bool:
        """``access`` reaches its object through a local (or parameter) of its function that
        holds an object built there for that call only (``mine = Report(); mine.n += 1``)."""
        import libcst as cst

        node = access.node
        if isinstance(node, cst.Subscript):
            node = node.value
        while isinstance(node, cst.Attribute):
            node = node.value
        fn = self.functions.get(access.function)
        if not isinstance(node, cst.Name) or fn is None or node.value == fn.self_name:
            return False
        return f"l:{access.function}.{node.value}" in self.fresh_locals

    def self_class(self, function: str) -> str | None:
        """The class whose ``self`` a function sees: its own, or its enclosing method's."""
        fn = self.functions.get(function)
        while fn is not None and fn.class_name is None and fn.parent in self.functions and fn.parent != MODULE:
            fn = self.functions[fn.parent]
        return fn.class_name if fn is not None else None

    @cached_property
    def _self_shared(self) -> dict[str, frozenset[str]]:
        """Function -> the thread entries that reach it with a ``self`` other threads may
        also hold. An entry that reaches a method only through an object it built itself
        (``Tokenizer(text).tokens()`` in a task run on many threads) has its own ``self``."""
        edges: dict[str, list[tuple[str, str]]] = {}
        fresh = self.fresh_locals
        for fn in self.functions.values():
            out = edges.setdefault(fn.qualname, [])
            for call in fn.calls:
                for callee in call.callees:
                    info = self.functions.get(callee)
                    if info is None:
                        continue
                    if callee.startswith(fn.qualname + ".<locals>."):
                        mode = "same"
                    elif (call.attr is None and info.name in ("__init__", "__post_init__") and info.class_name) or (
                        call.receiver in fresh and call.receiver.startswith(f"l:{fn.qualname}.")
                    ) or call.receiver in self.per_thread_params:
                        mode = "fresh"
                    elif info.class_name and call.same_instance and self.self_class(fn.qualname) is not None:
                        mode = "same"
                    else:
                        mode = "other"
                    out.append((callee, mode))
        shared: dict[str, set[str]] = {}
        for entry in self.thread_entries:
            seen: set[tuple[str, bool]] = set()
            stack = [(entry, False)]
            while stack:
                state = stack.pop()
                if state in seen:
                    continue
                seen.add(state)
                name, private = state
                if not private:
                    shared.setdefault(name, set()).add(entry)
                for callee, mode in edges.get(name, ()):
                    stack.append((callee, private if mode == "same" else mode == "fresh"))
        return {k: frozenset(v) for k, v in shared.items()}

    @cached_property
    def per_thread_params(self) -> frozenset[str]:
        """Parameters (``l:entry.param``) of a thread entry that every spawn of it binds to the
        variable of a loop around the spawn (``for kiosk in kiosks: Thread(target=session,
        args=(kiosk, 40))``, also through ``functools.partial``): each thread gets its own
        element, so methods called on it have a ``self`` of their own on that thread."""
        import libcst as cst

        out: set[str] = set()
        for entry, spawns in self.thread_entries.items():
            info = self.functions.get(entry)
            if info is None or not spawns:
                continue
            params = positional_params(info)  # ``Thread(target=self.handle, args=(conn,))``: after ``self``
            common: set[str] | None = None
            for spawn in spawns:
                names = _loop_names(self.functions.get(spawn.function), spawn.node)
                bound = {p for p, arg in zip(params, spawn_arguments(spawn))
                         if isinstance(arg, cst.Name) and arg.value in names}
                common = bound if common is None else common & bound
            out.update(f"l:{entry}.{p}" for p in common or ())
        return frozenset(out)

    def contexts_for(self, function: str, ref: str | None) -> frozenset[str]:
        """``contexts[function]`` as seen by state ``ref``: for an attribute of the function's
        own class (``self.x``), threads that only ever reach it on an object of their own
        are left out."""
        ctx = self.contexts.get(function, frozenset())
        if not ref or not ref.startswith("a:") or ref[2:].split(".", 1)[0] != self.self_class(function):
            return ctx
        shared = self._self_shared.get(function, frozenset())
        return frozenset(c for c in ctx if c == "main" or c in shared)

    @cached_property
    def held_on_entry(self) -> dict[str, frozenset[str]]:
        """Locks every caller holds when calling a function (its callers' protection)."""
        callers: dict[str, list[tuple[str, frozenset[str]]]] = {n: [] for n in self.functions}
        lock = self.lock_identity
        for fn in self.functions.values():
            for call in fn.calls:
                held = frozenset(lock(h.ref) for h in call.held)
                for callee in call.callees:
                    if callee in callers:
                        callers[callee].append((fn.qualname, held))
        result: dict[str, frozenset[str]] = {}
        entries = set(self.thread_entries)
        universe = frozenset(lock(h.ref) for c in self.calls for h in c.held)
        for name in self.functions:
            result[name] = frozenset() if (name in entries or not callers[name]) else universe
        for _ in range(len(self.functions) + 1):
            changed = False
            for name, sites in callers.items():
                if name in entries or not sites:
                    continue
                new = frozenset.intersection(*[held | result[caller] for caller, held in sites])
                if new != result[name]:
                    result[name] = new
                    changed = True
            if not changed:
                break
        return result

    def lock_identity(self, ref: str) -> str:
        """The lock that holding ``ref`` takes (a ``Condition`` built on a lock: that lock)."""
        seen = 0
        while ref in self.lock_aliases and seen < 8:
            ref, seen = self.lock_aliases[ref], seen + 1
        return ref

    def effective_held(self, function: str, held: Iterable[HeldLock]) -> frozenset[str]:
        """The locks held at a point of ``function`` (its own and every caller's), by identity."""
        return frozenset(self.lock_identity(h.ref) for h in held) | self.held_on_entry.get(function, frozenset())

    def exclusive_held(self, function: str, held: Iterable[HeldLock]) -> frozenset[str]:
        """``effective_held`` less the locks that let several threads in at once."""
        return frozenset(ref for ref in self.effective_held(function, held) if self.excludes(ref))

    def excludes(self, ref: str) -> bool:
        """Whether holding ``ref`` keeps every other thread out: a semaphore does only when it
        has a single slot (``Semaphore()``, ``Semaphore(1)``)."""
        import libcst as cst

        prim = self.primitives.get(ref)
        if prim is None or prim.kind not in ("Semaphore", "BoundedSemaphore"):
            return True
        if not isinstance(prim.node, cst.Call):
            return False
        args = prim.node.args
        value = next((a.value for a in args if a.keyword is not None and a.keyword.value == "value"), None)
        if value is None and args and args[0].keyword is None and args[0].star == "":
            value = args[0].value
        return value is None or (isinstance(value, cst.Integer) and value.evaluated_value == 1)


def _restarts(spawns: list[Spawn]) -> bool:
    """Every spawn stores its thread in the same attribute (``self._thread = Thread(...)`` in
    ``__init__`` and in a restart method): one thread per object at a time."""
    bound = {s.bound_to for s in spawns}
    if len(bound) != 1:
        return False
    (ref,) = bound
    return ref is not None and ref.startswith("a:") and all(s.kind == "thread" for s in spawns)


def assigned_value(acc: Access):
    """The value a write access assigns (``x = value`` / ``x: T = value``), else None."""
    import libcst as cst

    statement = acc.statement
    if not isinstance(statement, cst.SimpleStatementLine):
        return None
    for small in statement.body:
        if isinstance(small, cst.Assign) and any(t.target is acc.node for t in small.targets):
            return small.value
        if isinstance(small, cst.AnnAssign) and small.target is acc.node:
            return small.value
    return None


def positional_params(info: FunctionInfo) -> list[str]:
    """``info``'s parameters that positional arguments fill (a method's ``self``/``cls`` left out)."""
    params = list(info.params)
    return params[1:] if info.class_name and params[:1] in (["self"], ["cls"]) else params


def spawn_arguments(spawn: Spawn, through_partial: bool = True) -> list:
    """The positional arguments a spawn hands its target: ``args=(...)``, after those of a
    ``functools.partial(target, ...)`` target when ``through_partial``; none when an element
    is starred (its positions are unknown)."""
    import libcst as cst

    out: list = []
    target = spawn.target
    if (through_partial and isinstance(target, cst.Call) and target.args
            and all(a.keyword is None and not a.star for a in target.args)):
        out.extend(a.value for a in target.args[1:])
    if spawn.args is not None and isinstance(spawn.args.value, (cst.Tuple, cst.List)):
        if any(isinstance(el, cst.StarredElement) for el in spawn.args.value.elements):
            return []
        out.extend(el.value for el in spawn.args.value.elements)
    return out


def _loop_names(info: "FunctionInfo | None", node: cst.CSTNode) -> set[str]:
    """Names bound by the targets of the ``for`` loops and comprehensions of ``info`` that hold
    ``node`` (loops over ``range`` left out: their variables are numbers)."""
    if info is None:
        return set()
    import libcst as cst

    from .syntax import names_in

    found: set[str] = set()
    comprehensions = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)

    def targets(n: cst.CSTNode) -> list[cst.BaseExpression]:
        if isinstance(n, cst.For):
            return [] if _is_range(n.iter) else [n.target]
        out, loop = [], n.for_in if isinstance(n, comprehensions) else None
        while loop is not None:
            if not _is_range(loop.iter):
                out.append(loop.target)
            loop = loop.inner_for_in
        return out

    class Finder(cst.CSTVisitor):
        def __init__(self) -> None:
            self.stack: list[list[cst.BaseExpression]] = []

        def on_visit(self, n: cst.CSTNode) -> bool:
            if n is node:
                for group in self.stack:
                    for target in group:
                        found.update(names_in(target))
                return False
            if isinstance(n, (cst.For, *comprehensions)):
                self.stack.append(targets(n))
            return True

        def on_leave(self, n: cst.CSTNode) -> None:
            if isinstance(n, (cst.For, *comprehensions)):
                self.stack.pop()

    info.node.visit(Finder())
    return found


def _is_range(expr: cst.BaseExpression) -> bool:
    import libcst as cst

    return isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "range"
