from __future__ import annotations

import re
from typing import Iterable

import libcst as cst

from ..analysis.model import MODULE, ModuleModel
from ._threadctx import function_label, last_name, thread_entries_of
from .base import Finding, Rule, RuleContext


class ThreadLocalUnset(Rule):
    """
    ## What it does
    Flags reads of a `threading.local()` attribute in code that runs on a worker thread when
    that attribute is only ever assigned by code running on other threads (the main thread,
    module level, the constructor of the object that starts the workers).

    ## Why is this bad?
    Every thread sees its own, initially empty, set of attributes on a `threading.local`
    object. A value assigned on the main thread does not exist on the worker, so the read
    raises `AttributeError` there, typically only in production where work moves to a pool.

    ## Example
    ```python
    ctx = threading.local()
    ctx.db = connect()

    def handle(job):
        ctx.db.execute(job.sql)      # AttributeError on the worker thread

    threading.Thread(target=handle, args=(job,)).start()
    ```

    ## Use instead
    ```python
    ctx = threading.local()

    def db():
        if not hasattr(ctx, "db"):
            ctx.db = connect()       # set once per thread, on that thread
        return ctx.db

    def handle(job):
        db().execute(job.sql)
    ```
    """

    code = "THR024"
    name = "thread-local-unset"
    summary = "`threading.local` attribute read on a thread that never set it (AttributeError)"
    help = "set the attribute on the thread that reads it (lazily, with `getattr(local, name, default)`), or subclass `threading.local` with an `__init__` that sets defaults"

    def check(self, ctx: RuleContext) -> Iterable[Finding]:
        model = ctx.model
        locals_ = [ref for ref, p in model.primitives.items() if p.kind == "local"]
        if not locals_:
            return
        for local in locals_:
            if _set_dynamically(model, local):
                continue
            setters: dict[str, set[str]] = {}
            reads: dict[str, list] = {}
            for acc in model.accesses:
                if not acc.ref.startswith(local + "."):
                    continue
                attr = acc.ref[len(local) + 1:].split(".", 1)[0]
                if acc.ref.count(".") == local.count(".") + 1 and acc.kind == "write":
                    setters.setdefault(attr, set()).add(acc.function)
                elif acc.kind in ("read", "rmw"):
                    reads.setdefault(attr, []).append(acc)
            passed = _functions_passed_as_values(model) - set(model.thread_entries)
            for attr, accesses in reads.items():
                writers = setters.get(attr)
                if not writers or writers & passed:
                    continue
                reported: set[str] = set()
                for acc in accesses:
                    if acc.function in reported or _guarded(ctx, model, acc.function, attr):
                        continue
                    for entry in sorted(thread_entries_of(model, acc.function)):
                        if model.reachable([entry]) & writers:
                            continue
                        reported.add(acc.function)
                        where = ", ".join(f"`{w if w != MODULE else 'module level'}`" for w in sorted(writers))
                        yield self.finding(
                            ctx,
                            acc.node,
                            f"`{ctx.code(acc.node)}` is read on the thread running `{entry}`, but only set in {where}, "
                            "which runs on another thread; it raises AttributeError there",
                            function=function_label(acc.function),
                        )
                        break


def _set_dynamically(model: ModuleModel, local: str) -> bool:
    name = local.rsplit(".", 1)[-1]
    if any(acc.ref == local + ".__dict__" for acc in model.accesses):
        return True
    for call in model.calls:
        func = call.node.func
        if isinstance(func, cst.Name) and func.value in ("setattr", "vars") and call.node.args:
            if last_name(call.node.args[0].value) == name:
                return True
    return False


def _functions_passed_as_values(model: ModuleModel) -> set[str]:
    """Module functions handed to other code (initializer=, callbacks): they may run anywhere.
    (Thread targets are not among them: they run on their own thread.)"""
    names: set[str] = set()
    for call in model.calls:
        for arg in call.node.args:
            n = last_name(arg.value)
            if n:
                names.add(n)
    return {q for q, fn in model.functions.items() if fn.name in names}


def _guarded(ctx: RuleContext, model: ModuleModel, function: str, attr: str) -> bool:
    """The function catches AttributeError, or tests/reads ``attr`` with ``hasattr``/``getattr``
    (a ``getattr`` for another attribute guards nothing)."""
    fn = model.functions.get(function)
    if fn is None or function == MODULE:
        return True
    text = ctx.code(fn.node)
    if "AttributeError" in text:
        return True
    probe = re.compile(r"\b(?:has|get)attr\(\s*[^,()]+,\s*(?:['\"]" + re.escape(attr) + r"['\"]|[A-Za-z_])")
    return bool(probe.search(text))
