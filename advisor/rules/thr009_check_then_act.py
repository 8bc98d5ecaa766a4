from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import libcst as cst

from ..analysis.model import MODULE, FunctionInfo, ModuleModel, assigned_value
from ..analysis.syntax import OwnBodyVisitor, ends_with
from ._race import accesses_at, call_at, calls_in, caught_names, chain, function_label, locked, may_run_together, ref_at
from .base import Finding, Rule, RuleContext

REMOVERS = frozenset({"pop", "popleft", "popitem", "remove", "clear", "get", "get_nowait", "discard"})
ADDERS = frozenset({"append", "add", "update", "setdefault", "extend", "insert", "appendleft", "put", "put_nowait", "__setitem__"})
SETUP = frozenset({"__init__", "__new__", "__post_init__", "setUp", "setUpClass"})


@dataclass(frozen=True)
class _Check:
    test: cst.BaseExpression
    ref: str
    shape: str  # "absent" (k not in X) | "present" (k in X) | "nonempty" (X / not q.empty())
    key: str | None
    body: tuple[cst.CSTNode, ...]


class CheckThenAct(Rule):
    """
    ## What it does
    Flags a test on a shared container followed by an action that relies on it, with no
    lock held, in code that runs on several threads: `if k not in cache: cache[k] = ...`,
    `if k in d: del d[k]`, `if not q.empty(): q.get()`, `if items: items.pop()`. Also a
    test of state made without the lock that the update it guards then takes, with no
    second test under it (`if job.state == PENDING: with lock: job.state = CANCELLED`, or
    `if name in sessions: return None` before `with lock: sessions[name] = s`),
    when another thread may write that state meanwhile, and the same split across two
    methods that each take the lock (`if fleet.is_idle(r): fleet.mark_busy(r)`, or `d =
    reg.nearest_free()` / `if d is None: return` / `reg.claim(d)`; a cache-aside fill is not
    reported).

    ## Why is this bad?
    Another thread can change the container between the test and the action. Two threads
    both see the key missing and both compute and store it (one result is lost), or both
    see it present and the second `del`/`pop` raises `KeyError`; `q.get()` blocks forever
    when another consumer took the last item.

    ## Example
    ```python
    def get(self, url):
        if url not in self._cache:
            self._cache[url] = fetch(url)
        return self._cache[url]
    ```

    ## Use instead
    ```python
    def get(self, url):
        with self._lock:
            if url not in self._cache:
                self._cache[url] = fetch(url)
            return self._cache[url]
    ```
    Or use one atomic operation: `d.pop(k, None)`, `d.setdefault(k, v)`, `q.get_nowait()`
    with `except queue.Empty`.
    """

    code = "THR009"
    name = "check-then-act"
    summary = "check-then-act on a shared container without a lock"
    help = "hold one lock across the test and the action, or use an atomic operation (`setdefault`, `pop(k, None)`, `get_nowait()`)"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        for fn in model.functions.values():
            if fn.qualname == MODULE or fn.is_lambda or fn.name in SETUP:
                continue
            if not model.contexts.get(fn.qualname):
                continue
            for stmt, rest in _conditionals(fn.node):
                reported = False
                for check in _checks(model, ctx, stmt, rest):
                    finding = self._judge(ctx, model, fn, check)
                    if finding is not None:
                        yield finding
                        reported = True
                        break
                if not reported and isinstance(stmt, cst.If):
                    split = _split_by_helpers(model, fn, stmt, rest)
                    if split is not None:
                        query, act, state, lock, rival = split
                        where = "on several threads" if rival == fn.qualname else f"while `{rival}` may run on another thread"
                        yield self.finding(
                            ctx,
                            stmt.test,
                            f"check-then-act across two critical sections: `{query}()` tests `{state}` under `{lock}` "
                            f"and `{act}()` changes it under the lock again, but nothing holds the lock in between, "
                            f"and this runs {where}; the state can change between the test and the update",
                            help="do the test and the update in one method under the lock (or test again inside the update)",
                            function=function_label(fn.qualname),
                        )
                        continue
                    late = _locked_act(model, fn, stmt, rest)
                    if late is not None:
                        write, lock, rival = late
                        what = ctx.code(stmt.test) if len(ctx.code(stmt.test)) < 50 else "the state"
                        where = "on several threads" if rival == fn.qualname else f"while `{rival}` may run on another thread"
                        yield self.finding(
                            ctx,
                            stmt.test,
                            f"check-then-act on `{what}`: the test runs without `{lock}`, which is taken only for "
                            f"the update at line {ctx.span(write).line}, and this runs {where}; the state can change in between",
                            help="take the lock before the test (or test again under it) so the test and the update are one step",
                            function=function_label(fn.qualname),
                        )

    def _judge(self, ctx: RuleContext, model: ModuleModel, fn: FunctionInfo, check: _Check) -> Finding | None:
        test_held = [a.held for a in accesses_at(model, check.test) if a.ref == check.ref]
        act = _action(model, ctx, check)
        if act is None:
            return None
        act_node, act_held, verb = act
        held = test_held[0] if test_held else ()
        if locked(model, fn.qualname, held) or locked(model, fn.qualname, act_held):
            return None
        wanted = ("remove",) if check.shape in ("present", "nonempty") else ("add", "remove")
        rival = _rival(model, fn.qualname, check.ref, wanted)
        if rival is None:
            return None
        container = ctx.code(check.test) if len(ctx.code(check.test)) < 50 else "the container"
        where = "on several threads" if rival == fn.qualname else f"while `{rival}` may run on another thread"
        return self.finding(
            ctx,
            check.test,
            f"check-then-act on `{container}`: the test and the {verb} are not atomic and this runs {where} with no lock held",
            function=function_label(fn.qualname),
        )


class _Conditionals(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[cst.If | cst.While, tuple[cst.CSTNode, ...]]] = []
        self.rest: dict[int, tuple[cst.CSTNode, ...]] = {}

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        body = tuple(node.body)
        for i, stmt in enumerate(body):
            self.rest[id(stmt)] = body[i + 1 :]

    def visit_If(self, node: cst.If) -> None:
        self.found.append((node, self.rest.get(id(node), ())))

    def visit_While(self, node: cst.While) -> None:
        self.found.append((node, ()))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def _conditionals(node: cst.CSTNode) -> list[tuple[cst.If | cst.While, tuple[cst.CSTNode, ...]]]:
    visitor = _Conditionals()
    body = getattr(node, "body", None)
    if body is not None:
        body.visit(visitor)
    return visitor.found


def _exits(body: cst.BaseSuite) -> bool:
    """The block always leaves: its last statement is ``return``, ``raise``, ``continue`` or ``break``."""
    return ends_with(body, (cst.Return, cst.Raise, cst.Continue, cst.Break))


def _parts(test: cst.BaseExpression) -> Iterator[tuple[cst.BaseExpression, bool]]:
    """Conjuncts of ``test`` with their polarity (False under a ``not``)."""
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
        yield from _parts(test.left)
        yield from _parts(test.right)
    elif isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        yield test.expression, False
    else:
        yield test, True


def _checks(model: ModuleModel, ctx: RuleContext, stmt: cst.If | cst.While, rest: tuple[cst.CSTNode, ...]) -> Iterator[_Check]:
    for part, polarity in _parts(stmt.test):
        probe = _get_probe(model, ctx, part, polarity)
        if probe is not None and isinstance(stmt, cst.If):
            container, ref, key, absent = probe
            yield _Check(container, ref, "absent" if absent else "present", key, (stmt.body,))
            if absent is False and stmt.orelse is not None and isinstance(stmt.orelse, cst.Else):
                yield _Check(container, ref, "absent", key, (stmt.orelse.body,))
            continue
        if isinstance(part, cst.Comparison) and len(part.comparisons) == 1:
            op = part.comparisons[0].operator
            container = part.comparisons[0].comparator
            ref = _shared_ref(model, container)
            if ref is None:
                continue
            if isinstance(op, (cst.In, cst.NotIn)):
                absent = isinstance(op, cst.NotIn) == polarity
                key = _text(ctx, part.left)
                if isinstance(stmt, cst.If):
                    if absent:
                        yield _Check(container, ref, "absent", key, (stmt.body,))
                    else:
                        yield _Check(container, ref, "present", key, (stmt.body,))
                        if stmt.orelse is not None and isinstance(stmt.orelse, cst.Else):
                            yield _Check(container, ref, "absent", key, (stmt.orelse.body,))
                        elif stmt.orelse is None and rest and _exits(stmt.body):
                            yield _Check(container, ref, "absent", key, rest)
            continue
        if not polarity:
            sized = _emptiness(model, part)
            if sized is not None:
                yield _Check(sized[0], sized[1], "nonempty", None, (stmt.body,))
            continue
        sized = _sized(model, part)
        if sized is not None:
            yield _Check(sized[0], sized[1], "nonempty", None, (stmt.body,))


def _get_probe(model: ModuleModel, ctx: RuleContext, part: cst.BaseExpression, polarity: bool):
    """``X.get(K) is None`` / ``not X.get(K)`` (absent) and their negations (present)."""
    absent = not polarity
    if isinstance(part, cst.Comparison) and len(part.comparisons) == 1:
        comp = part.comparisons[0]
        if not (isinstance(comp.comparator, cst.Name) and comp.comparator.value == "None"):
            return None
        if isinstance(comp.operator, cst.Is):
            absent = polarity
        elif isinstance(comp.operator, cst.IsNot):
            absent = not polarity
        else:
            return None
        part = part.left
    if not (
        isinstance(part, cst.Call)
        and isinstance(part.func, cst.Attribute)
        and part.func.attr.value == "get"
        and len(part.args) == 1
        and part.args[0].keyword is None
    ):
        return None
    container = part.func.value
    ref = _shared_ref(model, container)
    if ref is None or model.primitive_kind(ref) is not None:
        return None
    return container, ref, _text(ctx, part.args[0].value), absent


def _shared_ref(model: ModuleModel, expr: cst.BaseExpression) -> str | None:
    ref = ref_at(model, expr)
    if ref is None or not ref.startswith(("g:", "a:", "l:")):
        return None
    kind = model.primitive_kind(ref)
    if kind is not None and kind not in ("Queue", "SimpleQueue"):
        return None
    return ref


def _sized(model: ModuleModel, expr: cst.BaseExpression) -> tuple[cst.BaseExpression, str] | None:
    """``X``, ``len(X)``, ``len(X) > 0``, ``q.qsize()``, ``q.qsize() > 0``: X is non-empty."""
    if isinstance(expr, cst.Comparison) and len(expr.comparisons) == 1:
        comp = expr.comparisons[0]
        if not (isinstance(comp.operator, (cst.GreaterThan, cst.NotEqual)) and _is_zero(comp.comparator)):
            if not (isinstance(comp.operator, cst.GreaterThanEqual) and isinstance(comp.comparator, cst.Integer) and comp.comparator.value == "1"):
                return None
        expr = expr.left
    if isinstance(expr, cst.Call):
        if isinstance(expr.func, cst.Name) and expr.func.value == "len" and len(expr.args) == 1:
            expr = expr.args[0].value
        elif isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "qsize" and not expr.args:
            expr = expr.func.value
        else:
            return None
    if not isinstance(expr, (cst.Name, cst.Attribute)):
        return None
    ref = _shared_ref(model, expr)
    return (expr, ref) if ref else None


def _emptiness(model: ModuleModel, expr: cst.BaseExpression) -> tuple[cst.BaseExpression, str] | None:
    """``q.empty()`` (negated by the caller)."""
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "empty" and not expr.args:
        ref = _shared_ref(model, expr.func.value)
        if ref is not None:
            return expr.func.value, ref
    return None


def _is_zero(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Integer) and expr.value == "0"


def _text(ctx: RuleContext, node: cst.CSTNode) -> str:
    return "".join(ctx.code(node).split())


class _Acts(OwnBodyVisitor):
    """Statements of an if/while body that act on the tested container."""

    def __init__(self) -> None:
        self.subscripts: list[tuple[cst.Subscript, bool]] = []
        self.calls: list[cst.Call] = []

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        if isinstance(node.target, cst.Subscript):
            self.subscripts.append((node.target, False))

    def visit_Del(self, node: cst.Del) -> None:
        if isinstance(node.target, cst.Subscript):
            self.subscripts.append((node.target, True))

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(node)


def _action(model: ModuleModel, ctx: RuleContext, check: _Check) -> tuple[cst.CSTNode, tuple, str] | None:
    acts = _Acts()
    for node in check.body:
        node.visit(acts)
    if check.shape in ("absent", "present"):
        want_del = check.shape == "present"
        for sub, is_del in acts.subscripts:
            if is_del != want_del or len(sub.slice) != 1:
                continue
            index = sub.slice[0].slice
            if not isinstance(index, cst.Index) or _text(ctx, index.value) != check.key:
                continue
            for acc in accesses_at(model, sub):
                if acc.ref == check.ref:
                    return sub, acc.held, "delete" if is_del else "store"
    methods = {
        "absent": ("append", "add", "setdefault", "insert", "appendleft"),
        "present": ("pop", "remove", "discard"),
        "nonempty": ("pop", "popleft", "popitem", "get", "get_nowait"),
    }[check.shape]
    for node in acts.calls:
        call = call_at(model, node)
        if call is None or call.receiver != check.ref or call.attr not in methods:
            continue
        if check.shape != "nonempty":
            if not node.args or _text(ctx, node.args[-1 if call.attr == "insert" else 0].value) != check.key:
                continue
            if call.attr == "pop" and len(node.args) > 1:
                continue
        elif call.attr == "get" and model.primitive_kind(check.ref) not in ("Queue", "SimpleQueue"):
            continue
        if _handled(model, call, node, check.body):
            continue
        return node, call.held, f"`{call.attr}()`"
    return None


HANDLED = frozenset({"Empty", "IndexError", "KeyError", "LookupError", "Exception", "BaseException", "ValueError"})


def _handled(model: ModuleModel, call, node: cst.Call, body: tuple) -> bool:
    """The action sits in a ``try`` inside the checked block that catches what it raises when
    the test went stale (``q.get_nowait()`` under ``except queue.Empty``): the race is handled."""
    for parent in chain(model, model.functions[call.function].node, node):
        if any(parent is b for b in body):
            return False
        if isinstance(parent, cst.Try):
            for handler in parent.handlers:
                names = caught_names(handler)
                if names is None or names & HANDLED:
                    return True
    return False


def _rival(model: ModuleModel, function: str, ref: str, wanted: tuple[str, ...]) -> str | None:
    """A function that changes ``ref`` and may run at the same time as ``function``."""
    methods = _methods(wanted)
    if model.primitive_kind(ref) not in ("Queue", "SimpleQueue"):
        methods -= {"get", "get_nowait", "put", "put_nowait"}
    own = ref.startswith(f"l:{function}.")
    for fn in model.functions.values():
        if fn.name in SETUP or fn.qualname == MODULE or (own and fn.qualname == function):
            continue
        if not any(_changes(model, acc, wanted) for acc in fn.accesses if acc.ref == ref) and not any(
            c.receiver == ref and c.attr in methods for c in fn.calls
        ):
            continue
        if may_run_together(model, function, fn.qualname, ref):
            return fn.qualname
    return None


def _methods(wanted: tuple[str, ...]) -> frozenset[str]:
    out: frozenset[str] = frozenset()
    if "add" in wanted:
        out |= ADDERS
    if "remove" in wanted:
        out |= REMOVERS
    return out


def _changes(model: ModuleModel, acc, wanted: tuple[str, ...]) -> bool:
    if acc.kind not in ("item-write", "item-rmw"):
        return False
    is_del = acc.statement is not None and any(isinstance(s, cst.Del) and s.target is acc.node for s in acc.statement.body)
    return ("remove" in wanted) if is_del else ("add" in wanted)


class _Nodes(OwnBodyVisitor):
    """Names, attributes, calls, subscripts, ``with`` blocks and tests in a body (nested definitions left out)."""

    def __init__(self) -> None:
        self.names: list[cst.CSTNode] = []
        self.withs: list[cst.With] = []
        self.tests: list[cst.BaseExpression] = []
        self.subscripts: list[cst.Subscript] = []

    def visit_Subscript(self, node: cst.Subscript) -> None:
        self.subscripts.append(node)

    def visit_Name(self, node: cst.Name) -> None:
        self.names.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.names.append(node)

    def visit_Call(self, node: cst.Call) -> None:
        self.names.append(node)

    def visit_With(self, node: cst.With) -> None:
        self.withs.append(node)

    def visit_If(self, node: cst.If) -> None:
        self.tests.append(node.test)

    def visit_While(self, node: cst.While) -> None:
        self.tests.append(node.test)

    def visit_Assert(self, node: cst.Assert) -> None:
        self.tests.append(node.test)

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self.tests.append(node.test)


def _nodes(*roots: cst.CSTNode) -> _Nodes:
    found = _Nodes()
    for root in roots:
        root.visit(found)
    return found


def _state_read(model: ModuleModel, fn: FunctionInfo, test: cst.BaseExpression) -> set[str] | None:
    """Attributes and globals ``test`` reads with no lock held (a property counts as what it
    reads of its object); None when a lock is held there."""
    refs: set[str] = set()
    for node in _nodes(test).names:
        for acc in accesses_at(model, node):
            if acc.kind != "read" or not acc.ref.startswith(("a:", "g:")) or model.primitive_kind(acc.ref) is not None:
                continue
            if locked(model, fn.qualname, acc.held):
                return None
            refs.add(acc.ref)
            prop = model.functions.get(acc.ref[2:])
            if prop is not None and "property" in prop.decorators and prop.class_name:
                refs.update(a.ref for a in prop.accesses if a.kind == "read" and a.ref.startswith(f"a:{prop.class_name}."))
    return refs


def _locked_act(model: ModuleModel, fn: FunctionInfo, stmt: cst.If, rest: tuple[cst.CSTNode, ...]):
    """``if job.state is PENDING: with lock: job.state = CANCELLED`` (or ``if item.available <
    n: raise ...`` followed by ``with lock: item.reserved += n``): the test reads state without
    the lock that its own update then takes, and nothing tests it again under the lock.
    Returns (the write, the lock's text, a rival writer that may run at the same time)."""
    refs = _state_read(model, fn, stmt.test)
    if not refs:
        return None
    body = (stmt.body,) + (rest if stmt.orelse is None and _exits(stmt.body) else ())
    for block in _nodes(*body).withs:
        inner = _nodes(block.body)
        if any(acc.ref in refs for t in inner.tests for n in _nodes(t).names for acc in accesses_at(model, n)):
            continue  # tested again under the lock
        for node in inner.names + inner.subscripts:
            for acc in accesses_at(model, node):
                if acc.ref not in refs or not acc.held:
                    continue
                if not (acc.kind in ("write", "rmw") or _removes(acc) or (
                        acc.kind == "item-write" and _refused_if_present(stmt, acc.ref, model))):
                    continue
                lock = next((h for h in acc.held if any(h.node is item.item for item in block.items)), None)
                if lock is None:
                    continue
                if acc.kind == "write" and _presence_test(model, stmt.test, acc.ref):
                    continue  # lazy initialisation under a lock: THR015's
                rival = _writer(model, fn.qualname, acc.ref)
                if rival is not None:
                    return acc.node, cst.Module([]).code_for_node(lock.node), rival
    return None


def _refused_if_present(stmt: cst.If, ref: str, model: ModuleModel) -> bool:
    """``if name in sessions: return None`` (or ``raise``) before ``with lock: sessions[name] =
    ...``: a key refused when present and then stored: two threads can both pass the test and
    store it twice. A guard that returns the stored element (``return cache[k]``) is a cache
    fill, left alone: both threads store an equal value."""
    test = stmt.test
    if stmt.orelse is not None or not _exits(stmt.body) or not isinstance(test, cst.Comparison):
        return False
    if len(test.comparisons) != 1 or not isinstance(test.comparisons[0].operator, cst.In):
        return False
    if not any(acc.ref == ref for acc in accesses_at(model, test.comparisons[0].comparator)):
        return False
    return ref not in _state_used(model, stmt.body)


def _split_by_helpers(model: ModuleModel, fn: FunctionInfo, stmt: cst.If, rest: tuple[cst.CSTNode, ...]):
    """``if fleet.is_idle(rid): fleet.mark_busy(rid)``: the test calls a method that only reads
    some state under a lock, the body calls another that changes that state under the same
    lock (without testing it again and telling the caller), and the caller holds no lock
    across the two. Returns (query, update, the state's name, the lock's name, a rival
    writer) or None."""
    def callee(node: cst.Call):
        call = call_at(model, node)
        if call is None or len(call.callees) != 1 or call.callees[0] not in model.functions:
            return None, None
        return call, model.functions[call.callees[0]]

    # ``if fleet.is_idle(r): fleet.mark_busy(r)``: the update in the body. ``driver =
    # registry.nearest_free()`` / ``if driver is None: return`` / ``registry.mark_busy(driver)``:
    # the update after an ``if`` that leaves when nothing was found (a fill under ``if x is
    # None:``, cache-aside, is left alone: every thread stores the same thing).
    # (query call, update calls, whether the updates follow an ``if`` that leaves)
    pairs = [(t, calls_in(stmt.body), False) for t in calls_in(stmt.test)]
    exit_reads: set[str] = set()
    if stmt.orelse is None and _exits(stmt.body):
        after = [c for part in rest for c in calls_in(part)]
        # ``if not is_new(d): continue`` / ``remember(d)``; not a cache fill, whose exit hands
        # back what is stored (``if cache.has(k): return cache.get(k)``)
        exit_reads = _state_used(model, stmt.body)
        pairs += [(t, after, True) for t in calls_in(stmt.test)]
        for name in _absent(stmt.test):
            bound = [a for a in fn.accesses if a.ref == f"l:{fn.qualname}.{name.value}" and a.kind == "write"]
            value = assigned_value(bound[0]) if len(bound) == 1 else None
            if isinstance(value, cst.Call):
                pairs.append((value, after, False))
    for test_node, acts, after_exit in pairs:
        test_call, query = callee(test_node)
        if query is None or model.exclusive_held(fn.qualname, test_call.held):
            continue
        if any(a.kind in CHANGES and a.ref.startswith(("a:", "g:")) for a in query.accesses):
            continue  # not a pure query
        tested = {
            (a.ref, model.lock_identity(h.ref)): h.ref for a in query.accesses
            if a.kind == "read" and a.ref.startswith(("a:", "g:")) and model.primitive_kind(a.ref) is None
            for h in a.held if model.excludes(model.lock_identity(h.ref))
        }
        if not tested or (after_exit and {ref for ref, _ in tested} & exit_reads):
            continue
        for body_node in acts:
            body_call, act = callee(body_node)
            if act is None or act is query or model.exclusive_held(fn.qualname, body_call.held):
                continue
            retested = set()
            if body_call.statement is None:  # the caller uses what the update answers
                retested = {acc.ref for t in _nodes(act.node.body).tests for n in _nodes(t).names
                            for acc in accesses_at(model, n)}
            for acc in act.accesses:
                if acc.ref in retested:
                    continue  # ``if fleet.try_claim(r):``: the update tests again and says whether it did
                if acc.kind not in CHANGES:
                    continue
                for h in acc.held:
                    lock = tested.get((acc.ref, model.lock_identity(h.ref)))
                    if lock is None:
                        continue
                    rival = _writer(model, fn.qualname, acc.ref)
                    if rival is not None:
                        return query.name, act.name, acc.ref.split(":", 1)[1], lock.split(":", 1)[1], rival
    return None


def _state_used(model: ModuleModel, body: cst.CSTNode) -> set[str]:
    """Attributes and globals ``body`` reads, directly or in the functions it calls."""
    out: set[str] = set()
    found = _nodes(body)
    for node in found.names + found.subscripts:
        for acc in accesses_at(model, node):
            if acc.ref.startswith(("a:", "g:")) and model.primitive_kind(acc.ref) is None:
                out.add(acc.ref)
        call = call_at(model, node) if isinstance(node, cst.Call) else None
        for callee in call.callees if call is not None else ():
            info = model.functions.get(callee)
            if info is not None:
                out.update(a.ref for a in info.accesses if a.ref.startswith(("a:", "g:")) and a.kind == "read"
                           and model.primitive_kind(a.ref) is None)
    return out


def _absent(test: cst.BaseExpression) -> list[cst.Name]:
    """The local an absence test is about: ``x is None``, ``not x`` (else nothing)."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not) and isinstance(test.expression, cst.Name):
        return [test.expression]
    if (isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and isinstance(test.left, cst.Name)
            and isinstance(test.comparisons[0].operator, (cst.Is, cst.Equal))
            and isinstance(test.comparisons[0].comparator, cst.Name) and test.comparisons[0].comparator.value == "None"):
        return [test.left]
    return []


def _removes(acc) -> bool:
    """``free.remove(ip)``, ``pending.pop(key)``: taking out what the test found there."""
    node = acc.node
    return (
        acc.kind == "mutate"
        and isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value in ("remove", "pop", "discard", "popitem", "popleft")
    )


def _presence_test(model: ModuleModel, test: cst.BaseExpression, ref: str) -> bool:
    """``x is None``, ``x is not None``, ``not x`` or ``x`` for ``ref``."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        test = test.expression
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        comp = test.comparisons[0]
        if not (isinstance(comp.operator, (cst.Is, cst.IsNot)) and isinstance(comp.comparator, cst.Name)
                and comp.comparator.value == "None"):
            return False
        test = test.left
    return any(acc.ref == ref for acc in accesses_at(model, test))


CHANGES = ("write", "rmw", "mutate", "item-write", "item-rmw")


def _writer(model: ModuleModel, function: str, ref: str) -> str | None:
    """A function that changes ``ref`` and may run at the same time as ``function``."""
    for other in model.functions.values():
        if other.name in SETUP or other.qualname == MODULE:
            continue
        if any(a.ref == ref and a.kind in CHANGES for a in other.accesses) and may_run_together(
            model, function, other.qualname, ref
        ):
            return other.qualname
    return None
