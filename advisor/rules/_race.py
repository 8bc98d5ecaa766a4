"""Queries over a :class:`ModuleModel` shared by rules THR009-THR016."""

from __future__ import annotations

import weakref
from typing import Iterable

import libcst as cst

from ..analysis.model import Access, Call, HeldLock, ModuleModel, positional_params, spawn_arguments
from ..analysis.syntax import calls_in, names_in  # noqa: F401  (re-exported for the rules)

_INDEX: "weakref.WeakKeyDictionary[ModuleModel, dict[str, dict]]" = weakref.WeakKeyDictionary()


def _index(model: ModuleModel) -> dict[str, dict]:
    idx = _INDEX.get(model)
    if idx is None:
        idx = {"calls": {}, "accesses": {}, "parents": {}}
        for fn in model.functions.values():
            for call in fn.calls:
                idx["calls"][id(call.node)] = call
            for acc in fn.accesses:
                idx["accesses"].setdefault(id(acc.node), []).append(acc)
        _INDEX[model] = idx
    return idx


def call_at(model: ModuleModel, node: cst.CSTNode) -> Call | None:
    return _index(model)["calls"].get(id(node))


def accesses_at(model: ModuleModel, node: cst.CSTNode) -> list[Access]:
    return _index(model)["accesses"].get(id(node), [])


def ref_at(model: ModuleModel, node: cst.CSTNode) -> str | None:
    """The ref the model recorded for expression ``node`` (read or written), if any."""
    for acc in accesses_at(model, node):
        return acc.ref
    return None


class _Parents(cst.CSTVisitor):
    def __init__(self) -> None:
        self.stack: list[cst.CSTNode] = []
        self.parents: dict[int, cst.CSTNode] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.stack:
            self.parents[id(node)] = self.stack[-1]
        self.stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()


def parents(model: ModuleModel, root: cst.CSTNode) -> dict[int, cst.CSTNode]:
    """Child id -> parent node for every node under ``root`` (cached per model)."""
    cache = _index(model)["parents"]
    found = cache.get(id(root))
    if found is None:
        visitor = _Parents()
        root.visit(visitor)
        found = visitor.parents
        cache[id(root)] = found
    return found


def chain(model: ModuleModel, root: cst.CSTNode, node: cst.CSTNode) -> list[cst.CSTNode]:
    """Enclosing nodes of ``node`` inside ``root``, innermost first."""
    table = parents(model, root)
    out = []
    cur = table.get(id(node))
    while cur is not None:
        out.append(cur)
        cur = table.get(id(cur))
    return out


def thread_entries_of(model: ModuleModel, function: str) -> frozenset[str]:
    return frozenset(c for c in model.contexts.get(function, ()) if c != "main")


def may_run_together(model: ModuleModel, a: str, b: str, ref: str | None = None) -> bool:
    """True when functions ``a`` and ``b`` may run at the same time on different threads
    (touching ``ref``, when given: one thread per object shares only what is not its own)."""
    if closure_local_together(model, a, b, ref) is False:
        return False
    ca = model.contexts_for(a, ref)
    cb = model.contexts_for(b, ref)
    for x in ca:
        for y in cb:
            if x != y and (x != "main" or y != "main"):
                return True
            if x == y and x != "main" and not model.own_state(x, ref) and (
                model.is_multi_instance(x) or (ref is not None and model.shared_by_object_threads(x, ref))
            ):
                return True
    return False


def closure_local_together(model: ModuleModel, a: str, b: str, ref: str | None) -> bool | None:
    """For ``ref``, a local of function ``E`` that its nested functions share, when every thread
    running ``a`` or ``b`` is started by ``E`` itself: each call of ``E`` has its own object, so
    only the threads of one call can meet on it (``E``'s caller, and each thread ``E`` starts).
    They cannot when a thread is started in one branch of an ``if`` and the function run directly
    in the other. None when ``ref`` is not such a local; False rules a race out, True leaves it
    to the caller's own test."""
    if not ref or not ref.startswith("l:"):
        return None
    owner = ref[2:].rsplit(".", 1)[0]
    info = model.functions.get(owner)
    if info is None or (a == owner and b == owner):
        return None
    reach = {fn: model.reachable([fn]) for fn in {a, b}}
    spawns = [s for s in model.spawns if any(fn in model.reachable(s.targets) for fn in reach)]
    if any(s.function != owner for s in spawns):
        return None
    direct = [c for c in info.calls if any(fn in model.reachable(c.callees) for fn in reach)]

    def runners(fn: str) -> list:
        out: list = [s for s in spawns if fn in model.reachable(s.targets)]
        sites = [c.node for c in direct if fn in model.reachable(c.callees)]
        if fn == owner:
            sites.append(None)
        if sites:
            out.append(sites)
        return out

    for x in runners(a):
        for y in runners(b):
            if isinstance(x, list) and isinstance(y, list):
                continue
            if x is y:
                if x.in_loop or x.kind == "map":
                    return True
                continue
            if not _exclusive(model, info.node, x, y):
                return True
    return False


def _exclusive(model: ModuleModel, root: cst.CSTNode, x, y) -> bool:
    """Whether runner ``x`` (a spawn, or the owner's own call sites) and ``y`` never happen in
    the same call: every pair of their statements lies in opposite branches of one ``if``."""
    xs = x if isinstance(x, list) else [x.node]
    ys = y if isinstance(y, list) else [y.node]
    return all(p is not None and q is not None and _opposite_branches(model, root, p, q) for p in xs for q in ys)


def _opposite_branches(model: ModuleModel, root: cst.CSTNode, p: cst.CSTNode, q: cst.CSTNode) -> bool:
    up_p = [p, *chain(model, root, p)]
    up_q = [q, *chain(model, root, q)]
    ids_q = {id(n): i for i, n in enumerate(up_q)}
    for i, node in enumerate(up_p):
        j = ids_q.get(id(node))
        if j is None:
            continue
        if not isinstance(node, cst.If) or i == 0 or j == 0:
            return False
        sides = {id(up_p[i - 1]), id(up_q[j - 1])}
        return node.orelse is not None and sides == {id(node.body), id(node.orelse)}
    return False


def spawn_arg_params(model: ModuleModel, spawn) -> list[tuple[cst.BaseExpression, str]]:
    """``(argument, parameter ref)`` for each element of ``args=(...)`` a spawn hands its
    targets (``Thread(target=serve, args=(lobby, endpoint))`` -> ``l:serve.endpoint``)."""
    args = spawn_arguments(spawn, through_partial=False)
    out = []
    for target in spawn.targets:
        info = model.functions.get(target)
        if info is not None:
            out.extend((arg, f"l:{target}.{param}") for param, arg in zip(positional_params(info), args))
    return out


def locked(model: ModuleModel, function: str, held: Iterable[HeldLock]) -> bool:
    """True when some lock that keeps other threads out is held here (directly or by every caller)."""
    return bool(model.exclusive_held(function, held))


def caught_names(handler: cst.ExceptHandler) -> set[str] | None:
    """Last names of the exception types an ``except`` clause names (``queue.Empty`` ->
    ``Empty``, tuples included); None for a bare ``except:``."""
    if handler.type is None:
        return None
    types = handler.type.elements if isinstance(handler.type, cst.Tuple) else [handler.type]
    names = set()
    for t in types:
        expr = t.value if isinstance(t, cst.Element) else t
        name = expr.attr.value if isinstance(expr, cst.Attribute) else getattr(expr, "value", None)
        if isinstance(name, str):
            names.add(name)
    return names


def is_broad_handler(handler: cst.ExceptHandler) -> bool:
    """``except:``, ``except Exception`` or ``except BaseException`` (possibly in a tuple)."""
    names = caught_names(handler)
    return names is None or bool(names & {"Exception", "BaseException"})


def function_label(function: str) -> str | None:
    return None if function == "<module>" else function
