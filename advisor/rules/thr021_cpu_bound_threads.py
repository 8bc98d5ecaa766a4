from __future__ import annotations

import re
from typing import Iterable

import libcst as cst

from ..analysis.model import EXECUTOR_KINDS, FunctionInfo, ModuleModel, Spawn
from ._threadctx import function_label
from .base import Finding, Rule, RuleContext

PURE_BUILTINS = frozenset(
    {
        "range", "len", "abs", "min", "max", "sum", "int", "float", "complex", "divmod", "pow", "round",
        "enumerate", "zip", "bool", "isinstance", "reversed", "sorted", "list", "tuple", "dict", "set",
        "any", "all", "chr", "ord", "bin", "hex", "oct", "str", "frozenset",
    }
)
RESULT_METHODS = frozenset({"append", "extend", "add", "acquire", "release"})
READ_METHODS = frozenset({"items", "keys", "values", "copy", "count", "index"})
"""Methods that only read a container (``get`` too, as ``d.get(key, default)``)."""
ARITHMETIC = (
    cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power,
    cst.LeftShift, cst.RightShift, cst.BitAnd, cst.BitOr, cst.BitXor,
)
ARITHMETIC_AUG = (
    cst.MultiplyAssign, cst.DivideAssign, cst.FloorDivideAssign,
    cst.ModuloAssign, cst.PowerAssign, cst.LeftShiftAssign, cst.RightShiftAssign, cst.BitAndAssign,
    cst.BitOrAssign, cst.BitXorAssign,
)


class CpuBoundThreads(Rule):
    """
    ## What it does
    Flags work split across several threads (a `Thread` per chunk, `ThreadPoolExecutor.map`
    or `submit` in a loop) when the thread function is a pure-Python arithmetic loop: no
    I/O, no blocking call, no call into a C extension that releases the GIL, only
    arithmetic, builtins like `range`/`sum`/`min`, `math` functions and reading dicts
    (`items()`, `get(key, default)`).

    ## Why is this bad?
    On CPython with the GIL only one thread executes Python bytecode at a time. Splitting a
    CPU-bound loop over threads gives no speed-up and usually a slow-down (GIL hand-offs,
    cache traffic), while adding the complexity of concurrency.

    ## Example
    ```python
    def count_primes(lo, hi):
        return sum(1 for n in range(lo, hi) if all(n % d for d in range(2, int(n ** 0.5) + 1)))

    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(count_primes, starts, stops))
    ```

    ## Use instead
    ```python
    with ProcessPoolExecutor(8) as pool:      # or a free-threaded (3.13t+) build
        total = sum(pool.map(count_primes, starts, stops))
    ```
    """

    code = "THR021"
    name = "cpu-bound-threads"
    summary = "pure-Python CPU-bound loop split across threads: the GIL serialises it, no speed-up"
    help = "use `concurrent.futures.ProcessPoolExecutor` (or `multiprocessing`) for CPU-bound work, or a free-threaded Python build"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        memo: dict[str, bool] = {}
        for spawn in model.spawns:
            if not _parallel(model, spawn) or len(spawn.targets) != 1:
                continue
            target = spawn.targets[0]
            fn = model.functions.get(target)
            if fn is None or fn.is_lambda or not _pure(model, target, memo, set()):
                continue
            if not _has_arithmetic_loop(model, target, set()):
                continue
            yield self.finding(
                ctx,
                spawn.node,
                f"`{target}` is a pure-Python CPU-bound loop run on several threads; the GIL lets only one "
                "run at a time, so this gives no speed-up",
                function=function_label(spawn.function),
            )


def _parallel(model: ModuleModel, spawn: Spawn) -> bool:
    if spawn.kind in ("submit", "map"):
        if not spawn.certain or model.primitive_kind(spawn.executor) not in EXECUTOR_KINDS - {"ProcessPoolExecutor"}:
            return False
        return spawn.kind == "map" or spawn.in_loop
    if spawn.kind == "thread":
        return spawn.in_loop or len(model.thread_entries.get(spawn.targets[0], ())) > 1 if spawn.targets else False
    return False


IO_NAMES = re.compile(
    r"fetch|download|upload|request|send|recv|read|write|load|save|crawl|scrape|query|connect|sleep|wait|poll|http|socket|file|io$",
    re.I,
)


def _pure(model: ModuleModel, name: str, memo: dict[str, bool], stack: set[str]) -> bool:
    if name in memo:
        return memo[name]
    if name in stack:
        return True
    fn = model.functions[name]
    if IO_NAMES.search(fn.name):
        memo[name] = False
        return False
    stack.add(name)
    result = not fn.is_async and _pure_body(fn) and all(_pure_call(model, c, memo, stack) for c in fn.calls)
    stack.discard(name)
    memo[name] = result
    return result


def _pure_call(model: ModuleModel, call, memo: dict[str, bool], stack: set[str]) -> bool:
    if call.callees:
        return all(_pure(model, c, memo, stack) for c in call.callees if c in model.functions)
    func = call.node.func
    if call.attr in RESULT_METHODS:
        return True
    if call.receiver_kind is None and isinstance(func, cst.Attribute):
        if call.attr in READ_METHODS and not call.node.args:
            return True
        args = call.node.args
        if call.attr == "get" and len(args) == 2 and all(a.keyword is None for a in args) and not (
            isinstance(args[0].value, cst.Name) and args[0].value.value in ("True", "False")
        ):
            return True  # ``d.get(key, default)``, not ``q.get(True, timeout)``
    qual = call.qualname or ""
    if qual.startswith("math.") or qual.startswith("operator."):
        return True
    return isinstance(func, cst.Name) and call.qualname is None and func.value in PURE_BUILTINS


def _pure_body(fn: FunctionInfo) -> bool:
    checker = _BodyChecker()
    body = fn.node.body if isinstance(fn.node, cst.FunctionDef) else fn.node
    body.visit(checker)
    return checker.pure


def _has_arithmetic_loop(model: ModuleModel, name: str, seen: set[str]) -> bool:
    if name in seen:
        return False
    seen.add(name)
    fn = model.functions[name]
    finder = _LoopFinder()
    body = fn.node.body if isinstance(fn.node, cst.FunctionDef) else fn.node
    body.visit(finder)
    if finder.found:
        return True
    return any(_has_arithmetic_loop(model, c, seen) for call in fn.calls for c in call.callees if c in model.functions)


class _BodyChecker(cst.CSTVisitor):
    def __init__(self) -> None:
        self.pure = True

    def _impure(self, node: cst.CSTNode) -> bool:
        self.pure = False
        return False

    visit_FunctionDef = _impure  # type: ignore[assignment]
    visit_ClassDef = _impure  # type: ignore[assignment]
    visit_Lambda = _impure  # type: ignore[assignment]
    visit_Await = _impure  # type: ignore[assignment]
    visit_Yield = _impure  # type: ignore[assignment]
    visit_Import = _impure  # type: ignore[assignment]
    visit_ImportFrom = _impure  # type: ignore[assignment]

    def visit_With(self, node: cst.With) -> bool:
        if any(isinstance(item.item, cst.Call) for item in node.items):
            self.pure = False
        return True


class _LoopFinder(cst.CSTVisitor):
    """Finds real number crunching: multiplicative arithmetic in a loop, or any arithmetic in nested loops.
    A loop that only counts (``n += 1``) is not evidence of CPU-bound work."""

    def __init__(self) -> None:
        self.depth = 0
        self.found = False

    @staticmethod
    def _range(iter_: cst.BaseExpression) -> bool:
        return True

    def visit_For(self, node: cst.For) -> None:
        self.depth += 1 if self._range(node.iter) else 0
        self.__dict__.setdefault("_stack", []).append(self._range(node.iter))

    def leave_For(self, node: cst.For) -> None:
        if self._stack.pop():
            self.depth -= 1

    def visit_While(self, node: cst.While) -> None:
        self.depth += 1

    def leave_While(self, node: cst.While) -> None:
        self.depth -= 1

    def _visit_comp(self, node: cst.CSTNode) -> None:
        ranged = False
        comp = getattr(node, "for_in", None)
        while comp is not None:
            ranged = ranged or self._range(comp.iter)
            comp = comp.inner_for_in
        self.__dict__.setdefault("_comp", []).append(ranged)
        self.depth += ranged

    def _leave_comp(self, node: cst.CSTNode) -> None:
        self.depth -= self._comp.pop()

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _visit_comp  # type: ignore[assignment]
    leave_ListComp = leave_SetComp = leave_DictComp = leave_GeneratorExp = _leave_comp  # type: ignore[assignment]

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if self.depth and isinstance(node.operator, ARITHMETIC):
            self.found = True
        elif self.depth >= 2 and isinstance(node.operator, (cst.Add, cst.Subtract)):
            self.found = True

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if self.depth and isinstance(node.operator, ARITHMETIC_AUG):
            self.found = True
        elif self.depth >= 2 and isinstance(node.operator, (cst.AddAssign, cst.SubtractAssign)):
            self.found = True
